//! When the EndpointSlice watch tries again after an error.
//!
//! kube's `default_backoff()` sleeps 800 ms doubling to 30 s after every
//! error and resets only on an event; a watch that starts again cleanly
//! yields none and a 410 is one more error, so after an outage the set
//! stayed stale for many seconds. Here a 410 re-lists at once, an API server
//! that is down or busy is tried again within a second, and only a denial
//! (RBAC, credentials), which retrying cannot fix, backs off far.

use std::time::Duration;

use kube::runtime::watcher;
use tokio::time::Instant;

/// The first wait after an error.
pub(crate) const FIRST: Duration = Duration::from_millis(100);
/// The longest wait while the API server is down or busy: it is back within a second.
pub(crate) const MOST: Duration = Duration::from_secs(1);
/// The longest wait while access is denied.
pub(crate) const MOST_DENIED: Duration = Duration::from_secs(30);
/// A 410 this soon after the previous one waits this long, so that a
/// server compacting faster than the watch re-lists cannot make it spin.
pub(crate) const GONE_AGAIN: Duration = Duration::from_secs(1);

/// What an error says about when to try again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// 410 Gone: history was compacted; a re-list is the cure, now.
    Gone,
    /// 401/403: retrying does not fix RBAC or credentials.
    Denied,
    /// Refused or cut connections, timeouts, 5xx, 429: down, restarting or busy.
    Transient,
}

impl Failure {
    pub(crate) fn of(err: &watcher::Error) -> Failure {
        match status_code(err) {
            // Only the ERROR event of a watch means "re-list": kube's watcher
            // answers an HTTP 410 to the watch request by retrying the same
            // resourceVersion, and our loop starts over with a list anyway.
            Some(410) if matches!(err, watcher::Error::WatchError(_)) => Failure::Gone,
            Some(401 | 403) => Failure::Denied,
            _ => Failure::Transient,
        }
    }
}

/// The HTTP status the API server answered with, if it answered.
fn status_code(err: &watcher::Error) -> Option<u16> {
    match err {
        watcher::Error::InitialListFailed(kube::Error::Api(status))
        | watcher::Error::WatchStartFailed(kube::Error::Api(status))
        | watcher::Error::WatchFailed(kube::Error::Api(status))
        | watcher::Error::WatchError(status) => Some(status.code),
        _ => None,
    }
}

/// The retry pacing of one watch: a wait per error, reset by any event.
#[derive(Debug)]
pub(crate) struct CatchUp {
    /// The next wait for an error that grows it (before jitter).
    next: Duration,
    last_gone: Option<Instant>,
    /// A factor in [0.8, 1.2] applied to growing waits.
    jitter: fn() -> f64,
}

impl CatchUp {
    pub(crate) fn new() -> CatchUp {
        CatchUp::with_jitter(random_jitter)
    }

    pub(crate) fn with_jitter(jitter: fn() -> f64) -> CatchUp {
        CatchUp {
            next: FIRST,
            last_gone: None,
            jitter,
        }
    }

    /// An event arrived: the API server answers, so the next error starts from [`FIRST`].
    pub(crate) fn reset(&mut self) {
        self.next = FIRST;
    }

    /// How long to wait after `failure` at `now` before starting over.
    pub(crate) fn after(&mut self, failure: Failure, now: Instant) -> Duration {
        match failure {
            Failure::Gone => {
                let again = self
                    .last_gone
                    .is_some_and(|at| now.saturating_duration_since(at) < GONE_AGAIN);
                self.last_gone = Some(now);
                // The server answered: whatever comes next starts short.
                self.next = FIRST;
                if again { GONE_AGAIN } else { Duration::ZERO }
            }
            Failure::Denied => self.grow(MOST_DENIED),
            Failure::Transient => self.grow(MOST),
        }
    }

    fn grow(&mut self, most: Duration) -> Duration {
        let wait = self.next.min(most);
        self.next = (wait * 2).min(most);
        wait.mul_f64((self.jitter)().clamp(0.8, 1.2))
    }
}

/// ±20 %, so that several gateways do not retry in step after a restart.
/// std's `RandomState` is seeded per process and changes with every
/// instance: enough to spread retries, without a random-number crate.
fn random_jitter() -> f64 {
    use std::hash::BuildHasher;
    let bits = std::collections::hash_map::RandomState::new().hash_one(());
    // The top 53 bits as a fraction in [0, 1).
    let fraction = (bits >> 11) as f64 / (1u64 << 53) as f64;
    0.8 + 0.4 * fraction
}

#[cfg(test)]
mod tests;
