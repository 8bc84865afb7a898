//! A pod that dies under balanced load: the gateway skips it (no request
//! fails) and says so, with the reason, in the Observer stream, GetState and
//! `/healthz`; once the pod is back on the same address and serves a request,
//! it says that too. Real greet-servers, Service proxy and gateway on loopback.

use greet_tests as support;

use support::load::Load;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use greet_demo::LocalPod;
use greet_demo::rest_client::RestClient;
use greet_gateway::discovery::{self, EndpointInfo};
use greet_gateway::{EJECTION, MAX_EJECTION};
use greet_proto::Mode;
use greet_proto::observe::observer_client::ObserverClient;
use greet_proto::observe::{self, EndpointsChanged, GetStateRequest, WatchRequest, event};
use greet_top::observer_client::gateway_event;
use greet_top::state::GatewayEvent;
use http::Method;
use tonic::Streaming;

/// Reads the stream until an EndpointsChanged satisfies `wanted`; keeps every
/// EndpointsChanged seen in `seen`.
async fn until_endpoints(
    stream: &mut Streaming<observe::Event>,
    seen: &mut Vec<EndpointsChanged>,
    within: Duration,
    wanted: impl Fn(&[observe::Endpoint]) -> bool,
) -> EndpointsChanged {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let message = tokio::time::timeout_at(deadline, stream.message())
            .await
            .unwrap_or_else(|_| panic!("no such EndpointsChanged within {within:?}; saw {seen:#?}"))
            .unwrap()
            .expect("the Watch stream ended");
        if let Some(event::Kind::EndpointsChanged(change)) = message.kind {
            seen.push(change.clone());
            if wanted(&change.endpoints) {
                return change;
            }
        }
    }
}

fn endpoint<'a>(endpoints: &'a [observe::Endpoint], address: &str) -> &'a observe::Endpoint {
    endpoints
        .iter()
        .find(|e| e.address == address)
        .unwrap_or_else(|| panic!("no endpoint {address} in {endpoints:?}"))
}

/// What greet-top makes of the change: the pod's skip reason.
fn dashboard_skip(change: &EndpointsChanged, pod: &str) -> Option<String> {
    let GatewayEvent::EndpointsChanged { endpoints, .. } =
        gateway_event(event::Kind::EndpointsChanged(change.clone()), true)
    else {
        panic!("an EndpointsChanged converts to one");
    };
    let pod = endpoints.iter().find(|p| p.name == pod).expect("the pod is listed");
    pod.skipped.clone()
}

