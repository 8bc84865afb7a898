//! Several gateways (replicas) feeding one view: each keeps its own sequence
//! numbers, mode, endpoint set and share of the counts; a snapshot replaces
//! only its own gateway's share, the pod list is the union of the endpoint
//! sets (unless a pod source owns it), and a mode switch waits for every
//! gateway's answer.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

pub use self::refusal::Refusal;
use super::messages::{DiscoveryStatus, GatewayEvent, PodInfo, Snapshot};
use super::stats::{Clock, Stats};
use greet_proto::Mode;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Connection {
    Connecting,
    Connected {
        since: Instant,
    },
    /// Down since `down_since` (the first failure, across retries).
    Reconnecting {
        retry_at: Instant,
        error: String,
        down_since: Instant,
    },
    /// The gateway answers but refuses greet-top (its token); retried on
    /// the same backoff, in case the gateway's token changes.
    Refused {
        refusal: Refusal,
        retry_at: Instant,
        down_since: Instant,
    },
}

impl Connection {
    /// Since when the gateway has given no data (unreachable or refusing).
    pub fn down_since(&self) -> Option<Instant> {
        match self {
            Connection::Reconnecting { down_since, .. } | Connection::Refused { down_since, .. } => Some(*down_since),
            Connection::Connecting | Connection::Connected { .. } => None,
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

/// What the dashboard knows of one gateway.
#[derive(Clone, Debug)]
pub struct GatewayView {
    pub connection: Connection,
    pub mode: Option<Mode>,
    /// The number of the mode it is in when this version does not know it.
    pub unknown_mode: Option<i32>,
    /// A snapshot from this gateway has been applied.
    pub synced: bool,
    /// Events up to this seq are already counted (from the snapshot).
    last_seq: u64,
    /// The pods this gateway's endpoint set lists.
    endpoints: Vec<PodInfo>,
    /// When the gateway process started (from its snapshots): a new value
    /// means it restarted.
    started_unix_us: Option<i64>,
    /// When a snapshot showed that it restarted.
    pub restarted_at: Option<Instant>,
    /// Where its sticky mode sends requests (the Service's `host:port`).
    pub sticky_target: String,
    /// Its discovery's last state, and when it arrived (a stale set keeps
    /// ageing from there).
    pub discovery: Option<(DiscoveryStatus, Instant)>,
}

impl GatewayView {
    fn new() -> Self {
        GatewayView {
            connection: Connection::Connecting,
            mode: None,
            unknown_mode: None,
            synced: false,
            last_seq: 0,
            endpoints: Vec::new(),
            started_unix_us: None,
            restarted_at: None,
            sticky_target: String::new(),
            discovery: None,
        }
    }
}

/// A line for the footer that folding an event produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Notice {
    pub text: String,
    pub error: bool,
}

impl Notice {
    fn new(text: String, error: bool) -> Self {
        Notice { text, error }
    }
}

/// The gateways being followed, reconciled into one view.
#[derive(Clone, Debug)]
pub(crate) struct Gateways {
    views: BTreeMap<String, GatewayView>,
    /// Gateways no longer followed: late events from them are ignored.
    removed: BTreeSet<String>,
    pending_switch: Option<PendingSwitch>,
    pod_source: PodSourceKind,
    /// Each gateway's counts start at its first snapshot (`--once`).
    count_from_first_snapshot: bool,
    /// Events the gateways dropped for us because we fell behind.
    lagged: u64,
}

impl Default for Gateways {
    fn default() -> Self {
        Gateways {
            views: BTreeMap::new(),
            removed: BTreeSet::new(),
            pending_switch: None,
            pod_source: PodSourceKind::GatewayEndpoints,
            count_from_first_snapshot: false,
            lagged: 0,
        }
    }
}

impl Gateways {
    /// Each gateway by name.
    pub(crate) fn views(&self) -> &BTreeMap<String, GatewayView> {
        &self.views
    }

    pub(crate) fn pod_source(&self) -> PodSourceKind {
        self.pod_source
    }

    pub(crate) fn lagged(&self) -> u64 {
        self.lagged
    }

    /// Whether any gateway has sent its snapshot.
    pub(crate) fn synced(&self) -> bool {
        self.views.values().any(|g| g.synced)
    }

    /// The mode all synced gateways agree on; `None` when unknown or mixed.
    pub(crate) fn mode(&self) -> Option<Mode> {
        let mut modes = self.views.values().filter(|g| g.synced).filter_map(|g| g.mode);
        let first = modes.next()?;
        modes.all(|m| m == first).then_some(first)
    }

    /// The number of a mode this version does not know, when a synced
    /// gateway is in one and none is in a known mode.
    pub(crate) fn unknown_mode(&self) -> Option<i32> {
        let synced = || self.views.values().filter(|g| g.synced);
        if synced().any(|g| g.mode.is_some()) {
            return None;
        }
        synced().find_map(|g| g.unknown_mode)
    }

    /// Synced gateways disagree on the mode.
    pub(crate) fn mixed_modes(&self) -> bool {
        let modes: BTreeSet<Mode> = self
            .views
            .values()
            .filter(|g| g.synced)
            .filter_map(|g| g.mode)
            .collect();
        modes.len() > 1
    }

    pub(super) fn view_mut(&mut self, gateway: &str) -> &mut GatewayView {
        self.views.entry(gateway.to_owned()).or_insert_with(GatewayView::new)
    }

    /// `gateway` is down (again): `connection` gets when it first went down.
    pub(super) fn went_down(&mut self, gateway: &str, now: Instant, connection: impl FnOnce(Instant) -> Connection) {
        let view = self.view_mut(gateway);
        let down_since = view.connection.down_since().unwrap_or(now);
        view.connection = connection(down_since);
    }

    pub(super) fn count_from_first_snapshot(&mut self) {
        self.count_from_first_snapshot = true;
    }

    /// A removed gateway's late events must not bring it back.
    pub(super) fn is_removed(&self, gateway: &str) -> bool {
        self.removed.contains(gateway)
    }

    pub(super) fn remove(&mut self, gateway: String, stats: &mut Stats) {
        let known = self.views.remove(&gateway).is_some();
        // What it held open to the pods is no longer known.
        stats.forget_gauges(&gateway);
        self.removed.insert(gateway);
        if known && self.pod_source == PodSourceKind::GatewayEndpoints {
            self.relist(stats);
        }
        if known {
            self.mark_skipped(stats);
        }
    }

    /// A pod source (kube, the demo) lists the pods from now on.
    pub(super) fn list_from_pod_source(&mut self, pods: Vec<PodInfo>, stats: &mut Stats) {
        self.pod_source = PodSourceKind::External;
        stats.list_pods(pods, true);
        self.mark_skipped(stats);
    }

    /// Folds one event of `gateway` into the views and `stats`.
    pub(super) fn apply(
        &mut self,
        gateway: &str,
        event: GatewayEvent,
        stats: &mut Stats,
        clock: Clock,
    ) -> Option<Notice> {
        match event {
            GatewayEvent::Snapshot(snapshot) => self.on_snapshot(gateway, snapshot, stats, clock.now),
            GatewayEvent::Request(request) => {
                let view = self.view_mut(gateway);
                if request.seq != 0 && request.seq <= view.last_seq {
                    return None; // already in the snapshot
                }
                view.last_seq = request.seq;
                // Routed in a mode the gateway has left: the old mode's.
                let carried_over = request.mode.is_some() && view.mode.is_some() && request.mode != view.mode;
                stats.record(gateway, request, clock, carried_over);
            }
            GatewayEvent::Summary(totals) => stats.apply_summary(gateway, totals, clock),
            GatewayEvent::Sample(request) => stats.sample(request, clock.now),
            GatewayEvent::ModeChanged { seq, mode, unknown } => {
                let before = self.mode();
                let view = self.view_mut(gateway);
                view.last_seq = view.last_seq.max(seq);
                // Unspecified keeps the last; a mode unknown here replaces it.
                if mode.is_some() || unknown.is_some() {
                    view.mode = mode;
                    view.unknown_mode = unknown;
                }
                let after = self.mode();
                if after != before
                    && let Some(mode) = after
                {
                    return Some(Notice::new(format!("gateway is now {mode}"), false));
                }
            }
            GatewayEvent::EndpointsChanged { seq, endpoints } => {
                let view = self.view_mut(gateway);
                view.last_seq = view.last_seq.max(seq);
                self.on_endpoints(gateway, endpoints, stats);
            }
            GatewayEvent::Discovery(status) => self.view_mut(gateway).discovery = Some((status, clock.now)),
            GatewayEvent::Lagged { dropped } => {
                self.lagged += dropped;
                let text = format!("fell behind: the gateway dropped {dropped} events for this view");
                return Some(Notice::new(text, true));
            }
        }
        None
    }

    fn on_snapshot(&mut self, gateway: &str, snapshot: Snapshot, stats: &mut Stats, now: Instant) {
        let from_here = self.count_from_first_snapshot && !self.view_mut(gateway).synced;
        let view = self.view_mut(gateway);
        let restarted = view
            .started_unix_us
            .is_some_and(|started| started != snapshot.started_unix_us);
        view.started_unix_us = Some(snapshot.started_unix_us);
        if restarted {
            view.restarted_at = Some(now);
            // Its counters start again from zero: what it counted before stays counted.
            stats.carry_over(gateway);
        }
        let view = self.view_mut(gateway);
        view.synced = true;
        view.mode = snapshot.mode;
        view.unknown_mode = snapshot.unknown_mode;
        view.last_seq = snapshot.last_seq;
        view.sticky_target = snapshot.sticky_target;
        let targets = self
            .views
            .values()
            .map(|g| g.sticky_target.clone())
            .filter(|t| !t.is_empty())
            .collect();
        stats.set_sticky_targets(targets);
        self.on_endpoints(gateway, snapshot.endpoints, stats);
        stats.replace_totals(gateway, &snapshot.pods, from_here, now);
    }

    fn on_endpoints(&mut self, gateway: &str, endpoints: Vec<PodInfo>, stats: &mut Stats) {
        self.view_mut(gateway).endpoints = endpoints;
        // A pod source, when there is one, owns the pod list and readiness;
        // which pods a balancer skips only the gateways know.
        if self.pod_source == PodSourceKind::GatewayEndpoints {
            self.relist(stats);
        }
        self.mark_skipped(stats);
    }

    /// The endpoints any gateway's balancer skips, and those any gateway's
    /// health checks find down, by address and by pod name when the gateway
    /// knows it, with the reason; and the metrics family of each pod read
    /// from its own metrics.
    fn mark_skipped(&self, stats: &mut Stats) {
        let mut skipped: BTreeMap<String, String> = BTreeMap::new();
        let mut down: BTreeMap<String, String> = BTreeMap::new();
        let mut families: BTreeMap<String, String> = BTreeMap::new();
        let mut terminating: BTreeSet<String> = BTreeSet::new();
        for e in self.views.values().flat_map(|g| g.endpoints.iter()) {
            if e.serving_terminating {
                terminating.extend([&e.endpoint, &e.name].into_iter().filter(|k| !k.is_empty()).cloned());
            }
            let marked = [
                (&mut skipped, &e.skipped),
                (&mut down, &e.down),
                (&mut families, &e.metrics_family),
            ];
            for (marks, reason) in marked {
                let Some(reason) = reason else { continue };
                for key in [&e.endpoint, &e.name].into_iter().filter(|k| !k.is_empty()) {
                    marks.entry(key.clone()).or_insert_with(|| reason.clone());
                }
            }
        }
        stats.mark_skipped(&skipped, &down, &families, &terminating);
    }

    /// Without a pod source, the pods are the union of the gateways' endpoints.
    fn relist(&self, stats: &mut Stats) {
        let mut union: BTreeMap<String, PodInfo> = BTreeMap::new();
        for info in self.views.values().flat_map(|g| g.endpoints.iter()) {
            union
                .entry(info.name.clone())
                .and_modify(|known| known.ready |= info.ready)
                .or_insert_with(|| info.clone());
        }
        stats.list_pods(union.into_values().collect(), false);
    }
}

pub(crate) mod cause;
mod refusal;
mod switch;

use self::switch::PendingSwitch;
#[cfg(test)]
mod tests;
