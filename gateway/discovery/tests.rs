use super::*;

#[tokio::test(start_paused = true)]
async fn failing_keeps_its_start_while_the_problem_changes_and_recovery_ends_it() {
    let health = DiscoveryHealth::default();
    assert_eq!((health.problem(), health.failing_since()), (None, None));
    let start = tokio::time::Instant::now();
    health.failing("refused");
    tokio::time::advance(std::time::Duration::from_secs(3)).await;
    health.failing("timed out");
    assert_eq!(health.problem().as_deref(), Some("timed out"));
    assert_eq!(health.failing_since(), Some(start));
    health.recovered();
    assert_eq!((health.problem(), health.failing_since()), (None, None));
    assert_eq!(health.errors(), 2);
}

#[tokio::test(start_paused = true)]
async fn the_set_ages_from_the_first_failure_or_the_last_answer_until_recovery() {
    let health = DiscoveryHealth::default();
    let start = tokio::time::Instant::now();
    assert_eq!(health.set_age(start), Duration::ZERO);
    health.failing("refused");
    tokio::time::advance(Duration::from_millis(2500)).await;
    health.failing("refused");
    assert_eq!(health.set_age(tokio::time::Instant::now()), Duration::from_millis(2500));
    health.recovered();
    assert_eq!(health.set_age(tokio::time::Instant::now()), Duration::ZERO);
    // A lookup failed 4 s after the last answer: the set is that old, not 0 s.
    let answered = tokio::time::Instant::now();
    tokio::time::advance(Duration::from_secs(4)).await;
    health.kept_stale(answered);
    health.kept_stale(tokio::time::Instant::now());
    assert_eq!(health.set_age(tokio::time::Instant::now()), Duration::from_secs(4));
    assert_eq!((health.problem(), health.errors()), (None, 4));
}

#[tokio::test(start_paused = true)]
async fn a_change_is_signalled_once_and_the_proto_says_since_when_and_how_stale() {
    let health = DiscoveryHealth::default();
    let mut changes = health.changes();
    let start = tokio::time::Instant::now();
    assert_eq!(
        health.to_proto("kube", start, 1_000_000_000),
        greet_proto::observe::DiscoveryState {
            source: "kube".into(),
            ..Default::default()
        }
    );
    health.failing("EndpointSlice watch: refused\u{1b}[2J");
    assert!(changes.has_changed().unwrap());
    changes.mark_unchanged();
    tokio::time::advance(Duration::from_millis(8200)).await;
    health.failing("EndpointSlice watch: refused\u{1b}[2J");
    assert!(!changes.has_changed().unwrap(), "the same problem again is no change");
    assert_eq!(
        health.to_proto("kube", tokio::time::Instant::now(), 1_000_000_000),
        greet_proto::observe::DiscoveryState {
            source: "kube".into(),
            failing_since_unix_us: 1_000_000_000 - 8_200_000,
            last_error: "EndpointSlice watch: refused[2J".into(),
            set_age_ms: 8200,
        }
    );
    health.failing("EndpointSlice watch: timed out");
    assert!(changes.has_changed().unwrap());
    changes.mark_unchanged();
    health.recovered();
    assert!(changes.has_changed().unwrap());
    changes.mark_unchanged();
    health.recovered();
    assert!(!changes.has_changed().unwrap(), "recovered twice is one change");
}

#[test]
fn every_failure_is_counted_and_only_a_failing_one_is_reported() {
    let health = DiscoveryHealth::default();
    health.count_error();
    assert_eq!((health.errors(), health.problem()), (1, None));
    health.failing("watch: 403");
    health.clone().recovered();
    assert_eq!((health.errors(), health.problem()), (2, None));
}

#[test]
fn parses_endpoint_lists() {
    let set = parse_endpoint_list("127.0.0.2:50051, 127.0.0.1:50051,,[::1]:7,127.0.0.1:50051").unwrap();
    let addresses: Vec<_> = set.iter().map(|e| e.address.as_str()).collect();
    assert_eq!(addresses, ["127.0.0.1:50051", "127.0.0.2:50051", "[::1]:7"]);
    assert!(set.iter().all(|e| e.ready && e.pod_name.is_none()));
    assert_eq!(parse_endpoint_list("").unwrap(), vec![]);
}

#[test]
fn rejects_malformed_endpoints() {
    assert_eq!(
        parse_endpoint_list("10.0.0.1").unwrap_err().to_string(),
        "endpoint \"10.0.0.1\" is not host:port (e.g. 10.0.0.5:50051)"
    );
    assert_eq!(
        parse_endpoint_list("a:1,b:http").unwrap_err(),
        EndpointListError::BadPort("b:http".into())
    );
    assert_eq!(
        parse_endpoint_list("b:0").unwrap_err(),
        EndpointListError::BadPort("b:0".into())
    );
    assert_eq!(
        parse_endpoint_list(":80").unwrap_err(),
        EndpointListError::NotHostPort(":80".into())
    );
}

#[test]
fn normalize_merges_duplicates_preferring_ready_and_named() {
    let set = normalize([
        EndpointInfo {
            address: "b:1".into(),
            pod_name: None,
            ready: false,
            terminating: false,
        },
        EndpointInfo::ready("a:1"),
        EndpointInfo::ready("b:1").with_pod_name("pod-b"),
    ]);
    assert_eq!(
        set,
        vec![
            EndpointInfo::ready("a:1"),
            EndpointInfo::ready("b:1").with_pod_name("pod-b"),
        ]
    );
}

#[test]
fn resolved_addresses_become_a_sorted_set() {
    let addrs: Vec<SocketAddr> = ["10.0.0.3:50051", "10.0.0.1:50051", "10.0.0.3:50051"]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
    let set = endpoints_from_addrs(addrs);
    assert_eq!(
        set,
        vec![
            EndpointInfo::ready("10.0.0.1:50051"),
            EndpointInfo::ready("10.0.0.3:50051")
        ]
    );
}

#[tokio::test]
async fn watch_source_yields_every_published_set() {
    let (tx, rx) = tokio::sync::watch::channel(vec![EndpointInfo::ready("a:1")]);
    let mut stream = from_watch(rx);
    assert_eq!(stream.next().await, Some(vec![EndpointInfo::ready("a:1")]));
    tx.send(vec![EndpointInfo::ready("c:1"), EndpointInfo::ready("b:1")])
        .unwrap();
    assert_eq!(
        stream.next().await,
        Some(vec![EndpointInfo::ready("b:1"), EndpointInfo::ready("c:1")])
    );
    drop(tx);
    assert_eq!(stream.next().await, None);
}

#[test]
fn only_a_name_without_addresses_counts_as_no_pods() {
    assert!(name_has_no_addresses(
        "failed to lookup address information: Name or service not known"
    ));
    assert!(name_has_no_addresses(
        "failed to lookup address information: nodename nor servname provided, or not known"
    ));
    assert!(!name_has_no_addresses(
        "failed to lookup address information: Temporary failure in name resolution"
    ));
}

#[tokio::test]
async fn dns_source_resolves_loopback() {
    let mut stream = dns(
        "127.0.0.1".into(),
        50051,
        Duration::from_secs(3600),
        DiscoveryHealth::default(),
    );
    assert_eq!(stream.next().await, Some(vec![EndpointInfo::ready("127.0.0.1:50051")]));
}
