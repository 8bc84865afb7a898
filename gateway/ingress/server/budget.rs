//! What one ingress connection's calls are counted by: streams its client
//! reset before their response began (Envoy's "premature resets", the
//! rapid-reset attack's footprint), and calls still unwinding.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use tokio::sync::Notify;
use tokio::time::Instant;

/// A connection is flagged only after this many streams ...
pub(super) const PREMATURE_MIN_STREAMS: u64 = 100;
/// ... when at least this share of them (percent) was reset by the client
/// before their response began. Envoy: 500 streams, 50 %, each within 1 s
/// of its start; fewer here, as a call reset before its head costs an
/// upstream stream.
pub(super) const PREMATURE_PERCENT: u64 = 50;

#[derive(Debug)]
pub(super) struct Budget {
    streams: AtomicU64,
    premature: AtomicU64,
    /// Call tasks alive, resets or not: a reset stream frees its h2 slot at
    /// once, its task only when it has unwound.
    live: AtomicUsize,
    /// When the last call ended (or the connection began).
    quiet_since: Mutex<Instant>,
    /// Told once when the premature share is passed.
    pub(super) flagged: Notify,
    told: AtomicBool,
}

impl Budget {
    pub(super) fn new() -> Self {
        Budget {
            streams: AtomicU64::new(0),
            premature: AtomicU64::new(0),
            live: AtomicUsize::new(0),
            quiet_since: Mutex::new(Instant::now()),
            flagged: Notify::new(),
            told: AtomicBool::new(false),
        }
    }

    /// A stream the client opened.
    pub(super) fn opened(&self) {
        self.streams.fetch_add(1, Ordering::Relaxed);
    }

    /// A stream the client reset before its response began.
    pub(super) fn premature_reset(&self) {
        let premature = self.premature.fetch_add(1, Ordering::Relaxed) + 1;
        let streams = self.streams.load(Ordering::Relaxed);
        if over_threshold(streams, premature) && !self.told.swap(true, Ordering::AcqRel) {
            self.flagged.notify_one();
        }
    }

    pub(super) fn live(&self) -> usize {
        self.live.load(Ordering::Acquire)
    }

    /// A call task started; it counts until the guard is dropped.
    pub(super) fn call_started(self: &std::sync::Arc<Self>) -> LiveCall {
        self.live.fetch_add(1, Ordering::AcqRel);
        LiveCall(std::sync::Arc::clone(self))
    }

    /// Since when the connection has had no call (meaningful while `live` is 0).
    pub(super) fn quiet_since(&self) -> Instant {
        *self.quiet_since.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Whether `premature` of `streams` passes the threshold.
pub(super) fn over_threshold(streams: u64, premature: u64) -> bool {
    streams >= PREMATURE_MIN_STREAMS && premature * 100 >= streams * PREMATURE_PERCENT
}

/// A live call; dropping it marks when the connection went quiet.
pub(super) struct LiveCall(std::sync::Arc<Budget>);

impl Drop for LiveCall {
    fn drop(&mut self) {
        *self.0.quiet_since.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        self.0.live.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_of_at_least_a_hundred_streams_reset_early_flags_the_connection() {
        assert!(!over_threshold(99, 99), "too few streams to judge");
        assert!(over_threshold(100, 50));
        assert!(!over_threshold(100, 49));
        assert!(over_threshold(1000, 500));
        assert!(!over_threshold(1000, 499));
    }

    #[tokio::test]
    async fn the_connection_is_told_once() {
        let budget = Budget::new();
        for _ in 0..100 {
            budget.opened();
        }
        for _ in 0..49 {
            budget.premature_reset();
        }
        let told = tokio::time::timeout(std::time::Duration::from_millis(10), budget.flagged.notified()).await;
        assert!(told.is_err(), "49 of 100 is under half");
        budget.premature_reset();
        budget.flagged.notified().await;
        budget.premature_reset();
        let again = tokio::time::timeout(std::time::Duration::from_millis(10), budget.flagged.notified()).await;
        assert!(again.is_err(), "told once only");
    }
}
