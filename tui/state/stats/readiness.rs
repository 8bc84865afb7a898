//! What the READY column says of a pod, from everything known about it:
//! the listing, the gateways' skips, its failures in the window and the
//! requests it holds unanswered (a hung pod shows there first).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::pod::{PodKind, PodStats};
use crate::state::messages::Gauges;

/// A pod holding a request longer than this is `hung?` whatever its
/// latency: summaries come every 250 ms, and below this a loopback pod's
/// scheduling hiccup would read as a hang.
pub(crate) const HUNG_FLOOR: Duration = Duration::from_millis(250);
/// ... and longer than this many times its p99: a tail twice or three
/// times the p99 happens; five times, with requests still waiting, is a
/// pod not answering.
pub(crate) const HUNG_P99_TIMES: f64 = 5.0;
/// The limit for a pod with no latency known yet (it never answered).
pub(super) const HUNG_UNKNOWN_LATENCY: Duration = Duration::from_secs(1);

/// A pod's state, most telling first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PodState {
    /// Listed once, no longer.
    Gone,
    /// The Service address sticky mode dials, not a pod.
    Service,
    /// Kubernetes phases.
    Terminating,
    Pending,
    Failed,
    /// Requests sent to it wait longer than its usual latency.
    Hung,
    /// A gateway's balancer routes around it.
    Skipped,
    /// At least half its requests in the window failed.
    Failing,
    /// Some of its requests in the window failed.
    Errors,
    /// A gateway's health check of it fails: known even when no request
    /// reaches it (the others in sticky mode). What its own requests say
    /// comes first.
    Down,
    /// Terminating, yet routed to: no pod of the Service is ready and it
    /// still serves ("serving while terminating").
    ServingTerminating,
    /// Listed, not ready.
    NotReady,
    Ready,
    /// Seen only in requests; nothing lists it.
    Unlisted,
}

impl PodState {
    /// The READY column's word (at most 7 characters).
    pub fn word(self) -> &'static str {
        match self {
            PodState::Gone => "gone",
            PodState::Service => "service",
            PodState::Terminating => "term",
            PodState::Pending => "pend",
            PodState::Failed => "failed",
            PodState::Hung => "hung?",
            PodState::Skipped => "skip",
            PodState::Failing => "failing",
            PodState::Errors => "errors",
            PodState::Down => "down",
            PodState::ServingTerminating => "term",
            PodState::NotReady => "no",
            PodState::Ready => "yes",
            PodState::Unlisted => "?",
        }
    }

    /// Whether the pod is in trouble (shown in the error style).
    pub fn bad(self) -> bool {
        matches!(
            self,
            PodState::Pending
                | PodState::Failed
                | PodState::Hung
                | PodState::Skipped
                | PodState::Failing
                | PodState::Errors
                | PodState::Down
                | PodState::NotReady
        )
    }
}

impl PodStats {
    /// Requests the gateways have sent it and not had answered, as of
    /// their last summaries.
    pub fn in_flight(&self) -> u64 {
        self.gauges.values().map(|g| g.in_flight).sum()
    }

    /// How long the oldest of them has waited.
    pub fn oldest_in_flight(&self) -> Duration {
        let us = self.gauges.values().map(|g| g.oldest_in_flight_us).max().unwrap_or(0);
        Duration::from_micros(us)
    }

    /// HTTP/2 connections the gateways hold to it.
    pub fn connections(&self) -> u64 {
        self.gauges.values().map(|g| u64::from(g.connections)).sum()
    }

    /// How long a request may wait on it before it reads as hung: five
    /// times its p99 (the window's, else since the reset), at least
    /// `HUNG_FLOOR`; `HUNG_UNKNOWN_LATENCY` with no latency known.
    pub fn hang_limit(&self) -> Duration {
        let p99_ms = self.latency_ms(99.0).or_else(|| self.latency_since_reset_ms(99.0));
        match p99_ms {
            Some(ms) => HUNG_FLOOR.max(Duration::from_secs_f64(ms * HUNG_P99_TIMES / 1000.0)),
            None => HUNG_UNKNOWN_LATENCY,
        }
    }

    /// Requests wait on it longer than its usual latency allows.
    pub fn hung(&self) -> bool {
        self.in_flight() > 0 && self.oldest_in_flight() > self.hang_limit()
    }

    /// The pod's state for the READY column, its requests judged over the
    /// window ending at `at`.
    pub fn state(&self, at: Instant) -> PodState {
        let phase = self.info.as_ref().and_then(|i| i.phase.as_deref());
        if self.gone {
            return PodState::Gone;
        }
        if self.kind == PodKind::Service {
            return PodState::Service;
        }
        match phase {
            Some("Terminating") => return PodState::Terminating,
            Some("Pending") => return PodState::Pending,
            Some("Failed") => return PodState::Failed,
            _ => {}
        }
        if self.hung() {
            return PodState::Hung;
        }
        if self.skipped.is_some() {
            return PodState::Skipped;
        }
        // The callers' errors (UNIMPLEMENTED, ...) say nothing of the pod.
        let errors = self
            .errors_in_window(at)
            .saturating_sub(self.client_errors_in_window(at));
        if errors > 0 {
            return if errors * 2 >= self.in_window(at) {
                PodState::Failing
            } else {
                PodState::Errors
            };
        }
        if self.down.is_some() {
            return PodState::Down;
        }
        if self.serving_terminating {
            return PodState::ServingTerminating;
        }
        match self.ready {
            Some(true) => PodState::Ready,
            Some(false) => PodState::NotReady,
            None => PodState::Unlisted,
        }
    }

    /// `gateway`'s gauges for it, from its latest summary (`None`: it no
    /// longer reports any).
    pub(super) fn set_gauges(&mut self, gateway: &str, gauges: Option<Gauges>) {
        match gauges {
            Some(gauges) => {
                self.gauges.insert(gateway.to_owned(), gauges);
            }
            None => {
                self.gauges.remove(gateway);
            }
        }
    }
}

impl super::Stats {
    /// `gateway` is no longer followed: its gauges go.
    pub(in crate::state) fn forget_gauges(&mut self, gateway: &str) {
        for pod in self.pods.values_mut() {
            pod.set_gauges(gateway, None);
        }
    }
}

/// Several totals landing on one row: their gauges add up (the oldest wait
/// is the longest of them).
pub(super) fn add_gauges(into: &mut Option<Gauges>, from: Option<Gauges>) {
    let Some(from) = from else { return };
    let sum = into.get_or_insert_default();
    sum.in_flight += from.in_flight;
    sum.oldest_in_flight_us = sum.oldest_in_flight_us.max(from.oldest_in_flight_us);
    sum.connections = sum.connections.saturating_add(from.connections);
}

/// Gauges per gateway, as a pod keeps them.
pub(super) type GaugesByGateway = BTreeMap<String, Gauges>;
