//! The dashboard's state and its pure transitions: `update` folds events in,
//! `on_key` turns keys into state changes and [`Action`]s. No I/O here, and
//! time is always passed in, so everything is tested without a terminal.
//!
//! Several gateways (replicas) can feed one view: each keeps its own
//! sequence numbers, mode and per-pod totals, and the view sums them.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use crate::common::Mode;
use crate::common::sanitize::sanitize_truncated;
use crate::proto::observe::{self, event};

/// Window of the per-pod and total request rates.
pub const RATE_WINDOW: Duration = Duration::from_secs(10);
/// Seconds of history in the RPS sparkline.
pub const SPARK_SECONDS: usize = 60;
/// Recent requests kept for the event tail.
pub const TAIL_LEN: usize = 200;
/// Latency samples kept per pod for p50/p99.
pub const LATENCY_SAMPLES: usize = 1024;
/// A value that changed this recently is highlighted.
pub const HIGHLIGHT_FOR: Duration = Duration::from_millis(1000);
/// How long a status message stays in the footer.
pub const MESSAGE_FOR: Duration = Duration::from_secs(6);
/// Longest pod name kept from the network.
const MAX_TEXT: usize = 120;
/// Longest error text kept: room for an RBAC rule and what to apply.
const MAX_ERROR: usize = 240;

/// What the dashboard's network workers and controls report. `gateway`
/// names the gateway (its URL or pod name) an event is about.
#[derive(Clone, Debug)]
pub enum AppEvent {
    /// The gateway's Observer stream is up.
    Connected { gateway: String },
    /// The stream failed; the worker retries after `retry_in`.
    Disconnected {
        gateway: String,
        error: String,
        retry_in: Duration,
    },
    /// An event from a gateway's Observer stream.
    Gateway { gateway: String, kind: event::Kind },
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
    /// A line for the footer: the result of an action.
    Notice { text: String, error: bool },
}

/// A pod as a pod source lists it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodInfo {
    pub name: String,
    pub ip: String,
    pub ready: bool,
    /// Kubernetes phase (Pending, Running, ...), when known.
    pub phase: Option<String>,
    pub restarts: u32,
    pub node: Option<String>,
    /// When the pod was created, on this process's clock.
    pub created: Option<Instant>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchState {
    Starting,
    Synced,
    Retrying(String),
    /// RBAC denies the watch; the text names the missing rule.
    Forbidden(String),
}

/// Where the Kubernetes pod watch points, and how it is doing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KubeStatus {
    pub context: String,
    pub namespace: String,
    pub watch: WatchState,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
}

/// Load rates `+` and `-` step through.
pub const RATE_STEPS: [u32; 12] = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000];

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Connection {
    Connecting,
    Connected { since: Instant },
    Reconnecting { retry_at: Instant, error: String },
}

/// One gateway's contribution to a pod's counts.
#[derive(Clone, Copy, Debug, Default)]
struct Counts {
    total: u64,
    errors: u64,
    /// `total` and `errors` at the last reset: hits are counted from there.
    base: u64,
    errors_base: u64,
}

impl Counts {
    fn hits(&self) -> u64 {
        self.total.saturating_sub(self.base)
    }

    fn errors(&self) -> u64 {
        self.errors.saturating_sub(self.errors_base)
    }

    fn add(&mut self, failed: bool) {
        self.total += 1;
        if failed {
            self.errors += 1;
        }
    }

    fn reset(&mut self) {
        self.base = self.total;
        self.errors_base = self.errors;
    }
}

#[derive(Clone, Debug)]
pub struct PodStats {
    pub name: String,
    pub ip: String,
    /// `None` when no pod source has listed it (seen only in requests).
    pub ready: Option<bool>,
    /// Listed once, no longer: shown as gone instead of dropped.
    pub gone: bool,
    /// What the pod source says beyond readiness (kube).
    pub info: Option<PodInfo>,
    by_gateway: BTreeMap<String, Counts>,
    latencies_us: VecDeque<u64>,
    /// p50 and p99 of `latencies_us`, refreshed by [`App::tick`] so a frame
    /// does not sort every pod's samples.
    percentiles_us: Option<(u64, u64)>,
    percentiles_stale: bool,
    recent: VecDeque<Instant>,
    pub last_hit: Option<Instant>,
    pub changed_at: Option<Instant>,
}

impl PodStats {
    fn new(name: String, ip: String) -> Self {
        PodStats {
            name,
            ip,
            ready: None,
            gone: false,
            info: None,
            by_gateway: BTreeMap::new(),
            latencies_us: VecDeque::new(),
            percentiles_us: None,
            percentiles_stale: false,
            recent: VecDeque::new(),
            last_hit: None,
            changed_at: None,
        }
    }

    pub fn hits(&self) -> u64 {
        self.by_gateway.values().map(Counts::hits).sum()
    }

    pub fn errors(&self) -> u64 {
        self.by_gateway.values().map(Counts::errors).sum()
    }

    /// Requests in the rate window ending at `now`.
    pub fn in_window(&self, now: Instant) -> usize {
        self.recent
            .iter()
            .filter(|t| now.saturating_duration_since(**t) < RATE_WINDOW)
            .count()
    }

    /// Latency percentile (0..=100) over the recent samples, in milliseconds.
    /// p50 and p99 come from the cache while it is fresh.
    pub fn latency_ms(&self, percentile: f64) -> Option<f64> {
        let cached = match (self.percentiles_stale, self.percentiles_us) {
            (false, Some((p50, _))) if percentile == 50.0 => Some(p50),
            (false, Some((_, p99))) if percentile == 99.0 => Some(p99),
            _ => percentile_us(&self.latencies_us, percentile),
        };
        cached.map(|us| us as f64 / 1000.0)
    }

    fn refresh_percentiles(&mut self) {
        if self.percentiles_stale {
            let p50 = percentile_us(&self.latencies_us, 50.0);
            let p99 = percentile_us(&self.latencies_us, 99.0);
            self.percentiles_us = p50.zip(p99);
            self.percentiles_stale = false;
        }
    }

    fn record(&mut self, gateway: &str, now: Instant, latency_us: u64, failed: bool) {
        match self.by_gateway.get_mut(gateway) {
            Some(counts) => counts.add(failed),
            None => self.by_gateway.entry(gateway.to_owned()).or_default().add(failed),
        }
        if !failed {
            if self.latencies_us.len() == LATENCY_SAMPLES {
                self.latencies_us.pop_front();
            }
            self.latencies_us.push_back(latency_us);
            self.percentiles_stale = true;
        }
        self.recent.push_back(now);
        self.last_hit = Some(now);
        self.changed_at = Some(now);
    }

    fn prune(&mut self, now: Instant) {
        while self
            .recent
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= RATE_WINDOW)
        {
            self.recent.pop_front();
        }
    }

    fn reset(&mut self) {
        self.by_gateway.values_mut().for_each(Counts::reset);
        self.latencies_us.clear();
        self.percentiles_us = None;
        self.percentiles_stale = false;
        self.recent.clear();
        self.last_hit = None;
        self.changed_at = None;
    }
}

