//! One pod's requests by method, for the summaries: atomics found through an
//! immutable map swapped whole on a method's first request, as the pods' are.
//! The names come from clients (any path reaches the gRPC ingress), so only
//! the first [`MAX_METHODS`] are kept apart.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use greet_proto::observe::MethodCount;

pub(crate) use greet_proto::limits::{MAX_METHOD_CHARS, MAX_METHODS};

pub(crate) const OTHER_METHODS: &str = "(other methods)";

#[derive(Default)]
struct Count {
    requests: AtomicU64,
    errors: AtomicU64,
}

impl Count {
    fn record(&self, failed: bool) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if failed {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[derive(Default)]
pub(crate) struct MethodCounters {
    methods: ArcSwap<BTreeMap<String, Arc<Count>>>,
    /// Serializes adding a method (never held by the common path).
    adding: Mutex<()>,
}

impl MethodCounters {
    /// Counts one request of `method`.
    pub(crate) fn record(&self, method: &str, failed: bool) {
        if let Some(count) = self.methods.load().get(method) {
            count.record(failed);
            return;
        }
        self.add(method).record(failed);
    }

    /// The slow path: a method's first request copies the map with it added.
    fn add(&self, method: &str) -> Arc<Count> {
        let _adding = self.adding.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let current = self.methods.load_full();
        let named = current.len() - usize::from(current.contains_key(OTHER_METHODS));
        let key = if current.contains_key(method) || named < MAX_METHODS {
            method
        } else {
            OTHER_METHODS
        };
        if let Some(count) = current.get(key) {
            return Arc::clone(count);
        }
        let count = Arc::new(Count::default());
        let mut methods = BTreeMap::clone(&current);
        methods.insert(key.to_owned(), Arc::clone(&count));
        self.methods.store(Arc::new(methods));
        count
    }

    /// Every method's counts, ascending by method.
    pub(crate) fn counts(&self) -> Vec<MethodCount> {
        self.methods
            .load()
            .iter()
            .map(|(method, count)| MethodCount {
                method: method.clone(),
                requests: count.requests.load(Ordering::Relaxed),
                errors: count.errors.load(Ordering::Relaxed),
            })
            .collect()
    }
}

/// Adds `pod`'s counts into `total` (both ascending by method, and so it stays).
pub(crate) fn merge_methods(total: &mut Vec<MethodCount>, pod: &[MethodCount]) {
    for count in pod {
        match total.binary_search_by(|t| t.method.cmp(&count.method)) {
            Ok(at) => {
                total[at].requests += count.requests;
                total[at].errors += count.errors;
            }
            Err(at) => total.insert(at, count.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(method: &str, requests: u64, errors: u64) -> MethodCount {
        MethodCount {
            method: method.into(),
            requests,
            errors,
        }
    }

    #[test]
    fn methods_are_counted_apart_up_to_the_limit_then_as_others() {
        let counters = MethodCounters::default();
        counters.record("/b.S/M", false);
        counters.record("", true);
        counters.record("/b.S/M", true);
        assert_eq!(counters.counts(), [count("", 1, 1), count("/b.S/M", 2, 1)]);
        for i in 0..MAX_METHODS + 5 {
            counters.record(&format!("/x.S/M{i:03}"), false);
        }
        let counts = counters.counts();
        assert_eq!(counts.len(), MAX_METHODS + 1, "{MAX_METHODS} named and the others");
        let others = counts.iter().find(|c| c.method == OTHER_METHODS).unwrap();
        // "" and /b.S/M took 2 of the 16 places: 14 of the 21 new ones are named.
        assert_eq!(others.requests, 7);
        counters.record("/b.S/M", false);
        let named = counters.counts().into_iter().find(|c| c.method == "/b.S/M").unwrap();
        assert_eq!(named.requests, 3, "a named method stays named");
    }

    #[test]
    fn pods_methods_add_up() {
        let mut total = vec![];
        merge_methods(&mut total, &[count("/a", 1, 0), count("/c", 2, 1)]);
        merge_methods(&mut total, &[count("/b", 4, 0), count("/c", 1, 1)]);
        assert_eq!(total, [count("/a", 1, 0), count("/b", 4, 0), count("/c", 3, 2)]);
    }
}
