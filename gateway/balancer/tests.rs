//! The balancer's unit tests: round robin, updates, ejection and the skip bookkeeping.

use std::collections::HashMap;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use super::*;

fn set(addresses: &[&str]) -> EndpointSet {
    addresses.iter().map(|a| EndpointInfo::ready(*a)).collect()
}

/// The tests' "connection": the address plus a serial number, so tests can
/// see when a connection was (re)made.
type Conn = (String, usize);

fn balancer() -> Balancer<Conn> {
    let made = AtomicUsize::new(0);
    Balancer::new(move |info| (info.address.clone(), made.fetch_add(1, Ordering::Relaxed)))
}

fn tally(balancer: &Balancer<(String, usize)>, n: usize) -> HashMap<String, usize> {
    let now = Instant::now();
    let mut hits = HashMap::new();
    for _ in 0..n {
        let member = balancer.pick(now).expect("an endpoint");
        *hits.entry(member.conn.0.clone()).or_default() += 1;
    }
    hits
}

#[test]
fn empty_set_picks_nothing() {
    let b = balancer();
    assert!(b.pick(Instant::now()).is_none());
    b.update(&set(&["a:1"]));
    b.update(&set(&[]));
    assert!(b.pick(Instant::now()).is_none());
    assert_eq!(b.ready_count(), 0);
}

#[test]
fn round_robin_is_exact() {
    let b = balancer();
    b.update(&set(&["a:1", "b:1", "c:1"]));
    let hits = tally(&b, 300);
    assert_eq!(hits.len(), 3);
    assert!(hits.values().all(|&n| n == 100), "{hits:?}");
    // Strict rotation, not just equal totals.
    let now = Instant::now();
    let order: Vec<String> = (0..6).map(|_| b.pick(now).unwrap().info.address.clone()).collect();
    assert_eq!(order[..3], order[3..]);
    assert_eq!(order[..3].iter().collect::<std::collections::HashSet<_>>().len(), 3);
}

#[test]
fn uneven_counts_differ_by_at_most_one() {
    let b = balancer();
    b.update(&set(&["a:1", "b:1", "c:1"]));
    let hits = tally(&b, 301);
    let (min, max) = (hits.values().min().unwrap(), hits.values().max().unwrap());
    assert!(max - min <= 1, "{hits:?}");
    assert_eq!(hits.values().sum::<usize>(), 301);
}

#[test]
fn not_ready_endpoints_get_no_traffic_but_are_listed() {
    let b = balancer();
    let mut endpoints = set(&["a:1", "b:1"]);
    endpoints[1].ready = false;
    b.update(&endpoints);
    assert_eq!(tally(&b, 10), HashMap::from([("a:1".to_owned(), 10)]));
    assert_eq!(b.endpoints().len(), 2);
    assert_eq!(b.ready_count(), 1);
}

#[test]
fn update_keeps_connections_of_endpoints_that_stay() {
    let b = balancer();
    b.update(&set(&["a:1", "b:1"]));
    let before: HashMap<String, usize> = tally_conns(&b);
    b.update(&set(&["b:1", "c:1"]));
    let after = tally_conns(&b);
    assert_eq!(before["b:1"], after["b:1"], "b's connection must be reused");
    assert!(!after.contains_key("a:1"), "removed endpoint must get no traffic");
    assert!(
        after["c:1"] > before["b:1"].max(before["a:1"]),
        "c gets a new connection"
    );
}

fn tally_conns(b: &Balancer<(String, usize)>) -> HashMap<String, usize> {
    let now = Instant::now();
    (0..b.ready_count() * 2)
        .map(|_| {
            let m = b.pick(now).unwrap();
            (m.conn.0.clone(), m.conn.1)
        })
        .collect()
}

#[test]
fn a_new_pod_on_a_reused_address_gets_a_new_connection() {
    let b = balancer();
    b.update(&vec![EndpointInfo::ready("a:1").with_pod_name("old")]);
    let old = b.pick(Instant::now()).unwrap().conn.1;
    b.update(&vec![EndpointInfo::ready("a:1").with_pod_name("new")]);
    let new = b.pick(Instant::now()).unwrap();
    assert_ne!(old, new.conn.1);
    assert_eq!(new.info.pod_name.as_deref(), Some("new"));
}