/// The nearest-rank percentile of `samples`.
pub fn percentile_us(samples: &VecDeque<u64>, percentile: f64) -> Option<u64> {
    if samples.is_empty() {
        return None;
    }
    let mut sorted: Vec<u64> = samples.iter().copied().collect();
    sorted.sort_unstable();
    let rank = ((percentile / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Jain's fairness index of `counts`: 1.0 when even, 1/n when one takes all.
/// `None` with fewer than two values or nothing counted.
pub fn jain_index(counts: &[f64]) -> Option<f64> {
    let sum: f64 = counts.iter().sum();
    let squares: f64 = counts.iter().map(|c| c * c).sum();
    if counts.len() < 2 || squares == 0.0 {
        return None;
    }
    Some(sum * sum / (counts.len() as f64 * squares))
}

/// One completed request, for the tail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TailEntry {
    pub at: Instant,
    pub pod: String,
    pub mode: Option<Mode>,
    pub latency_us: u64,
    pub grpc_code: i32,
    pub error: String,
}

/// Everything the counters show; cloned to freeze the view.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Keyed by pod name (or IP when the name is unknown).
    pub pods: BTreeMap<String, PodStats>,
    /// Requests per whole second since `origin`, for the sparkline.
    per_second: VecDeque<(u64, u64)>,
    pub tail: VecDeque<TailEntry>,
    recent: VecDeque<Instant>,
    /// Failed requests no pod can be named for (sticky to a dead Service,
    /// no endpoints), per gateway: counted in totals, never shown as a pod.
    unattributed: BTreeMap<String, Counts>,
}

impl Stats {
    /// Requests counted since the last reset.
    pub fn total(&self) -> u64 {
        self.pods.values().map(PodStats::hits).sum::<u64>() + self.unattributed()
    }

    pub fn errors(&self) -> u64 {
        self.pods.values().map(PodStats::errors).sum::<u64>()
            + self.unattributed.values().map(Counts::errors).sum::<u64>()
    }

    /// Failed requests that named no pod.
    pub fn unattributed(&self) -> u64 {
        self.unattributed.values().map(Counts::hits).sum()
    }

    /// The key of the pod a request or total belongs to: its name, else the
    /// pod listed with that IP; `None` when nothing names a pod.
    fn attribute(&self, name: &str, ip: &str) -> Option<String> {
        if !name.is_empty() {
            return Some(name.to_owned());
        }
        if ip.is_empty() {
            return None;
        }
        self.pods.values().find(|p| p.ip == ip).map(|p| p.name.clone())
    }

    pub fn rps(&self, now: Instant, observed_for: Duration) -> f64 {
        let in_window = self
            .recent
            .iter()
            .filter(|t| now.saturating_duration_since(**t) < RATE_WINDOW)
            .count();
        in_window as f64 / observed_for.clamp(Duration::from_secs(1), RATE_WINDOW).as_secs_f64()
    }

    /// Requests per second for the last `SPARK_SECONDS` seconds up to
    /// `now_second`, oldest first (seconds before the start count 0).
    pub fn spark(&self, now_second: u64) -> Vec<u64> {
        (0..SPARK_SECONDS as u64)
            .rev()
            .map(|back| {
                now_second.checked_sub(back).map_or(0, |s| {
                    self.per_second
                        .iter()
                        .find(|(second, _)| *second == s)
                        .map_or(0, |(_, n)| *n)
                })
            })
            .collect()
    }

    /// The pods that can take traffic: listed and not gone, or, when nothing
    /// lists pods, every pod that answered.
    pub fn live_pods(&self) -> impl Iterator<Item = &PodStats> {
        self.pods.values().filter(|p| !p.gone && p.ready != Some(false))
    }

    /// Jain's index over the live pods' requests in the rate window.
    pub fn fairness(&self, now: Instant) -> Option<f64> {
        let counts: Vec<f64> = self.live_pods().map(|p| p.in_window(now) as f64).collect();
        jain_index(&counts)
    }

    /// The live pod with the most requests in the window (then most hits).
    pub fn busiest(&self, now: Instant) -> Option<&PodStats> {
        self.live_pods().max_by_key(|p| (p.in_window(now), p.hits()))
    }

    fn pod_mut(&mut self, name: &str, ip: &str) -> &mut PodStats {
        // A pod first known only by IP (DNS discovery) gets its name on its
        // first answer: re-key it instead of showing it twice.
        if !name.is_empty()
            && !self.pods.contains_key(name)
            && !ip.is_empty()
            && let Some(mut by_ip) = self.pods.remove(ip)
        {
            by_ip.name = name.to_owned();
            self.pods.insert(name.to_owned(), by_ip);
        }
        let key = if name.is_empty() { ip } else { name };
        let pod = self
            .pods
            .entry(key.to_owned())
            .or_insert_with(|| PodStats::new(key.to_owned(), ip.to_owned()));
        if pod.ip.is_empty() && !ip.is_empty() {
            ip.clone_into(&mut pod.ip);
        }
        pod
    }

    fn prune(&mut self, now: Instant, now_second: u64) {
        for pod in self.pods.values_mut() {
            pod.prune(now);
        }
        while self
            .recent
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= RATE_WINDOW)
        {
            self.recent.pop_front();
        }
        let first = now_second.saturating_sub(SPARK_SECONDS as u64);
        while self.per_second.front().is_some_and(|(s, _)| *s < first) {
            self.per_second.pop_front();
        }
    }
}

/// Where the pod list comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PodSourceKind {
    /// The gateways' endpoint sets (no cluster access).
    GatewayEndpoints,
    /// A dedicated pod source (kube watch, the demo) owns the pod list and
    /// readiness; endpoint events change neither.
    External,
}

#[derive(Clone, Debug)]
pub struct Message {
    pub text: String,
    pub error: bool,
    pub at: Instant,
}

/// What the dashboard knows of one gateway.
#[derive(Clone, Debug)]
pub struct GatewayView {
    pub connection: Connection,
    pub mode: Option<Mode>,
    /// A snapshot from this gateway has been applied.
    pub synced: bool,
    /// Events up to this seq are already counted (from the snapshot).
    last_seq: u64,
    /// The pods this gateway's endpoint set lists.
    endpoints: Vec<PodInfo>,
}

impl GatewayView {
    fn new() -> Self {
        GatewayView {
            connection: Connection::Connecting,
            mode: None,
            synced: false,
            last_seq: 0,
            endpoints: Vec::new(),
        }
    }
}

/// A mode switch sent to several gateways, waiting for their answers.
#[derive(Clone, Debug)]
struct PendingSwitch {
    mode: Mode,
    answers: BTreeMap<String, Option<Result<(), String>>>,
}

/// The whole dashboard state.
#[derive(Clone, Debug)]
pub struct App {
    /// What is watched, as shown: the gateway URL, or the cluster.
    pub title: String,
    /// Time zero for per-second counts.
    pub origin: Instant,
    pub gateways: BTreeMap<String, GatewayView>,
    pub stats: Stats,
    /// Set while the view is frozen: what is shown, and when it was frozen.
    pub frozen: Option<(Box<Stats>, Instant)>,
    pub pod_source: PodSourceKind,
    pub kube: Option<KubeStatus>,
    /// `None` when there is no load generator to control.
    pub load: Option<LoadState>,
    pub demo: bool,
    pub show_help: bool,
    /// First pod row shown when the pods do not all fit (↑/↓, PgUp/PgDn, Home).
    pub scroll: usize,
    pub message: Option<Message>,
    /// Events the gateways dropped for us because we fell behind.
    pub lagged: u64,
    /// Each gateway's counts start at its first snapshot (`--once`).
    count_from_first_snapshot: bool,
    pending_switch: Option<PendingSwitch>,
    /// Gateways no longer followed: late events from them are ignored.
    removed_gateways: BTreeSet<String>,
}

impl App {
    pub fn new(title: impl Into<String>, now: Instant) -> Self {
        App {
            title: title.into(),
            origin: now,
            gateways: BTreeMap::new(),
            stats: Stats::default(),
            frozen: None,
            pod_source: PodSourceKind::GatewayEndpoints,
            kube: None,
            load: None,
            demo: false,
            show_help: false,
            scroll: 0,
            message: None,
            lagged: 0,
            count_from_first_snapshot: false,
            pending_switch: None,
            removed_gateways: BTreeSet::new(),
        }
    }

    /// Expects the gateway called `gateway` (shown as connecting until it answers).
    pub fn expecting(mut self, gateway: &str) -> Self {
        self.gateway_mut(gateway);
        self
    }

    /// Count only what happens after each gateway's first snapshot (its
    /// earlier totals are not shown).
    pub fn counting_from_now(mut self) -> Self {
        self.count_from_first_snapshot = true;
        self
    }

