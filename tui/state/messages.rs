//! What flows into the dashboard's state: events from the network workers
//! and controls ([`AppEvent`]), and what the state asks the run loop to do
//! ([`Action`]). Text in these types is already sanitised where it entered
//! (the Observer client, the kube source, the controls).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

pub(crate) use super::gateways::Refusal;
use greet_proto::Mode;

/// What the dashboard's network workers and controls report. `gateway`
/// names the gateway (its URL or pod name) an event is about.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub enum AppEvent {
    /// The gateway's Observer stream is up.
    Connected { gateway: String },
    /// The stream failed; the worker retries after `retry_in`.
    Disconnected {
        gateway: String,
        error: String,
        retry_in: Duration,
    },
    /// The gateway refused greet-top (UNAUTHENTICATED); the worker retries
    /// after `retry_in`.
    Refused {
        gateway: String,
        refusal: Refusal,
        retry_in: Duration,
    },
    /// An event from a gateway's Observer stream.
    Gateway { gateway: String, event: GatewayEvent },
    /// The gateway is no longer followed (its pod went away).
    GatewayRemoved { gateway: String },
    /// The full list of pods from a pod source (kube, the demo).
    Pods(Vec<PodInfo>),
    /// The state of the Kubernetes pod watch.
    Kube(KubeStatus),
    /// One gateway's answer to an [`Action::SetMode`].
    ModeSet {
        gateway: String,
        result: Result<Mode, String>,
    },
    /// The load generator's state.
    Load(LoadState),
    /// The demo pods' max connection age (`None`: off).
    ConnectionAge(Option<Duration>),
    /// A line for the footer: the result of an action.
    Notice { text: String, error: bool },
}

/// What one gateway's Observer stream says, in the dashboard's own terms.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum GatewayEvent {
    /// The gateway's whole state; starts every subscription.
    Snapshot(Snapshot),
    /// One request completed (the raw stream: every request).
    Request(Request),
    /// A gateway's cumulative counters, one per summary interval: what
    /// happened since the last one is their difference.
    Summary(Vec<PodTotals>),
    /// A sampled request, for the tail only: summaries do the counting.
    Sample(Request),
    /// The gateway's mode changed; `None` for a mode this version does not
    /// know, then `unknown` is its number (`None` too for unspecified).
    ModeChanged {
        seq: u64,
        mode: Option<Mode>,
        unknown: Option<i32>,
    },
    /// The gateway's endpoint set changed (the full new set).
    EndpointsChanged { seq: u64, endpoints: Vec<PodInfo> },
    /// The gateway dropped `dropped` events for this subscriber.
    Lagged { dropped: u64 },
    /// Whether the gateway's discovery follows its source (sent with its
    /// snapshots and endpoint sets).
    Discovery(DiscoveryStatus),
}

/// Whether a gateway's discovery follows its source (the API server, DNS).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DiscoveryStatus {
    /// "kube", "dns", "static", ...
    pub source: String,
    /// The last failure, cause first; empty while discovery works.
    pub last_error: String,
    /// Since when discovery has failed (Unix µs); 0 while it works.
    pub failing_since_unix_us: i64,
    /// How long the endpoint set had gone unconfirmed when the gateway sent this.
    pub set_age: std::time::Duration,
}

impl DiscoveryStatus {
    pub fn failing(&self) -> bool {
        !self.last_error.is_empty()
    }
}

/// A gateway's state when a subscription starts.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Snapshot {
    pub mode: Option<Mode>,
    /// The number of a mode this version does not know (a newer gateway's).
    pub unknown_mode: Option<i32>,
    /// Events up to this sequence number are included in `pods`.
    pub last_seq: u64,
    /// The pods the gateway's endpoint set lists.
    pub endpoints: Vec<PodInfo>,
    pub pods: Vec<PodTotals>,
    /// When the gateway process started, in Unix microseconds.
    pub started_unix_us: i64,
    /// Where sticky mode sends requests (the Service's `host:port`); empty
    /// when the gateway does not say.
    pub sticky_target: String,
}

