//! A delay added to every Greet reply, changeable at run time: the demo's
//! and tests' slow pod (least-loaded mode steers away from it).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Shared by the server and whoever slows it down; zero by default.
#[derive(Clone, Debug, Default)]
pub struct ReplyDelay(Arc<AtomicU64>);

impl ReplyDelay {
    pub fn new(delay: Duration) -> Self {
        let shared = ReplyDelay::default();
        shared.set(delay);
        shared
    }

    /// Takes effect for replies started after it.
    pub fn set(&self, delay: Duration) {
        let micros = u64::try_from(delay.as_micros()).unwrap_or(u64::MAX);
        self.0.store(micros, Ordering::Relaxed);
    }

    pub fn get(&self) -> Duration {
        Duration::from_micros(self.0.load(Ordering::Relaxed))
    }

    /// Waits out the delay, if any.
    pub async fn wait(&self) {
        let delay = self.get();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_delay() {
        let delay = ReplyDelay::new(Duration::from_millis(25));
        let seen_by_server = delay.clone();
        assert_eq!(seen_by_server.get(), Duration::from_millis(25));
        delay.set(Duration::ZERO);
        assert_eq!(seen_by_server.get(), Duration::ZERO);
        assert_eq!(ReplyDelay::default().get(), Duration::ZERO);
    }
}