async fn healthz(rest: &RestClient) -> (u16, serde_json::Value) {
    let response = rest.send(Method::GET, "/healthz", None, "").await.unwrap();
    (response.status.as_u16(), response.json().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_pod_is_reported_skipped_with_its_reason_until_it_serves_again() {
    let mut cluster = support::cluster(3, Mode::Balanced).await;
    let (victim, victim_addr): (String, SocketAddr) = cluster
        .pods()
        .nth(1)
        .map(|(name, addr)| (name.to_owned(), addr))
        .unwrap();
    let address = victim_addr.to_string();
    let mut observer = ObserverClient::connect(cluster.observe_url()).await.unwrap();
    let mut stream = observer
        .watch(WatchRequest {
            summary_interval_ms: 5_000,
            sample_per_second: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let Some(event::Kind::Snapshot(snapshot)) = stream.message().await.unwrap().unwrap().kind else {
        panic!("the stream starts with a snapshot");
    };
    assert_eq!(snapshot.endpoints.len(), 3);
    assert!(
        snapshot
            .endpoints
            .iter()
            .all(|e| e.ready && e.skipped_reason.is_empty() && e.skipped_until_unix_us == 0),
        "{:?}",
        snapshot.endpoints
    );
    let mut seen = Vec::new();
    let each: BTreeMap<String, usize> = cluster.pods().map(|(name, _)| (name.to_owned(), 10)).collect();
    assert_eq!(support::greet_n(cluster.rest(), 30).await, each);

    // The pod dies under load and stays in the endpoint set, as a crashed pod
    // does until Kubernetes notices.
    let load = Load::start(cluster.rest(), 4);
    cluster.crash_pod(&victim).await.unwrap();
    let skipped = until_endpoints(&mut stream, &mut seen, Duration::from_secs(10), |endpoints| {
        !endpoint(endpoints, &address).skipped_reason.is_empty()
    })
    .await;
    let during = load.stop().await;
    assert_eq!(during.failures, Vec::<String>::new(), "no request may fail");
    let dead = endpoint(&skipped.endpoints, &address);
    assert_eq!(
        (dead.pod_name.as_str(), dead.ready, dead.skipped_reason.as_str()),
        (victim.as_str(), true, "connection refused")
    );
    let ahead = dead.skipped_until_unix_us - skipped.timestamp_unix_us;
    let first_ejection = i64::try_from(EJECTION.as_micros()).unwrap();
    assert!(
        ahead > 0 && ahead <= first_ejection,
        "skipped until {ahead} µs after the event"
    );
    assert_eq!(dashboard_skip(&skipped, &victim).as_deref(), Some("connection refused"));
    for other in skipped.endpoints.iter().filter(|e| e.address != address) {
        assert_eq!(
            (other.ready, other.skipped_reason.as_str(), other.skipped_until_unix_us),
            (true, "", 0)
        );
    }

    // /healthz and GetState say the same.
    let (status, health) = healthz(cluster.rest()).await;
    assert_eq!(status, 200, "{health}");
    let retry_in_ms = health["skipped_endpoints"][0]["retry_in_ms"].as_u64().unwrap();
    assert!(
        retry_in_ms <= u64::try_from(MAX_EJECTION.as_millis()).unwrap(),
        "{health}"
    );
    assert_eq!(
        health,
        serde_json::json!({
            "mode": "balanced",
            "ready_endpoints": 2,
            "skipped_endpoints": [
                {"address": address, "pod": victim, "reason": "connection refused", "retry_in_ms": retry_in_ms}
            ],
            "discovery": {"source": "test", "state": "ok"},
        })
    );
    let state = observer.get_state(GetStateRequest {}).await.unwrap().into_inner();
    let latest = &endpoint(&state.endpoints, &address);
    assert_eq!(latest.skipped_reason, "connection refused");
    assert_eq!(state.endpoints.len(), 3);

    // The pod is back on the same address: once its skip ends, a request
    // reaches it, succeeds, and the gateway says it is no longer skipped.
    let mut back = LocalPod::start(victim.clone(), victim_addr, support::pod_options())
        .await
        .unwrap();
    let load = Load::start(cluster.rest(), 4);
    let recovered = until_endpoints(
        &mut stream,
        &mut seen,
        MAX_EJECTION + Duration::from_secs(10),
        |endpoints| endpoint(endpoints, &address).skipped_reason.is_empty(),
    )
    .await;
    let after = load.stop().await;
    assert_eq!(after.failures, Vec::<String>::new(), "no request may fail");
    assert!(after.hits.get(&victim).copied().unwrap_or(0) > 0, "{:?}", after.hits);
    let alive = endpoint(&recovered.endpoints, &address);
    assert_eq!(
        (alive.pod_name.as_str(), alive.ready, alive.skipped_until_unix_us),
        (victim.as_str(), true, 0)
    );
    assert_eq!(dashboard_skip(&recovered, &victim), None);
    let (status, health) = healthz(cluster.rest()).await;
    assert_eq!(status, 200, "{health}");
    assert_eq!(
        health,
        serde_json::json!({"mode": "balanced", "ready_endpoints": 3, "skipped_endpoints": [], "discovery": {"source": "test", "state": "ok"}})
    );

    // Published on changes only: no two EndpointsChanged in a row alike.
    for pair in seen.windows(2) {
        assert_ne!(
            pair[0].endpoints, pair[1].endpoints,
            "a repeated EndpointsChanged: {seen:#?}"
        );
    }
    back.stop().await.unwrap();
    cluster.shutdown().await;
}

#[tokio::test]
async fn when_every_ready_endpoint_is_skipped_healthz_says_so_with_a_503() {
    let endpoints = vec![
        EndpointInfo::ready("127.0.0.1:1").with_pod_name("p1"),
        EndpointInfo::ready("127.0.0.2:1"),
    ];
    // Nothing listens on port 1: every connection is refused.
    let gateway = support::gateway_spec(Mode::Balanced)
        .start(
            "127.0.0.1:1".into(),
            discovery::static_endpoints(endpoints),
            Default::default(),
        )
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while gateway.gateway.upstream.balancer().ready_count() != 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the endpoints were not applied within 2 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let rest = RestClient::new(format!("http://{}", gateway.rest_addr));
    assert_eq!(
        healthz(&rest).await,
        (
            200,
            serde_json::json!({"mode": "balanced", "ready_endpoints": 2, "skipped_endpoints": [], "discovery": {"source": "test", "state": "ok"}})
        )
    );
    // One request tries both, each refuses: both are skipped.
    assert_eq!(rest.greet("Ada", "Lovelace").await.unwrap().status, 503);
    assert_eq!(
        healthz(&rest).await,
        (
            503,
            serde_json::json!({"error": "balanced mode is skipping every ready greet-server endpoint after failures (127.0.0.1:1: connection refused, 127.0.0.2:1: connection refused); check that the greet-server pods are running and reachable from the gateway (each is retried when its skip ends), or switch to sticky mode with PUT /mode"})
        )
    );
    // Sticky mode does not need them: healthy, and still telling.
    assert_eq!(rest.set_mode(Mode::Sticky).await.unwrap().status, 200);
    let (status, health) = healthz(&rest).await;
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["ready_endpoints"], 0);
    let skipped: Vec<(&str, &serde_json::Value, &str)> = health["skipped_endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let retry_in_ms = s["retry_in_ms"].as_u64().unwrap();
            assert!(retry_in_ms <= u64::try_from(EJECTION.as_millis()).unwrap(), "{s}");
            (s["address"].as_str().unwrap(), &s["pod"], s["reason"].as_str().unwrap())
        })
        .collect();
    assert_eq!(
        skipped,
        [
            ("127.0.0.1:1", &serde_json::json!("p1"), "connection refused"),
            ("127.0.0.2:1", &serde_json::Value::Null, "connection refused"),
        ]
    );
    gateway.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_endpoints_on_one_host_are_named_by_their_replies_and_a_dead_one_keeps_its_name() {
    // Three pods on 127.0.0.1, told apart only by port.
    let mut pods = Vec::new();
    for n in 1..=3 {
        let any_port = SocketAddr::from(([127, 0, 0, 1], 0));
        pods.push(
            LocalPod::start(format!("acc-pod-{n}"), any_port, support::pod_options())
                .await
                .unwrap(),
        );
    }
    let set = pods
        .iter()
        .map(|pod| EndpointInfo::ready(pod.addr.to_string()))
        .collect();
    let gateway = support::gateway_spec(Mode::Balanced)
        .start(
            pods[0].addr.to_string(),
            discovery::static_endpoints(set),
            Default::default(),
        )
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while gateway.gateway.upstream.balancer().ready_count() != 3 {
        assert!(tokio::time::Instant::now() < deadline, "endpoints not applied in 2 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let rest = RestClient::new(format!("http://{}", gateway.rest_addr));
    let names = |state: &observe::State| -> Vec<(String, String, String)> {
        let mut rows: Vec<(String, String, String)> = state
            .endpoints
            .iter()
            .map(|e| (e.address.clone(), e.pod_name.clone(), e.skipped_reason.clone()))
            .collect();
        rows.sort();
        rows
    };
    let known: Vec<(String, String)> = pods.iter().map(|p| (p.addr.to_string(), p.name.clone())).collect();
    let expected = |skipped: &str| -> Vec<(String, String, String)> {
        let mut rows: Vec<(String, String, String)> = known
            .iter()
            .map(|(address, name)| {
                let reason = if name == "acc-pod-2" { skipped } else { "" };
                (address.clone(), name.clone(), reason.to_owned())
            })
            .collect();
        rows.sort();
        rows
    };
    assert_eq!(support::greet_n(&rest, 6).await.len(), 3);
    assert_eq!(names(&gateway.gateway.hub.snapshot()), expected(""));

    // acc-pod-2 dies: its endpoint is skipped under its own name, no request fails.
    pods[1].stop().await.unwrap();
    let hits = support::greet_n(&rest, 12).await;
    assert_eq!(hits.get("acc-pod-2"), None, "{hits:?}");
    assert_eq!(names(&gateway.gateway.hub.snapshot()), expected("connection refused"));
    let (_, health) = healthz(&rest).await;
    assert_eq!(health["skipped_endpoints"][0]["pod"], "acc-pod-2", "{health}");
    // Every summary row is a pod: none keyed by an address.
    let summary = gateway.gateway.hub.build_summary(Duration::from_millis(250));
    let rows: Vec<&str> = summary.pods.iter().map(|p| p.pod_name.as_str()).collect();
    assert_eq!(rows, ["acc-pod-1", "acc-pod-2", "acc-pod-3"]);
    gateway.shutdown().await.unwrap();
    for pod in &mut pods {
        pod.stop().await.unwrap();
    }
}
