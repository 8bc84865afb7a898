//! The sample of request events summary subscribers ask for: built on the
//! request path at most MAX_SAMPLE_RATE times a second in all, whatever the
//! request rate, and only while someone asked; each subscriber then keeps at
//! most the rate it asked for.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

use tokio::sync::broadcast;

use super::shared::Shared;
use greet_proto::observe::{Event, event};

/// The highest sample rate a subscriber gets, per second.
pub(crate) const MAX_SAMPLE_RATE: u32 = 1000;
/// Samples kept for a slow subscriber; older ones are skipped silently (they are samples).
const CAPACITY: usize = 1024;

/// Microseconds between two events at `per_second` (rounded up, so never
/// more than `per_second` in any second).
pub(crate) fn spacing_us(per_second: u32) -> i64 {
    let per_second = i64::from(per_second.clamp(1, MAX_SAMPLE_RATE));
    (1_000_000 + per_second - 1) / per_second
}

pub(crate) struct Sampler {
    tx: broadcast::Sender<Arc<Shared>>,
    /// Subscribers that asked for samples (their guards count here).
    wanted: Arc<AtomicUsize>,
    /// The earliest timestamp the next sample may have.
    next_us: AtomicI64,
}

impl Default for Sampler {
    fn default() -> Self {
        Sampler {
            tx: broadcast::channel(CAPACITY).0,
            wanted: Arc::default(),
            next_us: AtomicI64::new(0),
        }
    }
}

/// Keeps the sampler on while a subscriber that asked for samples lives.
pub(crate) struct Wanted(Arc<AtomicUsize>);

impl Drop for Wanted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Sampler {
    /// Whether anyone asked for samples (one atomic load: the request path
    /// reads no clock unless someone did).
    pub(crate) fn wanted(&self) -> bool {
        self.wanted.load(Ordering::Acquire) > 0
    }

    /// Whether a request completing at `now_us` should be built as a sample:
    /// someone asked, and the last one is at least 1/MAX_SAMPLE_RATE s old.
    pub(crate) fn take(&self, now_us: i64) -> bool {
        if !self.wanted() {
            return false;
        }
        let next = self.next_us.load(Ordering::Acquire);
        now_us >= next
            && self
                .next_us
                .compare_exchange(
                    next,
                    now_us + spacing_us(MAX_SAMPLE_RATE),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok()
    }

    pub(crate) fn send(&self, event: Arc<Shared>) {
        // No subscriber left is not an error.
        let _ = self.tx.send(event);
    }

    pub(crate) fn subscribe(&self) -> (Wanted, broadcast::Receiver<Arc<Shared>>) {
        self.wanted.fetch_add(1, Ordering::AcqRel);
        (Wanted(Arc::clone(&self.wanted)), self.tx.subscribe())
    }
}

/// One subscriber's filter: keeps a request event only if it is at least
/// `spacing_us(per_second)` after the last one kept, by the events' own
/// timestamps, plus a random part of a spacing. The random part matters:
/// with a fixed spacing, steady round-robin traffic aliases (requests every
/// 20 ms over 3 pods, kept every 60 ms: always the same pod), and a balanced
/// gateway's sample would show one pod. It keeps at most the asked rate,
/// about 2/3 of it on average.
pub(crate) struct RateFilter {
    spacing_us: i64,
    next_us: Option<i64>,
    /// xorshift64 state: a cheap generator is enough to break the aliasing.
    random: u64,
}

impl RateFilter {
    pub(crate) fn new(per_second: u32) -> Self {
        // Any odd seed works; a per-filter one keeps subscribers from agreeing.
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9e37_79b9_7f4a_7c15, |d| d.as_nanos() as u64);
        Self::seeded(per_second, seed)
    }

    pub(crate) fn seeded(per_second: u32, seed: u64) -> Self {
        RateFilter {
            spacing_us: spacing_us(per_second),
            next_us: None,
            random: seed | 1,
        }
    }

