//! Wall-clock helpers for event timestamps.

use std::time::{SystemTime, UNIX_EPOCH};

/// Microseconds since the Unix epoch, 0 if the clock is before it.
pub fn unix_micros_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
