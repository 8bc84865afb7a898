//! A due skip is tried by one request at a time (the probe) while the others
//! keep going elsewhere; the probe's outcome ends or renews the skip; and a
//! try's time limit follows what the member's answers took.

use super::*;

/// Picks `n` times at `at`, keeping every pick's request in flight (as
/// concurrent requests would be); the addresses picked, in order.
fn picks_in_flight(b: &Balancer<Conn>, n: usize, at: Instant) -> (Vec<String>, Vec<InFlight<Conn>>) {
    let mut kept = Vec::new();
    let addresses = (0..n)
        .map(|_| {
            let member = b.pick(at).unwrap();
            kept.push(b.start(&member, at));
            member.info.address.clone()
        })
        .collect();
    (addresses, kept)
}

fn count(addresses: &[String], address: &str) -> usize {
    addresses.iter().filter(|a| *a == address).count()
}

#[test]
fn a_due_skip_lets_one_request_at_a_time_try_the_member() {
    let (b, a, t0) = a_and_b();
    assert!(b.eject(&a, t0, t0, "no answer within 500ms"));
    let due = t0 + EJECTION;
    // 20 requests at once once the skip is due: exactly one tries a.
    let (picked, mut in_flight) = picks_in_flight(&b, 20, due);
    assert_eq!(count(&picked, "a:1"), 1, "{picked:?}");
    assert_eq!(count(&picked, "b:1"), 19);
    // Still none while the probe waits, however long.
    let (later, _more) = picks_in_flight(&b, 10, due + Duration::from_secs(1));
    assert_eq!(count(&later, "a:1"), 0, "{later:?}");
    // The probe answers: the skip ends and a is back in the rotation.
    let probe_index = picked.iter().position(|p| p == "a:1").unwrap();
    let probe = in_flight.swap_remove(probe_index);
    let answered = due + Duration::from_millis(1);
    probe.finish(answered);
    assert!(b.succeeded(&a, due, answered));
    let (after, _) = picks_in_flight(&b, 10, answered);
    assert_eq!(count(&after, "a:1"), 5, "{after:?}");
}

#[test]
fn a_probe_that_fails_renews_the_skip_and_one_dropped_frees_the_member_for_the_next() {
    let (b, a, t0) = a_and_b();
    assert!(b.eject(&a, t0, t0, "no answer within 500ms"));
    let due = t0 + EJECTION;
    let (picked, in_flight) = picks_in_flight(&b, 4, due);
    assert_eq!(count(&picked, "a:1"), 1);
    // Its try timed out: skipped twice as long, no probe until then.
    let failed = due + Duration::from_millis(500);
    assert!(b.eject(&a, due, failed, "no answer within 500ms"));
    drop(in_flight);
    let (during, _) = picks_in_flight(&b, 6, failed + ejection_for(2) - Duration::from_millis(1));
    assert_eq!(count(&during, "a:1"), 0, "{during:?}");
    let again = failed + ejection_for(2);
    let (picked, in_flight) = picks_in_flight(&b, 4, again);
    assert_eq!(count(&picked, "a:1"), 1, "{picked:?}");
    // The probe's request went away with no outcome (its client left):
    // the next request may try the member.
    drop(in_flight);
    let (picked, _kept) = picks_in_flight(&b, 4, again);
    assert_eq!(count(&picked, "a:1"), 1, "{picked:?}");
}

#[test]
fn a_probe_picked_but_never_sent_lapses_after_its_lease() {
    let (b, a, t0) = a_and_b();
    assert!(b.eject(&a, t0, t0, "connection refused"));
    let due = t0 + EJECTION;
    // Picked (claiming the probe) and never started.
    let first: Vec<String> = (0..2).map(|_| b.pick(due).unwrap().info.address.clone()).collect();
    assert_eq!(count(&first, "a:1"), 1);
    let (held, _) = picks_in_flight(&b, 4, due + PROBE_LEASE - Duration::from_millis(1));
    assert_eq!(count(&held, "a:1"), 0);
    let (lapsed, _) = picks_in_flight(&b, 4, due + PROBE_LEASE);
    assert_eq!(count(&lapsed, "a:1"), 1);
}