#[test]
fn ejected_member_is_skipped_until_the_ejection_ends() {
    let b = balancer();
    b.update(&set(&["a:1", "b:1", "c:1"]));
    let now = Instant::now();
    let a = b
        .snapshot
        .load()
        .ready
        .iter()
        .find(|m| m.info.address == "a:1")
        .cloned()
        .unwrap();
    b.eject(&a, now, now, "connection refused");
    let during: Vec<String> = (0..6).map(|_| b.pick(now).unwrap().info.address.clone()).collect();
    assert!(!during.contains(&"a:1".to_owned()), "{during:?}");
    let later = now + EJECTION;
    let after: Vec<String> = (0..3).map(|_| b.pick(later).unwrap().info.address.clone()).collect();
    assert!(after.contains(&"a:1".to_owned()), "{after:?}");
}

#[test]
fn when_all_are_ejected_one_is_still_tried() {
    let b = balancer();
    b.update(&set(&["a:1"]));
    let now = Instant::now();
    let a = b.pick(now).unwrap();
    b.eject(&a, now, now, "connection refused");
    assert_eq!(b.pick(now).unwrap().info.address, "a:1");
}

#[test]
fn concurrent_pickers_still_split_exactly() {
    // Requests run on every worker thread: the atomic cursor must give
    // each pick its own turn, so totals are exact, not merely close.
    const THREADS: usize = 8;
    const PICKS: usize = 3_000;
    let b = Arc::new(balancer());
    b.update(&set(&["a:1", "b:1", "c:1"]));
    let workers: Vec<_> = (0..THREADS)
        .map(|_| {
            let b = Arc::clone(&b);
            std::thread::spawn(move || tally(&b, PICKS))
        })
        .collect();
    let mut hits: HashMap<String, usize> = HashMap::new();
    for worker in workers {
        for (address, n) in worker.join().unwrap() {
            *hits.entry(address).or_default() += n;
        }
    }
    let each = THREADS * PICKS / 3;
    assert_eq!(
        hits,
        HashMap::from([("a:1".into(), each), ("b:1".into(), each), ("c:1".into(), each)])
    );
}

#[test]
fn an_update_during_picks_never_serves_a_removed_endpoint() {
    let b = Arc::new(balancer());
    b.update(&set(&["a:1", "b:1"]));
    let picker = {
        let b = Arc::clone(&b);
        std::thread::spawn(move || {
            let now = Instant::now();
            // Picks race the update below; once it has returned, "a:1" is gone.
            let mut after_update = Vec::new();
            while after_update.len() < 1_000 {
                let removed = b.ready_count() == 1;
                let member = b.pick(now).expect("an endpoint");
                if removed {
                    after_update.push(member.info.address.clone());
                }
            }
            after_update
        })
    };
    b.update(&set(&["b:1"]));
    let after = picker.join().unwrap();
    assert!(
        after.iter().all(|a| a == "b:1"),
        "{:?}",
        after.iter().filter(|a| *a != "b:1").count()
    );
}

/// The member at `address`.
fn member(b: &Balancer<Conn>, address: &str) -> Arc<Member<Conn>> {
    b.snapshot
        .load()
        .ready
        .iter()
        .find(|m| m.info.address == address)
        .cloned()
        .unwrap()
}

/// The skips of the report, by address.
fn skips(b: &Balancer<Conn>) -> Vec<(String, Option<Skip>)> {
    b.report()
        .into_iter()
        .map(|(info, skip)| (info.address, skip))
        .collect()
}

fn skip(reason: &str, until: Instant, failures: u32) -> Option<Skip> {
    Some(Skip {
        reason: reason.into(),
        until,
        failures,
    })
}

/// A balancer over a:1 and b:1, the member a:1, and the time now.
fn a_and_b() -> (Balancer<Conn>, Arc<Member<Conn>>, Instant) {
    let b = balancer();
    b.update(&set(&["a:1", "b:1"]));
    let a = member(&b, "a:1");
    (b, a, Instant::now())
}

#[test]
fn ejections_grow_two_four_eight_sixteen_then_thirty_seconds() {
    let secs: Vec<u64> = (1..=8).map(|n| ejection_for(n).as_secs()).collect();
    assert_eq!(secs, [2, 4, 8, 16, 30, 30, 30, 30]);
    assert_eq!(ejection_for(u32::MAX), MAX_EJECTION);
    assert_eq!(ejection_for(0), EJECTION);
}

#[test]
fn an_ejection_records_its_reason_and_until_in_the_report() {
    let b = balancer();
    let mut endpoints = set(&["a:1", "b:1", "c:1"]);
    endpoints[2].ready = false;
    b.update(&endpoints);
    let t0 = Instant::now();
    assert!(b.eject(&member(&b, "b:1"), t0, t0, "connection refused"));
    assert_eq!(
        skips(&b),
        [
            ("a:1".into(), None),
            ("b:1".into(), skip("connection refused", t0 + EJECTION, 1)),
            ("c:1".into(), None),
        ]
    );
    // Skipped until then, picked again from then on.
    let during: Vec<String> = (0..4)
        .map(|_| {
            b.pick(t0 + EJECTION - Duration::from_millis(1))
                .unwrap()
                .info
                .address
                .clone()
        })
        .collect();
    assert_eq!(during, ["a:1", "a:1", "a:1", "a:1"]);
    let after: Vec<String> = (0..2)
        .map(|_| b.pick(t0 + EJECTION).unwrap().info.address.clone())
        .collect();
    assert!(after.contains(&"b:1".to_owned()), "{after:?}");
}

