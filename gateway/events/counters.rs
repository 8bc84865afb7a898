//! Per-pod counters the request path updates without a lock: each pod's
//! counters are atomics, found through an immutable map swapped whole
//! (ArcSwap) on the rare first request of a new pod.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use super::RequestOutcome;
use super::histogram::Histogram;
use super::methods::{MethodCounters, merge_methods};
use greet_proto::latency_buckets::merge_into;
use greet_proto::observe::{CodeCount, PodSummary, PodTotals};

/// gRPC codes 0..=16; a failed request's code indexes `error_codes`.
pub(crate) const CODES: usize = 17;
/// Every mode, indexed by `Mode as usize`.
pub(crate) const MODES: usize = greet_proto::Mode::ALL.len();
/// Where a code outside 1..=16 is counted.
const UNKNOWN_CODE: usize = 2;

/// One pod's counters (or one endpoint's, when the pod is unknown).
pub(crate) struct PodCounters {
    pod_name: String,
    endpoint: String,
    /// The last IP the pod reported; replaced only when it changes.
    pod_ip: ArcSwap<String>,
    requests: AtomicU64,
    latency_us_sum: AtomicU64,
    attempts: AtomicU64,
    error_codes: [AtomicU64; CODES],
    /// Requests by mode and code (0 = OK), for the Prometheus metrics.
    outcomes: [[AtomicU64; CODES]; MODES],
    /// Attempts after the first, of the requests this pod finished.
    retries: AtomicU64,
    /// Requests (and failed ones) that began before a mode change and ended after it.
    carried_over_requests: AtomicU64,
    carried_over_errors: AtomicU64,
    histogram: Histogram,
    methods: MethodCounters,
}

/// One pod's requests by mode and code, and its retries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodOutcomes {
    /// The pod's name, else its endpoint address (empty when none was tried).
    pub pod: String,
    pub outcomes: [[u64; CODES]; MODES],
    pub retries: u64,
}

impl PodCounters {
    fn new(outcome: &RequestOutcome) -> Self {
        PodCounters {
            pod_name: outcome.pod_name.clone(),
            endpoint: outcome.endpoint.clone(),
            pod_ip: ArcSwap::from_pointee(outcome.pod_ip.clone()),
            requests: AtomicU64::new(0),
            latency_us_sum: AtomicU64::new(0),
            attempts: AtomicU64::new(0),
            error_codes: std::array::from_fn(|_| AtomicU64::new(0)),
            outcomes: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
            retries: AtomicU64::new(0),
            carried_over_requests: AtomicU64::new(0),
            carried_over_errors: AtomicU64::new(0),
            histogram: Histogram::default(),
            methods: MethodCounters::default(),
        }
    }

