//! The pods' own metrics on screen: alone (no gateway; each row's family,
//! a stale pod, a pod without gRPC metrics, advice for clients we do not
//! control), and beside a gateway's view (each pod's own rate, the
//! difference named).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use greet_proto::Mode;
use greet_top::PodMetricsFeed;
use greet_top::state::{App, AppEvent, POD_METRICS, Views};
use greet_top::ui::{Theme, render_views};
use pod_metrics::{Family, PodReading, ScrapeStatus, Totals};

use greet_proto::observe::{Endpoint, State, event};

use super::{GATEWAY, PODS, Stream, stream_event, summary};

const GREET: &str = "/greet.GreetService/Greet";

fn reading(pod: &str, family: Family, requests: u64, errors: u64, status: &ScrapeStatus) -> PodReading {
    let latency = greet_proto::latency_buckets::bucket_of(900);
    let mut buckets = vec![0; latency + 1];
    buckets[latency] = requests;
    PodReading {
        pod: pod.to_owned(),
        ip: String::new(),
        url: format!("/api/v1/namespaces/shop/pods/{pod}:9090/proxy/metrics"),
        family: Some(family),
        totals: Some(Totals {
            requests,
            errors,
            error_codes: if errors > 0 {
                BTreeMap::from([(14, errors)])
            } else {
                BTreeMap::new()
            },
            methods: BTreeMap::from([(GREET.to_owned(), (requests, errors))]),
            latency_buckets: Some(buckets),
            in_flight: None,
        }),
        status: status.clone(),
    }
}

/// Feeds `rounds` (one a second from `t0`, each the pods' cumulative
/// counts) into `views` as the pods' metrics source.
fn scrape(views: &mut Views, t0: Instant, rounds: &[Vec<PodReading>]) -> Instant {
    let mut feed = PodMetricsFeed::new();
    let connected = AppEvent::Connected {
        gateway: POD_METRICS.to_owned(),
    };
    views.update(connected, t0);
    let mut at = t0;
    for (i, readings) in rounds.iter().enumerate() {
        at = t0 + Duration::from_secs(i as u64);
        for event in feed.round(readings, at) {
            let gateway = POD_METRICS.to_owned();
            views.update(AppEvent::Gateway { gateway, event }, at);
        }
    }
    views.tick(at);
    at
}

/// A workload with no gateway, 15 s of scrapes: checkout-a takes nearly
/// all of it, checkout-b is read from OpenTelemetry, checkout-c stopped
/// answering scrapes 12 s ago, checkout-d has no gRPC metrics.
fn workload_alone() -> (Views, Instant) {
    let t0 = Instant::now();
    let title = "app=checkout via pods/proxy :9090/metrics";
    let mut views = Views::single(App::new(title, t0).with_pod_metrics());
    let rounds: Vec<Vec<PodReading>> = (0..15u64)
        .map(|s| {
            let ok = ScrapeStatus::Ok {
                at: t0 + Duration::from_secs(s),
            };
            let stale = match s {
                0..=2 => ok.clone(),
                _ => ScrapeStatus::Failing {
                    cause: "timed out after 1s".to_owned(),
                    since: t0 + Duration::from_secs(3),
                    last_ok: Some(t0 + Duration::from_secs(2)),
                },
            };
            let none = ScrapeStatus::NoGrpcMetrics {
                cause:
                    "no gRPC server metrics at shop/checkout-d:9090/metrics — looked for grpc_server_handled_total, \
                        rpc_server_call_duration_seconds, rpc_server_duration_milliseconds"
                        .to_owned(),
                at: t0 + Duration::from_secs(s),
            };
            let mut d = reading("checkout-d", Family::GrpcPrometheus, 0, 0, &none);
            d.family = None;
            d.totals = None;
            vec![
                reading("checkout-a", Family::GrpcPrometheus, 190 * s, 0, &ok),
                reading("checkout-b", Family::OtelRpcCallDuration, 5 * s, 0, &ok),
                reading("checkout-c", Family::GrpcPrometheus, 5 * s.min(2), 0, &stale),
                d,
            ]
        })
        .collect();
    let now = scrape(&mut views, t0, &rounds);
    (views, now)
}