#[test]
fn a_pod_that_stays_dead_stays_skipped_with_ever_longer_ejections() {
    let (b, a, t0) = a_and_b();
    assert!(b.eject(&a, t0, t0, "connection refused"));
    // Calls that were already on their way fail too: nothing changes.
    assert!(!b.eject(&a, t0, t0 + Duration::from_millis(5), "connection refused"));
    let picked = t0 + Duration::from_millis(10);
    assert!(!b.eject(&a, picked, picked, "connection reset"));
    assert_eq!(a.skip(), skip("connection refused", t0 + EJECTION, 1));
    // Due for a re-try, not yet re-tried: still skipped (no flicker to ready).
    let due = t0 + EJECTION;
    assert_eq!(skips(&b)[0], ("a:1".into(), skip("connection refused", due, 1)));
    // Each re-try that fails doubles the ejection, up to 30 s.
    let mut at = due;
    for (failures, secs) in [(2, 4), (3, 8), (4, 16), (5, 30), (6, 30)] {
        assert!(b.eject(&a, at, at, "connection refused"), "failure {failures}");
        let until = at + Duration::from_secs(secs);
        assert_eq!(a.skip(), skip("connection refused", until, failures));
        assert!(!b.eject(
            &a,
            until - Duration::from_millis(1),
            until - Duration::from_millis(1),
            "x"
        ));
        at = until;
    }
    // A new reason once due is reported.
    assert!(b.eject(&a, at, at, "no answer within 5s"));
    assert_eq!(a.skip(), skip("no answer within 5s", at + MAX_EJECTION, 7));
}

#[test]
fn a_success_ends_the_skip_and_resets_the_ejection() {
    let (b, a, t0) = a_and_b();
    assert!(!b.succeeded(&a, t0, t0), "not skipped: nothing to end");
    assert!(b.eject(&a, t0, t0, "connection refused"));
    let t1 = t0 + EJECTION;
    assert!(b.eject(&a, t1, t1, "connection refused"));
    let t2 = t1 + ejection_for(2);
    assert!(b.succeeded(&a, t2, t2 + Duration::from_millis(1)));
    assert_eq!(a.skip(), None);
    assert_eq!(skips(&b)[0], ("a:1".into(), None));
    assert!(!b.succeeded(&a, t2, t2 + Duration::from_millis(2)), "already ended");
    // Picked like any other again.
    let picks: Vec<String> = (0..2).map(|_| b.pick(t2).unwrap().info.address.clone()).collect();
    assert!(picks.contains(&"a:1".to_owned()), "{picks:?}");
    // The next failure starts over at 2 s.
    let t3 = t2 + Duration::from_secs(60);
    assert!(b.eject(&a, t3, t3, "connection refused"));
    assert_eq!(a.skip(), skip("connection refused", t3 + EJECTION, 1));
}

#[test]
fn outcomes_of_requests_picked_before_the_last_change_change_nothing() {
    let (b, a, t0) = a_and_b();
    let before = t0 - Duration::from_millis(1);
    assert!(b.eject(&a, t0, t0, "connection refused"));
    // A call picked before the ejection that the draining pod still answered.
    assert!(!b.succeeded(&a, before, t0 + Duration::from_millis(3)));
    assert_eq!(a.skip(), skip("connection refused", t0 + EJECTION, 1));
    // The pod is back: a call picked after the ejection succeeds.
    let back = t0 + EJECTION;
    assert!(b.succeeded(&a, back, back));
    // A call picked before that recovery that fails late is old news too.
    let late = back + Duration::from_millis(1);
    assert!(!b.eject(&a, back - Duration::from_millis(1), late, "connection refused"));
    assert_eq!(a.skip(), None);
    // Picked at the very instant of the recovery: not older news.
    assert!(b.eject(&a, back, late, "connection refused"));
}

