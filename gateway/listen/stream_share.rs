//! The ingress's cap on calls in flight (`--max-streams`), shared out when
//! it is full. One pool, first come first served, let a client that holds
//! calls open (a few body bytes, no end) take all of it and every other
//! client's calls be refused. So a new call that finds the pool full takes
//! the place of one of the heaviest holder's calls when its own client
//! holds fewer: "holder" first by peer IP (a client on another IP always
//! wins against a one-IP attacker), then by connection within an IP (a
//! connection beside the attacker's, through one NAT or proxy, wins
//! against its heavier connections).
//!
//! The count is one atomic, so a call under the cap takes no lock but its
//! own connection's (to be findable); the holders' table is locked only
//! when a connection opens or closes and when the pool is full.

use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Poll;

use futures_util::task::AtomicWaker;

/// One connection's holding, as the rule reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Holding {
    pub(crate) ip: IpAddr,
    pub(crate) connection: u64,
    /// Its calls holding a place.
    pub(crate) held: usize,
}

/// The connection whose call gives up its place to a new call of `me`'s,
/// the pool being full; `None`: the new call is refused.
///
/// The heaviest other IP gives one up when `me`'s IP, with the new call,
/// would still hold fewer than it after; otherwise the heaviest other
/// connection on `me`'s own IP, by the same test. "Fewer after", not just
/// "fewer": two holders one apart would otherwise trade a place back and
/// forth on every call. Ties go to the lowest connection number (the
/// oldest connection), so the choice does not depend on the table's order.
pub(crate) fn victim(holdings: &[Holding], me: (IpAddr, u64)) -> Option<u64> {
    let (my_ip, my_connection) = me;
    let mut by_ip: BTreeMap<IpAddr, usize> = BTreeMap::new();
    for holding in holdings {
        *by_ip.entry(holding.ip).or_default() += holding.held;
    }
    let mine = by_ip.get(&my_ip).copied().unwrap_or(0);
    // The first of the heaviest: `max_by_key` keeps the last.
    let heaviest_ip = by_ip.iter().filter(|&(&ip, _)| ip != my_ip).fold(
        None,
        |best: Option<(IpAddr, usize)>, (&ip, &held)| match best {
            Some((_, most)) if most >= held => best,
            _ => Some((ip, held)),
        },
    );
    if let Some((ip, held)) = heaviest_ip
        && mine + 1 < held
    {
        return heaviest_connection(holdings, ip, None).map(|h| h.connection);
    }
    let my_held = holdings
        .iter()
        .find(|h| h.connection == my_connection)
        .map_or(0, |h| h.held);
    heaviest_connection(holdings, my_ip, Some(my_connection))
        .filter(|h| my_held + 1 < h.held)
        .map(|h| h.connection)
}

/// The connection on `ip` holding most (but `except`), the lowest
/// connection number among equals.
fn heaviest_connection(holdings: &[Holding], ip: IpAddr, except: Option<u64>) -> Option<Holding> {
    holdings
        .iter()
        .filter(|h| h.ip == ip && Some(h.connection) != except && h.held > 0)
        .fold(None, |best: Option<Holding>, h| match best {
            Some(b) if b.held > h.held || (b.held == h.held && b.connection < h.connection) => best,
            _ => Some(*h),
        })
}

/// The address a holder is counted by: an IPv4-mapped IPv6 address as the
/// IPv4 it is, and other IPv6 addresses by their /64, the least a host is
/// given, so that one host cannot be many holders by its addresses alone.
pub(crate) fn holder_ip(peer: IpAddr) -> IpAddr {
    match peer.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
        v4 => v4,
    }
}

/// The ingress's streams: the cap, the calls in flight, and who holds them.
#[derive(Debug)]
pub(crate) struct StreamShare {
    cap: usize,
    in_flight: AtomicUsize,
    holders: Mutex<Holders>,
}

#[derive(Debug, Default)]
struct Holders {
    next: u64,
    by_connection: BTreeMap<u64, Arc<Holder>>,
}

/// One connection's share: its calls holding a place.
#[derive(Debug)]
struct Holder {
    share: Arc<StreamShare>,
    connection: u64,
    ip: IpAddr,
    held: AtomicUsize,
    /// Its calls, oldest first; ended ones are swept out when they are as
    /// many as the live ones, so the queue stays within twice its calls.
    calls: Mutex<VecDeque<Arc<Seat>>>,
}

const LIVE: u8 = 0;
const ENDED: u8 = 1;
const PREEMPTED: u8 = 2;

/// A call's place: live until it ends or gives its place up, whichever
/// comes first (the other then does nothing). An `AtomicWaker`, not a
/// `Notify`: polled on every wake of the call, a `Notify` takes its lock
/// each time (callgrind: about 500 instructions a call more).
#[derive(Debug)]
struct Seat {
    state: AtomicU8,
    call: AtomicWaker,
}