    fn jitter_us(&mut self) -> i64 {
        let mut x = self.random;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.random = x;
        (x % self.spacing_us.max(1) as u64) as i64
    }

    pub(crate) fn keep(&mut self, event: &Event) -> bool {
        let Some(event::Kind::Request(request)) = &event.kind else {
            return false;
        };
        let at = request.timestamp_unix_us;
        if self.next_us.is_some_and(|next| at < next) {
            return false;
        }
        self.next_us = Some(at + self.spacing_us + self.jitter_us());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use greet_proto::observe::RequestEvent;

    fn at(us: i64) -> Event {
        Event {
            kind: Some(event::Kind::Request(RequestEvent {
                timestamp_unix_us: us,
                ..RequestEvent::default()
            })),
        }
    }

    #[test]
    fn spacing_rounds_up_and_is_capped() {
        assert_eq!(spacing_us(1), 1_000_000);
        assert_eq!(spacing_us(3), 333_334);
        assert_eq!(spacing_us(1000), 1_000);
        assert_eq!(spacing_us(50_000), 1_000);
        assert_eq!(spacing_us(0), 1_000_000);
    }

    #[test]
    fn a_filter_keeps_at_most_its_rate_in_any_second() {
        let mut filter = RateFilter::seeded(3, 7);
        let kept: Vec<i64> = (0..400)
            .map(|i| i * 10_000)
            .filter(|&us| filter.keep(&at(us)))
            .collect();
        for window in kept.windows(4) {
            assert!(window[3] - window[0] >= 1_000_000, "{window:?}");
        }
        // Between 1/2 and all of the asked rate: 6..=12 over 4 s.
        assert!((6..=12).contains(&kept.len()), "{kept:?}");
    }

    #[test]
    fn a_sample_of_steady_round_robin_traffic_shows_every_pod() {
        // Every 20 ms, pods 0, 1, 2 in turn; 20 a second asked (50 ms apart):
        // a fixed spacing would keep every third request, all on one pod.
        let mut filter = RateFilter::seeded(20, 42);
        let mut per_pod = [0; 3];
        for i in 0..1_500 {
            if filter.keep(&at(i * 20_000)) {
                per_pod[i as usize % 3] += 1;
            }
        }
        let kept: u32 = per_pod.iter().sum();
        for n in per_pod {
            assert!(n * 5 >= kept, "every pod has at least a fifth: {per_pod:?}");
        }
    }

    #[test]
    fn the_sampler_builds_nothing_unless_asked_and_then_at_most_its_cap() {
        let sampler = Sampler::default();
        assert!(!sampler.take(5_000_000));
        let (wanted, _rx) = sampler.subscribe();
        assert!(sampler.take(5_000_000));
        assert!(!sampler.take(5_000_999));
        assert!(sampler.take(5_001_000));
        drop(wanted);
        assert!(!sampler.take(9_000_000));
    }

    #[test]
    fn after_a_kept_event_the_next_comes_one_to_two_spacings_later() {
        let mut filter = RateFilter::seeded(1, 3);
        assert!(filter.keep(&at(0)));
        assert!(!filter.keep(&at(999_999)), "never within one spacing");
        let next = (1_000_000..2_000_000).step_by(1_000).find(|&us| filter.keep(&at(us)));
        assert!(next.is_some(), "kept again within two spacings");
        assert!(!filter.keep(&at(next.unwrap() + 1)));
    }

    #[test]
    fn what_the_sampler_sends_reaches_its_subscribers() {
        let sampler = Sampler::default();
        let (_wanted, mut rx) = sampler.subscribe();
        let Some(kind) = at(42).kind else { unreachable!() };
        sampler.send(Arc::new(Shared::new(kind)));
        let received = rx.try_recv().unwrap();
        let Some(event::Kind::Request(request)) = &received.kind else {
            panic!("a request event, got {received:?}")
        };
        assert_eq!(request.timestamp_unix_us, 42);
    }
}
