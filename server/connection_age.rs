//! The max connection age, changeable at run time: when each connection is
//! due its GOAWAY. grpc-go's `MaxConnectionAge` with its ±10 % jitter, so
//! connections opened together do not all reconnect together.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

/// Shared by the server and whoever changes the age; `None`: no GOAWAY.
/// A change applies to open connections (their age counted from their
/// start) as well as new ones.
#[derive(Clone, Debug, Default)]
pub struct MaxConnectionAge(Arc<Shared>);

#[derive(Debug, Default)]
struct Shared {
    age: watch::Sender<Option<Duration>>,
    /// Connections sent a GOAWAY for their age that are still open.
    closing: AtomicUsize,
}

impl MaxConnectionAge {
    pub fn new(age: Option<Duration>) -> Self {
        MaxConnectionAge(Arc::new(Shared {
            age: watch::Sender::new(age),
            closing: AtomicUsize::new(0),
        }))
    }

    /// Open connections older than `age` (with their jitter) get their
    /// GOAWAY now; `None` spares every connection not yet sent one.
    pub fn set(&self, age: Option<Duration>) {
        self.0.age.send_replace(age);
    }

    pub fn get(&self) -> Option<Duration> {
        *self.0.age.borrow()
    }

    /// How many connections were sent their GOAWAY for their age and are
    /// still open (finishing their calls, or their client has not closed
    /// them yet). Zero after clearing the age: no connection moves any more.
    pub fn closing(&self) -> usize {
        self.0.closing.load(Ordering::SeqCst)
    }

    /// Counts a connection in [`Self::closing`] until the guard is dropped.
    pub(super) fn closing_guard(&self) -> ClosingGuard {
        self.0.closing.fetch_add(1, Ordering::SeqCst);
        ClosingGuard(Arc::clone(&self.0))
    }

    /// Completes when a connection that started at `start`, with `jitter`,
    /// is due its GOAWAY under the age as it is then.
    pub async fn reached(&self, start: Instant, jitter: Jitter) {
        let mut age = self.0.age.subscribe();
        loop {
            let due = goaway_at(start, *age.borrow_and_update(), jitter);
            let wait = async {
                match due {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = wait => return,
                // The sender lives in `self`: this cannot end while we wait.
                _ = age.changed() => {}
            }
        }
    }
}

/// A connection in [`MaxConnectionAge::closing`] while it lives.
pub(super) struct ClosingGuard(Arc<Shared>);

impl Drop for ClosingGuard {
    fn drop(&mut self) {
        self.0.closing.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A connection's share of the spread: its age is `age × (1 + fraction)`,
/// the fraction in [-0.1, 0.1], drawn once when it opens (as grpc-go does).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Jitter(f64);

/// The spread around the age: ±10 %, as grpc-go's.
pub(crate) const JITTER_SPREAD: f64 = 0.1;

impl Jitter {
    pub const NONE: Jitter = Jitter(0.0);

    /// `fraction` of the age, clamped to ±[`JITTER_SPREAD`].
    pub fn new(fraction: f64) -> Jitter {
        Jitter(fraction.clamp(-JITTER_SPREAD, JITTER_SPREAD))
    }

    /// A random jitter, uniform over ±[`JITTER_SPREAD`].
    pub fn random() -> Jitter {
        let unit = (greet_runtime::random::seed() >> 11) as f64 / (1u64 << 53) as f64;
        Jitter::new((unit * 2.0 - 1.0) * JITTER_SPREAD)
    }
}

/// When a connection that opened at `start` gets its GOAWAY: `age` with the
/// connection's `jitter` after `start` (at once when that has passed);
/// never without an age, nor with one too long to reach (`Duration::MAX`
/// read as "never": the arithmetic would overflow).
pub(crate) fn goaway_at(start: Instant, age: Option<Duration>, jitter: Jitter) -> Option<Instant> {
    let after = Duration::try_from_secs_f64(age?.as_secs_f64() * (1.0 + jitter.0)).ok()?;
    start.checked_add(after)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goaway_is_the_age_after_the_start_stretched_by_the_jitter() {
        let start = Instant::now();
        let age = Some(Duration::from_secs(3));
        assert_eq!(
            goaway_at(start, age, Jitter::NONE),
            Some(start + Duration::from_secs(3))
        );
        assert_eq!(
            goaway_at(start, age, Jitter::new(0.1)),
            Some(start + Duration::from_millis(3300))
        );
        assert_eq!(
            goaway_at(start, age, Jitter::new(-0.1)),
            Some(start + Duration::from_millis(2700))
        );
        assert_eq!(goaway_at(start, None, Jitter::new(0.05)), None);
        assert_eq!(
            goaway_at(start, Some(Duration::MAX), Jitter::new(0.1)),
            None,
            "never, not a panic"
        );
        assert_eq!(
            goaway_at(start, Some(Duration::from_secs(u64::MAX / 2)), Jitter::NONE),
            None
        );
    }

    #[test]
    fn jitter_stays_within_ten_percent_and_varies() {
        assert_eq!(Jitter::new(0.5), Jitter::new(0.1));
        assert_eq!(Jitter::new(-0.5), Jitter::new(-0.1));
        let draws: Vec<f64> = (0..1000).map(|_| Jitter::random().0).collect();
        assert!(draws.iter().all(|j| (-0.1..=0.1).contains(j)), "{draws:?}");
        // Uniform over ±10 %: 1,000 draws reach both outer fifths.
        assert!(draws.iter().any(|j| *j < -0.06) && draws.iter().any(|j| *j > 0.06));
    }

    #[tokio::test(start_paused = true)]
    async fn reached_follows_the_age_as_it_changes() {
        let age = MaxConnectionAge::default();
        let start = Instant::now();
        let connection = tokio::spawn({
            let age = age.clone();
            async move {
                age.reached(start, Jitter::new(0.1)).await;
                start.elapsed()
            }
        });
        // No age: no GOAWAY, however long the connection lives.
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert!(!connection.is_finished());
        // An age set later counts from the connection's start: it is
        // long past, so the GOAWAY is due at once.
        age.set(Some(Duration::from_secs(10)));
        assert_eq!(connection.await.unwrap(), Duration::from_secs(3600));
    }

    #[tokio::test(start_paused = true)]
    async fn a_longer_age_or_none_postpones_the_goaway() {
        let age = MaxConnectionAge::new(Some(Duration::from_secs(10)));
        let start = Instant::now();
        let connection = tokio::spawn({
            let age = age.clone();
            async move {
                age.reached(start, Jitter::NONE).await;
                start.elapsed()
            }
        });
        tokio::time::sleep(Duration::from_secs(5)).await;
        age.set(None);
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(!connection.is_finished(), "cleared: no GOAWAY");
        age.set(Some(Duration::from_secs(100)));
        assert_eq!(connection.await.unwrap(), Duration::from_secs(100));
    }
}
