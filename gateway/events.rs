//! The event hub: every completed request, mode change and endpoint change is
//! counted and, for the subscribers that want them, streamed.
//!
//! Counting is lock-free (counters.rs, gate.rs): a request takes a sequence
//! number and adds to its pod's atomic counters. A request event is built and
//! broadcast only while a raw subscriber listens (then under the hub's lock,
//! so events reach it in sequence order, right after its snapshot) or when
//! the sampler wants one (sample.rs). Summaries are built per interval from
//! the counters (summary.rs). Publishing never waits for a subscriber: the
//! broadcast ring is bounded and a raw subscriber that falls behind is told
//! how many events it missed.

pub(crate) mod counters;
mod gate;
pub(crate) mod gauges;
pub(crate) mod histogram;
pub(crate) mod methods;
pub(crate) mod sample;
pub(crate) mod shared;
pub(crate) mod summary;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::broadcast;

use counters::Counters;
use gate::Gate;
use greet_proto::Mode;
use greet_proto::observe::{self, EndpointsChanged, ModeChanged, RequestEvent, State, event};
use sample::Sampler;
use shared::Shared;
use summary::Summaries;

/// Events kept for a slow subscriber before it is told it lagged.
pub(crate) const BROADCAST_CAPACITY: usize = 16 * 1024;
/// Mode and endpoint changes kept for a slow summary subscriber (they are rare).
const CONTROL_CAPACITY: usize = 256;

/// Facts about the gateway that do not change while it runs.
#[derive(Clone, Debug, Default)]
pub struct GatewayInfo {
    pub gateway: String,
    pub sticky_target: String,
    pub discovery: String,
}

/// What happened to one request, as the upstream saw it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestOutcome {
    pub pod_name: String,
    pub pod_ip: String,
    pub endpoint: String,
    pub mode: Mode,
    /// The last attempt's own time: the pod it names answered (or failed)
    /// in this long. Per-pod latency is this, never a retried request's
    /// wait on another pod.
    pub latency_us: u64,
    /// The whole request's time, retries included: what the client waited.
    pub request_latency_us: u64,
    pub grpc_code: i32,
    pub error: String,
    pub attempts: u32,
    /// The full gRPC method of an ingress call; empty for REST /greet.
    pub method: String,
    /// [`EventHub::mode_epoch`] when the request began, read before its
    /// mode; `None`: not known (then it is never counted as carried over).
    pub began_in_epoch: Option<u64>,
}

/// What changes rarely, changed under the hub's lock.
struct Control {
    mode: Mode,
    endpoints: Vec<observe::Endpoint>,
    /// Discovery's state, and when it was set (its set age grows from there).
    discovery: Option<(observe::DiscoveryState, tokio::time::Instant)>,
}

/// What a summary subscriber starts from: a snapshot, then the mode and
/// endpoint changes after it (no gap, no overlap) and its feeds.
pub struct SummarySubscription {
    pub snapshot: State,
    pub control: broadcast::Receiver<Arc<Shared>>,
    pub feed: summary::Feed,
}

pub struct EventHub {
    info: GatewayInfo,
    started_unix_us: i64,
    gate: Gate,
    counters: Counters,
    /// Held to send raw events, to change mode or endpoints, and to take a
    /// snapshot; never by a request while no raw subscriber listens.
    control: Mutex<Control>,
    /// Every event, for raw subscribers.
    tx: broadcast::Sender<Arc<Shared>>,
    /// Mode and endpoint changes, for summary subscribers.
    control_tx: broadcast::Sender<Arc<Shared>>,
    pub(crate) sampler: Sampler,
    summaries: Summaries,
    /// The upstreams' gauges, for summaries; set once the gateway is built.
    gauges: std::sync::OnceLock<gauges::GaugeSource>,
    /// Mode changes so far: a request that began in an earlier epoch and
    /// ends in a later one is carried over (counted as such too).
    mode_epoch: AtomicU64,
}

/// Discovery's last state, its set age grown by the time since it was set
/// (a stale set keeps ageing between changes). A set is stale from the
/// moment discovery fails, when its age is still 0.
fn discovery_now(control: &Control) -> Option<observe::DiscoveryState> {
    let (state, at) = control.discovery.as_ref()?;
    let mut state = state.clone();
    if state.set_age_ms > 0 || state.failing_since_unix_us != 0 {
        let since = u64::try_from(at.elapsed().as_millis()).unwrap_or(u64::MAX);
        state.set_age_ms = state.set_age_ms.saturating_add(since);
    }
    Some(state)
}