#[test]
fn least_loaded_probes_a_due_member_first_and_once() {
    let b = balancer();
    b.update(&set(&["a:1", "b:1", "c:1"]));
    let now = Instant::now();
    let a = member(&b, "a:1");
    assert!(b.eject(&a, now, now, "connection refused"));
    let due = now + EJECTION;
    let probe = b.pick_least_loaded(due).unwrap();
    assert_eq!(probe.info.address, "a:1");
    let _probing = b.start(&probe, due);
    let hits = tally_least_loaded(&b, 30, due);
    assert_eq!(hits.get("a:1"), None, "{hits:?}");
}

#[test]
fn a_tries_limit_follows_the_members_answers_not_its_timeouts() {
    use super::super::try_limit::{TRY_LIMIT_FLOOR, UNMEASURED_TRY_LIMIT};
    let (b, a, t0) = a_and_b();
    let left = Duration::from_secs(5);
    assert_eq!(a.try_limit(left), UNMEASURED_TRY_LIMIT, "never answered");
    b.start(&a, t0).finish(t0 + Duration::from_micros(400));
    assert_eq!(a.try_limit(left), TRY_LIMIT_FLOOR);
    b.start(&a, t0).finish(t0 + Duration::from_millis(90));
    assert_eq!(a.try_limit(left), Duration::from_millis(900));
    assert_eq!(a.try_limit(Duration::from_millis(200)), Duration::from_millis(200));
    // A try that timed out is dropped, not finished: the limit stays.
    drop(b.start(&a, t0));
    assert_eq!(a.try_limit(left), Duration::from_millis(900));
}

/// In flight and the oldest age in whole ms (send times are kept in µs).
fn gauges(member: &Member<Conn>, at: Instant) -> (u64, u128) {
    (member.in_flight(), member.oldest_in_flight(at).as_millis())
}

#[test]
fn requests_in_flight_and_the_oldest_age_are_per_member() {
    let (b, a, t0) = a_and_b();
    let first = b.start(&a, t0);
    let second = b.start(&a, t0 + Duration::from_millis(40));
    let at = t0 + Duration::from_millis(100);
    assert_eq!(gauges(&a, at), (2, 100));
    let other = member(&b, "b:1");
    assert_eq!(gauges(&other, at), (0, 0));
    first.finish(at);
    assert_eq!(gauges(&a, at), (1, 60));
    drop(second);
    assert_eq!(gauges(&a, at), (0, 0));
}

#[test]
fn a_static_endpoint_is_named_by_its_replies_and_keeps_discoverys_name() {
    let b = balancer();
    b.update(&vec![
        EndpointInfo::ready("127.0.0.1:27851"),
        EndpointInfo::ready("127.0.0.1:27852").with_pod_name("kube-pod"),
    ]);
    let (static_one, named) = (member(&b, "127.0.0.1:27851"), member(&b, "127.0.0.1:27852"));
    assert_eq!(static_one.pod_name(), None);
    assert!(static_one.replied_from("acc-pod-1"));
    assert!(!static_one.replied_from("acc-pod-1"), "no change");
    assert!(!named.replied_from("other"), "discovery's name stands");
    let names: Vec<(String, Option<String>)> = b
        .report()
        .into_iter()
        .map(|(info, _)| (info.address, info.pod_name))
        .collect();
    assert_eq!(
        names,
        [
            ("127.0.0.1:27851".to_owned(), Some("acc-pod-1".to_owned())),
            ("127.0.0.1:27852".to_owned(), Some("kube-pod".to_owned())),
        ]
    );
    // Kept across an update that keeps the endpoint.
    b.update(&vec![EndpointInfo::ready("127.0.0.1:27851")]);
    assert_eq!(b.report()[0].0.pod_name.as_deref(), Some("acc-pod-1"));
}
