use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use pod_metrics::{Family, PodReading, ScrapeStatus, Totals};

use super::*;
use crate::state::App;

fn reading(pod: &str, requests: u64, errors: u64, status: ScrapeStatus) -> PodReading {
    PodReading {
        pod: pod.to_owned(),
        ip: "10.0.0.1".to_owned(),
        url: format!("http://{pod}:9090/metrics"),
        family: Some(Family::GrpcPrometheus),
        totals: Some(Totals {
            requests,
            errors,
            error_codes: if errors > 0 {
                BTreeMap::from([(14, errors)])
            } else {
                BTreeMap::new()
            },
            methods: BTreeMap::from([("/greet.GreetService/Greet".to_owned(), (requests, errors))]),
            latency_buckets: None,
            in_flight: None,
        }),
        status,
    }
}

#[test]
fn the_first_round_is_a_snapshot_and_the_next_ones_summaries() {
    let t0 = Instant::now();
    let ok = ScrapeStatus::Ok { at: t0 };
    let mut feed = Feed::new();
    let first = feed.round(&[reading("a", 0, 0, ok.clone())], t0);
    assert!(matches!(&first[..], [GatewayEvent::Snapshot(s)] if s.mode.is_none() && s.endpoints.len() == 1));
    let second = feed.round(&[reading("a", 5, 1, ok.clone())], t0 + Duration::from_secs(1));
    let [GatewayEvent::Summary(totals)] = &second[..] else {
        panic!("one summary, no endpoint change: {second:?}");
    };
    assert_eq!((totals[0].requests, totals[0].errors), (5, 1));
    assert_eq!(totals[0].endpoint, "http://a:9090/metrics");
    assert_eq!(totals[0].error_codes, BTreeMap::from([(14, 1)]));
}

#[test]
fn the_snapshot_waits_until_every_pod_answered_once() {
    let t0 = Instant::now();
    let mut feed = Feed::new();
    let mut pending = reading("b", 0, 0, ScrapeStatus::Pending);
    pending.totals = None;
    let failing = ScrapeStatus::Failing {
        cause: "timed out after 1s".to_owned(),
        since: t0,
        last_ok: None,
    };
    let mut failed = reading("b", 0, 0, failing);
    failed.totals = None;
    let ok = ScrapeStatus::Ok { at: t0 };
    assert_eq!(feed.round(&[], t0), [], "no pods listed yet");
    assert_eq!(feed.round(&[reading("a", 0, 0, ok.clone()), pending], t0), []);
    assert_eq!(
        feed.round(&[reading("a", 0, 0, ok.clone()), failed.clone()], t0 + secs(1)),
        []
    );
    let events = feed.round(
        &[reading("a", 7, 0, ok.clone()), reading("b", 0, 0, ok.clone())],
        t0 + secs(2),
    );
    let [GatewayEvent::Snapshot(snapshot)] = &events[..] else {
        panic!("the snapshot once both answered: {events:?}");
    };
    assert_eq!(snapshot.pods.len(), 2);
    // A pod that never answers is shown failing once the wait is over.
    let mut feed = Feed::new();
    assert_eq!(feed.round(&[reading("a", 0, 0, ok.clone()), failed.clone()], t0), []);
    let events = feed.round(&[reading("a", 0, 0, ok), failed], t0 + SYNC_WAIT);
    assert!(
        matches!(&events[..], [GatewayEvent::Snapshot(s)] if s.endpoints[1].down.is_some()),
        "{events:?}"
    );
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn a_pod_whose_scrapes_fail_reads_down_with_the_age_of_its_numbers() {
    let t0 = Instant::now();
    let mut feed = Feed::new();
    feed.round(&[reading("a", 0, 0, ScrapeStatus::Ok { at: t0 })], t0);
    let failing = ScrapeStatus::Failing {
        cause: "timed out after 1s".to_owned(),
        since: t0 + Duration::from_secs(2),
        last_ok: Some(t0 + Duration::from_secs(1)),
    };
    let events = feed.round(&[reading("a", 3, 0, failing)], t0 + Duration::from_secs(13));
    let GatewayEvent::EndpointsChanged { seq: 1, endpoints } = &events[0] else {
        panic!("the pod list changed: {events:?}");
    };
    assert_eq!(
        endpoints[0].down.as_deref(),
        Some("timed out after 1s; no fresh numbers for 12 s")
    );
    assert!(!endpoints[0].ready);
    assert_eq!(endpoints[0].metrics_family.as_deref(), Some("grpc_server"));
}

#[test]
fn the_dashboard_counts_exactly_what_the_pods_counted_after_the_first_read() {
    let t0 = Instant::now();
    let ok = ScrapeStatus::Ok { at: t0 };
    let mut app = App::new("pods", t0).with_pod_metrics().counting_from_now();
    let mut feed = Feed::new();
    let mut send = |app: &mut App, rows: &[PodReading], at: Instant| {
        for event in feed.round(rows, at) {
            let gateway = POD_METRICS.to_owned();
            app.update(AppEvent::Gateway { gateway, event }, at);
        }
    };
    send(
        &mut app,
        &[reading("a", 0, 0, ok.clone()), reading("b", 0, 0, ok.clone())],
        t0,
    );
    let t1 = t0 + Duration::from_millis(500);
    send(
        &mut app,
        &[reading("a", 200, 20, ok.clone()), reading("b", 50, 0, ok.clone())],
        t1,
    );
    let stats = app.stats();
    assert_eq!((stats.pods["a"].hits(), stats.pods["a"].errors()), (200, 20));
    assert_eq!((stats.pods["b"].hits(), stats.pods["b"].errors()), (50, 0));
    assert_eq!(stats.pods["a"].metrics_family.as_deref(), Some("grpc_server"));
    assert_eq!(stats.pods["a"].error_codes, BTreeMap::from([(14, 20)]));
}
