//! The latency histogram's fixed log-linear buckets (documented in
//! proto/observe.proto): four per power of two, so percentiles are within
//! 25 %, and the same everywhere (the gateway counts into them, greet-top
//! reads them), so histograms merge by adding counts.

/// Buckets in every histogram; the last one is open-ended.
pub const BUCKETS: usize = 100;

/// The bucket counting a latency of `latency_us` microseconds.
pub fn bucket_of(latency_us: u64) -> usize {
    if latency_us < 4 {
        return latency_us as usize;
    }
    // 2^e <= latency < 2^(e+1), e >= 2; the two bits below the top one pick
    // the quarter of that octave.
    let e = 63 - latency_us.leading_zeros();
    let quarter = ((latency_us >> (e - 2)) & 3) as usize;
    (4 * (e as usize - 1) + quarter).min(BUCKETS - 1)
}

/// The smallest latency, in microseconds, that bucket `b` counts.
pub fn lower_bound_us(b: usize) -> u64 {
    if b < 4 {
        return b as u64;
    }
    let e = b / 4 + 1;
    ((4 + b % 4) as u64) << (e - 2)
}

/// Adds `from` into `into`, bucket by bucket (how histograms merge).
pub fn merge_into(into: &mut Vec<u64>, from: &[u64]) {
    if into.len() < from.len() {
        into.resize(from.len(), 0);
    }
    for (total, count) in into.iter_mut().zip(from) {
        *total += count;
    }
}

/// `later - earlier`, bucket by bucket: what two cumulative histograms of
/// one source counted between them. A bucket that shrank (the source
/// restarted) counts 0.
pub fn difference(later: &[u64], earlier: &[u64]) -> Vec<u64> {
    let mut delta: Vec<u64> = later
        .iter()
        .enumerate()
        .map(|(b, n)| n.saturating_sub(earlier.get(b).copied().unwrap_or(0)))
        .collect();
    while delta.last() == Some(&0) {
        delta.pop();
    }
    delta
}

/// The `percentile` (0..=100) latency of `counts`, in microseconds: the
/// nearest-rank request's bucket, interpolated linearly inside it (as
/// Prometheus' histogram_quantile does). `None` when nothing was counted.
pub fn percentile_us(counts: &[u64], percentile: f64) -> Option<f64> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = ((percentile / 100.0) * total as f64).ceil().clamp(1.0, total as f64) as u64;
    let mut below = 0;
    for (b, &n) in counts.iter().enumerate() {
        if below + n >= rank {
            let lower = lower_bound_us(b) as f64;
            // The open-ended last bucket has no width to interpolate over.
            if b + 1 >= BUCKETS {
                return Some(lower);
            }
            let width = (lower_bound_us(b + 1) - lower_bound_us(b)) as f64;
            return Some(lower + width * (rank - below) as f64 / n as f64);
        }
        below += n;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_exact_below_8_us_then_four_per_power_of_two() {
        for us in 0..8 {
            assert_eq!(bucket_of(us), us as usize);
        }
        let pairs: Vec<(u64, usize)> = [8, 9, 10, 15, 16, 19, 20, 23, 24, 31, 32, 39, 40, 1_000, 1_023, 1_024]
            .iter()
            .map(|&us| (us, bucket_of(us)))
            .collect();
        assert_eq!(
            pairs,
            [
                (8, 8),
                (9, 8),
                (10, 9),
                (15, 11),
                (16, 12),
                (19, 12),
                (20, 13),
                (23, 13),
                (24, 14),
                (31, 15),
                (32, 16),
                (39, 16),
                (40, 17),
                (1_000, 35),
                (1_023, 35),
                (1_024, 36)
            ]
        );
        assert_eq!(lower_bound_us(35), 896);
        assert_eq!(lower_bound_us(36), 1_024);
    }

    #[test]
    fn every_bucket_starts_where_the_previous_one_ends() {
        for b in 1..BUCKETS {
            let lower = lower_bound_us(b);
            assert_eq!(bucket_of(lower), b, "bucket {b} starts at {lower}");
            assert_eq!(bucket_of(lower - 1), b - 1, "bucket {b} starts at {lower}");
            // Never wider than a quarter of where it starts (from 4 µs on).
            if b >= 4 && b + 1 < BUCKETS {
                assert!(lower_bound_us(b + 1) - lower <= lower / 4, "bucket {b}");
            }
        }
        assert_eq!(lower_bound_us(BUCKETS - 1), 58_720_256);
        assert_eq!(bucket_of(58_720_255), BUCKETS - 2);
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn a_difference_is_what_was_counted_between_two_histograms() {
        assert_eq!(difference(&[5, 3, 0, 2], &[5, 1]), [0, 2, 0, 2]);
        assert_eq!(difference(&[5, 3], &[5, 3]), Vec::<u64>::new());
        // A source that restarted counts from zero again: nothing negative.
        assert_eq!(difference(&[1], &[4, 2]), Vec::<u64>::new());
    }

    #[test]
    fn percentiles_interpolate_inside_the_nearest_rank_bucket() {
        assert_eq!(percentile_us(&[], 50.0), None);
        assert_eq!(percentile_us(&[0, 0], 99.0), None);
        // Exact buckets below 4 µs: 3 requests of 1 µs, 1 of 3 µs.
        assert_eq!(percentile_us(&[0, 3, 0, 1], 50.0), Some(1.0 + 2.0 / 3.0));
        assert_eq!(percentile_us(&[0, 3, 0, 1], 99.0), Some(4.0));
        // 100 requests in the bucket 1,024..1,280 µs: p50 is half way in.
        let mut counts = vec![0; 37];
        counts[36] = 100;
        assert_eq!(percentile_us(&counts, 50.0), Some(1_152.0));
        assert_eq!(percentile_us(&counts, 99.0), Some(1_024.0 + 256.0 * 0.99));
        // 99 fast, 1 slow: p99 stays in the fast bucket, p100 is the slow one.
        counts[36] = 99;
        counts.resize(50, 0);
        counts[49] = 1;
        assert_eq!(percentile_us(&counts, 99.0), Some(1_280.0));
        assert_eq!(percentile_us(&counts, 100.0), Some(lower_bound_us(50) as f64));
        // The open-ended last bucket reports where it starts.
        let mut open = vec![0; BUCKETS];
        open[BUCKETS - 1] = 2;
        assert_eq!(percentile_us(&open, 50.0), Some(58_720_256.0));
    }
}
