//! `least-loaded`'s scoring: the peak-EWMA latency of each endpoint times
//! its requests in flight (plus one), compared over two random picks (power
//! of two choices), as Finagle and Linkerd do.
//!
//! Pure functions over numbers; the balancer keeps the state and the clock.
//! Not `tower::balance::p2c` / `tower::load::PeakEwma`: `p2c::Balance` owns
//! its services behind `&mut self` (`poll_ready`) and a `Discover` stream of
//! its own, while this balancer is shared by every request through a
//! lock-free snapshot and keeps its own skips and retries; `PeakEwma` wraps
//! one service that is not `Clone`, counts requests in flight by clones of
//! its handle and reads the clock itself, so it cannot sit in a shared
//! member or be tested with given times. The formulas are tower's.

use std::time::Duration;

/// How fast an estimate forgets: the weight of the old value after this long
/// is 1/e. Shorter than Finagle's 10 s: with equal pods a latency spike (a
/// busy core) must not keep one unpicked for long, or the split drifts; a
/// pod 25 ms slower is still tried only every ~0.2 s (measured: 3–5 % of
/// the requests, tests/it/least_loaded.rs).
pub const DECAY: Duration = Duration::from_millis(100);

/// The latency estimate (µs) `elapsed` after it was last set, decayed
/// towards 0: a pod that is not picked is tried again, eventually.
pub(crate) fn decayed(estimate_us: f64, elapsed: Duration) -> f64 {
    estimate_us * weight(elapsed)
}

/// The estimate after a request took `rtt_us`, `elapsed` after the last
/// update: a peak is taken at once, a lower value blended in slowly.
pub(crate) fn observe(estimate_us: f64, elapsed: Duration, rtt_us: f64) -> f64 {
    if rtt_us > estimate_us {
        rtt_us
    } else {
        let w = weight(elapsed);
        estimate_us * w + rtt_us * (1.0 - w)
    }
}

/// What sending one more request to an endpoint costs. The floor keeps the
/// requests in flight counting for an endpoint not measured yet (or idle long
/// enough to decay to 0), so a new pod is not sent everything until it answers.
pub(crate) fn cost(estimate_us: f64, in_flight: u64) -> f64 {
    estimate_us.max(1.0) * (in_flight as f64 + 1.0)
}

/// Two distinct indices below `len` (≥ 2) from one random number.
pub(crate) fn two_of(len: usize, random: u64) -> (usize, usize) {
    let len64 = len as u64;
    let first = random % len64;
    // The second from the other `len - 1`, so the pair is never the same one.
    let second = (first + 1 + (random / len64) % (len64 - 1)) % len64;
    (first as usize, second as usize)
}

/// A 64-bit pseudo-random number from a counter (splitmix64): lock-free,
/// and deterministic for tests.
pub(crate) fn mix(counter: u64) -> u64 {
    let mut z = counter.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn weight(elapsed: Duration) -> f64 {
    (-elapsed.as_secs_f64() / DECAY.as_secs_f64()).exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peak_is_taken_at_once_and_forgotten_slowly() {
        assert_eq!(observe(1000.0, Duration::from_millis(5), 26_000.0), 26_000.0);
        // A lower sample right after barely moves the estimate...
        let next = observe(26_000.0, DECAY / 1000, 1000.0);
        assert!((next - (26_000.0 * (-0.001f64).exp() + 1000.0 * (1.0 - (-0.001f64).exp()))).abs() < 1e-6);
        assert!(next > 25_900.0, "{next}");
        // ...one after a whole DECAY moves it most of the way.
        let later = observe(26_000.0, DECAY, 1000.0);
        assert!(
            (later - (1000.0 + 25_000.0 / std::f64::consts::E)).abs() < 1e-6,
            "{later}"
        );
    }

    #[test]
    fn an_idle_estimate_decays_towards_zero() {
        assert_eq!(decayed(26_000.0, Duration::ZERO), 26_000.0);
        assert!((decayed(26_000.0, DECAY * 2) - 26_000.0 / std::f64::consts::E.powi(2)).abs() < 1e-6);
        assert!(decayed(26_000.0, DECAY * 60) < 1.0);
    }

    #[test]
    fn cost_is_latency_times_requests_in_flight_plus_one() {
        assert_eq!(cost(2000.0, 0), 2000.0);
        assert_eq!(cost(2000.0, 3), 8000.0);
        // Unmeasured: in flight still counts.
        assert_eq!(cost(0.0, 0), 1.0);
        assert_eq!(cost(0.0, 4), 5.0);
        // A slow pod idle loses to a fast one with a few in flight, not many.
        assert!(cost(26_000.0, 0) > cost(1000.0, 3));
        assert!(cost(26_000.0, 0) < cost(1000.0, 30));
    }

    #[test]
    fn two_of_gives_every_distinct_pair_evenly() {
        let mut counts = [[0u32; 3]; 3];
        for i in 0..6000 {
            let (a, b) = two_of(3, mix(i));
            assert_ne!(a, b);
            assert!(a < 3 && b < 3);
            counts[a][b] += 1;
        }
        for (a, row) in counts.iter().enumerate() {
            for (b, &n) in row.iter().enumerate() {
                if a != b {
                    assert!((850..1150).contains(&n), "{counts:?}");
                }
            }
        }
        assert_eq!(two_of(2, 0), (0, 1));
        assert_eq!(two_of(2, 1), (1, 0));
    }
}
