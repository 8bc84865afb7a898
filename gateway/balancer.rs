//! Per-request round robin over the ready endpoints.
//!
//! Readers (every request) load an immutable snapshot and bump one atomic
//! counter: no lock on the request path. Writers (discovery updates) build a
//! new snapshot, keeping the connection of every endpoint that stays, and swap
//! it in. Generic over the connection type so it is tested without sockets.
//!
//! A member that fails is ejected (skipped) for a while, longer each time in
//! a row (skip.rs); the request path only reads its atomic deadline, and the
//! reason is kept under a lock taken only on ejection and recovery. When a
//! skip is due, one request at a time tries the member (a probe, member.rs):
//! its answer ends the skip, its failure or timeout renews it, and the other
//! requests keep going to the other members meanwhile.

pub(crate) mod load;
mod log_lines;
mod member;
mod skip;
pub(crate) mod try_limit;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use arc_swap::ArcSwap;
use tokio::time::Instant;

use super::discovery::{EndpointInfo, EndpointSet};
#[cfg(test)]
use member::PROBE_LEASE;
pub(crate) use member::{InFlight, Member};
pub(crate) use skip::Skip;
#[cfg(test)]
use skip::ejection_for;
pub use skip::{EJECTION, MAX_EJECTION};

type Connect<C> = Box<dyn Fn(&EndpointInfo) -> C + Send + Sync>;

/// One discovery update, swapped in whole so readers never see the two
/// lists disagree.
struct Snapshot<C> {
    /// Every endpoint discovery reported, ready or not (to be shown).
    all: Arc<EndpointSet>,
    /// Ready endpoints only, in address order: what requests pick from.
    ready: Vec<Arc<Member<C>>>,
}

pub struct Balancer<C> {
    snapshot: ArcSwap<Snapshot<C>>,
    next: AtomicUsize,
    /// Counter for least-loaded's random pairs (load::mix).
    random: AtomicU64,
    connect: Connect<C>,
    epoch: Instant,
    update_lock: std::sync::Mutex<()>,
    /// Ejections so far (a re-try that fails again counts again), for the metrics.
    ejections: AtomicU64,
}

impl<C> Balancer<C> {
    /// `connect` makes the connection for a newly seen endpoint; it must not
    /// block (connect lazily).
    pub fn new(connect: impl Fn(&EndpointInfo) -> C + Send + Sync + 'static) -> Self {
        Balancer {
            snapshot: ArcSwap::from_pointee(Snapshot {
                all: Arc::new(Vec::new()),
                ready: Vec::new(),
            }),
            next: AtomicUsize::new(0),
            random: AtomicU64::new(0),
            connect: Box::new(connect),
            epoch: Instant::now(),
            update_lock: std::sync::Mutex::new(()),
            ejections: AtomicU64::new(0),
        }
    }

    /// Replaces the endpoint set. Endpoints that stay (same address and pod)
    /// keep their connection and ejection state; the others are dropped, so a
    /// removed endpoint gets no new request once this returns.
    pub fn update(&self, set: &EndpointSet) {
        let _guard = self.update_lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let current = self.snapshot.load();
        let current = &current.ready;
        let ready = set
            .iter()
            .filter(|info| info.ready)
            .map(|info| {
                current
                    .iter()
                    .find(|m| m.info.address == info.address && m.info.pod_name == info.pod_name)
                    .cloned()
                    .unwrap_or_else(|| Arc::new(Member::new(info.clone(), (self.connect)(info), self.epoch)))
            })
            .collect();
        self.snapshot.store(Arc::new(Snapshot {
            all: Arc::new(set.clone()),
            ready,
        }));
    }

    /// The next member in round-robin order, skipping ejected members unless
    /// all are ejected (then trying one beats failing outright); a member
    /// whose skip is due only when no other request is probing it. `None`
    /// when no endpoint is ready.
    pub fn pick(&self, now: Instant) -> Option<Arc<Member<C>>> {
        let snapshot = self.snapshot.load();
        let ready = &snapshot.ready;
        if ready.is_empty() {
            return None;
        }
        let now_ms = self.millis_since_epoch(now);
        let mut first = None;
        for _ in 0..ready.len() {
            let member = &ready[self.next.fetch_add(1, Ordering::Relaxed) % ready.len()];
            if member.admits(now_ms) {
                return Some(Arc::clone(member));
            }
            first.get_or_insert(member);
        }
        first.map(Arc::clone)
    }

