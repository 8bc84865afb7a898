use super::*;
use greet_proto::latency_buckets::percentile_us;

fn spread(counts: &[(f64, u64)]) -> Vec<u64> {
    let mut into = vec![0; BUCKETS];
    spread_into(&mut into, counts);
    into
}

/// Prometheus' histogram_quantile over per-bucket counts (`(le, calls)`).
fn histogram_quantile(q: f64, counts: &[(f64, u64)]) -> f64 {
    let total: u64 = counts.iter().map(|c| c.1).sum();
    let rank = q * total as f64;
    let (mut below, mut lower) = (0u64, 0.0);
    for &(le, n) in counts {
        if (below + n) as f64 >= rank && n > 0 {
            if le.is_infinite() {
                return lower;
            }
            return lower + (le - lower) * (rank - below as f64) / n as f64;
        }
        below += n;
        if le.is_finite() {
            lower = le;
        }
    }
    lower
}

#[test]
fn a_bucket_inside_one_log_bucket_lands_whole() {
    // 1,024..1,280 µs is one log-linear bucket (36).
    let into = spread(&[(1_024.0, 0), (1_200.0, 10)]);
    assert_eq!(into[36], 10);
    assert_eq!(into.iter().sum::<u64>(), 10);
}

#[test]
fn spreads_in_proportion_to_overlap_and_keeps_the_total_exact() {
    // (0, 8] µs: eight exact 1 µs buckets... 0..4 one each, 4..8 = bucket 4..7.
    let into = spread(&[(8.0, 8)]);
    assert_eq!(&into[..9], &[1, 1, 1, 1, 1, 1, 1, 1, 0]);
    // 7 calls over 8 buckets of equal width: largest remainder, ties to the lower ones.
    let into = spread(&[(8.0, 7)]);
    assert_eq!(&into[..9], &[1, 1, 1, 1, 1, 1, 1, 0, 0]);
    // Unequal widths: (8, 16] covers buckets 8..12 of 2 µs each.
    let into = spread(&[(8.0, 0), (16.0, 3)]);
    assert_eq!(&into[8..12], &[1, 1, 1, 0]);
    assert_eq!(into.iter().sum::<u64>(), 3);
}

#[test]
fn inf_is_pinned_at_the_last_finite_bound_and_a_zero_width_bucket_lands_whole() {
    let into = spread(&[(0.0, 4), (5_000.0, 0), (10_000.0, 0), (f64::INFINITY, 6)]);
    assert_eq!(into[0], 4, "le=0 (OTel's first bound) is a zero-width bucket");
    assert_eq!(into[bucket_of(10_000)], 6);
    assert_eq!(into.iter().sum::<u64>(), 10);
    // Only +Inf: no bound to pin at, nothing said about latency.
    assert_eq!(spread(&[(f64::INFINITY, 5)]).iter().sum::<u64>(), 0);
}

#[test]
fn percentiles_match_histogram_quantile_within_the_log_buckets_precision() {
    let go = [
        0.005,
        0.01,
        0.025,
        0.05,
        0.1,
        0.25,
        0.5,
        1.0,
        2.5,
        5.0,
        10.0,
        f64::INFINITY,
    ];
    let shapes: [&[u64]; 4] = [
        &[9_000, 500, 300, 100, 50, 30, 10, 5, 3, 1, 1, 0],
        &[0, 0, 100, 4_000, 3_000, 2_000, 500, 100, 0, 0, 0, 0],
        &[1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 7],
        &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1_000],
    ];
    for shape in shapes {
        let counts: Vec<(f64, u64)> = go.iter().map(|s| s * 1e6).zip(shape.iter().copied()).collect();
        let into = spread(&counts);
        assert_eq!(into.iter().sum::<u64>(), shape.iter().sum::<u64>());
        for q in [0.5, 0.9, 0.99] {
            let expected = histogram_quantile(q, &counts);
            let got = percentile_us(&into, q * 100.0).expect("calls were counted");
            let error = (got - expected).abs() / expected;
            assert!(
                error <= 0.25,
                "q={q} shape={shape:?}: {got} µs vs histogram_quantile {expected} µs"
            );
        }
    }
}