/// A gateway's totals for one pod. `name` is empty when the gateway does not
/// know it; `ip` is empty when nothing names a pod (a Service address).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PodTotals {
    pub name: String,
    pub ip: String,
    /// The address (`host:port`) the gateway first dialled for it: the
    /// Service's in sticky mode; empty when unknown.
    pub endpoint: String,
    pub requests: u64,
    pub errors: u64,
    /// The cumulative latency histogram (proto/latency_buckets.rs); only
    /// summaries carry one.
    #[serde(with = "crate::record::sparse")]
    pub latency_buckets: Option<Vec<u64>>,
    /// Cumulative failed requests by gRPC code; only summaries carry them.
    pub error_codes: BTreeMap<i32, u64>,
    /// Cumulative requests by method; only summaries carry them.
    pub methods: super::stats::methods::ByMethod,
    /// The gateway's gauges for the pod when the summary was built; only
    /// summaries carry them.
    pub gauges: Option<Gauges>,
    /// Cumulative requests (and failed ones) that began before a mode
    /// change and ended after it; counted in `requests` and `errors` too.
    /// Only summaries carry them.
    pub carried_over: super::stats::Tally,
}

/// What a gateway holds open to a pod right now (not cumulative).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Gauges {
    /// Requests sent and not answered yet.
    pub in_flight: u64,
    /// How long the oldest of them has waited, in microseconds.
    pub oldest_in_flight_us: u64,
    /// HTTP/2 connections the gateway holds to the pod.
    pub connections: u32,
}

/// One completed request, as a gateway reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Request {
    /// The gateway's sequence number (0: none).
    pub seq: u64,
    /// The pod that answered; empty when unknown.
    pub name: String,
    pub ip: String,
    /// The address the gateway dialled (the Service's in sticky mode).
    pub endpoint: String,
    pub mode: Option<Mode>,
    pub latency_us: u64,
    /// 0 for success.
    pub grpc_code: i32,
    pub error: String,
}

/// A pod as a pod source lists it.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PodInfo {
    /// The pod's name; a gateway that knows none names it by its endpoint.
    pub name: String,
    pub ip: String,
    /// The address (`host:port`) a gateway dials for it; empty from a pod
    /// source that knows only pods (kube, the demo).
    pub endpoint: String,
    pub ready: bool,
    /// Why a gateway's balancer skips it (e.g. "connection refused"), from
    /// the gateway's endpoint set; `None` when no gateway skips it.
    pub skipped: Option<String>,
    /// Why a gateway's own health check of it fails (e.g. "connection
    /// refused"); `None` while the checks pass, before the first, or from
    /// a pod source that runs none.
    pub down: Option<String>,
    /// A gateway routes to it although it is terminating: no endpoint of
    /// the Service is ready, and it still serves (kube-proxy's fallback).
    pub serving_terminating: bool,
    /// Kubernetes phase (Pending, Running, ...), when known.
    pub phase: Option<String>,
    pub restarts: u32,
    pub node: Option<String>,
    /// When the pod was created, on this process's clock (recorded as an
    /// offset from the recording's start).
    #[serde(with = "crate::record::epoch")]
    pub created: Option<Instant>,
    /// Which family of its own metrics the pod's numbers come from
    /// (`grpc_server`, `otel rpc (s)`, …); only the pods' metrics source
    /// sets it.
    pub metrics_family: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum WatchState {
    Starting,
    Synced,
    Retrying(String),
    /// RBAC denies the watch; the text names the missing rule.
    Forbidden(String),
}

/// Where the Kubernetes pod watch points, and how it is doing.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KubeStatus {
    pub context: String,
    pub namespace: String,
    pub watch: WatchState,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LoadState {
    pub running: bool,
    pub rate: u32,
}

/// Something the run loop must do on the user's behalf.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Quit,
    /// Switch every gateway to this mode.
    SetMode(Mode),
    SetLoad(LoadState),
    AddPod,
    KillPod(String),
    /// Demo: one pod slower, or back.
    ToggleSlowPod,
    /// Demo: a max connection age on every pod, or none.
    ToggleConnectionAge,
    /// Demo: the client that calls the pods straight, on or off.
    ToggleBypass,
    /// Show the next view (the screen's own business: `Views` does it).
    CycleView,
}