    fn record(&self, outcome: &RequestOutcome, carried_over: bool) {
        self.latency_us_sum.fetch_add(outcome.latency_us, Ordering::Relaxed);
        self.attempts.fetch_add(u64::from(outcome.attempts), Ordering::Relaxed);
        self.histogram.record(outcome.latency_us);
        let code = usize::try_from(outcome.grpc_code)
            .ok()
            .filter(|&c| c < CODES)
            .unwrap_or(UNKNOWN_CODE);
        if code != 0 {
            self.error_codes[code].fetch_add(1, Ordering::Relaxed);
        }
        if carried_over {
            self.carried_over_requests.fetch_add(1, Ordering::Relaxed);
            if code != 0 {
                self.carried_over_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.methods.record(&outcome.method, code != 0);
        self.outcomes[outcome.mode as usize][code].fetch_add(1, Ordering::Relaxed);
        if outcome.attempts > 1 {
            self.retries
                .fetch_add(u64::from(outcome.attempts - 1), Ordering::Relaxed);
        }
        if !outcome.pod_ip.is_empty() && **self.pod_ip.load() != outcome.pod_ip {
            self.pod_ip.store(Arc::new(outcome.pod_ip.clone()));
        }
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    fn errors(&self) -> u64 {
        self.error_codes.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    fn totals(&self) -> PodTotals {
        PodTotals {
            pod_name: self.pod_name.clone(),
            pod_ip: String::clone(&self.pod_ip.load()),
            requests: self.requests.load(Ordering::Relaxed),
            errors: self.errors(),
            latency_us_sum: self.latency_us_sum.load(Ordering::Relaxed),
            endpoint: self.endpoint.clone(),
            methods: self.methods.counts(),
        }
    }

    fn summary(&self) -> PodSummary {
        let error_codes: Vec<CodeCount> = self
            .error_codes
            .iter()
            .enumerate()
            .map(|(code, count)| CodeCount {
                code: code as i32,
                count: count.load(Ordering::Relaxed),
            })
            .filter(|c| c.count > 0)
            .collect();
        PodSummary {
            pod_name: self.pod_name.clone(),
            pod_ip: String::clone(&self.pod_ip.load()),
            endpoint: self.endpoint.clone(),
            requests: self.requests.load(Ordering::Relaxed),
            errors: error_codes.iter().map(|c| c.count).sum(),
            error_codes,
            attempts: self.attempts.load(Ordering::Relaxed),
            latency_us_sum: self.latency_us_sum.load(Ordering::Relaxed),
            latency_buckets: self.histogram.counts(),
            methods: self.methods.counts(),
            // Gauges, read from the upstreams when a summary is built (gauges.rs).
            in_flight: 0,
            oldest_in_flight_us: 0,
            connections: 0,
            carried_over_requests: self.carried_over_requests.load(Ordering::Relaxed),
            carried_over_errors: self.carried_over_errors.load(Ordering::Relaxed),
        }
    }
}

/// Every pod's counters, keyed by pod name, or by endpoint when the pod is unknown.
#[derive(Default)]
pub(crate) struct Counters {
    pods: ArcSwap<BTreeMap<String, Arc<PodCounters>>>,
    /// Serializes adding a pod (never held by the common path).
    adding: Mutex<()>,
    /// Whole requests' times, retries included (the per-pod histograms
    /// count each request's last attempt only).
    requests: Histogram,
    request_latency_us_sum: AtomicU64,
}

fn key_of(outcome: &RequestOutcome) -> &str {
    if outcome.pod_name.is_empty() {
        &outcome.endpoint
    } else {
        &outcome.pod_name
    }
}

impl Counters {
    /// Counts one request (`carried_over`: it began before a mode change
    /// and ended after it): a map lookup and a few atomic additions.
    pub(crate) fn record(&self, outcome: &RequestOutcome, carried_over: bool) {
        self.requests.record(outcome.request_latency_us);
        self.request_latency_us_sum
            .fetch_add(outcome.request_latency_us, Ordering::Relaxed);
        let key = key_of(outcome);
        if let Some(pod) = self.pods.load().get(key) {
            pod.record(outcome, carried_over);
            return;
        }
        self.add(key, outcome).record(outcome, carried_over);
    }

    /// The slow path: the first request of a pod copies the map with it added.
    fn add(&self, key: &str, outcome: &RequestOutcome) -> Arc<PodCounters> {
        let _adding = self.adding.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let current = self.pods.load_full();
        if let Some(pod) = current.get(key) {
            return Arc::clone(pod);
        }
        let pod = Arc::new(PodCounters::new(outcome));
        let mut pods = BTreeMap::clone(&current);
        pods.insert(key.to_owned(), Arc::clone(&pod));
        self.pods.store(Arc::new(pods));
        pod
    }

    /// Whole requests' times: the histogram's counts and their sum.
    pub(crate) fn request_durations(&self) -> (Vec<u64>, u64) {
        (
            self.requests.counts(),
            self.request_latency_us_sum.load(Ordering::Relaxed),
        )
    }

    /// Per-pod totals, in key order.
    pub(crate) fn totals(&self) -> Vec<PodTotals> {
        self.pods.load().values().map(|pod| pod.totals()).collect()
    }

    /// Per-pod requests by mode and code, in key order.
    pub(crate) fn outcomes(&self) -> Vec<PodOutcomes> {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        self.pods
            .load()
            .iter()
            .map(|(key, pod)| PodOutcomes {
                pod: key.clone(),
                outcomes: std::array::from_fn(|m| std::array::from_fn(|c| load(&pod.outcomes[m][c]))),
                retries: load(&pod.retries),
            })
            .collect()
    }

    /// Per-pod summaries in key order, and all of them added up.
    pub(crate) fn summaries(&self) -> (Vec<PodSummary>, PodSummary) {
        let pods: Vec<PodSummary> = self.pods.load().values().map(|pod| pod.summary()).collect();
        let mut total = PodSummary::default();
        let mut codes = [0u64; CODES];
        for pod in &pods {
            total.requests += pod.requests;
            total.errors += pod.errors;
            total.attempts += pod.attempts;
            total.latency_us_sum += pod.latency_us_sum;
            total.carried_over_requests += pod.carried_over_requests;
            total.carried_over_errors += pod.carried_over_errors;
            merge_into(&mut total.latency_buckets, &pod.latency_buckets);
            merge_methods(&mut total.methods, &pod.methods);
            for c in &pod.error_codes {
                // Every code in a pod summary indexes `codes`: record() clamps it.
                if let Some(slot) = usize::try_from(c.code).ok().and_then(|i| codes.get_mut(i)) {
                    *slot += c.count;
                }
            }
        }
        total.error_codes = codes
            .iter()
            .enumerate()
            .filter(|(_, count)| **count > 0)
            .map(|(code, count)| CodeCount {
                code: code as i32,
                count: *count,
            })
            .collect();
        (pods, total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use greet_proto::Mode;

    #[test]
    fn outcomes_are_counted_by_mode_and_code_and_retries_beyond_the_first_attempt() {
        let counters = Counters::default();
        let outcome = |mode, grpc_code, attempts| RequestOutcome {
            pod_name: "p1".into(),
            mode,
            grpc_code,
            attempts,
            ..RequestOutcome::default()
        };
        counters.record(&outcome(Mode::Sticky, 0, 1), false);
        counters.record(&outcome(Mode::Sticky, 0, 2), false);
        counters.record(&outcome(Mode::Balanced, 14, 3), false);
        counters.record(&outcome(Mode::Balanced, 99, 0), false);
        let mut expected = [[0; CODES]; MODES];
        expected[Mode::Sticky as usize][0] = 2;
        expected[Mode::Balanced as usize][14] = 1;
        expected[Mode::Balanced as usize][UNKNOWN_CODE] = 1;
        assert_eq!(
            counters.outcomes(),
            [PodOutcomes {
                pod: "p1".into(),
                outcomes: expected,
                retries: 3,
            }]
        );
    }
}
