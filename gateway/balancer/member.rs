//! One member of the balancer: an endpoint, its connection, its skip, its
//! latency estimate and its requests in flight.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use tokio::time::Instant;

use super::skip::{Health, Skip};
use super::{load, try_limit};
use crate::discovery::EndpointInfo;
use crate::in_flight::SendTimes;

/// One endpoint and its (lazily connected) connection.
#[derive(Debug)]
pub struct Member<C> {
    pub info: EndpointInfo,
    pub conn: C,
    /// Milliseconds since the balancer's epoch until which this member is
    /// skipped; 0 while it is not skipped.
    pub(super) ejected_until_ms: AtomicU64,
    /// While a skip is due, the one request trying the member (a probe):
    /// when it was picked, in ms since the balancer's epoch; 0 with none.
    pub(super) probe_since_ms: AtomicU64,
    pub(super) health: Mutex<Health>,
    /// Requests sent to this member and not answered yet, with their send times.
    pub(super) sends: SendTimes,
    /// Peak-EWMA latency (load.rs), taken only around a few float operations.
    latency: Mutex<Latency>,
    /// The pod the member's replies named, when discovery does not know it
    /// (static and DNS endpoints).
    replied_pod: ArcSwapOption<String>,
}

/// A member's latency estimate and when it was last updated.
#[derive(Debug, Default)]
struct Latency {
    estimate_us: f64,
    updated: Option<Instant>,
}

impl Latency {
    fn since(&self, now: Instant) -> Duration {
        self.updated
            .map_or_else(Default::default, |at| now.saturating_duration_since(at))
    }
}

/// Every update is an assignment: the state stays whole after a panic.
pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl<C> Member<C> {
    pub(super) fn new(info: EndpointInfo, conn: C, epoch: Instant) -> Self {
        Member {
            info,
            conn,
            ejected_until_ms: AtomicU64::new(0),
            probe_since_ms: AtomicU64::new(0),
            health: Mutex::default(),
            sends: SendTimes::new(epoch),
            latency: Mutex::default(),
            replied_pod: ArcSwapOption::empty(),
        }
    }

    /// Why and until when the balancer skips this member, if it does.
    pub fn skip(&self) -> Option<Skip> {
        self.health().skip.clone()
    }

    pub(super) fn health(&self) -> MutexGuard<'_, Health> {
        lock(&self.health)
    }

    /// What one more request would cost at `now` (load.rs).
    pub fn cost(&self, now: Instant) -> f64 {
        let latency = lock(&self.latency);
        let estimate_us = load::decayed(latency.estimate_us, latency.since(now));
        load::cost(estimate_us, self.sends.count())
    }

    /// How long one try on this member may wait for its answer when the
    /// call has `left` (try_limit.rs).
    pub fn try_limit(&self, left: Duration) -> Duration {
        let latency = lock(&self.latency);
        try_limit::try_limit(latency.updated.map(|_| latency.estimate_us), left)
    }

    /// Requests in flight to the member now.
    pub fn in_flight(&self) -> u64 {
        self.sends.count()
    }

    /// How long the oldest request in flight has waited at `now`.
    pub fn oldest_in_flight(&self, now: Instant) -> Duration {
        self.sends.oldest(now)
    }

    /// The pod behind the member: discovery's, else the one its replies named.
    pub fn pod_name(&self) -> Option<String> {
        self.info
            .pod_name
            .clone()
            .or_else(|| self.replied_pod.load().as_deref().cloned())
    }

    /// A reply from the member named `pod`: kept when discovery does not
    /// know the pod. Returns whether that changed the member's pod.
    pub fn replied_from(&self, pod: &str) -> bool {
        if pod.is_empty() || self.info.pod_name.is_some() {
            return false;
        }
        if self.replied_pod.load().as_deref().is_some_and(|known| known == pod) {
            return false;
        }
        self.replied_pod.store(Some(Arc::new(pod.to_owned())));
        true
    }

    /// Whether a request may go to the member at `now_ms`: it is not
    /// skipped, or its skip is due and no other request is trying it (this
    /// one becomes the probe). A probe's claim lapses after [`PROBE_LEASE`]
    /// should its request vanish without an outcome.
    pub(super) fn admits(&self, now_ms: u64) -> bool {
        let until = self.ejected_until_ms.load(Ordering::Relaxed);
        if until == 0 {
            return true;
        }
        if now_ms < until {
            return false;
        }
        let probe = self.probe_since_ms.load(Ordering::Relaxed);
        if probe != 0 && now_ms < probe.saturating_add(PROBE_LEASE_MS) {
            return false;
        }
        self.probe_since_ms
            .compare_exchange(probe, now_ms.max(1), Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }

    pub(super) fn is_skipped(&self) -> bool {
        self.ejected_until_ms.load(Ordering::Relaxed) != 0
    }
}

/// How long a probe holds its member when its request neither ended nor was
/// dropped (it always is, by [`InFlight`]'s drop; this is the backstop).
pub(crate) const PROBE_LEASE: Duration = Duration::from_secs(10);
const PROBE_LEASE_MS: u64 = PROBE_LEASE.as_millis() as u64;

/// A request in flight to a member: counted until dropped; `finish` also
/// measures its latency. A request sent while the member is skipped is its
/// probe: dropping it lets the next request try the member.
pub struct InFlight<C> {
    member: Arc<Member<C>>,
    sent: Instant,
    slot: Option<usize>,
    probe: bool,
}

impl<C> InFlight<C> {
    pub(super) fn new(member: &Arc<Member<C>>, sent: Instant) -> Self {
        InFlight {
            slot: member.sends.start(sent),
            probe: member.is_skipped(),
            member: Arc::clone(member),
            sent,
        }
    }

    /// The request was answered at `now`: its latency updates the member's
    /// estimate. (A try that timed out is not an answer: the member is
    /// ejected instead, and its estimate keeps what its answers took.)
    pub fn finish(self, now: Instant) {
        let rtt_us = now.saturating_duration_since(self.sent).as_secs_f64() * 1e6;
        let mut latency = lock(&self.member.latency);
        latency.estimate_us = load::observe(latency.estimate_us, latency.since(now), rtt_us);
        latency.updated = Some(now);
    }
}

impl<C> Drop for InFlight<C> {
    fn drop(&mut self) {
        self.member.sends.end(self.slot);
        if self.probe {
            self.member.probe_since_ms.store(0, Ordering::Relaxed);
        }
    }
}
