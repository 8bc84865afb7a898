//! dns mode's observable events: its resolves, counted by the gateway
//! (`DnsPool::resolves`, bumped before an answer is swapped in), so a test
//! knows which answer routed each request without sleeping.

use std::collections::BTreeMap;
use std::time::Duration;

use greet_demo::rest_client::RestClient;
use greet_gateway::Gateway;
use tokio::time::Instant;

/// Waits until the gateway has done `at_least` resolves (failed ones count).
pub async fn until_resolves(gateway: &Gateway, at_least: u64, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let done = gateway.upstream.dns().resolves();
        if done >= at_least {
            // Held while the resolve swaps its answer in: once read, requests take it.
            let _ = gateway.upstream.dns().answer();
            return;
        }
        assert!(
            Instant::now() < deadline,
            "dns mode resolved {done} times within {within:?}, expected {at_least}: is the resolver answering?"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Waits for the next resolve to begin a fresh interval: the resolve count after it.
pub async fn just_after_a_resolve(gateway: &Gateway, within: Duration) -> u64 {
    let now = gateway.upstream.dns().resolves();
    until_resolves(gateway, now + 1, within).await;
    now + 1
}

/// Greets one request at a time until dns mode resolves again (within
/// `within`); returns the hits of the requests that ended before that
/// resolve began, so were routed by the answer before it. The request the
/// resolve overlapped is not counted.
pub async fn greet_until_the_next_resolve(
    rest: &RestClient,
    gateway: &Gateway,
    within: Duration,
) -> BTreeMap<String, usize> {
    let resolves = gateway.upstream.dns().resolves();
    let deadline = Instant::now() + within;
    let mut hits = BTreeMap::new();
    loop {
        let response = rest.greet("Ada", "Lovelace").await.unwrap();
        if gateway.upstream.dns().resolves() != resolves {
            // Held while the resolve swaps its answer in: once read, requests take it.
            let _ = gateway.upstream.dns().answer();
            return hits;
        }
        assert_eq!(response.status, 200, "{}", response.body);
        *hits.entry(crate::pod_of(&response.body)).or_default() += 1;
        assert!(Instant::now() < deadline, "no resolve within {within:?}");
    }
}

/// Asserts a round robin's split: every pod of `pods` within one request of
/// an equal share of `hits`' total, and no other pod.
pub fn assert_round_robin(hits: &BTreeMap<String, usize>, pods: &[&str]) {
    let total: usize = hits.values().sum();
    let names: Vec<&str> = hits.keys().map(String::as_str).collect();
    let mut wanted = pods.to_vec();
    wanted.sort_unstable();
    assert_eq!(names, wanted, "pods hit: {hits:?}");
    let (low, high) = (total / pods.len(), total.div_ceil(pods.len()));
    for (pod, n) in hits {
        assert!(
            (low..=high).contains(n),
            "{pod} got {n} of {total}, not {low}..={high}: {hits:?}"
        );
    }
}
