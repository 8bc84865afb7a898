//! Summaries: built once per tick per interval and shared by every
//! subscriber with that interval through a watch channel, which holds only
//! the latest; a subscriber that falls behind skips to it and, the counters
//! being cumulative, loses nothing.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::watch;

use super::EventHub;
use super::shared::Shared;
use greet_proto::observe::{Summary, event};

/// Bounds of a summary interval: a subscriber cannot make the gateway build
/// more often than 4 times a second, nor wait longer than 5 s.
pub(crate) const MIN_INTERVAL: Duration = Duration::from_millis(250);
pub(crate) const MAX_INTERVAL: Duration = Duration::from_millis(5000);

/// The interval a subscriber asked for, clamped; `None` (0) asks for the raw stream.
pub(crate) fn interval_of(summary_interval_ms: u32) -> Option<Duration> {
    (summary_interval_ms > 0)
        .then(|| Duration::from_millis(u64::from(summary_interval_ms)).clamp(MIN_INTERVAL, MAX_INTERVAL))
}

/// The latest summary of one interval, `None` before the first tick.
pub(crate) type Feed = watch::Receiver<Option<Arc<Shared>>>;

#[derive(Default)]
pub(crate) struct Summaries {
    feeds: Mutex<HashMap<Duration, watch::Sender<Option<Arc<Shared>>>>>,
    builds: AtomicU64,
}

impl Summaries {
    /// Summaries built so far, all intervals together.
    pub(crate) fn builds(&self) -> u64 {
        self.builds.load(Ordering::Relaxed)
    }

    /// Subscribers of every interval.
    #[cfg(test)]
    pub(crate) fn subscribers(&self) -> usize {
        self.lock().values().map(|tx| tx.receiver_count()).sum()
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Duration, watch::Sender<Option<Arc<Shared>>>>> {
        self.feeds.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl EventHub {
    /// The feed of summaries every `interval`, starting its ticker if this is
    /// the interval's first subscriber. Needs a Tokio runtime.
    pub fn summary_feed(self: &Arc<Self>, interval: Duration) -> Feed {
        let mut feeds = self.summaries.lock();
        if let Some(tx) = feeds.get(&interval) {
            return tx.subscribe();
        }
        let (tx, rx) = watch::channel(None);
        feeds.insert(interval, tx.clone());
        tokio::spawn(tick(Arc::downgrade(self), interval, tx));
        rx
    }

    /// One summary of every pod's counters now.
    pub fn build_summary(&self, interval: Duration) -> Summary {
        self.summaries.builds.fetch_add(1, Ordering::Relaxed);
        let (mut pods, mut total) = self.counters.summaries();
        if let Some(gauges) = self.gauges.get() {
            super::gauges::merge(&mut pods, &mut total, &gauges());
        }
        Summary {
            timestamp_unix_us: super::unix_micros_now(),
            interval_ms: u32::try_from(interval.as_millis()).unwrap_or(u32::MAX),
            pods,
            total: Some(total),
        }
    }
}

/// Builds a summary every `interval` while anyone listens, then removes the feed.
async fn tick(hub: Weak<EventHub>, interval: Duration, tx: watch::Sender<Option<Arc<Shared>>>) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await; // The first tick is immediate; subscribers start from a snapshot.
    loop {
        ticks.tick().await;
        let Some(hub) = hub.upgrade() else { return };
        if tx.receiver_count() == 0 {
            // Subscribers join under this lock: none can join a feed being removed.
            let mut feeds = hub.summaries.lock();
            if tx.receiver_count() == 0 {
                feeds.remove(&interval);
                return;
            }
        }
        let summary = hub.build_summary(interval);
        tx.send_replace(Some(Arc::new(Shared::new(event::Kind::Summary(summary)))));
    }
}
