//! Gauges of one upstream (a balancer member, or a sticky connection): the
//! requests sent to it and not answered yet, when the oldest of them was
//! sent, and the HTTP/2 connections the gateway holds to it. A pod that
//! stopped answering shows in the oldest request's age first.
//!
//! Lock-free: a request bumps a counter and takes a free slot for its send
//! time with one compare-and-swap (almost always the first slot it tries),
//! and frees both when it ends.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// Send times kept per upstream. Requests beyond this many at once are
/// counted but their send time is not kept: the oldest in flight is then
/// the oldest of the first 32, which a hung pod's first requests are.
pub(crate) const SLOTS: usize = 32;

/// Requests in flight to one upstream, and their send times.
#[derive(Debug)]
pub(crate) struct SendTimes {
    epoch: Instant,
    count: AtomicU64,
    /// A request's send time in µs since `epoch`, plus one; 0 = free.
    slots: [AtomicU64; SLOTS],
    /// Where the next request starts looking for a free slot.
    next: AtomicUsize,
}

impl Default for SendTimes {
    fn default() -> Self {
        SendTimes::new(Instant::now())
    }
}

impl SendTimes {
    pub(crate) fn new(epoch: Instant) -> Self {
        SendTimes {
            epoch,
            count: AtomicU64::new(0),
            slots: std::array::from_fn(|_| AtomicU64::new(0)),
            next: AtomicUsize::new(0),
        }
    }

    /// A request sent at `sent`; the slot its time is kept in, if one was free.
    pub(crate) fn start(&self, sent: Instant) -> Option<usize> {
        self.count.fetch_add(1, Ordering::Relaxed);
        let stamp = u64::try_from(sent.saturating_duration_since(self.epoch).as_micros()).unwrap_or(u64::MAX - 1) + 1;
        let first = self.next.fetch_add(1, Ordering::Relaxed);
        (0..SLOTS).map(|i| (first + i) % SLOTS).find(|&slot| {
            self.slots[slot]
                .compare_exchange(0, stamp, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        })
    }

    /// The request [`Self::start`] gave `slot` ended (answered, failed or dropped).
    pub(crate) fn end(&self, slot: Option<usize>) {
        self.count.fetch_sub(1, Ordering::Relaxed);
        if let Some(slot) = slot {
            self.slots[slot].store(0, Ordering::Relaxed);
        }
    }

    /// Requests in flight now.
    pub(crate) fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// How long the oldest request in flight has waited at `now`; zero with none.
    pub(crate) fn oldest(&self, now: Instant) -> Duration {
        let oldest = self
            .slots
            .iter()
            .map(|slot| slot.load(Ordering::Relaxed))
            .filter(|&stamp| stamp != 0)
            .min();
        oldest.map_or(Duration::ZERO, |stamp| {
            now.saturating_duration_since(self.epoch + Duration::from_micros(stamp - 1))
        })
    }
}

/// One request counted in a [`SendTimes`] until dropped.
#[derive(Debug)]
pub(crate) struct Sending {
    times: Arc<SendTimes>,
    slot: Option<usize>,
}

impl Sending {
    pub(crate) fn new(times: &Arc<SendTimes>, sent: Instant) -> Self {
        Sending {
            slot: times.start(sent),
            times: Arc::clone(times),
        }
    }
}

impl Drop for Sending {
    fn drop(&mut self) {
        self.times.end(self.slot);
    }
}

/// Open connections to one upstream: each counted while its I/O lives.
#[derive(Clone, Debug, Default)]
pub(crate) struct OpenConnections(Arc<AtomicU32>);

impl OpenConnections {
    /// A connection opened: counted until the guard drops.
    pub(crate) fn opened(&self) -> OpenGuard {
        self.0.fetch_add(1, Ordering::Relaxed);
        OpenGuard(Arc::clone(&self.0))
    }

    pub(crate) fn count(&self) -> u32 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Held by an open connection.
#[derive(Debug)]
pub(crate) struct OpenGuard(Arc<AtomicU32>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One upstream's gauges at one moment, keyed as the summaries key pods: by
/// pod name, else by the address dialled.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodGauge {
    /// Empty when no reply named the pod yet.
    pub pod_name: String,
    pub endpoint: String,
    pub in_flight: u64,
    pub oldest_in_flight: Duration,
    pub connections: u32,
}

impl PodGauge {
    pub fn key(&self) -> &str {
        if self.pod_name.is_empty() {
            &self.endpoint
        } else {
            &self.pod_name
        }
    }

    pub fn is_idle(&self) -> bool {
        self.in_flight == 0 && self.connections == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_request_in_flight_is_the_earliest_still_unanswered() {
        let epoch = Instant::now();
        let times = Arc::new(SendTimes::new(epoch));
        assert_eq!(times.oldest(epoch + Duration::from_secs(1)), Duration::ZERO);
        let first = Sending::new(&times, epoch + Duration::from_millis(10));
        let second = Sending::new(&times, epoch + Duration::from_millis(30));
        let now = epoch + Duration::from_millis(100);
        assert_eq!(times.count(), 2);
        assert_eq!(times.oldest(now), Duration::from_millis(90));
        drop(first);
        assert_eq!(times.count(), 1);
        assert_eq!(times.oldest(now), Duration::from_millis(70));
        drop(second);
        assert_eq!((times.count(), times.oldest(now)), (0, Duration::ZERO));
    }

    #[test]
    fn requests_beyond_the_slots_are_counted_and_the_first_ones_keep_their_times() {
        let epoch = Instant::now();
        let times = Arc::new(SendTimes::new(epoch));
        let all: Vec<Sending> = (0..SLOTS as u64 + 8)
            .map(|i| Sending::new(&times, epoch + Duration::from_millis(i)))
            .collect();
        assert_eq!(times.count(), SLOTS as u64 + 8);
        let now = epoch + Duration::from_secs(1);
        assert_eq!(times.oldest(now), Duration::from_secs(1));
        drop(all);
        assert_eq!(times.count(), 0);
        // Every slot was freed: a new request gets one.
        let again = Sending::new(&times, epoch + Duration::from_millis(500));
        assert_eq!(times.oldest(now), Duration::from_millis(500));
        drop(again);
    }

    #[test]
    fn connections_count_while_their_guard_lives() {
        let open = OpenConnections::default();
        let a = open.opened();
        let b = open.clone().opened();
        assert_eq!(open.count(), 2);
        drop(a);
        assert_eq!(open.count(), 1);
        drop(b);
        assert_eq!(open.count(), 0);
    }
}
