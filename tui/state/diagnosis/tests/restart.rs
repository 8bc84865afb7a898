//! The restart notice: a hung or failing pod comes first, and a mode
//! change since the restart ends it.

use std::time::Instant;

use super::now::switch_to;
use crate::state::app::App;
use crate::state::diagnosis::{Verdict, diagnose};
use crate::state::messages::{GatewayEvent, Gauges, PodTotals, Snapshot};
use crate::state::test_events::{gw, secs};
use greet_proto::Mode;

/// pod-a's cumulative totals: `requests` of about 1 ms, `in_flight` waiting
/// for `oldest_ms`.
fn pod_a(requests: u64, in_flight: u64, oldest_ms: u64) -> PodTotals {
    let mut buckets = vec![0; 36];
    buckets[35] = requests;
    PodTotals {
        name: "pod-a".into(),
        ip: "10.0.0.1".into(),
        requests,
        latency_buckets: Some(buckets),
        gauges: Some(Gauges {
            in_flight,
            oldest_in_flight_us: oldest_ms * 1000,
            connections: 1,
        }),
        ..PodTotals::default()
    }
}

fn started(started_unix_us: i64, mode: Mode) -> GatewayEvent {
    GatewayEvent::Snapshot(Snapshot {
        mode: Some(mode),
        started_unix_us,
        pods: vec![pod_a(1, 0, 0)],
        ..Snapshot::default()
    })
}

/// A gateway that restarted in sticky mode at 5 s.
fn restarted_sticky(t0: Instant) -> App {
    let mut app = App::new("gw", t0);
    app.update(gw(started(1, Mode::Balanced)), t0);
    app.update(gw(started(2, Mode::Sticky)), t0 + secs(5.0));
    app
}

#[test]
fn a_hung_pod_comes_before_the_restart_notice() {
    let t0 = Instant::now();
    let mut app = restarted_sticky(t0);
    app.update(gw(GatewayEvent::Summary(vec![pod_a(100, 0, 0)])), t0 + secs(6.0));
    assert_eq!(diagnose(&app, t0 + secs(6.0)).verdict, Verdict::Restarted);
    // Stopped: 8 requests wait for 3 s on a pod whose p99 is about 1 ms.
    app.update(gw(GatewayEvent::Summary(vec![pod_a(100, 8, 3000)])), t0 + secs(9.0));
    let d = diagnose(&app, t0 + secs(9.0));
    assert_eq!(d.verdict, Verdict::Hung, "{}", d.text);
    assert!(d.text.starts_with("HUNG?: pod-a 8 requests unanswered"), "{}", d.text);
}

#[test]
fn a_mode_change_after_the_restart_ends_the_notice() {
    let t0 = Instant::now();
    let mut app = restarted_sticky(t0);
    assert_eq!(diagnose(&app, t0 + secs(7.0)).verdict, Verdict::Restarted);
    switch_to(&mut app, Mode::Balanced, t0 + secs(8.0));
    switch_to(&mut app, Mode::Sticky, t0 + secs(10.0));
    let d = diagnose(&app, t0 + secs(17.0));
    assert_ne!(d.verdict, Verdict::Restarted, "{}", d.text);
    assert!(!d.text.contains("restarted"), "{}", d.text);
}
