//! Events and states the state's unit tests share.

use std::time::{Duration, Instant};

use super::app::App;
use super::messages::{AppEvent, GatewayEvent, PodInfo, PodTotals, Request, Snapshot};
use greet_proto::Mode;

pub(crate) fn secs(n: f64) -> Duration {
    Duration::from_secs_f64(n)
}

/// A ready pod as an endpoint set lists it.
pub(crate) fn endpoint(name: &str, ip: &str) -> PodInfo {
    PodInfo {
        name: name.into(),
        ip: ip.into(),
        ready: true,
        ..PodInfo::default()
    }
}

/// An event from the gateway called `gateway`.
pub(crate) fn from(gateway: &str, event: GatewayEvent) -> AppEvent {
    AppEvent::Gateway {
        gateway: gateway.into(),
        event,
    }
}

/// An event from the gateway called "gw".
pub(crate) fn gw(event: GatewayEvent) -> AppEvent {
    from("gw", event)
}

/// A snapshot listing `pods` (name, IP, hits) as endpoints, with totals for those with hits.
pub(crate) fn snapshot(mode: Mode, pods: &[(&str, &str, u64)], last_seq: u64) -> AppEvent {
    gw(GatewayEvent::Snapshot(Snapshot {
        mode: Some(mode),
        unknown_mode: None,
        started_unix_us: 1,
        sticky_target: String::new(),
        last_seq,
        endpoints: pods.iter().map(|(n, ip, _)| endpoint(n, ip)).collect(),
        pods: pods
            .iter()
            .filter(|(_, _, hits)| *hits > 0)
            .map(|(n, ip, hits)| PodTotals {
                name: (*n).into(),
                ip: (*ip).into(),
                requests: *hits,
                errors: 0,
                ..PodTotals::default()
            })
            .collect(),
    }))
}

/// A successful balanced request answered by `pod`.
pub(crate) fn request_event(seq: u64, pod: &str, ip: &str, latency_us: u64) -> Request {
    Request {
        seq,
        name: pod.into(),
        ip: ip.into(),
        mode: Some(Mode::Balanced),
        latency_us,
        ..Request::default()
    }
}

pub(crate) fn request(seq: u64, pod: &str, ip: &str, latency_us: u64) -> AppEvent {
    gw(GatewayEvent::Request(request_event(seq, pod, ip, latency_us)))
}

pub(crate) const PODS: [(&str, &str, u64); 3] = [
    ("pod-a", "10.0.0.1", 0),
    ("pod-b", "10.0.0.2", 0),
    ("pod-c", "10.0.0.3", 0),
];

/// Following "gw", which has sent a snapshot listing [`PODS`] in sticky mode.
pub(crate) fn synced_app(t0: Instant) -> App {
    let mut app = App::new("gw", t0);
    app.update(snapshot(Mode::Sticky, &PODS, 0), t0);
    app
}

pub(crate) fn hits(app: &App) -> Vec<(String, u64)> {
    app.stats().pods.values().map(|p| (p.name.clone(), p.hits())).collect()
}

/// A summary from "gw": cumulative (name, IP, requests, errors, latency
/// buckets) per pod.
pub(crate) fn summary(pods: &[(&str, &str, u64, u64, &[u64])]) -> AppEvent {
    gw(GatewayEvent::Summary(
        pods.iter()
            .map(|(name, ip, requests, errors, buckets)| PodTotals {
                name: (*name).into(),
                ip: (*ip).into(),
                requests: *requests,
                errors: *errors,
                latency_buckets: Some(buckets.to_vec()),
                error_codes: [(14, *errors)].into_iter().filter(|(_, n)| *n > 0).collect(),
                ..PodTotals::default()
            })
            .collect(),
    ))
}

/// The gateway's endpoint set is now `pods` (name, IP), all ready.
pub(crate) fn endpoints_changed(seq: u64, pods: &[(&str, &str)]) -> AppEvent {
    gw(GatewayEvent::EndpointsChanged {
        seq,
        endpoints: pods.iter().map(|(n, ip)| endpoint(n, ip)).collect(),
    })
}

/// The gateway's endpoint set is [`PODS`], all ready, and its health
/// checks of the pods in `down` (name, cause) fail.
pub(crate) fn health_checked(seq: u64, down: &[(&str, &str)]) -> AppEvent {
    let endpoints = PODS
        .iter()
        .map(|(name, ip, _)| PodInfo {
            down: down
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, cause)| (*cause).to_owned()),
            ..endpoint(name, ip)
        })
        .collect();
    gw(GatewayEvent::EndpointsChanged { seq, endpoints })
}
