//! The gateway's Prometheus metrics, `GET /metrics` on the REST port, all
//! prefixed `greet_gateway_`.
//!
//! Read at scrape time from what the gateway counts anyway (the event hub's
//! per-pod atomics, the balancer, discovery), so a request pays for no
//! metric of its own beyond one more atomic addition in its pod's counters.
//!
//! The `pod` label is bounded by the pods that answered this gateway since
//! it started (the pod's name, else its endpoint address; empty when no
//! endpoint was tried): the same set the Observer's snapshot lists. A pod
//! that went away keeps its series until the gateway restarts, as its totals
//! stay in the snapshot: counters that vanished would read as resets, and
//! the cost is a few series per pod of each rollout. Only outcomes that
//! happened have a series.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::State;
use axum::response::Response;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use super::Gateway;
use super::events::counters::{MODES, PodOutcomes};
use super::skipped;
use greet_proto::Mode;
use greet_proto::grpc_code::go_code_name;
use greet_proto::latency_buckets::lower_bound_us;

const MODE_NAMES: [&str; MODES] = [
    Mode::Sticky.as_str(),
    Mode::Balanced.as_str(),
    Mode::LeastLoaded.as_str(),
    Mode::Dns.as_str(),
];

/// Histogram bounds: one per power of two from 256 µs to about 33.5 s.
/// Bucket edges of the hub's own histogram (proto/latency_buckets.rs), so
/// each count is exact.
const FIRST_BOUND_BUCKET: usize = 28;
const BOUND_BUCKET_STEP: usize = 4;
const BOUNDS: usize = 18;

/// The hub's histogram counts folded into the Prometheus buckets: (upper
/// bound in seconds, requests in that bucket alone), +Inf last.
fn prometheus_buckets(counts: &[u64]) -> Vec<(f64, u64)> {
    let mut counts = counts.iter().copied();
    let mut buckets: Vec<(f64, u64)> = (0..BOUNDS)
        .map(|i| {
            // Every hub bucket below this edge: exactly the requests faster than it.
            let edge = FIRST_BOUND_BUCKET + i * BOUND_BUCKET_STEP;
            let below = if i == 0 { edge } else { BOUND_BUCKET_STEP };
            (lower_bound_us(edge) as f64 / 1e6, counts.by_ref().take(below).sum())
        })
        .collect();
    buckets.push((f64::INFINITY, counts.sum()));
    buckets
}

/// What the gateway counts only for the metrics.
#[derive(Debug, Default)]
pub(crate) struct GatewayCounts {
    /// `POST /greet` bodies refused before any upstream call, by mode.
    rejected: [AtomicU64; MODES],
    /// Events a raw Observer subscriber missed because it fell behind.
    observer_dropped: AtomicU64,
}

impl GatewayCounts {
    pub(crate) fn rejected(&self, mode: Mode) {
        self.rejected[mode as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn observer_dropped(&self, events: u64) {
        self.observer_dropped.fetch_add(events, Ordering::Relaxed);
    }
}

/// `GET /metrics`.
pub(crate) async fn metrics(State(gateway): State<Arc<Gateway>>) -> Response {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Scrape(gateway)));
    greet_runtime::metrics::exposition(&registry)
}

/// One scrape: reads the gateway's state as the encoder asks for it.
struct Scrape(Arc<Gateway>);

impl fmt::Debug for Scrape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Scrape")
    }
}

fn counter(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> fmt::Result {
    ConstCounter::new(value).encode(encoder.encode_descriptor(name, help, None, MetricType::Counter)?)
}

fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: i64) -> fmt::Result {
    ConstGauge::new(value).encode(encoder.encode_descriptor(name, help, None, MetricType::Gauge)?)
}

