//! How long one try of a call may wait for a member before the call is
//! retried on another one and the member ejected ("no answer within …").
//!
//! Derived from what the member's answers took, not a flat timeout: a pod
//! that answers in a millisecond and then stops (hung, SIGSTOPped, a node
//! gone without a reset) stalls a request for half a second, not for the
//! whole `--upstream-timeout`.

use std::time::Duration;

/// The limit is this many times the member's latency estimate: the
/// peak-EWMA (load.rs), which takes a slow answer at once and forgets it
/// slowly, so it sits near the member's recent high latency; a pod's p99 is
/// seldom ten times that, a hung pod's answer never comes.
pub(crate) const TRY_LIMIT_FACTOR: f64 = 10.0;

/// Never less than this: a pod answering in 0.3 ms would otherwise get 3 ms,
/// and a busy machine (a GC pause, two cores shared with a build) delays an
/// answer by tens of milliseconds now and then. A retry is harmless (Greet
/// is idempotent) but ejects a healthy pod for 2 s; half a second keeps that
/// rare and a hung pod's stall short.
pub const TRY_LIMIT_FLOOR: Duration = Duration::from_millis(500);

/// A member that never answered yet has no latency to go by: a new pod, or
/// any pod just after the gateway started. Its first answer may include a
/// connect (up to `--connect-timeout`, 1 s by default) and a cold start.
pub(crate) const UNMEASURED_TRY_LIMIT: Duration = Duration::from_secs(2);

/// The limit of one try on a member whose latency estimate is `estimate_us`
/// (`None`: never answered), when the call has `left` before its own
/// deadline: never more than `left`.
pub(crate) fn try_limit(estimate_us: Option<f64>, left: Duration) -> Duration {
    let limit = match estimate_us {
        None => UNMEASURED_TRY_LIMIT,
        Some(us) => {
            let secs = us * TRY_LIMIT_FACTOR / 1e6;
            let secs = if secs.is_nan() { 0.0 } else { secs.min(3600.0) };
            Duration::try_from_secs_f64(secs)
                .unwrap_or(Duration::ZERO)
                .max(TRY_LIMIT_FLOOR)
        }
    };
    limit.min(left)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEFT: Duration = Duration::from_secs(5);

    #[test]
    fn a_fast_pod_gets_the_floor_a_slow_one_ten_times_its_latency() {
        assert_eq!(try_limit(Some(300.0), LEFT), TRY_LIMIT_FLOOR);
        assert_eq!(try_limit(Some(0.0), LEFT), TRY_LIMIT_FLOOR);
        assert_eq!(try_limit(Some(80_000.0), LEFT), Duration::from_millis(800));
        assert_eq!(try_limit(Some(f64::NAN), LEFT), TRY_LIMIT_FLOOR);
    }

    #[test]
    fn the_limit_never_passes_the_calls_own_deadline() {
        assert_eq!(try_limit(Some(2_000_000.0), LEFT), LEFT);
        assert_eq!(
            try_limit(Some(300.0), Duration::from_millis(120)),
            Duration::from_millis(120)
        );
        assert_eq!(try_limit(None, LEFT), UNMEASURED_TRY_LIMIT);
        assert_eq!(try_limit(None, Duration::from_millis(300)), Duration::from_millis(300));
    }
}
