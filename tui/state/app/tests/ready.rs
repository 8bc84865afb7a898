//! READY tells the truth: never `yes` for a pod whose requests fail or
//! wait unanswered.

use super::*;
use crate::state::messages::{Gauges, PodTotals};
use crate::state::stats::{HUNG_FLOOR, PodState};

/// `requests` of about 1 ms (bucket 35) to `name`, `errors` of them failed,
/// with `in_flight` requests waiting, the oldest for `oldest_ms`.
fn totals(name: &str, requests: u64, errors: u64, in_flight: u64, oldest_ms: u64) -> PodTotals {
    let mut buckets = vec![0; 36];
    buckets[35] = requests;
    PodTotals {
        name: name.into(),
        ip: "10.0.0.1".into(),
        requests,
        errors,
        latency_buckets: Some(buckets),
        error_codes: [(14, errors)].into_iter().filter(|(_, n)| *n > 0).collect(),
        gauges: Some(Gauges {
            in_flight,
            oldest_in_flight_us: oldest_ms * 1000,
            connections: 1,
        }),
        ..PodTotals::default()
    }
}

fn state_after(app: &mut App, pods: Vec<PodTotals>, at: Instant) -> PodState {
    app.update(gw(GatewayEvent::Summary(pods)), at);
    app.tick(at);
    app.stats().pods["pod-a"].state(at)
}

#[test]
fn a_pod_whose_requests_fail_is_never_yes() {
    let t0 = Instant::now();
    let mut app = synced_app(t0);
    assert_eq!(
        state_after(&mut app, vec![totals("pod-a", 100, 0, 0, 0)], t0 + secs(1.0)),
        PodState::Ready
    );
    // Its process killed under a sticky connection: every request fails.
    let failing = state_after(&mut app, vec![totals("pod-a", 200, 100, 0, 0)], t0 + secs(2.0));
    assert_eq!((failing, failing.word()), (PodState::Failing, "failing"));
    // Recovered: the window still holds the failures, a quarter of its requests.
    let recovered = state_after(&mut app, vec![totals("pod-a", 500, 100, 0, 0)], t0 + secs(8.0));
    assert_eq!((recovered, recovered.word()), (PodState::Errors, "errors"));
    // Once the failures leave the window, it is ready again.
    let clean = state_after(&mut app, vec![totals("pod-a", 600, 100, 0, 0)], t0 + secs(12.5));
    assert_eq!(clean, PodState::Ready);
}

#[test]
fn a_pod_holding_requests_past_five_times_its_p99_is_hung_within_a_summary() {
    let t0 = Instant::now();
    let mut app = synced_app(t0);
    let p99_1ms = state_after(&mut app, vec![totals("pod-a", 100, 0, 1, 1)], t0 + secs(1.0));
    assert_eq!(p99_1ms, PodState::Ready, "a request in flight for its usual 1 ms");
    assert_eq!(
        app.stats().pods["pod-a"].hang_limit(),
        HUNG_FLOOR,
        "5 x 1 ms is under the floor"
    );
    // SIGSTOP: nothing answers; the next summary (250 ms later) holds 40 in flight.
    let at = t0 + secs(1.25);
    assert_eq!(
        state_after(&mut app, vec![totals("pod-a", 100, 0, 40, 240)], at),
        PodState::Ready
    );
    let hung = state_after(&mut app, vec![totals("pod-a", 100, 0, 80, 490)], at + secs(0.25));
    assert_eq!((hung, hung.word()), (PodState::Hung, "hung?"));
    assert_eq!(app.stats().pods["pod-a"].in_flight(), 80);
    // It answers again: nothing in flight, ready again.
    let back = state_after(&mut app, vec![totals("pod-a", 180, 0, 0, 0)], at + secs(0.5));
    assert_eq!(back, PodState::Ready);
}

#[test]
fn a_skipped_pod_says_skip_and_a_gone_one_gone() {
    let t0 = Instant::now();
    let mut app = synced_app(t0);
    let mut endpoints: Vec<PodInfo> = PODS
        .iter()
        .map(|(n, ip, _)| crate::state::test_events::endpoint(n, ip))
        .collect();
    endpoints[0].skipped = Some("connection refused".into());
    endpoints.pop();
    app.update(gw(GatewayEvent::EndpointsChanged { seq: 1, endpoints }), t0);
    let states: Vec<&str> = app.stats().pods.values().map(|p| p.state(t0).word()).collect();
    assert_eq!(states, ["skip", "yes", "gone"]);
}

#[test]
fn a_removed_gateways_requests_in_flight_are_no_longer_counted() {
    let t0 = Instant::now();
    let mut app = synced_app(t0);
    app.update(
        gw(GatewayEvent::Summary(vec![totals("pod-a", 100, 0, 3, 900)])),
        t0 + secs(1.0),
    );
    assert_eq!(app.stats().pods["pod-a"].in_flight(), 3);
    app.update(AppEvent::GatewayRemoved { gateway: "gw".into() }, t0 + secs(1.1));
    assert_eq!(app.stats().pods["pod-a"].in_flight(), 0);
    assert_ne!(app.stats().pods["pod-a"].state(t0 + secs(1.1)), PodState::Hung);
}

