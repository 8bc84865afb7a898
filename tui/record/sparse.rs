//! A summary's latency histogram as runs of zeros and counts: 100 buckets
//! of which a pod fills a dozen, so a dense list would be most of a
//! recording's bytes (a byte per empty bucket, 4 summaries a second per
//! pod). On read, a histogram longer than [`MAX_BUCKETS`] is damage, not an
//! allocation.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Far above greet_proto's bucket count; a longer one is not a histogram.
const MAX_BUCKETS: u32 = 4096;

#[derive(Serialize, Deserialize)]
struct Sparse {
    len: u32,
    /// (empty buckets before it, its count) for every bucket with a count.
    filled: Vec<(u32, u64)>,
}

fn to_sparse(buckets: &[u64]) -> Sparse {
    let mut filled = Vec::new();
    let mut empty = 0u32;
    for &count in buckets {
        if count == 0 {
            empty += 1;
        } else {
            filled.push((empty, count));
            empty = 0;
        }
    }
    Sparse {
        len: u32::try_from(buckets.len()).unwrap_or(u32::MAX),
        filled,
    }
}

fn from_sparse(sparse: Sparse) -> Result<Vec<u64>, String> {
    if sparse.len > MAX_BUCKETS {
        return Err(format!("a histogram of {} buckets", sparse.len));
    }
    let mut buckets = vec![0; sparse.len as usize];
    let mut at = 0usize;
    for (empty, count) in sparse.filled {
        at = at.saturating_add(empty as usize);
        let Some(bucket) = buckets.get_mut(at) else {
            return Err(format!("a histogram's bucket {at} past its {} buckets", sparse.len));
        };
        *bucket = count;
        at += 1;
    }
    Ok(buckets)
}

pub(crate) fn serialize<S: Serializer>(buckets: &Option<Vec<u64>>, s: S) -> Result<S::Ok, S::Error> {
    buckets.as_deref().map(to_sparse).serialize(s)
}

pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u64>>, D::Error> {
    Option::<Sparse>::deserialize(d)?
        .map(from_sparse)
        .transpose()
        .map_err(D::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::{Sparse, from_sparse, to_sparse};

    #[test]
    fn histograms_keep_their_counts_and_length() {
        for buckets in [vec![], vec![0, 0, 0], vec![5, 0, 0, 7, 1, 0], vec![0, 3]] {
            assert_eq!(from_sparse(to_sparse(&buckets)), Ok(buckets));
        }
    }

    #[test]
    fn a_damaged_histogram_is_refused() {
        let huge = Sparse {
            len: u32::MAX,
            filled: vec![],
        };
        assert_eq!(from_sparse(huge), Err("a histogram of 4294967295 buckets".to_owned()));
        let past = Sparse {
            len: 3,
            filled: vec![(1, 4), (1, 9)],
        };
        assert_eq!(
            from_sparse(past),
            Err("a histogram's bucket 3 past its 3 buckets".to_owned())
        );
    }
}
