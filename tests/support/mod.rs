//! Shared fixtures: the library's loopback cluster (real greet-servers, a
//! kube-proxy-like Service and a real gateway) in the tests' shape.

pub mod counting;
pub mod dns;
pub mod fake_pod;
pub mod h2_attacks;
pub mod listening;
pub mod load;
pub mod podless;
pub mod pty;
pub mod python;
pub mod raw_h2;
pub mod server_process;

use std::collections::BTreeMap;
use std::time::Duration;

use greet_demo::rest_client::RestClient;
use greet_demo::{ClusterConfig, GatewaySpec, LocalCluster, PodNames, PodOptions, StickyTarget};
use greet_gateway::UpstreamTimeouts;
use greet_proto::Mode;

/// The tests' pods: a generous drain, so a test's own stop never cuts a call.
pub fn pod_options() -> PodOptions {
    PodOptions {
        max_connection_age: None,
        drain_timeout: Duration::from_secs(5),
        ..PodOptions::default()
    }
}

/// The tests' gateway: any free port on 127.0.0.1, discovery named "test".
pub fn gateway_spec(mode: Mode) -> GatewaySpec {
    GatewaySpec {
        name: "gateway-test".into(),
        mode,
        discovery_name: "test".into(),
        timeouts: UpstreamTimeouts {
            request: Duration::from_secs(5),
            connect: Duration::from_millis(500),
        },
        ..GatewaySpec::default()
    }
}

/// `pods` pods on 127.0.0.2 and up (any free port), named greetserver-test-N,
/// behind the Service proxy and a gateway that starts in `mode`.
pub fn config(pods: usize, mode: Mode) -> ClusterConfig {
    ClusterConfig {
        pods,
        first_host: 2,
        preferred_port: None,
        names: PodNames::Numbered {
            prefix: "greetserver-test".into(),
        },
        pod: pod_options(),
        gateway: gateway_spec(mode),
        sticky: StickyTarget::Service,
    }
}

#[allow(dead_code, reason = "compiled into every test crate; dns_netns starts its own")]
pub async fn cluster(pods: usize, mode: Mode) -> LocalCluster {
    LocalCluster::start(config(pods, mode)).await.unwrap()
}

/// The pod named in a `/greet` reply body.
pub fn pod_of(body: &str) -> String {
    greet_proto::greeting_text::pod_from_result(body)
        .unwrap_or_else(|| panic!("no pod in reply {body:?}"))
        .0
}

/// Sends `n` greetings one after another; returns hits per pod. Panics on a non-200.
#[allow(dead_code, reason = "compiled into every test crate; the gRPC ingress's sends gRPC")]
pub async fn greet_n(rest: &RestClient, n: usize) -> BTreeMap<String, usize> {
    let mut hits = BTreeMap::new();
    for i in 0..n {
        let response = rest.greet("Ada", &format!("Lovelace-{i}")).await.unwrap();
        assert_eq!(response.status, 200, "request {i}: {}", response.body);
        *hits.entry(pod_of(&response.body)).or_default() += 1;
    }
    hits
}

/// Sends greetings one after another until every one of `pods` pods has
/// answered; returns hits per pod. Panics on a non-200, or after `within`.
pub async fn greet_until_every_pod(rest: &RestClient, pods: usize, within: Duration) -> BTreeMap<String, usize> {
    let deadline = tokio::time::Instant::now() + within;
    let mut hits = BTreeMap::new();
    let mut sent = 0;
    while hits.len() < pods {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{sent} requests in {within:?} reached only {hits:?}"
        );
        let response = rest.greet("Ada", &format!("Lovelace-{sent}")).await.unwrap();
        assert_eq!(response.status, 200, "request {sent}: {}", response.body);
        *hits.entry(pod_of(&response.body)).or_default() += 1;
        sent += 1;
    }
    hits
}

/// Sends `clients` × `each` greetings at once from as many tasks; returns
/// hits per pod, as the replies name them.
pub async fn greet_concurrently(rest: &RestClient, clients: usize, each: usize) -> BTreeMap<String, usize> {
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let rest = rest.clone();
            tokio::spawn(async move { greet_n(&rest, each).await })
        })
        .collect();
    let mut hits = BTreeMap::new();
    for task in tasks {
        // greet_n fails the test on any non-200 answer.
        for (pod, n) in task.await.unwrap() {
            *hits.entry(pod).or_default() += n;
        }
    }
    hits
}

/// Waits until the gateway's balancer holds exactly the registry's endpoints
/// (a count is not enough: after a kill and an add it is the same as before both).
pub async fn until_balancer_follows_the_registry(cluster: &LocalCluster) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    let mut wanted: Vec<String> = cluster.registry().iter().map(|e| e.address.clone()).collect();
    wanted.sort();
    loop {
        let endpoints = cluster.gateway.gateway.upstream.balancer().endpoints();
        let mut applied: Vec<String> = endpoints.iter().map(|e| e.address.clone()).collect();
        applied.sort();
        if applied == wanted {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "endpoint update not applied within 2 s: {applied:?}, not {wanted:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A Watch through `observer`, and the snapshot it opens with.
#[allow(dead_code, reason = "compiled into every test crate; the mode-switch tests use it")]
pub async fn watch_from_snapshot(
    observer: &mut greet_proto::observe::observer_client::ObserverClient<tonic::transport::Channel>,
) -> (
    tonic::Streaming<greet_proto::observe::Event>,
    greet_proto::observe::State,
) {
    use greet_proto::observe::{WatchRequest, event};
    let mut watch = observer.watch(WatchRequest::default()).await.unwrap().into_inner();
    let first = watch.message().await.unwrap();
    let Some(event::Kind::Snapshot(snapshot)) = first.and_then(|e| e.kind) else {
        panic!("Watch must open with a snapshot");
    };
    (watch, snapshot)
}

/// greet-top's view of the fake API server: the client, the config it was
/// built from, and the namespace, as `kube_access::connect` gives them.
pub async fn kube_target(kube: &fake_kube::FakeKube, namespace: &str) -> kube_access::KubeTarget {
    let config = kube.config(namespace).await;
    kube_access::KubeTarget {
        client: kube::Client::try_from(config.clone()).expect("kube client"),
        config,
        default_namespace: namespace.into(),
        context: "fake-kube".into(),
    }
}
