//! The share's rule, checked on every small table of holders, and its
//! places: free under the cap, preempted when full, given back when dropped.

use std::net::Ipv4Addr;

use futures_util::FutureExt;

use super::*;

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

fn holding(last: u8, connection: u64, held: usize) -> Holding {
    Holding {
        ip: ip(last),
        connection,
        held,
    }
}

#[test]
fn a_client_on_another_ip_takes_from_the_heaviest_connection_of_the_heaviest_ip() {
    let table = [
        holding(1, 0, 30),
        holding(1, 1, 34),
        holding(3, 2, 10),
        holding(2, 3, 0),
    ];
    assert_eq!(victim(&table, (ip(2), 3)), Some(1));
}

#[test]
fn a_connection_on_the_attackers_ip_takes_from_its_heaviest_connection() {
    let table = [holding(1, 0, 16), holding(1, 1, 17), holding(1, 2, 0)];
    assert_eq!(victim(&table, (ip(1), 2)), Some(1));
}

#[test]
fn holders_one_apart_trade_no_place() {
    let table = [holding(1, 0, 5), holding(2, 1, 4)];
    assert_eq!(victim(&table, (ip(2), 1)), None);
    let table = [holding(1, 0, 5), holding(1, 1, 4)];
    assert_eq!(victim(&table, (ip(1), 1)), None);
}

#[test]
fn a_lighter_ip_still_gets_its_own_heavier_connection_to_give_way() {
    // 127.0.0.2 holds 30 against 127.0.0.1's 31: not lighter enough
    // to take from it, but its connection 2 holds 29 beside 3's 1.
    let table = [holding(1, 0, 31), holding(2, 2, 29), holding(2, 3, 1)];
    assert_eq!(victim(&table, (ip(2), 3)), Some(2));
}

/// Every table of up to four connections on three IPs holding 0 to 3
/// calls each, for each of them as the newcomer: the rule as the
/// module says it, whatever the table's order.
#[test]
fn the_rule_holds_for_every_small_table() {
    let mut checked = 0;
    for connections in 1..=4usize {
        for ips in 0..3usize.pow(connections as u32) {
            for helds in 0..4usize.pow(connections as u32) {
                let table: Vec<Holding> = (0..connections)
                    .map(|c| {
                        let last = 1 + (ips / 3usize.pow(c as u32) % 3) as u8;
                        holding(last, c as u64, helds / 4usize.pow(c as u32) % 4)
                    })
                    .collect();
                for me in &table {
                    check(&table, me);
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, 3 * 4 + 2 * 9 * 16 + 3 * 27 * 64 + 4 * 81 * 256);
}

fn check(table: &[Holding], me: &Holding) {
    let total = |ip: IpAddr| -> usize { table.iter().filter(|h| h.ip == ip).map(|h| h.held).sum() };
    let mine = total(me.ip);
    let other_max = table
        .iter()
        .filter(|h| h.ip != me.ip)
        .map(|h| total(h.ip))
        .max()
        .unwrap_or(0);
    let same_max = table
        .iter()
        .filter(|h| h.ip == me.ip && h.connection != me.connection)
        .map(|h| h.held)
        .max()
        .unwrap_or(0);
    let got = victim(table, (me.ip, me.connection));
    let mut reversed = table.to_vec();
    reversed.reverse();
    assert_eq!(victim(&reversed, (me.ip, me.connection)), got, "{table:?}, {me:?}");
    let found = got.map(|c| *table.iter().find(|h| h.connection == c).unwrap());
    if mine + 2 <= other_max {
        let v = found.unwrap_or_else(|| panic!("none for {me:?} in {table:?}"));
        assert!(v.ip != me.ip && total(v.ip) == other_max, "{table:?}, {me:?}: {v:?}");
        let on_its_ip = table.iter().filter(|h| h.ip == v.ip).map(|h| h.held).max();
        assert_eq!(Some(v.held), on_its_ip, "{table:?}, {me:?}");
    } else if me.held + 2 <= same_max {
        let v = found.unwrap_or_else(|| panic!("none for {me:?} in {table:?}"));
        assert!(
            v.ip == me.ip && v.connection != me.connection,
            "{table:?}, {me:?}: {v:?}"
        );
        assert_eq!(v.held, same_max, "{table:?}, {me:?}");
    } else {
        assert_eq!(found, None, "{table:?}, {me:?}");
    }
}

#[test]
fn an_ipv6_host_is_one_holder_by_its_64_and_a_mapped_ipv4_is_the_ipv4() {
    let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
    let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
    let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
    assert_eq!(holder_ip(a), holder_ip(b));
    assert_ne!(holder_ip(a), holder_ip(c));
    assert_eq!(holder_ip("::ffff:127.0.0.2".parse().unwrap()), ip(2));
    assert_eq!(holder_ip(ip(9)), ip(9));
}

fn is_preempted(place: &Place) -> bool {
    place.preempted().now_or_never().is_some()
}

#[test]
fn under_the_cap_a_place_is_free_and_given_back_when_dropped() {
    let share = StreamShare::new(2);
    let holder = share.holder(ip(1));
    let places: Vec<Place> = (0..2).filter_map(|_| holder.place()).collect();
    assert_eq!((places.len(), share.in_flight()), (2, 2));
    assert!(holder.place().is_none(), "over the cap, alone: refused");
    drop(places);
    assert_eq!(share.in_flight(), 0);
    assert!(holder.place().is_some());
}

#[test]
fn a_full_pool_gives_the_heaviest_holders_oldest_place_to_a_lighter_one() {
    let share = StreamShare::new(4);
    let attacker = share.holder(ip(1));
    let held: Vec<Place> = (0..4).filter_map(|_| attacker.place()).collect();
    assert_eq!(held.len(), 4);
    let other = share.holder(ip(2));
    let first = other.place().expect("a lighter holder is admitted");
    assert_eq!(
        held.iter().map(is_preempted).collect::<Vec<_>>(),
        [true, false, false, false]
    );
    assert_eq!(share.in_flight(), 4, "the place moved; the count did not");
    // The preempted call unwinding gives back nothing.
    let mut held = held.into_iter();
    drop(held.next());
    assert_eq!(share.in_flight(), 4);
    let second = other.place().expect("2 against 3: still lighter after");
    assert!(other.place().is_none(), "2 against 2: no trade");
    assert!(attacker.place().is_none(), "2 against 2: no trade");
    drop((first, second));
    assert_eq!(share.in_flight(), 2);
    assert!(attacker.place().is_some(), "a place freed is anyone's");
}

#[test]
fn two_greedy_clients_end_with_half_the_pool_each() {
    let share = StreamShare::new(10);
    let (a, b) = (share.holder(ip(1)), share.holder(ip(2)));
    let a_places: Vec<Place> = (0..20).filter_map(|_| a.place()).collect();
    let b_places: Vec<Place> = (0..20).filter_map(|_| b.place()).collect();
    let a_live = a_places.iter().filter(|p| !is_preempted(p)).count();
    assert_eq!((a_live, b_places.len(), share.in_flight()), (5, 5, 10));
}

#[test]
fn a_closed_connections_calls_keep_their_places_till_they_end_but_cannot_be_taken() {
    let share = StreamShare::new(2);
    let gone = share.holder(ip(1));
    let places: Vec<Place> = (0..2).filter_map(|_| gone.place()).collect();
    drop(gone);
    let other = share.holder(ip(2));
    assert!(other.place().is_none());
    drop(places);
    assert!(other.place().is_some());
}