impl Scrape {
    /// `greet_gateway_requests_total` by pod, mode and outcome.
    fn requests(&self, encoder: &mut DescriptorEncoder, pods: &[PodOutcomes]) -> fmt::Result {
        let mut family = encoder.encode_descriptor(
            "greet_gateway_requests",
            "POST /greet requests and gRPC ingress calls by the pod that answered (else the endpoint tried), mode and outcome: ok, a gRPC code as grpc-go names it, or rejected (a bad body, no upstream call).",
            None,
            MetricType::Counter,
        )?;
        for pod in pods {
            for (mode, codes) in MODE_NAMES.iter().zip(&pod.outcomes) {
                for (code, &count) in codes.iter().enumerate().filter(|(_, count)| **count > 0) {
                    let outcome = if code == 0 { "ok" } else { go_code_name(code as i32) };
                    let labels = [("pod", pod.pod.as_str()), ("mode", mode), ("outcome", outcome)];
                    ConstCounter::new(count).encode(family.encode_family(&labels)?)?;
                }
            }
        }
        for (mode, rejected) in MODE_NAMES.iter().zip(&self.0.metrics.rejected) {
            let count = rejected.load(Ordering::Relaxed);
            if count > 0 {
                let labels = [("pod", ""), ("mode", mode), ("outcome", "rejected")];
                ConstCounter::new(count).encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }

    /// `greet_gateway_request_duration_seconds`, from the hub's histogram.
    fn duration(&self, encoder: &mut DescriptorEncoder) -> fmt::Result {
        let (counts, sum_us) = self.0.hub.request_durations();
        let buckets = prometheus_buckets(&counts);
        let count = buckets.iter().map(|(_, n)| n).sum();
        let sum = sum_us as f64 / 1e6;
        let mut histogram = encoder.encode_descriptor(
            "greet_gateway_request_duration_seconds",
            "Time from a POST /greet reaching the gateway's upstream call (a gRPC ingress call: from its arrival) to its outcome, retries included.",
            None,
            MetricType::Histogram,
        )?;
        histogram.encode_histogram::<prometheus_client::encoding::NoLabelSet>(sum, count, &buckets, None)
    }
}

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let gateway = &self.0;
        let pods = gateway.hub.outcomes();
        self.requests(&mut encoder, &pods)?;
        self.duration(&mut encoder)?;
        let retries = pods.iter().map(|pod| pod.retries).sum();
        counter(
            &mut encoder,
            "greet_gateway_retries",
            "Upstream attempts after a request's first (an endpoint refused or its connection broke).",
            retries,
        )?;
        counter(
            &mut encoder,
            "greet_gateway_ejections",
            "Times balanced or dns mode began skipping an endpoint after a failure (or a re-try failed again).",
            gateway.upstream.balancer().ejections() + gateway.upstream.dns().balancer().ejections(),
        )?;
        let report = gateway.upstream.balancer().report();
        let usable = skipped::usable(&report);
        let skipping = report.iter().filter(|(_, skip)| skip.is_some()).count();
        gauge(
            &mut encoder,
            "greet_gateway_ready_endpoints",
            "Ready endpoints that balanced mode does not skip.",
            i64::try_from(usable).unwrap_or(i64::MAX),
        )?;
        gauge(
            &mut encoder,
            "greet_gateway_skipped_endpoints",
            "Ready endpoints that balanced mode skips after failures.",
            i64::try_from(skipping).unwrap_or(i64::MAX),
        )?;
        gauge(
            &mut encoder,
            "greet_gateway_failing_endpoints",
            "Listed endpoints whose last health check (every --health-check-interval) failed.",
            i64::try_from(
                gateway
                    .upstream
                    .health()
                    .failing(report.iter().map(|(info, _)| info.address.as_str())),
            )
            .unwrap_or(i64::MAX),
        )?;
        let age = gateway.discovery_health.set_age(tokio::time::Instant::now());
        ConstGauge::new(age.as_millis() as f64 / 1000.0).encode(encoder.encode_descriptor(
            "greet_gateway_discovery_set_age_seconds",
            "Seconds since discovery last confirmed the endpoint set current: 0 while it follows its source, else since the source was last heard.",
            None,
            MetricType::Gauge,
        )?)?;
        counter(
            &mut encoder,
            "greet_gateway_discovery_errors",
            "Failed endpoint discovery watches and lookups (the last endpoint set stays in force).",
            gateway.discovery_health.errors(),
        )?;
        let dns = gateway.upstream.dns();
        counter(
            &mut encoder,
            "greet_gateway_dns_resolves",
            "Resolves of GRPC_SERVER_HOST for dns mode, every --dns-interval in every mode (failed ones included).",
            dns.resolves(),
        )?;
        counter(
            &mut encoder,
            "greet_gateway_dns_resolve_errors",
            "Failed resolves for dns mode (the last answer stays in force).",
            dns.errors(),
        )?;
        gauge(
            &mut encoder,
            "greet_gateway_dns_addresses",
            "Addresses in the DNS answer dns mode routes by.",
            i64::try_from(dns.balancer().ready_count()).unwrap_or(i64::MAX),
        )?;
        gauge(
            &mut encoder,
            "greet_gateway_observer_subscribers",
            "Open Observer Watch streams.",
            i64::try_from(gateway.hub.subscribers()).unwrap_or(i64::MAX),
        )?;
        counter(
            &mut encoder,
            "greet_gateway_observer_dropped_events",
            "Events per-request Watch subscribers missed because they fell behind (each was told how many).",
            gateway.metrics.observer_dropped.load(Ordering::Relaxed),
        )?;
        let mode = gateway.upstream.mode();
        let mut family = encoder.encode_descriptor(
            "greet_gateway_mode",
            "1 for the mode the gateway is in, 0 for the other.",
            None,
            MetricType::Gauge,
        )?;
        for name in MODE_NAMES {
            let labels = [("mode", name)];
            ConstGauge::new(i64::from(name == mode.as_str())).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::histogram::Histogram;

    #[test]
    fn hub_buckets_fold_exactly_into_powers_of_two_microseconds() {
        let histogram = Histogram::default();
        for latency_us in [0, 100, 255, 256, 300, 511, 1_000, 40_000_000] {
            histogram.record(latency_us);
        }
        let buckets = prometheus_buckets(&histogram.counts());
        assert_eq!(buckets.len(), BOUNDS + 1);
        assert_eq!(
            &buckets[..4],
            &[(0.000256, 3), (0.000512, 3), (0.001024, 1), (0.002048, 0)]
        );
        assert_eq!(buckets[BOUNDS - 1], (33.554432, 0));
        assert_eq!(buckets[BOUNDS], (f64::INFINITY, 1));
        assert_eq!(prometheus_buckets(&[]).iter().map(|(_, n)| n).sum::<u64>(), 0);
    }
}
