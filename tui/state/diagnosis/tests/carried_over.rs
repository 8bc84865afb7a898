//! Requests in flight at a mode switch that end after it (sticky ones
//! timing out 5 s into balanced mode) are the old mode's: not "since the
//! switch".

use std::time::Instant;

use super::now::switch_to;
use crate::state::app::App;
use crate::state::diagnosis::{Verdict, diagnose};
use crate::state::messages::{GatewayEvent, PodTotals};
use crate::state::stats::Tally;
use crate::state::test_events::{PODS, gw, secs, synced_app};
use greet_proto::Mode;

/// Cumulative totals per pod of [`PODS`]: (requests, errors, carried-over
/// requests, carried-over errors).
fn summary(app: &mut App, at: Instant, pods: [(u64, u64, u64, u64); 3]) {
    let totals = PODS
        .iter()
        .zip(pods)
        .map(
            |((name, ip, _), (requests, errors, carried, carried_errors))| PodTotals {
                name: (*name).into(),
                ip: (*ip).into(),
                requests,
                errors,
                latency_buckets: Some(Vec::new()),
                error_codes: [(14, errors)].into_iter().filter(|(_, n)| *n > 0).collect(),
                carried_over: Tally {
                    requests: carried,
                    errors: carried_errors,
                },
                ..PodTotals::default()
            },
        )
        .collect();
    app.update(gw(GatewayEvent::Summary(totals)), at);
    app.tick(at);
}

#[test]
fn sticky_requests_failing_after_the_switch_are_not_the_new_modes_but_new_failures_are() {
    let t0 = Instant::now();
    let mut app = synced_app(t0);
    // Sticky: 30 a second on pod-b.
    for second in 1..=5u64 {
        summary(
            &mut app,
            t0 + secs(second as f64),
            [(0, 0, 0, 0), (30 * second, 0, 0, 0), (0, 0, 0, 0)],
        );
    }
    switch_to(&mut app, Mode::Balanced, t0 + secs(5.2));
    // Balanced: 10 a second each from 6 s on.
    let mut n = [0u64, 150, 0];
    for second in 6..=9u64 {
        n = n.map(|v| v + 10);
        let at = t0 + secs(second as f64 + 0.5);
        summary(&mut app, at, [(n[0], 0, 0, 0), (n[1], 0, 0, 0), (n[2], 0, 0, 0)]);
    }
    // 5 s after the switch, 10 sticky requests to pod-b time out: counted
    // now, carried over the switch.
    n = n.map(|v| v + 10);
    n[1] += 10;
    summary(
        &mut app,
        t0 + secs(10.5),
        [(n[0], 0, 0, 0), (n[1], 10, 10, 10), (n[2], 0, 0, 0)],
    );
    let d = diagnose(&app, t0 + secs(10.6));
    assert_eq!(
        (d.verdict, d.text.as_str()),
        (
            Verdict::Even,
            "EVEN: 3 pods, fairness 1.00 since the switch to balanced 5 s ago; \
             10 requests from before the switch failed after it"
        ),
        "sticky's failures are not balanced's"
    );
    assert_eq!((d.judged.requests, d.judged.pod_failures), (150, 0));
    // A failure that began after the switch is balanced's.
    n = n.map(|v| v + 10);
    summary(
        &mut app,
        t0 + secs(11.5),
        [(n[0], 0, 0, 0), (n[1], 10, 10, 10), (n[2], 5, 0, 0)],
    );
    let d = diagnose(&app, t0 + secs(11.6));
    assert_eq!(d.verdict, Verdict::Failing);
    assert!(
        d.text
            .starts_with("FAILING: 5 of 180 requests failed since the switch to balanced 6 s ago (pod-c 5"),
        "{}",
        d.text
    );
}

#[test]
fn in_the_raw_stream_a_request_routed_in_the_old_mode_is_the_old_modes() {
    use crate::state::messages::Request;
    use crate::state::test_events::request_event;

    let t0 = Instant::now();
    let mut app = synced_app(t0);
    let send = |app: &mut App, at: f64, pod: &str, ip: &str, mode: Mode, code: i32| {
        let request = Request {
            mode: Some(mode),
            grpc_code: code,
            ..request_event(0, pod, ip, 500)
        };
        app.update(gw(GatewayEvent::Request(request)), t0 + secs(at));
    };
    for i in 0..50 {
        send(&mut app, f64::from(i) * 0.1, "pod-b", "10.0.0.2", Mode::Sticky, 0);
    }
    switch_to(&mut app, Mode::Balanced, t0 + secs(5.2));
    for i in 0..120 {
        let (pod, ip, _) = PODS[i % 3];
        send(&mut app, 6.0 + i as f64 * 0.035, pod, ip, Mode::Balanced, 0);
    }
    // Sticky requests sent before the switch time out 5 s after it.
    for _ in 0..10 {
        send(&mut app, 10.3, "pod-b", "10.0.0.2", Mode::Sticky, 4);
    }
    let d = diagnose(&app, t0 + secs(10.5));
    assert_eq!(d.verdict, Verdict::Even, "{}", d.text);
    assert_eq!((d.judged.requests, d.judged.pod_failures), (120, 0));
    // One routed by the balancer that fails is balanced's.
    send(&mut app, 10.4, "pod-c", "10.0.0.3", Mode::Balanced, 14);
    let d = diagnose(&app, t0 + secs(10.5));
    assert_eq!(d.verdict, Verdict::Failing, "{}", d.text);
    assert_eq!((d.judged.requests, d.judged.pod_failures), (121, 1));
}
