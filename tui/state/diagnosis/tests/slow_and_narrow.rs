//! A narrow screen shortens names instead of cutting them; a much slower
//! pod is named in every mode.

use std::time::Instant;

use super::{failed, traffic};
use crate::state::app::App;
use crate::state::diagnosis::{Diagnosis, Severity, Verdict, diagnose};
use crate::state::messages::{GatewayEvent, PodInfo};
use crate::state::test_events::{PODS, endpoint, gw, request, secs, snapshot};
use greet_proto::Mode;

/// "greetserver-demo-b9qnp-" and a suffix, as the demo names its pods.
const DEMO: [(&str, &str, u64); 3] = [
    ("greetserver-demo-b9qnp-9hlbq", "10.0.0.1", 0),
    ("greetserver-demo-b9qnp-b8lmv", "10.0.0.2", 0),
    ("greetserver-demo-b9qnp-x2zl7", "10.0.0.3", 0),
];

#[test]
fn a_narrow_screen_shortens_the_shared_prefix_instead_of_cutting_a_name_and_reports_have_no_keys() {
    let t0 = Instant::now();
    let mut app = App::new("gw", t0);
    app.update(snapshot(Mode::Sticky, &DEMO, 0), t0);
    traffic(&mut app, t0, 0.0, &[("greetserver-demo-b9qnp-9hlbq", "10.0.0.1", 30)]);
    for i in 0..3 {
        failed(
            &mut app,
            t0 + secs(0.5 + 0.1 * f64::from(i)),
            "greetserver-demo-b9qnp-9hlbq",
            "10.0.0.1",
        );
    }
    let d = diagnose(&app, t0 + secs(1.0));
    assert_eq!(
        d.text,
        "FAILING — press m to balance: 3 of 33 requests failed over the last 1 s (greetserver-demo-b9qnp-9hlbq 3 UNAVAILABLE)"
    );
    assert_eq!(
        d.for_screen(120),
        "FAILING — press m to balance: 3 of 33 requests failed (greetserver-demo-b9qnp-9hlbq 3 UNAVAILABLE)",
        "the header states the window"
    );
    assert_eq!(
        d.for_screen(78),
        "FAILING — press m to balance: 3 of 33 requests failed (…-9hlbq 3 UNAVAILABLE)"
    );
    assert_eq!(
        d.for_report(),
        "FAILING: 3 of 33 requests failed over the last 1 s (greetserver-demo-b9qnp-9hlbq 3 UNAVAILABLE)"
    );
    // Balanced, one pod taking all: at 80 columns the idle pods' names
    // shorten, at 58 their clause goes; no name is ever cut.
    let mut app = App::new("gw", t0);
    app.update(snapshot(Mode::Balanced, &DEMO, 0), t0);
    traffic(&mut app, t0, 0.0, &[("greetserver-demo-b9qnp-9hlbq", "10.0.0.1", 30)]);
    let d = diagnose(&app, t0 + secs(1.0));
    assert_eq!(
        d.for_screen(118),
        "UNEVEN while balanced: 100 % on …-9hlbq; …-b8lmv, …-x2zl7 receive nothing"
    );
    assert_eq!(d.for_screen(58), "UNEVEN while balanced: 100 % on …-9hlbq");
}

/// Traffic over `from .. from + 1 s`, each request to pod `name` taking `latency_us`.
fn timed(app: &mut App, t0: Instant, from: f64, pods: &[(&str, &str, u64, u64)]) {
    for (name, ip, n, latency_us) in pods {
        for i in 0..*n {
            let at = t0 + secs(from + i as f64 / *n as f64);
            app.update(request(0, name, ip, *latency_us), at);
        }
    }
}

#[test]
fn a_much_slower_pod_is_named_in_every_mode() {
    // Least-loaded sends pod-c (70 ms) less: the verdict is that it is slow.
    let d = one_second(Mode::LeastLoaded, 8, 70_000);
    assert_eq!((d.verdict, d.severity), (Verdict::Slow, Severity::Neutral));
    assert_eq!(
        d.text,
        "SLOW: pod-c p99 82 ms vs 1.0 ms for the others — least-loaded sends it less; fairness 0.83 over the last 1 s"
    );
    // dns mode spreads evenly over it: EVEN, but slow.
    let d = one_second(Mode::Dns, 30, 70_000);
    assert_eq!((d.verdict, d.severity), (Verdict::Slow, Severity::Warning));
    assert_eq!(
        d.text,
        "EVEN: 3 pods, fairness 1.00 over the last 1 s, but pod-c is 80× slower (p99 82 ms vs 1.0 ms)"
    );
    // 3.5 ms is over three times 1 ms, but no one waits for it: not slow.
    assert_eq!(one_second(Mode::Dns, 30, 3_500).verdict, Verdict::Even);
}