    /// The stats to show: frozen ones while frozen, with their time.
    pub fn view(&self, now: Instant) -> (&Stats, Instant) {
        match &self.frozen {
            Some((stats, at)) => (stats, *at),
            None => (&self.stats, now),
        }
    }

    pub fn second(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.origin).as_secs()
    }

    /// How long counting has run, for rates at start-up.
    pub fn observed_for(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.origin)
    }

    /// Whether any gateway has sent its snapshot.
    pub fn synced(&self) -> bool {
        self.gateways.values().any(|g| g.synced)
    }

    /// The mode all synced gateways agree on; `None` when unknown or mixed.
    pub fn mode(&self) -> Option<Mode> {
        let mut modes = self.gateways.values().filter(|g| g.synced).filter_map(|g| g.mode);
        let first = modes.next()?;
        modes.all(|m| m == first).then_some(first)
    }

    /// Synced gateways disagree on the mode.
    pub fn mixed_modes(&self) -> bool {
        let modes: BTreeSet<Mode> = self
            .gateways
            .values()
            .filter(|g| g.synced)
            .filter_map(|g| g.mode)
            .collect();
        modes.len() > 1
    }

    fn notify(&mut self, text: impl Into<String>, error: bool, now: Instant) {
        self.message = Some(Message {
            text: text.into(),
            error,
            at: now,
        });
    }

    fn gateway_mut(&mut self, gateway: &str) -> &mut GatewayView {
        self.gateways.entry(gateway.to_owned()).or_insert_with(GatewayView::new)
    }

    /// Folds one event into the state.
    pub fn update(&mut self, event: AppEvent, now: Instant) {
        // Gateway names come from the network (pod names); a removed
        // gateway's late events must not bring it back.
        let event = match event {
            AppEvent::Connected { gateway } => AppEvent::Connected {
                gateway: sanitize_truncated(&gateway, MAX_TEXT),
            },
            AppEvent::Disconnected {
                gateway,
                error,
                retry_in,
            } => AppEvent::Disconnected {
                gateway: sanitize_truncated(&gateway, MAX_TEXT),
                error,
                retry_in,
            },
            AppEvent::Gateway { gateway, kind } => AppEvent::Gateway {
                gateway: sanitize_truncated(&gateway, MAX_TEXT),
                kind,
            },
            AppEvent::ModeSet { gateway, result } => AppEvent::ModeSet {
                gateway: sanitize_truncated(&gateway, MAX_TEXT),
                result,
            },
            other => other,
        };
        if let AppEvent::Connected { gateway }
        | AppEvent::Disconnected { gateway, .. }
        | AppEvent::Gateway { gateway, .. }
        | AppEvent::ModeSet { gateway, .. } = &event
            && self.removed_gateways.contains(gateway)
        {
            return;
        }
        match event {
            AppEvent::Connected { gateway } => {
                self.gateway_mut(&gateway).connection = Connection::Connected { since: now };
            }
            AppEvent::Disconnected {
                gateway,
                error,
                retry_in,
            } => {
                self.gateway_mut(&gateway).connection = Connection::Reconnecting {
                    retry_at: now + retry_in,
                    error: sanitize_truncated(&error, MAX_ERROR),
                };
            }
            AppEvent::Gateway { gateway, kind } => self.on_gateway(&gateway, kind, now),
            AppEvent::GatewayRemoved { gateway } => {
                let gateway = sanitize_truncated(&gateway, MAX_TEXT);
                let known = self.gateways.remove(&gateway).is_some();
                self.removed_gateways.insert(gateway);
                if known && self.pod_source == PodSourceKind::GatewayEndpoints {
                    self.relist_from_gateways();
                }
            }
            AppEvent::Pods(pods) => {
                self.pod_source = PodSourceKind::External;
                self.set_listed_pods(pods);
            }
            AppEvent::Kube(status) => self.kube = Some(status),
            AppEvent::ModeSet { gateway, result } => self.on_mode_set(gateway, result, now),
            AppEvent::Load(state) => self.load = Some(state),
            AppEvent::Notice { text, error } => self.notify(sanitize_truncated(&text, MAX_ERROR), error, now),
        }
    }

    /// Drops what slid out of the rate windows and refreshes cached
    /// percentiles; call once per frame.
    pub fn tick(&mut self, now: Instant) {
        let second = self.second(now);
        self.stats.prune(now, second);
        for pod in self.stats.pods.values_mut() {
            pod.refresh_percentiles();
        }
        if self
            .message
            .as_ref()
            .is_some_and(|m| now.saturating_duration_since(m.at) > MESSAGE_FOR)
        {
            self.message = None;
        }
    }

    fn on_gateway(&mut self, gateway: &str, kind: event::Kind, now: Instant) {
        match kind {
            event::Kind::Snapshot(state) => self.on_snapshot(gateway, state),
            event::Kind::Request(request) => {
                let view = self.gateway_mut(gateway);
                if request.seq != 0 && request.seq <= view.last_seq {
                    return; // already in the snapshot
                }
                view.last_seq = request.seq;
                self.on_request(gateway, request, now);
            }
            event::Kind::ModeChanged(change) => {
                let before = self.mode();
                let view = self.gateway_mut(gateway);
                view.last_seq = view.last_seq.max(change.seq);
                view.mode = Mode::from_proto(change.mode).or(view.mode);
                let after = self.mode();
                if after != before
                    && let Some(mode) = after
                {
                    self.notify(format!("gateway is now {mode}"), false, now);
                }
            }
            event::Kind::EndpointsChanged(change) => {
                let view = self.gateway_mut(gateway);
                view.last_seq = view.last_seq.max(change.seq);
                self.on_endpoints(gateway, &change.endpoints);
            }
            event::Kind::Lagged(lagged) => {
                self.lagged += lagged.dropped;
                self.notify(
                    format!(
                        "fell behind: the gateway dropped {} events for this view",
                        lagged.dropped
                    ),
                    true,
                    now,
                );
            }
        }
    }

    fn on_snapshot(&mut self, gateway: &str, state: observe::State) {
        let count_from_here = self.count_from_first_snapshot && !self.gateway_mut(gateway).synced;
        let view = self.gateway_mut(gateway);
        view.synced = true;
        view.mode = Mode::from_proto(state.mode);
        view.last_seq = state.last_seq;
        self.on_endpoints(gateway, &state.endpoints);
        // The gateway's totals replace what it contributed before: they
        // include whatever this view missed while disconnected.
        let contributions = self
            .stats
            .pods
            .values_mut()
            .filter_map(|pod| pod.by_gateway.get_mut(gateway))
            .chain(self.stats.unattributed.get_mut(gateway));
        for counts in contributions {
            counts.total = 0;
            counts.errors = 0;
        }
        for totals in &state.pods {
            let name = sanitize_truncated(&totals.pod_name, MAX_TEXT);
            let ip = if totals.pod_ip.is_empty() {
                host_of(&totals.endpoint)
            } else {
                sanitize_truncated(&totals.pod_ip, MAX_TEXT)
            };
            let counts = match self.stats.attribute(&name, &ip) {
                Some(key) => self
                    .stats
                    .pod_mut(&key, &ip)
                    .by_gateway
                    .entry(gateway.to_owned())
                    .or_default(),
                None => self.stats.unattributed.entry(gateway.to_owned()).or_default(),
            };
            // Several totals can land on one entry (a pod named in one, known
            // by its IP in another): they add up.
            counts.total += totals.requests;
            counts.errors += totals.errors;
            if count_from_here {
                counts.reset();
            }
        }
    }

    fn on_request(&mut self, gateway: &str, request: observe::RequestEvent, now: Instant) {
        let name = sanitize_truncated(&request.pod_name, MAX_TEXT);
        let ip = if request.pod_ip.is_empty() {
            host_of(&request.endpoint)
        } else {
            sanitize_truncated(&request.pod_ip, MAX_TEXT)
        };
        let failed = request.grpc_code != 0;
        let pod_key = match self.stats.attribute(&name, &ip) {
            Some(key) => {
                self.stats
                    .pod_mut(&key, &ip)
                    .record(gateway, now, request.latency_us, failed);
                key
            }
            None => {
                self.stats
                    .unattributed
                    .entry(gateway.to_owned())
                    .or_default()
                    .add(failed);
                String::new()
            }
        };
        self.stats.recent.push_back(now);
        let second = self.second(now);
        match self.stats.per_second.back_mut() {
            Some((s, n)) if *s == second => *n += 1,
            _ => self.stats.per_second.push_back((second, 1)),
        }
        if self.stats.tail.len() == TAIL_LEN {
            self.stats.tail.pop_back();
        }
        self.stats.tail.push_front(TailEntry {
            at: now,
            pod: pod_key,
            mode: Mode::from_proto(request.mode),
            latency_us: request.latency_us,
            grpc_code: request.grpc_code,
            error: sanitize_truncated(&request.error, MAX_ERROR),
        });
    }

    fn on_endpoints(&mut self, gateway: &str, endpoints: &[observe::Endpoint]) {
        // A pod source, when there is one, owns the pod list and readiness.
        if self.pod_source == PodSourceKind::External {
            return;
        }
        let listed: Vec<PodInfo> = endpoints
            .iter()
            .map(|e| {
                let ip = host_of(&e.address);
                let name = if e.pod_name.is_empty() {
                    ip.clone()
                } else {
                    sanitize_truncated(&e.pod_name, MAX_TEXT)
                };
                PodInfo {
                    name,
                    ip,
                    ready: e.ready,
                    ..PodInfo::default()
                }
            })
            .collect();
        self.gateway_mut(gateway).endpoints = listed;
        self.relist_from_gateways();
    }

    /// Without a pod source, the pods are the union of the gateways' endpoints.
    fn relist_from_gateways(&mut self) {
        let mut union: BTreeMap<String, PodInfo> = BTreeMap::new();
        for info in self.gateways.values().flat_map(|g| g.endpoints.iter()) {
            union
                .entry(info.name.clone())
                .and_modify(|known| known.ready |= info.ready)
                .or_insert_with(|| info.clone());
        }
        self.set_listed_pods(union.into_values().collect());
    }

    /// Pods in `pods` are listed (added if new); listed pods missing from it are gone.
    fn set_listed_pods(&mut self, pods: Vec<PodInfo>) {
        let external = self.pod_source == PodSourceKind::External;
        let mut listed = std::collections::HashSet::with_capacity(pods.len());
        for info in pods {
            let ip = sanitize_truncated(&info.ip, MAX_TEXT);
            let mut name = sanitize_truncated(&info.name, MAX_TEXT);
            // A source that knows only the IP (DNS) lists a pod that has
            // since answered under its name: keep the named entry.
            if name == ip
                && let Some(known) = self.stats.pods.values().find(|p| p.ip == ip)
            {
                name.clone_from(&known.name);
            }
            let pod = self.stats.pod_mut(&name, &ip);
            pod.ready = Some(info.ready);
            pod.gone = false;
            if !ip.is_empty() {
                pod.ip = ip;
            }
            if external {
                pod.info = Some(PodInfo {
                    phase: info.phase.as_deref().map(|p| sanitize_truncated(p, 20)),
                    node: info.node.as_deref().map(|n| sanitize_truncated(n, MAX_TEXT)),
                    ..info
                });
            }
            listed.insert(name);
        }
        for (name, pod) in &mut self.stats.pods {
            if pod.ready.is_some() && !listed.contains(name) {
                pod.gone = true;
            }
        }
    }

    fn on_mode_set(&mut self, gateway: String, result: Result<Mode, String>, now: Instant) {
        if let Ok(mode) = result {
            self.gateway_mut(&gateway).mode = Some(mode);
        }
        let Some(pending) = &mut self.pending_switch else {
            // An answer nobody waits for (e.g. after a reset of the view).
            return;
        };
        let answer = result.map(|_| ()).map_err(|e| sanitize_truncated(&e, MAX_ERROR));
        pending.answers.insert(gateway, Some(answer));
        if pending.answers.values().any(Option::is_none) {
            return;
        }
        let Some(pending) = self.pending_switch.take() else {
            return;
        };
        let failures: Vec<String> = pending
            .answers
            .iter()
            .filter_map(|(gw, answer)| match answer {
                Some(Err(error)) => Some(format!("{gw}: {error}")),
                _ => None,
            })
            .collect();
        let total = pending.answers.len();
        let mode = pending.mode;
        let text = match (failures.len(), total) {
            (0, 1) => format!("gateway switched to {mode}"),
            (0, n) => format!("all {n} gateways switched to {mode}"),
            (1, 1) => format!(
                "mode switch failed: {}",
                pending
                    .answers
                    .values()
                    .flatten()
                    .find_map(|a| a.clone().err())
                    .unwrap_or_default()
            ),
            (failed, n) => format!(
                "switched {} of {n} gateways to {mode}; failed: {}",
                n - failed,
                failures.join("; ")
            ),
        };
        let error = !failures.is_empty();
        self.notify(text, error, now);
    }

    /// Counters restart at zero; gone pods are dropped.
    pub fn reset(&mut self, now: Instant) {
        self.stats.pods.retain(|_, p| !p.gone);
        for pod in self.stats.pods.values_mut() {
            pod.reset();
        }
        self.stats.unattributed.values_mut().for_each(Counts::reset);
        self.stats.per_second.clear();
        self.stats.tail.clear();
        self.stats.recent.clear();
        self.origin = now;
        if self.frozen.is_some() {
            self.frozen = Some((Box::new(self.stats.clone()), now));
        }
    }

    /// Applies a key press; returns what the run loop must do, if anything.
    pub fn on_key(&mut self, key: KeyEvent, now: Instant) -> Option<Action> {
        if key.kind == KeyEventKind::Release {
            return None;
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Char('c') if ctrl => Some(Action::Quit),
            KeyCode::Char('q') => Some(Action::Quit),
            KeyCode::Esc if self.show_help => {
                self.show_help = false;
                None
            }
            KeyCode::Esc => Some(Action::Quit),
            KeyCode::Char('?') => {
                self.show_help = !self.show_help;
                None
            }
            KeyCode::Down => self.scroll_by(1),
            KeyCode::Up => self.scroll_by(-1),
            KeyCode::PageDown => self.scroll_by(10),
            KeyCode::PageUp => self.scroll_by(-10),
            KeyCode::Home => self.scroll_by(isize::MIN),
            KeyCode::Char('m') => self.switch_mode(now),
            KeyCode::Char('l') => self.change_load(now, |load| LoadState {
                running: !load.running,
                ..load
            }),
            KeyCode::Char('+') | KeyCode::Char('=') => self.change_load(now, |load| LoadState {
                rate: RATE_STEPS.iter().copied().find(|r| *r > load.rate).unwrap_or(load.rate),
                ..load
            }),
            KeyCode::Char('-') | KeyCode::Char('_') => self.change_load(now, |load| LoadState {
                rate: RATE_STEPS
                    .iter()
                    .rev()
                    .copied()
                    .find(|r| *r < load.rate)
                    .unwrap_or(load.rate),
                ..load
            }),
            KeyCode::Char('r') => {
                self.reset(now);
                self.notify("counters reset", false, now);
                None
            }
            KeyCode::Char(' ') => {
                self.frozen = match self.frozen.take() {
                    Some(_) => None,
                    None => Some((Box::new(self.stats.clone()), now)),
                };
                None
            }
            KeyCode::Char('a') if self.demo => Some(Action::AddPod),
            KeyCode::Char('k') if self.demo => match self.stats.busiest(now) {
                Some(pod) => Some(Action::KillPod(pod.name.clone())),
                None => {
                    self.notify("no running pod to kill", true, now);
                    None
                }
            },
            _ => None,
        }
    }

    /// Moves the pods table's first row; the renderer clamps it to what fits.
    fn scroll_by(&mut self, rows: isize) -> Option<Action> {
        let last = self.stats.pods.len().saturating_sub(1);
        self.scroll = self.scroll.saturating_add_signed(rows).min(last);
        None
    }

    /// `m`: every synced gateway to the other mode (balanced when they disagree).
    fn switch_mode(&mut self, now: Instant) -> Option<Action> {
        let targets: BTreeMap<String, Option<Result<(), String>>> = self
            .gateways
            .iter()
            .filter(|(_, g)| g.synced)
            .map(|(name, _)| (name.clone(), None))
            .collect();
        if targets.is_empty() {
            self.notify("cannot switch mode: not connected to a gateway yet", true, now);
            return None;
        }
        let mode = self.mode().map_or(Mode::Balanced, Mode::toggled);
        let count = targets.len();
        self.pending_switch = Some(PendingSwitch { mode, answers: targets });
        let text = if count == 1 {
            format!("switching the gateway to {mode}…")
        } else {
            format!("switching {count} gateways to {mode}…")
        };
        self.notify(text, false, now);
        Some(Action::SetMode(mode))
    }

    fn change_load(&mut self, now: Instant, change: impl FnOnce(LoadState) -> LoadState) -> Option<Action> {
        match self.load {
            Some(load) => {
                let next = change(load);
                self.load = Some(next);
                Some(Action::SetLoad(next))
            }
            None => {
                self.notify(
                    "no load generator: run `greet-top demo`, or pass --load-url http://<gateway>:9091",
                    true,
                    now,
                );
                None
            }
        }
    }
}

