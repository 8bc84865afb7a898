//! Why, and until when, the balancer skips one member. Changed only when a
//! request ejects the member or is the first to succeed on it again (both
//! rare), under the member's own lock; the request path reads only the
//! member's atomic deadline.

use std::time::Duration;

use tokio::time::Instant;

/// How long an endpoint that failed is skipped the first time.
pub const EJECTION: Duration = Duration::from_secs(2);
/// The longest skip: each ejection in a row without a success in between
/// doubles the previous one (2 s, 4 s, 8 s, 16 s, 30 s, 30 s, ...).
pub const MAX_EJECTION: Duration = Duration::from_secs(30);

/// How long the `failures`-th ejection in a row lasts (the first is 1).
pub(crate) fn ejection_for(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    EJECTION.saturating_mul(1 << doublings).min(MAX_EJECTION)
}

/// A member the balancer skips: from its ejection until a request on it succeeds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skip {
    /// What the last failure was, e.g. "connection refused".
    pub reason: String,
    /// When the balancer tries the member again. Once passed, the member is
    /// being re-tried; it stays skipped (not "ready") until a request on it
    /// succeeds, so a pod that stays dead never flickers back to ready.
    pub until: Instant,
    /// Ejections in a row without a success in between.
    pub failures: u32,
}

/// A member's skip, and when it last changed.
#[derive(Debug, Default)]
pub(super) struct Health {
    pub skip: Option<Skip>,
    /// The last ejection or recovery: the outcome of a request picked before
    /// it is older news (e.g. a call that the pod finished while draining,
    /// after another call found it refusing), and changes nothing.
    changed_at: Option<Instant>,
}

impl Health {
    /// A request picked at `picked_at` failed at `now`. Returns the new skip
    /// when this (re-)ejects the member: not while it is already skipped and
    /// not yet due for a re-try, nor for a request older than the last change.
    pub(super) fn fail(&mut self, picked_at: Instant, now: Instant, reason: &str) -> Option<&Skip> {
        if self.is_stale(picked_at) || self.skip.as_ref().is_some_and(|skip| now < skip.until) {
            return None;
        }
        let failures = self.skip.as_ref().map_or(0, |skip| skip.failures) + 1;
        self.changed_at = Some(now);
        self.skip = Some(Skip {
            reason: reason.to_owned(),
            until: now + ejection_for(failures),
            failures,
        });
        self.skip.as_ref()
    }

    /// A request picked at `picked_at` succeeded at `now`. Returns whether
    /// this ends the member's skip.
    pub(super) fn succeed(&mut self, picked_at: Instant, now: Instant) -> bool {
        if self.skip.is_none() || self.is_stale(picked_at) {
            return false;
        }
        self.skip = None;
        self.changed_at = Some(now);
        true
    }

    fn is_stale(&self, picked_at: Instant) -> bool {
        self.changed_at.is_some_and(|changed| picked_at < changed)
    }
}