fn draw(views: &Views, now: Instant, width: u16, height: u16) -> String {
    super::screen(width, height, |frame| {
        render_views(views, frame, now, Theme { color: true })
    })
}

#[test]
fn a_workload_without_a_gateway_120x40() {
    let (views, now) = workload_alone();
    let screen = draw(&views, now, 120, 40);
    assert!(
        screen.contains(
            "STUCK — its clients hold long-lived connections: balance per request in them, or cap connection age"
        ),
        "{screen}"
    );
    assert!(screen.contains("otel rpc (s)"), "{screen}");
    assert!(
        screen.contains("checkout-c  timed out after 1s; no fresh numbers for 12 s"),
        "{screen}"
    );
    snapshot!(screen);
}

#[test]
fn a_workload_without_a_gateway_80x24() {
    let (views, now) = workload_alone();
    let screen = draw(&views, now, 80, 24);
    assert!(screen.contains("checkout-a"), "{screen}");
    snapshot!(screen);
}

/// A gateway balancing 30 req/s over the three pods for the 14 s from
/// `t0`, followed by summaries, one a second.
fn balanced_gateway(t0: Instant) -> App {
    let mut app = App::new(GATEWAY, t0);
    app.update(
        AppEvent::Connected {
            gateway: GATEWAY.into(),
        },
        t0,
    );
    let endpoints = PODS
        .iter()
        .map(|(name, ip)| Endpoint {
            address: format!("{ip}:50051"),
            pod_name: (*name).into(),
            ready: true,
            ..Default::default()
        })
        .collect();
    let snapshot = State {
        mode: Mode::Balanced.to_proto() as i32,
        endpoints,
        ..State::default()
    };
    app.update(stream_event(event::Kind::Snapshot(snapshot), Stream::Summaries), t0);
    let bucket = greet_proto::latency_buckets::bucket_of(700);
    for s in 1..=14u64 {
        let totals: BTreeMap<(&str, &str), (u64, Vec<u64>)> = PODS
            .iter()
            .map(|pod| {
                let mut buckets = vec![0; bucket + 1];
                buckets[bucket] = 10 * s;
                (*pod, (10 * s, buckets))
            })
            .collect();
        app.update(
            stream_event(summary(&totals), Stream::Summaries),
            t0 + Duration::from_secs(s),
        );
    }
    app
}

/// The gateway's balanced view beside the pods' own metrics, which count
/// 20 req/s more on the first pod: a client that calls it straight.
fn beside_a_gateway() -> (Views, Instant) {
    let t0 = Instant::now();
    let now = t0 + Duration::from_secs(14);
    let mut views = Views::paired(balanced_gateway(t0), App::new("the demo pods' own metrics", t0));
    let pods = PODS;
    let rounds: Vec<Vec<PodReading>> = (0..15u64)
        .map(|s| {
            let ok = ScrapeStatus::Ok {
                at: t0 + Duration::from_secs(s),
            };
            pods.iter()
                .enumerate()
                .map(|(i, (name, _))| {
                    let own = if i == 0 { 30 } else { 10 };
                    reading(name, Family::GrpcPrometheus, own * s, 0, &ok)
                })
                .collect()
        })
        .collect();
    let at = scrape(&mut views, t0, &rounds);
    assert_eq!(at, now);
    views.tick(now);
    (views, now)
}

#[test]
fn beside_a_gateway_the_difference_is_named_120x40() {
    let (views, now) = beside_a_gateway();
    let screen = draw(&views, now, 120, 40);
    assert!(screen.contains("SELF/s"), "{screen}");
    assert!(
        screen.contains("reach them another way (clients that bypass the gateway"),
        "{screen}"
    );
    snapshot!(screen);
}

#[test]
fn beside_a_gateway_80x24() {
    let (views, now) = beside_a_gateway();
    let screen = draw(&views, now, 80, 24);
    assert!(screen.contains("SELF/s"), "{screen}");
    snapshot!(screen);
}
