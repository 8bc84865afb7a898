//! A pod the gateway's health checks find down, which no request reaches
//! (sticky mode's others), is named after the verdict, cause first.

use super::*;
use crate::state::test_events::health_checked;

#[test]
fn sticky_stays_stuck_and_names_the_down_pod_cause_first_when_it_fits() {
    let t0 = Instant::now();
    let mut app = synced_app(t0);
    app.update(health_checked(1, &[("pod-c", "connection refused")]), t0);
    traffic(&mut app, t0, 0.0, &[("pod-b", "10.0.0.2", 30)]);
    let d = diagnose(&app, t0 + secs(2.0));
    assert_eq!(d.verdict, Verdict::Stuck);
    assert_eq!(
        (d.severity, d.text.as_str()),
        (
            Severity::Bad,
            "STUCK — press m to balance: 100 % on pod-b over the last 2 s; connection refused: pod-c down"
        )
    );
    assert_eq!(
        d.for_screen(60),
        "STUCK — press m to balance: 100 % on pod-b",
        "a narrow screen keeps the verdict and the action"
    );
    // Two down for different causes, each named once with its cause.
    app.update(
        health_checked(2, &[("pod-a", "no answer within 1s"), ("pod-c", "connection refused")]),
        t0 + secs(2.0),
    );
    assert!(
        diagnose(&app, t0 + secs(2.0))
            .text
            .ends_with("; connection refused: pod-c down, no answer within 1s: pod-a down"),
        "{}",
        diagnose(&app, t0 + secs(2.0)).text
    );
    // The checks pass again: the clause goes.
    app.update(health_checked(3, &[]), t0 + secs(2.0));
    assert!(!diagnose(&app, t0 + secs(2.0)).text.contains("down"));
}

#[test]
fn a_down_pod_the_balancer_already_skips_is_named_once() {
    let t0 = Instant::now();
    let mut app = synced_app(t0);
    let mut endpoints: Vec<PodInfo> = PODS.iter().map(|(n, ip, _)| endpoint(n, ip)).collect();
    endpoints[2].down = Some("connection refused".into());
    endpoints[2].skipped = Some("connection refused".into());
    app.update(gw(GatewayEvent::EndpointsChanged { seq: 1, endpoints }), t0);
    let d = diagnose(&app, t0 + secs(1.0));
    assert_eq!(d.verdict, Verdict::Skipping);
    assert_eq!(d.text.matches("pod-c").count(), 1, "{}", d.text);
}

#[test]
fn a_quiet_or_even_line_with_a_pod_down_is_a_warning() {
    let t0 = Instant::now();
    let mut app = synced_app(t0);
    app.update(health_checked(1, &[("pod-a", "NOT_SERVING")]), t0);
    assert_eq!(
        text(&app, t0 + secs(1.0)),
        (
            Severity::Warning,
            "no requests over the last 1 s; NOT_SERVING: pod-a down".into()
        )
    );
}
