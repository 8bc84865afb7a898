//! Randomness without a dependency: enough for ids and jitter, not for secrets.

/// A fresh random number: each `RandomState` gets new keys.
pub fn seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.finish()
}