#[test]
fn an_update_keeps_the_skip_of_an_endpoint_that_stays_not_of_a_new_pod() {
    let b = balancer();
    b.update(&vec![
        EndpointInfo::ready("a:1").with_pod_name("p1"),
        EndpointInfo::ready("b:1").with_pod_name("p2"),
    ]);
    let t0 = Instant::now();
    assert!(b.eject(&member(&b, "a:1"), t0, t0, "connection refused"));
    assert!(b.eject(&member(&b, "b:1"), t0, t0, "connection refused"));
    b.update(&vec![
        EndpointInfo::ready("a:1").with_pod_name("p1"),
        EndpointInfo::ready("b:1").with_pod_name("p3"),
        EndpointInfo::ready("c:1").with_pod_name("p4"),
    ]);
    assert_eq!(
        skips(&b),
        [
            ("a:1".into(), skip("connection refused", t0 + EJECTION, 1)),
            ("b:1".into(), None),
            ("c:1".into(), None),
        ]
    );
}

/// Gives each member one request of the latency named for its address.
fn measure(b: &Balancer<Conn>, latencies_ms: &[(&str, u64)], now: Instant) {
    for member in b.snapshot.load().ready.iter() {
        let ms = latencies_ms.iter().find(|(a, _)| *a == member.info.address).unwrap().1;
        b.start(member, now - Duration::from_millis(ms)).finish(now);
    }
}

fn tally_least_loaded(b: &Balancer<Conn>, n: usize, now: Instant) -> HashMap<String, usize> {
    let mut hits = HashMap::new();
    for _ in 0..n {
        *hits
            .entry(b.pick_least_loaded(now).unwrap().info.address.clone())
            .or_default() += 1;
    }
    hits
}

#[test]
fn least_loaded_avoids_the_slow_member_and_splits_evenly_among_equals() {
    let b = balancer();
    b.update(&set(&["a:1", "b:1", "slow:1"]));
    let now = Instant::now() + Duration::from_secs(1);
    measure(&b, &[("a:1", 1), ("b:1", 1), ("slow:1", 26)], now);
    let hits = tally_least_loaded(&b, 300, now);
    assert_eq!(hits.get("slow:1"), None, "{hits:?}");
    assert_eq!(hits.values().sum::<usize>(), 300);
    // Equal members: a fair coin over the pairs, each within ±15 % of 100.
    let b = balancer();
    b.update(&set(&["a:1", "b:1", "c:1"]));
    measure(&b, &[("a:1", 1), ("b:1", 1), ("c:1", 1)], now);
    let hits = tally_least_loaded(&b, 300, now);
    assert!(hits.values().all(|n| (85..=115).contains(n)), "{hits:?}");
}

#[test]
fn least_loaded_counts_requests_in_flight_and_forgets_a_slow_past() {
    let b = balancer();
    b.update(&set(&["a:1", "b:1"]));
    let now = Instant::now() + Duration::from_secs(1);
    measure(&b, &[("a:1", 1), ("b:1", 2)], now);
    assert_eq!(b.pick_least_loaded(now).unwrap().info.address, "a:1");
    // Two in flight on a: 1 ms × 3 costs more than 2 ms × 1.
    let a = b.pick_least_loaded(now).unwrap();
    let _busy = (b.start(&a, now), b.start(&a, now));
    assert_eq!(b.pick_least_loaded(now).unwrap().info.address, "b:1");
    drop(_busy);
    assert_eq!(b.pick_least_loaded(now).unwrap().info.address, "a:1");
    // A request dropped without an answer leaves the estimate alone.
    drop(b.start(&a, now - Duration::from_secs(1)));
    assert_eq!(b.pick_least_loaded(now).unwrap().info.address, "a:1");
    // b once slow: after a while idle it decays below a's fresh 1 ms.
    measure(&b, &[("a:1", 1), ("b:1", 26)], now);
    assert_eq!(b.pick_least_loaded(now).unwrap().info.address, "a:1");
    let later = now + load::DECAY * 4;
    b.start(&a, later - Duration::from_millis(1)).finish(later);
    assert_eq!(b.pick_least_loaded(later).unwrap().info.address, "b:1");
}

#[test]
fn least_loaded_skips_ejected_members_unless_all_are() {
    let b = balancer();
    b.update(&set(&["a:1", "b:1", "c:1"]));
    let now = Instant::now();
    let (a, bb) = (b.pick(now).unwrap(), b.pick(now).unwrap());
    assert!(b.eject(&a, now, now, "connection refused"));
    assert!(b.eject(&bb, now, now, "connection refused"));
    assert_eq!(tally_least_loaded(&b, 10, now), HashMap::from([("c:1".to_owned(), 10)]));
    let c = b.pick_least_loaded(now).unwrap();
    assert!(b.eject(&c, now, now, "connection refused"));
    // All skipped: one is still tried, as round robin does.
    assert!(b.pick_least_loaded(now).is_some());
    let empty = balancer();
    assert!(empty.pick_least_loaded(now).is_none());
}

mod probe;