/// The host part of `host:port` (brackets of an IPv6 literal removed).
pub fn host_of(address: &str) -> String {
    let host = match address.rsplit_once(':') {
        Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => address,
    };
    sanitize_truncated(host.trim_start_matches('[').trim_end_matches(']'), MAX_TEXT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::observe::{Endpoint, EndpointsChanged, Lagged, ModeChanged, PodTotals, RequestEvent, State};

    fn secs(n: f64) -> Duration {
        Duration::from_secs_f64(n)
    }

    fn endpoint(name: &str, ip: &str) -> Endpoint {
        Endpoint {
            address: format!("{ip}:50051"),
            pod_name: name.into(),
            ready: true,
        }
    }

    /// An Observer event from the gateway called "gw".
    fn gw(kind: event::Kind) -> AppEvent {
        AppEvent::Gateway {
            gateway: "gw".into(),
            kind,
        }
    }

    fn snapshot(mode: Mode, pods: &[(&str, &str, u64)], last_seq: u64) -> AppEvent {
        gw(event::Kind::Snapshot(State {
            mode: mode.to_proto() as i32,
            endpoints: pods.iter().map(|(n, ip, _)| endpoint(n, ip)).collect(),
            pods: pods
                .iter()
                .filter(|(_, _, hits)| *hits > 0)
                .map(|(n, ip, hits)| PodTotals {
                    pod_name: (*n).into(),
                    pod_ip: (*ip).into(),
                    requests: *hits,
                    ..PodTotals::default()
                })
                .collect(),
            last_seq,
            ..State::default()
        }))
    }

    fn request(seq: u64, pod: &str, ip: &str, latency_us: u64) -> AppEvent {
        gw(event::Kind::Request(RequestEvent {
            seq,
            pod_name: pod.into(),
            pod_ip: ip.into(),
            endpoint: format!("{ip}:50051"),
            mode: observe::Mode::Balanced as i32,
            latency_us,
            ..RequestEvent::default()
        }))
    }

    const PODS: [(&str, &str, u64); 3] = [
        ("pod-a", "10.0.0.1", 0),
        ("pod-b", "10.0.0.2", 0),
        ("pod-c", "10.0.0.3", 0),
    ];

    fn synced_app(t0: Instant) -> App {
        let mut app = App::new("gw", t0);
        app.update(snapshot(Mode::Sticky, &PODS, 0), t0);
        app
    }

    fn hits(app: &App) -> Vec<(String, u64)> {
        app.stats.pods.values().map(|p| (p.name.clone(), p.hits())).collect()
    }

    #[test]
    fn snapshot_lists_every_pod_even_with_zero_hits() {
        let t0 = Instant::now();
        let mut app = App::new("gw", t0);
        app.update(
            snapshot(Mode::Sticky, &[("pod-a", "10.0.0.1", 7), ("pod-b", "10.0.0.2", 0)], 7),
            t0,
        );
        assert!(app.synced());
        assert_eq!(app.mode(), Some(Mode::Sticky));
        assert_eq!(hits(&app), [("pod-a".into(), 7), ("pod-b".into(), 0)]);
        assert_eq!(app.stats.total(), 7);
        assert_eq!(app.stats.pods["pod-b"].ip, "10.0.0.2");
        assert_eq!(app.stats.pods["pod-b"].ready, Some(true));
    }

    #[test]
    fn requests_count_hits_and_shares_and_skip_what_the_snapshot_had() {
        let t0 = Instant::now();
        let mut app = App::new("gw", t0);
        app.update(snapshot(Mode::Sticky, &[("pod-a", "10.0.0.1", 2)], 2), t0);
        app.update(request(2, "pod-a", "10.0.0.1", 100), t0); // already counted
        for seq in 3..=5 {
            app.update(request(seq, "pod-a", "10.0.0.1", 100), t0);
        }
        app.update(request(6, "pod-b", "10.0.0.2", 100), t0);
        assert_eq!(hits(&app), [("pod-a".into(), 5), ("pod-b".into(), 1)]);
        assert_eq!(app.stats.total(), 6);
        let report = crate::tui::report::build(&app, secs(1.0));
        assert_eq!(report.pods[0].share, 5.0 / 6.0);
        assert_eq!(report.pods[1].share, 1.0 / 6.0);
    }

    #[test]
    fn rps_is_counted_over_a_sliding_window() {
        let t0 = Instant::now();
        let mut app = synced_app(t0);
        // 5 requests per second on pod-a for 20 seconds.
        for i in 0..100u64 {
            app.update(request(i + 1, "pod-a", "10.0.0.1", 100), t0 + secs(i as f64 * 0.2));
        }
        // The window (9.9 s, 19.9 s] holds the requests at 10.0 ..= 19.8 s.
        let now = t0 + secs(19.9);
        app.tick(now);
        let pod = &app.stats.pods["pod-a"];
        assert_eq!(pod.in_window(now), 50);
        assert_eq!(app.stats.rps(now, app.observed_for(now)), 5.0);
        // Ten seconds of silence empties the window.
        let later = now + RATE_WINDOW;
        app.tick(later);
        assert_eq!(app.stats.pods["pod-a"].in_window(later), 0);
        assert_eq!(app.stats.rps(later, app.observed_for(later)), 0.0);
        assert_eq!(app.stats.pods["pod-a"].hits(), 100);
    }

    #[test]
    fn rps_at_start_up_divides_by_the_time_observed() {
        let t0 = Instant::now();
        let mut app = synced_app(t0);
        for i in 0..10 {
            app.update(request(i + 1, "pod-a", "10.0.0.1", 100), t0 + secs(0.1 * i as f64));
        }
        let now = t0 + secs(2.0);
        assert_eq!(app.stats.rps(now, app.observed_for(now)), 5.0);
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let samples: VecDeque<u64> = (1..=100).collect();
        assert_eq!(percentile_us(&samples, 50.0), Some(50));
        assert_eq!(percentile_us(&samples, 99.0), Some(99));
        assert_eq!(percentile_us(&samples, 100.0), Some(100));
        assert_eq!(percentile_us(&VecDeque::from([7]), 99.0), Some(7));
        assert_eq!(percentile_us(&VecDeque::new(), 50.0), None);

        let t0 = Instant::now();
        let mut app = synced_app(t0);
        for (i, latency) in [1000, 3000, 2000, 10_000].into_iter().enumerate() {
            app.update(request(i as u64 + 1, "pod-a", "10.0.0.1", latency), t0);
        }
        let pod = &app.stats.pods["pod-a"];
        assert_eq!(pod.latency_ms(50.0), Some(2.0));
        assert_eq!(pod.latency_ms(99.0), Some(10.0));
        assert_eq!(app.stats.pods["pod-b"].latency_ms(50.0), None);
    }

    #[test]
    fn latency_samples_are_bounded() {
        let t0 = Instant::now();
        let mut app = synced_app(t0);
        for i in 0..(LATENCY_SAMPLES as u64 + 10) {
            app.update(
                request(i + 1, "pod-a", "10.0.0.1", if i < 10 { 1_000_000 } else { 1000 }),
                t0,
            );
        }
        // The ten slow samples have been pushed out.
        assert_eq!(app.stats.pods["pod-a"].latency_ms(100.0), Some(1.0));
    }

    #[test]
    fn fairness_tells_stuck_from_even() {
        assert_eq!(jain_index(&[30.0, 0.0, 0.0]).map(|j| (j * 1000.0).round()), Some(333.0));
        assert_eq!(jain_index(&[10.0, 10.0, 10.0]), Some(1.0));
        assert_eq!(jain_index(&[10.0]), None);
        assert_eq!(jain_index(&[0.0, 0.0]), None);

        let t0 = Instant::now();
        let mut app = synced_app(t0);
        for seq in 1..=30 {
            app.update(request(seq, "pod-b", "10.0.0.2", 100), t0);
        }
        assert_eq!(app.stats.busiest(t0).map(|p| p.name.as_str()), Some("pod-b"));
        let stuck = app.stats.fairness(t0).unwrap();
        assert!((stuck - 1.0 / 3.0).abs() < 1e-9, "{stuck}");
    }

    #[test]
    fn pods_that_vanish_are_marked_gone_and_come_back() {
        let t0 = Instant::now();
        let mut app = synced_app(t0);
        app.update(request(1, "pod-c", "10.0.0.3", 100), t0);
        let two = EndpointsChanged {
            seq: 2,
            endpoints: vec![endpoint("pod-a", "10.0.0.1"), endpoint("pod-b", "10.0.0.2")],
            ..EndpointsChanged::default()
        };
        app.update(gw(event::Kind::EndpointsChanged(two)), t0);
        let pod_c = &app.stats.pods["pod-c"];
        assert!(pod_c.gone);
        assert_eq!(pod_c.hits(), 1, "a gone pod keeps its history");
        assert_eq!(app.stats.live_pods().count(), 2);

        let three = EndpointsChanged {
            seq: 3,
            endpoints: PODS.iter().map(|(n, ip, _)| endpoint(n, ip)).collect(),
            ..EndpointsChanged::default()
        };
        app.update(gw(event::Kind::EndpointsChanged(three)), t0);
        assert!(!app.stats.pods["pod-c"].gone);
    }

    #[test]
    fn an_external_pod_source_owns_the_pod_list() {
        let t0 = Instant::now();
        let mut app = synced_app(t0);
        app.update(
            AppEvent::Pods(vec![PodInfo {
                name: "pod-a".into(),
                ip: "10.0.0.1".into(),
                ready: false,
                ..PodInfo::default()
            }]),
            t0,
        );
        assert_eq!(app.pod_source, PodSourceKind::External);
        assert!(app.stats.pods["pod-b"].gone);
        assert_eq!(app.stats.pods["pod-a"].ready, Some(false));
        // The pod source is authoritative: endpoint events neither resurrect
        // pod-b nor override pod-a's readiness.
        let endpoints = EndpointsChanged {
            seq: 1,
            endpoints: PODS.iter().map(|(n, ip, _)| endpoint(n, ip)).collect(),
            ..EndpointsChanged::default()
        };
        app.update(gw(event::Kind::EndpointsChanged(endpoints)), t0);
        assert!(app.stats.pods["pod-b"].gone);
        assert_eq!(app.stats.pods["pod-a"].ready, Some(false));
    }

    #[test]
    fn a_pod_known_by_ip_takes_its_name_on_first_answer() {
        let t0 = Instant::now();
        let mut app = App::new("gw", t0);
        let mut state = State::default();
        state.endpoints.push(Endpoint {
            address: "10.0.0.9:50051".into(),
            pod_name: String::new(),
            ready: true,
        });
        app.update(gw(event::Kind::Snapshot(state)), t0);
        assert!(app.stats.pods.contains_key("10.0.0.9"));
        app.update(request(1, "pod-z", "10.0.0.9", 100), t0);
        assert_eq!(hits(&app), [("pod-z".into(), 1)]);
        // The next name-less endpoint list still means pod-z.
        let again = EndpointsChanged {
            seq: 2,
            endpoints: vec![Endpoint {
                address: "10.0.0.9:50051".into(),
                pod_name: String::new(),
                ready: true,
            }],
            ..EndpointsChanged::default()
        };
        app.update(gw(event::Kind::EndpointsChanged(again)), t0);
        assert_eq!(hits(&app), [("pod-z".into(), 1)]);
        assert!(!app.stats.pods["pod-z"].gone);
    }

    #[test]
    fn reset_zeroes_counters_and_forgets_gone_pods() {
        let t0 = Instant::now();
        let mut app = App::new("gw", t0);
        app.update(
            snapshot(Mode::Sticky, &[("pod-a", "10.0.0.1", 40), ("pod-b", "10.0.0.2", 0)], 40),
            t0,
        );
        app.update(
            AppEvent::Pods(vec![PodInfo {
                name: "pod-a".into(),
                ip: "10.0.0.1".into(),
                ready: true,
                ..PodInfo::default()
            }]),
            t0,
        );
        app.on_key(KeyEvent::from(KeyCode::Char('r')), t0 + secs(1.0));
        assert_eq!(hits(&app), [("pod-a".into(), 0)]);
        assert_eq!(app.stats.total(), 0);
        assert!(app.stats.tail.is_empty());
        app.update(request(41, "pod-a", "10.0.0.1", 100), t0 + secs(2.0));
        assert_eq!(hits(&app), [("pod-a".into(), 1)]);
        // A later snapshot (after a reconnect) keeps counting from the reset.
        app.update(snapshot(Mode::Sticky, &[("pod-a", "10.0.0.1", 45)], 45), t0 + secs(3.0));
        assert_eq!(hits(&app), [("pod-a".into(), 5)]);
    }

    #[test]
    fn counting_from_now_ignores_the_gateways_history() {
        let t0 = Instant::now();
        let mut app = App::new("gw", t0).counting_from_now();
        app.update(snapshot(Mode::Balanced, &[("pod-a", "10.0.0.1", 1000)], 1000), t0);
        assert_eq!(hits(&app), [("pod-a".into(), 0)]);
        app.update(request(1001, "pod-a", "10.0.0.1", 100), t0);
        assert_eq!(app.stats.total(), 1);
    }

    #[test]
    fn mode_key_asks_for_the_other_mode_and_reports_the_result() {
        let t0 = Instant::now();
        let mut app = App::new("gw", t0);
        assert_eq!(app.on_key(KeyEvent::from(KeyCode::Char('m')), t0), None);
        assert!(app.message.as_ref().unwrap().error, "no mode before the first snapshot");
        app.update(snapshot(Mode::Sticky, &PODS, 0), t0);
        assert_eq!(
            app.on_key(KeyEvent::from(KeyCode::Char('m')), t0),
            Some(Action::SetMode(Mode::Balanced))
        );
        app.update(
            AppEvent::ModeSet {
                gateway: "gw".into(),
                result: Err("gateway unreachable\u{1b}[2J".into()),
            },
            t0,
        );
        let message = app.message.clone().unwrap();
        assert!(message.error);
        assert_eq!(message.text, "mode switch failed: gateway unreachable[2J");
        assert_eq!(app.mode(), Some(Mode::Sticky));
        let change = ModeChanged {
            seq: 1,
            mode: observe::Mode::Balanced as i32,
            previous: observe::Mode::Sticky as i32,
            ..ModeChanged::default()
        };
        app.update(gw(event::Kind::ModeChanged(change)), t0);
        assert_eq!(app.mode(), Some(Mode::Balanced));
        assert_eq!(
            app.on_key(KeyEvent::from(KeyCode::Char('m')), t0),
            Some(Action::SetMode(Mode::Sticky))
        );
    }

    #[test]
    fn quit_keys_quit_and_esc_closes_help_first() {
        let t0 = Instant::now();
        let mut app = App::new("gw", t0);
        assert_eq!(app.on_key(KeyEvent::from(KeyCode::Char('q')), t0), Some(Action::Quit));
        assert_eq!(
            app.on_key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL), t0),
            Some(Action::Quit)
        );
        app.on_key(KeyEvent::from(KeyCode::Char('?')), t0);
        assert!(app.show_help);
        assert_eq!(app.on_key(KeyEvent::from(KeyCode::Esc), t0), None);
        assert!(!app.show_help);
        assert_eq!(app.on_key(KeyEvent::from(KeyCode::Esc), t0), Some(Action::Quit));
    }

    #[test]
    fn load_keys_toggle_and_step_the_rate() {
        let t0 = Instant::now();
        let mut app = App::new("gw", t0);
        assert_eq!(app.on_key(KeyEvent::from(KeyCode::Char('l')), t0), None);
        assert!(app.message.as_ref().unwrap().text.contains("--load-url"));
        app.load = Some(LoadState {
            running: true,
            rate: 50,
        });
        let key = |app: &mut App, c| app.on_key(KeyEvent::from(KeyCode::Char(c)), t0);
        assert_eq!(
            key(&mut app, 'l'),
            Some(Action::SetLoad(LoadState {
                running: false,
                rate: 50
            }))
        );
        assert_eq!(
            key(&mut app, '+'),
            Some(Action::SetLoad(LoadState {
                running: false,
                rate: 100
            }))
        );
        assert_eq!(
            key(&mut app, '-'),
            Some(Action::SetLoad(LoadState {
                running: false,
                rate: 50
            }))
        );
        assert_eq!(
            key(&mut app, '-'),
            Some(Action::SetLoad(LoadState {
                running: false,
                rate: 20
            }))
        );
        app.load = Some(LoadState {
            running: true,
            rate: 5000,
        });
        assert_eq!(
            key(&mut app, '+'),
            Some(Action::SetLoad(LoadState {
                running: true,
                rate: 5000
            }))
        );
    }

    #[test]
    fn demo_keys_add_and_kill_the_busiest_pod() {
        let t0 = Instant::now();
        let mut app = synced_app(t0);
        assert_eq!(app.on_key(KeyEvent::from(KeyCode::Char('a')), t0), None, "demo only");
        app.demo = true;
        assert_eq!(app.on_key(KeyEvent::from(KeyCode::Char('a')), t0), Some(Action::AddPod));
        app.update(request(1, "pod-c", "10.0.0.3", 100), t0);
        assert_eq!(
            app.on_key(KeyEvent::from(KeyCode::Char('k')), t0),
            Some(Action::KillPod("pod-c".into()))
        );
    }

    #[test]
    fn freezing_keeps_the_view_while_counting_continues() {
        let t0 = Instant::now();
        let mut app = synced_app(t0);
        app.update(request(1, "pod-a", "10.0.0.1", 100), t0);
        app.on_key(KeyEvent::from(KeyCode::Char(' ')), t0);
        app.update(request(2, "pod-a", "10.0.0.1", 100), t0 + secs(1.0));
        let (shown, at) = app.view(t0 + secs(2.0));
        assert_eq!(shown.total(), 1);
        assert_eq!(at, t0);
        assert_eq!(app.stats.total(), 2);
        app.on_key(KeyEvent::from(KeyCode::Char(' ')), t0 + secs(2.0));
        assert_eq!(app.view(t0 + secs(2.0)).0.total(), 2);
    }

    #[test]
    fn network_text_is_sanitized_and_lag_is_reported() {
        let t0 = Instant::now();
        let mut app = synced_app(t0);
        app.update(request(1, "evil\u{1b}]0;pwned\u{7}", "10.0.0.7", 100), t0);
        assert!(app.stats.pods.contains_key("evil]0;pwned"));
        app.update(gw(event::Kind::Lagged(Lagged { dropped: 12 })), t0);
        assert_eq!(app.lagged, 12);
        assert!(app.message.as_ref().unwrap().text.contains("dropped 12 events"));
    }

    #[test]
    fn disconnection_shows_when_the_retry_comes() {
        let t0 = Instant::now();
        let mut app = App::new("gw", t0);
        app.update(
            AppEvent::Disconnected {
                gateway: "gw".into(),
                error: "gateway unreachable".into(),
                retry_in: secs(2.0),
            },
            t0,
        );
        assert_eq!(
            app.gateways["gw"].connection,
            Connection::Reconnecting {
                retry_at: t0 + secs(2.0),
                error: "gateway unreachable".into()
            }
        );
        app.update(AppEvent::Connected { gateway: "gw".into() }, t0 + secs(2.0));
        assert_eq!(
            app.gateways["gw"].connection,
            Connection::Connected { since: t0 + secs(2.0) }
        );
    }

    #[test]
    fn spark_series_is_sixty_seconds_newest_last() {
        let t0 = Instant::now();
        let mut app = synced_app(t0);
        app.update(request(1, "pod-a", "10.0.0.1", 100), t0 + secs(0.5));
        app.update(request(2, "pod-a", "10.0.0.1", 100), t0 + secs(2.5));
        app.update(request(3, "pod-a", "10.0.0.1", 100), t0 + secs(2.7));
        let series = app.stats.spark(2);
        assert_eq!(series.len(), SPARK_SECONDS);
        assert_eq!(series[SPARK_SECONDS - 3..], [1, 0, 2]);
        assert_eq!(series[..SPARK_SECONDS - 3].iter().sum::<u64>(), 0);
    }

    #[test]
    fn host_of_strips_ports_and_brackets() {
        assert_eq!(host_of("10.0.0.1:50051"), "10.0.0.1");
        assert_eq!(host_of("[::1]:50051"), "::1");
        assert_eq!(host_of("greetserver"), "greetserver");
    }

    fn from(gateway: &str, kind: event::Kind) -> AppEvent {
        AppEvent::Gateway {
            gateway: gateway.into(),
            kind,
        }
    }

    fn request_kind(seq: u64, pod: &str) -> event::Kind {
        event::Kind::Request(RequestEvent {
            seq,
            pod_name: pod.into(),
            pod_ip: "10.0.0.1".into(),
            ..RequestEvent::default()
        })
    }

    fn state(mode: Mode, pods: &[(&str, u64)], last_seq: u64) -> event::Kind {
        event::Kind::Snapshot(State {
            mode: mode.to_proto() as i32,
            pods: pods
                .iter()
                .map(|(name, requests)| PodTotals {
                    pod_name: (*name).into(),
                    requests: *requests,
                    ..PodTotals::default()
                })
                .collect(),
            last_seq,
            ..State::default()
        })
    }

    #[test]
    fn several_gateways_add_up_with_their_own_sequence_numbers() {
        let t0 = Instant::now();
        let mut app = App::new("cluster", t0);
        app.update(from("gw-1", state(Mode::Sticky, &[("pod-a", 10)], 10)), t0);
        app.update(from("gw-2", state(Mode::Sticky, &[("pod-a", 5), ("pod-b", 7)], 12)), t0);
        assert_eq!(hits(&app), [("pod-a".into(), 15), ("pod-b".into(), 7)]);
        // seq 11 is new for gw-1 but already counted for gw-2.
        app.update(from("gw-1", request_kind(11, "pod-a")), t0);
        app.update(from("gw-2", request_kind(11, "pod-b")), t0);
        app.update(from("gw-2", request_kind(13, "pod-b")), t0);
        assert_eq!(hits(&app), [("pod-a".into(), 16), ("pod-b".into(), 8)]);
        // gw-2 reconnects: its snapshot replaces only its own share.
        app.update(from("gw-2", state(Mode::Sticky, &[("pod-b", 20)], 30)), t0);
        assert_eq!(hits(&app), [("pod-a".into(), 11), ("pod-b".into(), 20)]);
        assert_eq!(app.mode(), Some(Mode::Sticky));
    }

    #[test]
    fn disagreeing_gateways_show_mixed_and_m_switches_all_to_balanced() {
        let t0 = Instant::now();
        let mut app = App::new("cluster", t0);
        app.update(from("gw-1", state(Mode::Sticky, &[], 0)), t0);
        app.update(from("gw-2", state(Mode::Balanced, &[], 0)), t0);
        assert_eq!(app.mode(), None);
        assert!(app.mixed_modes());
        assert_eq!(
            app.on_key(KeyEvent::from(KeyCode::Char('m')), t0),
            Some(Action::SetMode(Mode::Balanced))
        );
        assert_eq!(app.message.as_ref().unwrap().text, "switching 2 gateways to balanced…");
    }

    #[test]
    fn a_mode_switch_reports_each_gateways_failure() {
        let t0 = Instant::now();
        let mut app = App::new("cluster", t0);
        for gateway in ["gw-1", "gw-2", "gw-3"] {
            app.update(from(gateway, state(Mode::Sticky, &[], 0)), t0);
        }
        assert_eq!(
            app.on_key(KeyEvent::from(KeyCode::Char('m')), t0),
            Some(Action::SetMode(Mode::Balanced))
        );
        let answer = |gateway: &str, result: Result<Mode, String>| AppEvent::ModeSet {
            gateway: gateway.into(),
            result,
        };
        app.update(answer("gw-1", Ok(Mode::Balanced)), t0);
        app.update(answer("gw-3", Err("the gateway did not answer within 5 s".into())), t0);
        assert!(
            app.message.as_ref().unwrap().text.starts_with("switching"),
            "waits for all answers"
        );
        app.update(answer("gw-2", Ok(Mode::Balanced)), t0);
        let message = app.message.clone().unwrap();
        assert!(message.error);
        assert_eq!(
            message.text,
            "switched 2 of 3 gateways to balanced; failed: gw-3: the gateway did not answer within 5 s"
        );
        assert!(app.mixed_modes());
    }

    #[test]
    fn all_gateways_switching_is_one_success_message() {
        let t0 = Instant::now();
        let mut app = App::new("cluster", t0);
        for gateway in ["gw-1", "gw-2"] {
            app.update(from(gateway, state(Mode::Balanced, &[], 0)), t0);
        }
        app.on_key(KeyEvent::from(KeyCode::Char('m')), t0);
        for gateway in ["gw-1", "gw-2"] {
            app.update(
                AppEvent::ModeSet {
                    gateway: gateway.into(),
                    result: Ok(Mode::Sticky),
                },
                t0,
            );
        }
        let message = app.message.clone().unwrap();
        assert!(!message.error);
        assert_eq!(message.text, "all 2 gateways switched to sticky");
        assert_eq!(app.mode(), Some(Mode::Sticky));
    }

    #[test]
    fn a_removed_gateways_endpoints_leave_the_pod_list() {
        let t0 = Instant::now();
        let mut app = App::new("cluster", t0);
        let endpoints = |names: &[&str]| {
            event::Kind::EndpointsChanged(EndpointsChanged {
                endpoints: names.iter().map(|n| endpoint(n, &format!("ip-{n}"))).collect(),
                ..EndpointsChanged::default()
            })
        };
        app.update(from("gw-1", endpoints(&["pod-a"])), t0);
        app.update(from("gw-2", endpoints(&["pod-b"])), t0);
        assert_eq!(
            app.stats.live_pods().count(),
            2,
            "the union of both gateways' endpoints"
        );
        app.update(AppEvent::GatewayRemoved { gateway: "gw-2".into() }, t0);
        assert!(app.stats.pods["pod-b"].gone);
        assert!(!app.stats.pods["pod-a"].gone);
    }

    #[test]
    fn failures_naming_no_pod_are_counted_but_never_shown_as_a_pod() {
        let t0 = Instant::now();
        let mut app = synced_app(t0);
        let failed = |seq, endpoint: &str| {
            gw(event::Kind::Request(RequestEvent {
                seq,
                endpoint: endpoint.into(),
                grpc_code: 14,
                error: "unavailable".into(),
                ..RequestEvent::default()
            }))
        };
        // Sticky to a dead Service, and balanced with no endpoint at all.
        app.update(failed(1, "greetserver.default.svc.cluster.local:50051"), t0);
        app.update(failed(2, ""), t0);
        // Balanced to a listed pod's address: that pod's error.
        app.update(failed(3, "10.0.0.2:50051"), t0);
        assert_eq!(app.stats.pods.len(), 3, "no made-up pods");
        assert_eq!(app.stats.pods["pod-b"].errors(), 1);
        assert_eq!(app.stats.total(), 3);
        assert_eq!(app.stats.errors(), 3);
        assert_eq!(app.stats.unattributed(), 2);
        assert_eq!(app.stats.tail[1].pod, "", "the tail shows it as no pod");
        // A later snapshot keeps them apart the same way.
        let mut state = State {
            last_seq: 3,
            ..State::default()
        };
        state.pods.push(PodTotals {
            endpoint: "greetserver.default.svc.cluster.local:50051".into(),
            requests: 5,
            errors: 5,
            ..PodTotals::default()
        });
        app.update(gw(event::Kind::Snapshot(state)), t0);
        assert_eq!(app.stats.unattributed(), 5);
        assert_eq!(app.stats.pods.len(), 3);
        app.reset(t0);
        assert_eq!((app.stats.total(), app.stats.errors()), (0, 0));
    }

    #[test]
    fn late_events_of_a_removed_gateway_are_ignored() {
        let t0 = Instant::now();
        let mut app = App::new("cluster", t0);
        app.update(from("gw-1", state(Mode::Sticky, &[], 0)), t0);
        app.update(AppEvent::GatewayRemoved { gateway: "gw-1".into() }, t0);
        app.update(
            AppEvent::Disconnected {
                gateway: "gw-1".into(),
                error: "stream ended".into(),
                retry_in: Duration::from_secs(1),
            },
            t0,
        );
        assert!(app.gateways.is_empty());
    }

    #[test]
    fn percentiles_are_cached_per_frame_and_follow_new_samples() {
        let t0 = Instant::now();
        let mut app = synced_app(t0);
        for (i, latency) in [1000, 2000, 3000].into_iter().enumerate() {
            app.update(request(i as u64 + 1, "pod-a", "10.0.0.1", latency), t0);
        }
        app.tick(t0);
        assert_eq!(app.stats.pods["pod-a"].latency_ms(50.0), Some(2.0));
        app.update(request(4, "pod-a", "10.0.0.1", 9000), t0);
        // Stale cache: computed fresh until the next tick.
        assert_eq!(app.stats.pods["pod-a"].latency_ms(99.0), Some(9.0));
        app.tick(t0);
        assert_eq!(app.stats.pods["pod-a"].latency_ms(99.0), Some(9.0));
        assert_eq!(app.stats.pods["pod-a"].latency_ms(50.0), Some(2.0));
    }
}
