//! The crate's interface: what is scraped ([`Target`]), how
//! ([`ScrapeConfig`]), and what each round reports per pod ([`PodReading`]).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// One pod to scrape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The pod's name as shown (for a URL without one: its `host:port`).
    pub pod: String,
    /// The pod's IP, when known (empty otherwise).
    pub ip: String,
    pub via: Via,
}

/// Where a pod's metrics are read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Via {
    /// Straight from a URL (`http://host:port/path`): local runs, compose, tests.
    Url(String),
    /// Through the API server:
    /// `/api/v1/namespaces/{namespace}/pods/{pod}:{port}/proxy{path}`.
    PodProxy {
        namespace: String,
        pod: String,
        port: u16,
        /// Starts with `/` (default `/metrics`).
        path: String,
    },
}

/// How often and how carefully pods are scraped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScrapeConfig {
    /// One scrape per pod per interval (default 1 s).
    pub interval: Duration,
    /// Longest one scrape may take (default: the interval, at most 5 s).
    pub timeout: Duration,
    /// Largest body read; a larger one fails the scrape (default 8 MiB).
    pub max_bytes: usize,
    /// Most scrapes in flight at once (default 32).
    pub concurrency: usize,
}

impl Default for ScrapeConfig {
    fn default() -> Self {
        ScrapeConfig {
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            max_bytes: 8 << 20,
            concurrency: 32,
        }
    }
}

/// Which metric family a pod's numbers came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    /// `grpc_server_handled_total` and friends: go-grpc-prometheus,
    /// py-grpc-prometheus, grpc-java's interceptors, greet-server.
    GrpcPrometheus,
    /// OpenTelemetry `rpc.server.duration` (ms): `rpc_server_duration_milliseconds`.
    OtelRpcDuration,
    /// OpenTelemetry `rpc.server.call.duration` (s): `rpc_server_call_duration_seconds`.
    OtelRpcCallDuration,
}

impl Family {
    /// Short name for a table cell and `--once` output.
    pub fn label(self) -> &'static str {
        match self {
            Family::GrpcPrometheus => "grpc_server",
            Family::OtelRpcDuration => "otel rpc (ms)",
            Family::OtelRpcCallDuration => "otel rpc (s)",
        }
    }
}

/// A pod's counters, cumulative since greet-top first read the pod, with
/// counter resets folded in (a counter that went down counts from zero
/// again, as `rate()` does: never negative, never a spike).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Calls completed (every code).
    pub requests: u64,
    /// Calls completed with a code other than OK.
    pub errors: u64,
    /// Failed calls by gRPC code (1..=16).
    pub error_codes: BTreeMap<i32, u64>,
    /// Calls by method, `/package.Service/Method` → (requests, errors).
    pub methods: BTreeMap<String, (u64, u64)>,
    /// Latency in `greet_proto::latency_buckets`' buckets, each Prometheus
    /// bucket's count spread evenly over the range it covers (what
    /// `histogram_quantile` assumes); `None` when the pod has no histogram.
    pub latency_buckets: Option<Vec<u64>>,
    /// Calls started and not completed (`started - handled`), when the
    /// family counts starts.
    pub in_flight: Option<u64>,
}

/// How a pod's scrapes are going.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScrapeStatus {
    /// Not scraped yet.
    Pending,
    /// The last scrape worked and found gRPC server metrics.
    Ok { at: Instant },
    /// Scrapes fail; the cause first, in words (`timed out after 1s`,
    /// `greet-top may not get pods/proxy in namespace default: …`).
    Failing {
        cause: String,
        since: Instant,
        last_ok: Option<Instant>,
    },
    /// The endpoint answers, but with no gRPC server family:
    /// `no gRPC server metrics at :9090/metrics — looked for …`.
    NoGrpcMetrics { cause: String, at: Instant },
}

/// One pod as the last round saw it. Text here is sanitised.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodReading {
    pub pod: String,
    pub ip: String,
    /// Where it was read, as shown and in `--once` output.
    pub url: String,
    pub family: Option<Family>,
    /// `None` until a scrape found a gRPC family.
    pub totals: Option<Totals>,
    pub status: ScrapeStatus,
}