    /// Power of two choices: of two random members not skipped, the one that
    /// costs less (load.rs); skipped members only when all are, as `pick`.
    /// A member whose skip is due is probed first (one request at a time).
    pub fn pick_least_loaded(&self, now: Instant) -> Option<Arc<Member<C>>> {
        let snapshot = self.snapshot.load();
        let now_ms = self.millis_since_epoch(now);
        if let Some(probe) = snapshot.ready.iter().find(|m| m.is_skipped() && m.admits(now_ms)) {
            return Some(Arc::clone(probe));
        }
        let usable: Vec<&Arc<Member<C>>> = snapshot.ready.iter().filter(|m| !m.is_skipped()).collect();
        match usable[..] {
            [] => self.pick(now),
            [only] => Some(Arc::clone(only)),
            _ => {
                let random = load::mix(self.random.fetch_add(1, Ordering::Relaxed));
                let (a, b) = load::two_of(usable.len(), random);
                let (a, b) = (usable[a], usable[b]);
                Some(Arc::clone(if b.cost(now) < a.cost(now) { b } else { a }))
            }
        }
    }

    /// A request is sent to `member` at `sent`: counted in flight until the
    /// guard drops.
    pub fn start(&self, member: &Arc<Member<C>>, sent: Instant) -> InFlight<C> {
        InFlight::new(member, sent)
    }

    /// A request picked at `picked_at` found `member` failing at `now` for
    /// `reason`: skips it for [`ejection_for`](skip::ejection_for) its failures in a row. Returns
    /// whether that changed what is reported (a new skip or a later
    /// deadline), and logs a line when it does; not while it is skipped and
    /// not yet due for a re-try.
    pub fn eject(&self, member: &Member<C>, picked_at: Instant, now: Instant, reason: &str) -> bool {
        let mut health = member.health();
        let Some(skip) = health.fail(picked_at, now, reason) else {
            return false;
        };
        tracing::warn!(
            "{}",
            log_lines::ejected(&member.info.address, member.pod_name().as_deref(), skip)
        );
        // 0 means "not skipped"; `pick` may re-try up to 1 ms early, which
        // `fail` then ignores until the skip is really due.
        let until = self.millis_since_epoch(skip.until).max(1);
        member.ejected_until_ms.store(until, Ordering::Relaxed);
        member.probe_since_ms.store(0, Ordering::Relaxed);
        self.ejections.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// How many times a member was ejected (skipped) so far.
    pub fn ejections(&self) -> u64 {
        self.ejections.load(Ordering::Relaxed)
    }

    /// A request picked at `picked_at` succeeded on `member` at `now`: ends
    /// its skip. Returns whether it was skipped, and logs the re-admission
    /// when it was. Lock-free unless it was.
    pub fn succeeded(&self, member: &Member<C>, picked_at: Instant, now: Instant) -> bool {
        if member.ejected_until_ms.load(Ordering::Relaxed) == 0 {
            return false;
        }
        let mut health = member.health();
        let skip = health.skip.clone();
        if !health.succeed(picked_at, now) {
            return false;
        }
        if let Some(skip) = skip {
            tracing::info!(
                "{}",
                log_lines::readmitted(&member.info.address, member.pod_name().as_deref(), &skip)
            );
        }
        member.ejected_until_ms.store(0, Ordering::Relaxed);
        member.probe_since_ms.store(0, Ordering::Relaxed);
        true
    }

    /// Every endpoint of the last update, ready or not, each with its skip
    /// (only ready endpoints are ever skipped).
    pub fn report(&self) -> Vec<(EndpointInfo, Option<Skip>)> {
        let snapshot = self.snapshot.load();
        // `ready` holds the ready entries of `all`, in the same order.
        let mut members = snapshot.ready.iter();
        snapshot
            .all
            .iter()
            .map(|info| {
                let member = if info.ready { members.next() } else { None };
                let Some(member) = member else {
                    return (info.clone(), None);
                };
                let info = EndpointInfo {
                    pod_name: member.pod_name(),
                    ..info.clone()
                };
                (info, member.skip())
            })
            .collect()
    }

    /// Every endpoint of the last update, ready or not.
    pub fn endpoints(&self) -> Arc<EndpointSet> {
        Arc::clone(&self.snapshot.load().all)
    }

    /// The members requests pick from, in address order.
    pub fn members(&self) -> Vec<Arc<Member<C>>> {
        self.snapshot.load().ready.clone()
    }

    /// How many endpoints can take requests.
    pub fn ready_count(&self) -> usize {
        self.snapshot.load().ready.len()
    }

    fn millis_since_epoch(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests;