impl EventHub {
    pub fn new(info: GatewayInfo, mode: Mode) -> Self {
        EventHub {
            info,
            started_unix_us: unix_micros_now(),
            gate: Gate::default(),
            counters: Counters::default(),
            control: Mutex::new(Control {
                mode,
                endpoints: Vec::new(),
                discovery: None,
            }),
            tx: broadcast::channel(BROADCAST_CAPACITY).0,
            control_tx: broadcast::channel(CONTROL_CAPACITY).0,
            sampler: Sampler::default(),
            summaries: Summaries::default(),
            gauges: std::sync::OnceLock::new(),
            mode_epoch: AtomicU64::new(0),
        }
    }

    /// Where summaries read the gauges (requests in flight, connections)
    /// from; the first source set stays.
    pub fn set_gauge_source(&self, source: gauges::GaugeSource) {
        let _ = self.gauges.set(source);
    }

    fn lock(&self) -> MutexGuard<'_, Control> {
        // The state stays consistent even if a holder panicked mid-way: every
        // update is an assignment.
        self.control.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Mode changes so far. Read when a request begins, before its mode
    /// (the switch stores the mode, then counts the change): a request that
    /// reads the new mode just before the count is the only one counted as
    /// carried over wrongly.
    pub fn mode_epoch(&self) -> u64 {
        self.mode_epoch.load(Ordering::Acquire)
    }

    /// Whether `outcome`'s request began before the last mode change.
    fn carried_over(&self, outcome: &RequestOutcome) -> bool {
        outcome.began_in_epoch.is_some_and(|began| began != self.mode_epoch())
    }

    /// Counts one completed request, and sends it to whoever wants it.
    pub fn publish_request(&self, outcome: RequestOutcome) {
        let carried_over = self.carried_over(&outcome);
        if let Some(pass) = self.gate.enter_fast() {
            self.counters.record(&outcome, carried_over);
            let seq = pass.seq;
            drop(pass);
            if self.sampler.wanted() {
                let now = unix_micros_now();
                if self.sampler.take(now) {
                    self.sampler.send(Arc::new(request_event(seq, now, outcome)));
                }
            }
            return;
        }
        let _control = self.lock();
        let seq = self.gate.next_seq();
        self.counters.record(&outcome, carried_over);
        let now = unix_micros_now();
        let event = Arc::new(request_event(seq, now, outcome));
        if self.sampler.take(now) {
            self.sampler.send(Arc::clone(&event));
        }
        self.send(event);
        if self.tx.receiver_count() == 0 {
            // The last raw subscriber left: back to lock-free counting.
            self.gate.lower();
        }
    }

    /// Records a mode switch; no event when the mode is unchanged.
    pub fn publish_mode(&self, mode: Mode) {
        let mut control = self.lock();
        if control.mode == mode {
            return;
        }
        let previous = std::mem::replace(&mut control.mode, mode);
        self.mode_epoch.fetch_add(1, Ordering::AcqRel);
        let event = event::Kind::ModeChanged(ModeChanged {
            seq: self.gate.next_seq(),
            timestamp_unix_us: unix_micros_now(),
            mode: mode.to_proto() as i32,
            previous: previous.to_proto() as i32,
        });
        self.send_control(event);
    }

    /// Records the full endpoint set after a discovery update.
    pub fn publish_endpoints(&self, endpoints: Vec<observe::Endpoint>) {
        let mut control = self.lock();
        control.endpoints.clone_from(&endpoints);
        let event = event::Kind::EndpointsChanged(EndpointsChanged {
            seq: self.gate.next_seq(),
            timestamp_unix_us: unix_micros_now(),
            endpoints,
            discovery: discovery_now(&control),
        });
        self.send_control(event);
    }

    /// Discovery's state for the next snapshots and endpoint events.
    pub fn set_discovery(&self, state: observe::DiscoveryState) {
        self.lock().discovery = Some((state, tokio::time::Instant::now()));
    }

    /// Replaces the endpoint set snapshots show without an event: a health
    /// check's time changed, nothing a subscriber is told about.
    pub fn keep_endpoints(&self, endpoints: Vec<observe::Endpoint>) {
        self.lock().endpoints = endpoints;
    }

