//! Prometheus buckets into greet_proto's log-linear latency buckets, so a
//! pod's latency merges and reads like the gateways' histograms.
//!
//! Each Prometheus bucket `(previous le, le]` is spread over the log-linear
//! buckets it overlaps in proportion to the overlap: calls uniform within
//! the bucket, which is what `histogram_quantile` assumes, so percentiles
//! come out as Prometheus would compute them, within the 25 % of the
//! log-linear buckets. The first bucket starts at 0; `+Inf`'s calls are
//! pinned at the last finite bound (where `histogram_quantile` puts them).

use greet_proto::latency_buckets::{BUCKETS, bucket_of, lower_bound_us};

/// Adds `counts` — calls per Prometheus bucket, `(le in µs, calls in
/// (previous le, le])`, ascending by `le` — into `into` (at least
/// [`BUCKETS`] long). A histogram with no finite bound says nothing about
/// latency and adds nothing.
pub(crate) fn spread_into(into: &mut [u64], counts: &[(f64, u64)]) {
    let mut lower = 0.0_f64;
    for &(le, count) in counts {
        if count > 0 {
            if le.is_finite() {
                spread_one(into, lower, le.max(lower), count);
            } else if lower > 0.0 {
                into[bucket_of(lower as u64)] += count;
            }
        }
        if le.is_finite() {
            lower = lower.max(le);
        }
    }
}

/// `count` calls uniform over `[lower, upper)` µs, rounded so that exactly
/// `count` are added (largest remainder; ties to the lower bucket).
fn spread_one(into: &mut [u64], lower: f64, upper: f64, count: u64) {
    let first = bucket_of(lower as u64);
    if upper <= lower {
        into[first] += count;
        return;
    }
    let width = upper - lower;
    let mut shares: Vec<(usize, u64, f64)> = Vec::new();
    for b in first..BUCKETS {
        let from = lower_bound_us(b) as f64;
        if from >= upper {
            break;
        }
        let to = if b + 1 < BUCKETS {
            lower_bound_us(b + 1) as f64
        } else {
            f64::INFINITY
        };
        let overlap = to.min(upper) - from.max(lower);
        if overlap <= 0.0 {
            continue;
        }
        let exact = count as f64 * overlap / width;
        let whole = exact.floor();
        shares.push((b, whole as u64, exact - whole));
    }
    let placed: u64 = shares.iter().map(|s| s.1).sum();
    let mut left = count.saturating_sub(placed);
    let mut order: Vec<usize> = (0..shares.len()).collect();
    order.sort_by(|&a, &b| shares[b].2.total_cmp(&shares[a].2).then(a.cmp(&b)));
    // Float error can leave more than one call per share; go round again.
    while left > 0 && !order.is_empty() {
        for &i in &order {
            if left == 0 {
                break;
            }
            shares[i].1 += 1;
            left -= 1;
        }
    }
    for (b, n, _) in shares {
        into[b] += n;
    }
}

#[cfg(test)]
mod tests;