#[test]
fn the_callers_errors_do_not_make_a_pod_failing() {
    let t0 = Instant::now();
    let mut app = synced_app(t0);
    state_after(&mut app, vec![totals("pod-a", 100, 0, 0, 0)], t0 + secs(1.0));
    // 30 calls of a method the servers do not have: UNIMPLEMENTED.
    let mut unimplemented = totals("pod-a", 160, 30, 0, 0);
    unimplemented.error_codes = [(12, 30)].into();
    let state = state_after(&mut app, vec![unimplemented], t0 + secs(2.0));
    assert_eq!(state, PodState::Ready, "the callers' mistakes are not the pod's");
    // One UNAVAILABLE among them is the pod's.
    let mut mixed = totals("pod-a", 170, 31, 0, 0);
    mixed.error_codes = [(12, 30), (14, 1)].into();
    assert_eq!(state_after(&mut app, vec![mixed], t0 + secs(3.0)), PodState::Errors);
    // The raw stream's requests the same way.
    let mut raw = App::new("gw", t0);
    raw.update(snapshot(Mode::Balanced, &[("pod-a", "10.0.0.1", 0)], 0), t0);
    for seq in 1..=4 {
        let mut event = request(seq, "pod-a", "10.0.0.1", 100);
        if let AppEvent::Gateway {
            event: GatewayEvent::Request(r),
            ..
        } = &mut event
        {
            r.grpc_code = 12;
        }
        raw.update(event, t0 + secs(1.0));
    }
    raw.tick(t0 + secs(1.0));
    assert_eq!(raw.stats().pods["pod-a"].state(t0 + secs(1.0)), PodState::Ready);
}

#[test]
fn a_pod_whose_health_check_fails_is_down_unless_its_requests_say_more() {
    let t0 = Instant::now();
    let mut app = synced_app(t0);
    let mut endpoints: Vec<PodInfo> = PODS
        .iter()
        .map(|(n, ip, _)| crate::state::test_events::endpoint(n, ip))
        .collect();
    // pod-a's check fails, pod-b's passes and no request reaches it.
    endpoints[0].down = Some("connection refused".into());
    app.update(
        gw(GatewayEvent::EndpointsChanged {
            seq: 1,
            endpoints: endpoints.clone(),
        }),
        t0,
    );
    let states: Vec<&str> = app.stats().pods.values().map(|p| p.state(t0).word()).collect();
    assert_eq!(states, ["down", "yes", "yes"]);
    assert_eq!(app.stats().pods["pod-a"].down.as_deref(), Some("connection refused"));
    assert!(PodState::Down.bad());
    // Its own requests failing is stronger evidence: failing, not down.
    let failing = state_after(&mut app, vec![totals("pod-a", 10, 10, 0, 0)], t0 + secs(1.0));
    assert_eq!(failing, PodState::Failing);
    // A skip beats it too.
    endpoints[0].skipped = Some("connection refused".into());
    app.update(
        gw(GatewayEvent::EndpointsChanged {
            seq: 2,
            endpoints: endpoints.clone(),
        }),
        t0 + secs(1.0),
    );
    assert_eq!(app.stats().pods["pod-a"].state(t0 + secs(20.0)), PodState::Skipped);
    // The check passes again: no longer down.
    endpoints[0].skipped = None;
    endpoints[0].down = None;
    app.update(
        gw(GatewayEvent::EndpointsChanged { seq: 3, endpoints }),
        t0 + secs(20.0),
    );
    assert_eq!(app.stats().pods["pod-a"].state(t0 + secs(20.0)), PodState::Ready);
}

#[test]
fn a_pod_served_while_terminating_reads_term_until_another_is_ready() {
    let t0 = Instant::now();
    let mut app = synced_app(t0);
    let mut endpoints: Vec<PodInfo> = PODS
        .iter()
        .map(|(n, ip, _)| crate::state::test_events::endpoint(n, ip))
        .collect();
    for (i, e) in endpoints.iter_mut().enumerate() {
        e.ready = i == 0;
        e.serving_terminating = i == 0;
    }
    app.update(
        gw(GatewayEvent::EndpointsChanged {
            seq: 1,
            endpoints: endpoints.clone(),
        }),
        t0,
    );
    let states: Vec<PodState> = app.stats().pods.values().map(|p| p.state(t0)).collect();
    assert_eq!(
        states,
        [PodState::ServingTerminating, PodState::NotReady, PodState::NotReady]
    );
    assert_eq!(PodState::ServingTerminating.word(), "term");
    assert!(!PodState::ServingTerminating.bad());
    // Another pod ready: the gateway stops routing to it.
    endpoints[0].ready = false;
    endpoints[0].serving_terminating = false;
    endpoints[1].ready = true;
    app.update(gw(GatewayEvent::EndpointsChanged { seq: 2, endpoints }), t0);
    let states: Vec<PodState> = app.stats().pods.values().map(|p| p.state(t0)).collect();
    assert_eq!(states, [PodState::NotReady, PodState::Ready, PodState::NotReady]);
}

#[test]
fn the_stalest_failing_discovery_ages_from_its_arrival_and_clears_when_it_works() {
    let t0 = Instant::now();
    let mut app = synced_app(t0);
    assert_eq!(app.discovery_stale(t0), None);
    let status = |error: &str, age_ms: u64| crate::state::DiscoveryStatus {
        source: "kube".into(),
        last_error: error.into(),
        failing_since_unix_us: 1,
        set_age: Duration::from_millis(age_ms),
    };
    app.update(gw(GatewayEvent::Discovery(status("refused", 8000))), t0);
    assert_eq!(
        app.discovery_stale(t0 + secs(2.0)),
        Some((Duration::from_secs(10), "refused"))
    );
    app.update(gw(GatewayEvent::Discovery(status("", 0))), t0 + secs(3.0));
    assert_eq!(app.discovery_stale(t0 + secs(4.0)), None);
}