/// One connection's share of the cap; taken from the share when the
/// connection opens, given back when it closes.
#[derive(Debug)]
pub(crate) struct StreamHolder(Arc<Holder>);

/// A call's place under the cap, held until dropped or preempted.
#[derive(Debug)]
pub(crate) struct Place {
    holder: Arc<Holder>,
    seat: Arc<Seat>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl StreamShare {
    pub(crate) fn new(cap: usize) -> Arc<Self> {
        Arc::new(StreamShare {
            cap: cap.max(1),
            in_flight: AtomicUsize::new(0),
            holders: Mutex::new(Holders::default()),
        })
    }

    /// The share of a connection from `peer`.
    pub(crate) fn holder(self: &Arc<Self>, peer: IpAddr) -> StreamHolder {
        let mut holders = lock(&self.holders);
        let connection = holders.next;
        holders.next += 1;
        let holder = Arc::new(Holder {
            share: Arc::clone(self),
            connection,
            ip: holder_ip(peer),
            held: AtomicUsize::new(0),
            calls: Mutex::new(VecDeque::new()),
        });
        holders.by_connection.insert(connection, Arc::clone(&holder));
        StreamHolder(holder)
    }

    /// A place under the cap, if one is free.
    fn try_take(&self) -> bool {
        if self.in_flight.fetch_add(1, Ordering::AcqRel) < self.cap {
            return true;
        }
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
        false
    }

    /// The pool is full: a place for `me`'s new call taken from the
    /// heaviest holder, if the rule gives one.
    fn make_room(&self, me: &Arc<Holder>) -> Option<Place> {
        let holders = lock(&self.holders);
        // A call may have ended since.
        if self.try_take() {
            return Some(me.seat());
        }
        let holdings: Vec<Holding> = holders
            .by_connection
            .values()
            .map(|h| Holding {
                ip: h.ip,
                connection: h.connection,
                held: h.held.load(Ordering::Acquire),
            })
            .collect();
        let victim = victim(&holdings, (me.ip, me.connection))?;
        let preempted = holders.by_connection.get(&victim).is_some_and(|h| h.preempt_oldest());
        // None preempted: its calls all ended meanwhile, and freed places.
        (preempted || self.try_take()).then(|| me.seat())
    }

    #[cfg(test)]
    fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }
}

impl Holder {
    /// A place taken (the count already moved): the call's seat, queued.
    fn seat(self: &Arc<Self>) -> Place {
        let held = self.held.fetch_add(1, Ordering::AcqRel) + 1;
        let seat = Arc::new(Seat {
            state: AtomicU8::new(LIVE),
            call: AtomicWaker::new(),
        });
        let mut calls = lock(&self.calls);
        if calls.len() >= 2 * held {
            calls.retain(|seat| seat.state.load(Ordering::Acquire) == LIVE);
        }
        calls.push_back(Arc::clone(&seat));
        Place {
            holder: Arc::clone(self),
            seat,
        }
    }

    /// Preempts this connection's oldest live call: the oldest has held its
    /// place longest, and a held stream is old by its nature while a normal
    /// call is young, so the oldest is the likeliest hold. Its place is the
    /// preemptor's now: the count does not move. `false`: none was live.
    fn preempt_oldest(&self) -> bool {
        let mut calls = lock(&self.calls);
        while let Some(seat) = calls.pop_front() {
            if seat
                .state
                .compare_exchange(LIVE, PREEMPTED, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                self.held.fetch_sub(1, Ordering::AcqRel);
                seat.call.wake();
                return true;
            }
        }
        false
    }
}

impl StreamHolder {
    /// A place for one more call of this connection: free, or taken from
    /// the heaviest holder; `None`: refuse the call.
    pub(crate) fn place(&self) -> Option<Place> {
        let holder = &self.0;
        if holder.share.try_take() {
            return Some(holder.seat());
        }
        holder.share.make_room(holder)
    }
}

impl Drop for StreamHolder {
    /// Its calls still unwinding keep their places till they end, but
    /// cannot be preempted: they end with the connection.
    fn drop(&mut self) {
        lock(&self.0.share.holders).by_connection.remove(&self.0.connection);
    }
}

impl Place {
    /// Resolves once another holder's call has taken this place: the call
    /// is to be reset.
    pub(crate) async fn preempted(&self) {
        let seat = &self.seat;
        let taken = || seat.state.load(Ordering::Acquire) == PREEMPTED;
        std::future::poll_fn(|cx| {
            if taken() {
                return Poll::Ready(());
            }
            // Registered before the second look: a preemption in between
            // is seen by it, or wakes the waker registered.
            seat.call.register(cx.waker());
            if taken() { Poll::Ready(()) } else { Poll::Pending }
        })
        .await;
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        // A preempted place went to its preemptor: nothing to give back.
        if self
            .seat
            .state
            .compare_exchange(LIVE, ENDED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            self.holder.held.fetch_sub(1, Ordering::AcqRel);
            self.holder.share.in_flight.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

#[cfg(test)]
mod tests {
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
}
