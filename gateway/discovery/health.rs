//! Whether discovery is failing, since when, with what cause, and how old
//! its endpoint set is: shared by the sources, `/healthz`, the metrics and
//! the Observer.

use std::time::Duration;

/// Whether a discovery source is currently failing, shared with the gateway
/// so a 503 can say that discovery, not the pods, is the problem.
#[derive(Clone, Debug, Default)]
pub struct DiscoveryHealth(std::sync::Arc<HealthState>);

#[derive(Debug)]
struct HealthState {
    /// The problem, and when discovery started failing (kept while the
    /// problem's words change, so it says how stale the set is).
    problem: std::sync::Mutex<Option<(String, tokio::time::Instant)>>,
    /// Failed watches and lookups so far, for the metrics.
    errors: std::sync::atomic::AtomicU64,
    /// Since when the endpoint set has not been confirmed current: the last
    /// time the source was heard before it failed (a watch's first error,
    /// a DNS answer before failed lookups); `None` while it is followed.
    unconfirmed_since: std::sync::Mutex<Option<tokio::time::Instant>>,
    /// Bumped when discovery starts failing, its problem's words change,
    /// or it recovers: the Observer tells its subscribers.
    changes: tokio::sync::watch::Sender<u64>,
}

impl Default for HealthState {
    fn default() -> Self {
        HealthState {
            problem: Default::default(),
            errors: Default::default(),
            unconfirmed_since: Default::default(),
            changes: tokio::sync::watch::channel(0).0,
        }
    }
}

impl DiscoveryHealth {
    pub fn failing(&self, problem: impl Into<String>) {
        self.count_error();
        let mut slot = self.problem_slot();
        let since = slot
            .as_ref()
            .map_or_else(tokio::time::Instant::now, |(_, since)| *since);
        let problem = problem.into();
        let changed = slot.as_ref().is_none_or(|(last, _)| *last != problem);
        *slot = Some((problem, since));
        drop(slot);
        self.unconfirmed_slot().get_or_insert(since);
        if changed {
            self.0.changes.send_modify(|n| *n += 1);
        }
    }

    /// The source answers again: the set is current.
    pub fn recovered(&self) {
        let was_failing = self.problem_slot().take().is_some();
        *self.unconfirmed_slot() = None;
        if was_failing {
            self.0.changes.send_modify(|n| *n += 1);
        }
    }

    /// Changes when discovery starts failing, its problem changes, or it
    /// recovers (not on a repeat of the same problem).
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.0.changes.subscribe()
    }

    /// The state the Observer sends, `source` being discovery's name, at
    /// `now` (`now_unix_us` on the wall clock).
    pub fn to_proto(
        &self,
        source: &str,
        now: tokio::time::Instant,
        now_unix_us: i64,
    ) -> greet_proto::observe::DiscoveryState {
        let micros = |d: Duration| i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
        let (last_error, failing_since_unix_us) = match &*self.problem_slot() {
            Some((problem, since)) => (
                greet_proto::sanitize::sanitize_truncated(problem, 300),
                now_unix_us.saturating_sub(micros(now.saturating_duration_since(*since))),
            ),
            None => (String::new(), 0),
        };
        greet_proto::observe::DiscoveryState {
            source: source.to_owned(),
            failing_since_unix_us,
            last_error,
            set_age_ms: u64::try_from(self.set_age(now).as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// A failure that keeps the endpoint set (a DNS hiccup): counted, and
    /// the set is as old as the source's last answer, at `last_answer`.
    pub fn kept_stale(&self, last_answer: tokio::time::Instant) {
        self.count_error();
        self.unconfirmed_slot().get_or_insert(last_answer);
    }

    /// How long the endpoint set has gone unconfirmed at `now`: zero while
    /// discovery follows its source (a live watch, a lookup that answered).
    pub fn set_age(&self, now: tokio::time::Instant) -> std::time::Duration {
        self.unconfirmed_slot()
            .map_or(std::time::Duration::ZERO, |since| now.saturating_duration_since(since))
    }

    /// The last problem, while it lasts.
    pub fn problem(&self) -> Option<String> {
        self.problem_slot().as_ref().map(|(problem, _)| problem.clone())
    }

    /// When discovery started failing, while it fails: the endpoint set is
    /// that old (or older).
    pub fn failing_since(&self) -> Option<tokio::time::Instant> {
        self.problem_slot().as_ref().map(|(_, since)| *since)
    }

    /// Counts a failure that keeps the endpoint set (a DNS hiccup).
    pub fn count_error(&self) {
        self.0.errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Failures so far.
    pub fn errors(&self) -> u64 {
        self.0.errors.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn unconfirmed_slot(&self) -> std::sync::MutexGuard<'_, Option<tokio::time::Instant>> {
        self.0.unconfirmed_since.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn problem_slot(&self) -> std::sync::MutexGuard<'_, Option<(String, tokio::time::Instant)>> {
        self.0.problem.lock().unwrap_or_else(|p| p.into_inner())
    }
}
