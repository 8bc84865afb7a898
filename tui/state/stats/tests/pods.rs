//! Which pod a count lands on: the IP a pod is known by, and the bound on
//! how many pods are kept.

use super::*;

#[test]
fn a_pod_first_known_without_an_ip_takes_the_first_one_reported() {
    let t0 = Instant::now();
    let mut counter = Counter::new(t0);
    counter.stats.list_pods(vec![endpoint("pod-z", "")], true);
    assert_eq!(counter.stats.pods["pod-z"].ip, "");
    counter.record("pod-z", "10.0.0.26", 100, t0);
    assert_eq!(counter.stats.pods["pod-z"].ip, "10.0.0.26");
}

#[test]
fn the_pod_sources_ip_is_not_moved_by_what_a_request_reports() {
    // The pod source (kube) is authoritative for a listed pod, as for readiness.
    let t0 = Instant::now();
    let mut counter = Counter::new(t0);
    counter.record("pod-a", "192.168.7.7", 100, t0);
    assert_eq!(counter.stats.pods["pod-a"].ip, "10.0.0.1");
    assert_eq!(counter.stats.pods["pod-a"].hits(), 1);
}

#[test]
fn a_listed_pod_follows_its_ip_in_the_pod_source() {
    let t0 = Instant::now();
    let mut counter = Counter::new(t0);
    counter.stats.list_pods(vec![endpoint("pod-a", "10.0.0.9")], true);
    assert_eq!(counter.stats.pods["pod-a"].ip, "10.0.0.9");
    // A listing without an IP (a pending pod) does not erase the known one.
    counter.stats.list_pods(vec![endpoint("pod-a", "")], true);
    assert_eq!(counter.stats.pods["pod-a"].ip, "10.0.0.9");
}

#[test]
fn a_gateway_naming_a_new_pod_in_every_event_cannot_grow_the_pod_list_without_bound() {
    let t0 = Instant::now();
    let mut counter = Counter::new(t0);
    let listed = counter.stats.pods.len();
    let flood = MAX_TRACKED_PODS + 500;
    for i in 0..flood {
        counter.record(&format!("flood-{i}"), "", 1000, t0);
    }
    assert_eq!(counter.stats.pods.len(), MAX_TRACKED_PODS);
    assert_eq!(counter.stats.total(), flood as u64, "every request still counted");
    assert_eq!(
        counter.stats.unattributed(),
        (listed + 500) as u64,
        "past the cap, as unattributed"
    );
    // A pod already known is still counted as itself.
    counter.record(PODS[0].0, PODS[0].1, 1000, t0);
    assert_eq!(counter.stats.pods[PODS[0].0].hits(), 1);
    // A new listing makes room by forgetting gone pods.
    counter.stats.list_pods(vec![endpoint("fresh-pod", "10.9.9.9")], false);
    assert!(counter.stats.pods.contains_key("fresh-pod"));
    assert!(counter.stats.pods.len() <= MAX_TRACKED_PODS);
}

#[test]
fn a_gone_pod_keeps_its_row_but_no_share_of_the_traffic() {
    let t0 = Instant::now();
    let mut counter = Counter::new(t0);
    for _ in 0..96 {
        counter.record("pod-c", "10.0.0.3", 100, t0);
    }
    for _ in 0..4 {
        counter.record("pod-a", "10.0.0.1", 100, t0);
    }
    // pod-c is killed: the listing drops it, 0.5 s later.
    let listed = PODS[..2].iter().map(|(n, ip, _)| endpoint(n, ip)).collect();
    counter.stats.list_pods(listed, false);
    let now = t0 + secs(0.5);
    let stats = &counter.stats;
    assert_eq!(stats.shared_requests(now), 4);
    assert_eq!(stats.share(&stats.pods["pod-a"], now), Some(1.0), "as the verdict says");
    assert_eq!(stats.share(&stats.pods["pod-c"], now), None);
    assert_eq!(
        stats.pods["pod-c"].in_window(now),
        96,
        "its row still shows what it took"
    );
    let sharing: Vec<&str> = stats.sharing_pods().map(|p| p.name.as_str()).collect();
    assert_eq!(sharing, ["pod-a", "pod-b"]);
}

#[test]
fn a_failure_naming_no_pod_lands_on_the_one_pod_with_its_ip_unless_the_ip_is_shared() {
    let t0 = Instant::now();
    let mut counter = Counter::new(t0);
    // kube lists pods by name and IP; the gateway (DNS discovery) names none.
    let failed = |ip: &str, port: u16| Request {
        ip: ip.into(),
        endpoint: format!("{ip}:{port}"),
        grpc_code: 14,
        ..Request::default()
    };
    counter
        .stats
        .record("gw", failed("10.0.0.2", 50051), counter.clock(t0), false);
    assert_eq!(counter.stats.pods["pod-b"].errors(), 1);
    assert_eq!(
        counter.stats.pods["pod-b"].endpoint, "10.0.0.2:50051",
        "and it learns its address"
    );
    // Two pods on one host: the IP says nothing.
    counter.stats.list_pods(
        vec![endpoint("pod-d", "10.0.0.9"), endpoint("pod-e", "10.0.0.9")],
        false,
    );
    counter
        .stats
        .record("gw", failed("10.0.0.9", 50052), counter.clock(t0), false);
    assert_eq!(counter.stats.unattributed(), 1);
}