#[test]
fn a_pod_whose_tail_alone_is_long_is_not_slow() {
    // Scheduling noise on a busy node: one request in thirty waits 18 ms,
    // the rest answer in 1 ms like the other pods. No one waits on it.
    let t0 = Instant::now();
    let mut app = App::new("gw", t0);
    app.update(snapshot(Mode::Balanced, &PODS, 0), t0);
    let steady = [
        ("pod-a", "10.0.0.1", 30, 1_000),
        ("pod-b", "10.0.0.2", 30, 1_000),
        ("pod-c", "10.0.0.3", 29, 1_000),
    ];
    timed(&mut app, t0, 0.0, &steady);
    timed(&mut app, t0, 0.5, &[("pod-c", "10.0.0.3", 1, 18_000)]);
    let d = diagnose(&app, t0 + secs(1.0));
    assert_eq!(d.verdict, Verdict::Even, "{}", d.text);
}

/// The verdict after a second of `mode`: 30 requests of 1 ms to each of
/// pod-a and pod-b, `c_requests` taking `c_latency_us` to pod-c.
fn one_second(mode: Mode, c_requests: u64, c_latency_us: u64) -> Diagnosis {
    let t0 = Instant::now();
    let mut app = App::new("gw", t0);
    app.update(snapshot(mode, &PODS, 0), t0);
    let pods = [
        ("pod-a", "10.0.0.1", 30, 1_000),
        ("pod-b", "10.0.0.2", 30, 1_000),
        ("pod-c", "10.0.0.3", c_requests, c_latency_us),
    ];
    timed(&mut app, t0, 0.0, &pods);
    diagnose(&app, t0 + secs(1.0))
}

#[test]
fn a_slow_pod_is_judged_on_its_latency_since_a_switch_and_keeps_its_name_when_room_is_short() {
    // Slow in least-loaded; after the switch to balanced every pod is fast.
    let t0 = Instant::now();
    let mut app = App::new("gw", t0);
    app.update(snapshot(Mode::LeastLoaded, &PODS, 0), t0);
    for second in 0..5 {
        let slow_c = [
            ("pod-a", "10.0.0.1", 30, 1_000),
            ("pod-b", "10.0.0.2", 30, 1_000),
            ("pod-c", "10.0.0.3", 8, 70_000),
        ];
        timed(&mut app, t0, f64::from(second), &slow_c);
    }
    super::now::switch_to(&mut app, Mode::Balanced, t0 + secs(5.2));
    for second in 6..8 {
        let fast = [
            ("pod-a", "10.0.0.1", 30, 1_000),
            ("pod-b", "10.0.0.2", 30, 1_000),
            ("pod-c", "10.0.0.3", 30, 1_000),
        ];
        timed(&mut app, t0, f64::from(second), &fast);
    }
    assert_eq!(
        diagnose(&app, t0 + secs(8.0)).text,
        "EVEN: 3 pods, fairness 1.00 since the switch to balanced 3 s ago"
    );
    // Short of room, the p99s go, then the fairness; never the pod.
    let d = one_second(Mode::Dns, 30, 70_000);
    assert_eq!(
        d.for_screen(80),
        "EVEN: 3 pods, fairness 1.00, but pod-c is 80× slower (p99 82 ms vs 1.0 ms)"
    );
    assert_eq!(d.for_screen(52), "EVEN: 3 pods, fairness 1.00, but pod-c is 80× slower");
    assert_eq!(d.for_screen(40), "EVEN: 3 pods, but pod-c is 80× slower");
}

#[test]
fn least_loaded_sending_nearly_nothing_to_a_slow_pod_is_slow_not_uneven() {
    // pod-b fast and busy, pod-a fast, pod-c (70 ms) nearly idle: ≥ 90 % on pod-b.
    let t0 = Instant::now();
    let mut app = App::new("gw", t0);
    app.update(snapshot(Mode::LeastLoaded, &PODS, 0), t0);
    let pods = [
        ("pod-a", "10.0.0.1", 5, 1_000),
        ("pod-b", "10.0.0.2", 100, 1_000),
        ("pod-c", "10.0.0.3", 5, 70_000),
    ];
    timed(&mut app, t0, 0.0, &pods);
    let d = diagnose(&app, t0 + secs(1.0));
    assert_eq!(
        (d.verdict, d.severity),
        (Verdict::Slow, Severity::Neutral),
        "{}",
        d.text
    );
    assert!(d.text.starts_with("SLOW: pod-c p99 "), "{}", d.text);
}

#[test]
fn a_name_is_shortened_only_when_the_line_would_not_fit_with_it_whole() {
    let t0 = Instant::now();
    let mut app = App::new("gw", t0);
    let pods = [
        ("acc-pod-1", "10.0.0.1", 0),
        ("acc-pod-2", "10.0.0.2", 0),
        ("acc-pod-3", "10.0.0.3", 0),
    ];
    app.update(snapshot(Mode::Balanced, &pods, 0), t0);
    let mut endpoints: Vec<PodInfo> = pods.iter().map(|(n, ip, _)| endpoint(n, ip)).collect();
    endpoints[1].skipped = Some("connection refused".into());
    app.update(gw(GatewayEvent::EndpointsChanged { seq: 1, endpoints }), t0);
    let d = diagnose(&app, t0 + secs(1.0));
    // 80 columns leave 78 for the line.
    assert_eq!(
        d.for_screen(78),
        "SKIPPING acc-pod-2 (connection refused): the gateway routes around it"
    );
    assert_eq!(
        d.for_screen(60),
        "SKIPPING …-2 (connection refused): the gateway routes around it"
    );
}