    // Sent while the lock is held, so events reach subscribers in seq order
    // and a snapshot taken under the lock lines up with the stream.
    fn send(&self, event: Arc<Shared>) {
        // No subscriber is not an error.
        let _ = self.tx.send(event);
    }

    fn send_control(&self, kind: event::Kind) {
        let event = Arc::new(Shared::new(kind));
        let _ = self.control_tx.send(Arc::clone(&event));
        self.send(event);
    }

    /// The current state: mode, endpoints and per-pod totals, exactly the
    /// events up to its `last_seq`.
    pub fn snapshot(&self) -> State {
        let control = self.lock();
        let state = self.settled_state(&control);
        if self.tx.receiver_count() == 0 {
            self.gate.lower();
        }
        state
    }

    /// Closes the fast path and reads the counters once the requests on it
    /// are counted: a state that lines up with the sequence numbers.
    fn settled_state(&self, control: &Control) -> State {
        self.gate.raise_and_settle();
        let pods = self.counters.totals();
        State {
            mode: control.mode.to_proto() as i32,
            endpoints: control.endpoints.clone(),
            total_requests: pods.iter().map(|p| p.requests).sum(),
            pods,
            last_seq: self.gate.last_seq(),
            sticky_target: self.info.sticky_target.clone(),
            discovery: self.info.discovery.clone(),
            started_unix_us: self.started_unix_us,
            gateway: self.info.gateway.clone(),
            discovery_state: discovery_now(control),
        }
    }

    /// A snapshot and a receiver of every event after it, with no gap and no
    /// overlap. Requests are sent under the lock while the receiver lives.
    pub fn subscribe(&self) -> (State, broadcast::Receiver<Arc<Shared>>) {
        let control = self.lock();
        let state = self.settled_state(&control);
        (state, self.tx.subscribe())
    }

    /// A snapshot, the mode and endpoint changes after it, and the summaries
    /// every `interval`. Requests stay lock-free. Needs a Tokio runtime.
    pub fn subscribe_summaries(self: &Arc<Self>, interval: std::time::Duration) -> SummarySubscription {
        let feed = self.summary_feed(interval);
        let control = self.lock();
        let snapshot = self.settled_state(&control);
        let control_rx = self.control_tx.subscribe();
        if self.tx.receiver_count() == 0 {
            self.gate.lower();
        }
        SummarySubscription {
            snapshot,
            control: control_rx,
            feed,
        }
    }

    /// How many Observer subscriptions are open (raw and summary).
    pub fn subscribers(&self) -> usize {
        self.tx.receiver_count() + self.control_tx.receiver_count()
    }

    /// Per-pod requests by mode and code, read for the metrics (no lock,
    /// no gate: a scrape may see a request's counters half-way).
    pub fn outcomes(&self) -> Vec<counters::PodOutcomes> {
        self.counters.outcomes()
    }

    /// Every pod's requests added up: their latency histogram and sum.
    pub fn totals(&self) -> observe::PodSummary {
        self.counters.summaries().1
    }

    /// Whole requests' times (retries included): their histogram's counts
    /// (the fixed buckets) and sum in microseconds.
    pub fn request_durations(&self) -> (Vec<u64>, u64) {
        self.counters.request_durations()
    }

    /// Summaries built so far (one per tick per interval, whatever the subscribers).
    pub fn summaries_built(&self) -> u64 {
        self.summaries.builds()
    }

    pub fn mode(&self) -> Mode {
        self.lock().mode
    }
}

fn request_event(seq: u64, timestamp_unix_us: i64, outcome: RequestOutcome) -> Shared {
    Shared::new(event::Kind::Request(RequestEvent {
        seq,
        timestamp_unix_us,
        pod_name: outcome.pod_name,
        pod_ip: outcome.pod_ip,
        endpoint: outcome.endpoint,
        mode: outcome.mode.to_proto() as i32,
        latency_us: outcome.latency_us,
        request_latency_us: outcome.request_latency_us,
        grpc_code: outcome.grpc_code,
        error: outcome.error,
        attempts: outcome.attempts,
        method: outcome.method,
    }))
}

/// Microseconds since the Unix epoch for event timestamps, 0 if the clock is before it.
pub(crate) fn unix_micros_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod carried_over_tests;
#[cfg(test)]
mod tests;
