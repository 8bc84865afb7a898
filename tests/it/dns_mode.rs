//! dns mode on the loopback cluster, with the demo's resolver (the
//! registry's ready pods, as a headless Service's name answers): a new pod
//! waits for the next resolve, then gets its exact share; balanced mode
//! takes it at once; with no answer requests fail at once with what to check.

use greet_tests as support;
use greet_tests::dns;

use std::time::Duration;

use greet_demo::rest_client::RestClient;
use greet_demo::{GatewaySpec, LocalCluster};
use greet_gateway::{ResolveFuture, Resolver};
use greet_proto::Mode;
use greet_proto::greet::greet_service_client::GreetServiceClient;
use greet_proto::greet::{Greeting, GreetingRequest};
use http::Method;
use tonic::transport::Channel;

const INTERVAL: Duration = Duration::from_millis(800);
const WITHIN: Duration = Duration::from_secs(5);

async fn cluster(mode: Mode) -> LocalCluster {
    let mut config = support::config(3, mode);
    config.gateway.dns_interval = INTERVAL;
    LocalCluster::start(config).await.unwrap()
}

fn names(cluster: &LocalCluster) -> Vec<String> {
    cluster.pods().map(|(name, _)| name.to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_pod_gets_nothing_until_the_next_resolve_then_its_exact_share() {
    let mut cluster = cluster(Mode::Dns).await;
    let gateway = &cluster.gateway.gateway;
    dns::until_resolves(gateway, 1, WITHIN).await;
    let three = names(&cluster);
    let three: Vec<&str> = three.iter().map(String::as_str).collect();
    dns::assert_round_robin(&support::greet_n(cluster.rest(), 300).await, &three);

    // Right after a resolve, so the whole interval is ahead.
    dns::just_after_a_resolve(gateway, WITHIN).await;
    let resolves = gateway.upstream.dns().resolves();
    let added = cluster.add_pod().await.unwrap();
    let gateway = &cluster.gateway.gateway;
    // Else the test would blame the code for a slow add_pod.
    assert_eq!(
        gateway.upstream.dns().resolves(),
        resolves,
        "adding the pod took longer than the interval: no resolve must come between"
    );
    let before = dns::greet_until_the_next_resolve(cluster.rest(), gateway, WITHIN).await;
    assert!(
        before.values().sum::<usize>() >= 10,
        "too few requests to tell: {before:?}"
    );
    assert_eq!(
        before.get(&added),
        None,
        "{added} got requests before the resolve: {before:?}"
    );
    dns::assert_round_robin(&before, &three);

    let four = names(&cluster);
    let four: Vec<&str> = four.iter().map(String::as_str).collect();
    assert_eq!(gateway.upstream.dns().balancer().ready_count(), 4);
    dns::assert_round_robin(&support::greet_n(cluster.rest(), 400).await, &four);
    // The gRPC ingress routes dns mode's calls the same way.
    let channel = Channel::from_shared(format!("http://{}", cluster.gateway.grpc_addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = GreetServiceClient::new(channel);
    let mut hits = std::collections::BTreeMap::new();
    for _ in 0..40 {
        let request = GreetingRequest {
            greeting: Some(Greeting {
                first_name: "Ada".into(),
                last_name: "Lovelace".into(),
            }),
        };
        let reply = client.greet(request).await.unwrap().into_inner();
        *hits.entry(reply.pod_name).or_default() += 1;
    }
    dns::assert_round_robin(&hits, &four);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn balanced_mode_takes_a_new_pod_at_once() {
    let mut cluster = support::cluster(3, Mode::Balanced).await;
    cluster.add_pod().await.unwrap();
    support::until_balancer_follows_the_registry(&cluster).await;
    let four = names(&cluster);
    let four: Vec<&str> = four.iter().map(String::as_str).collect();
    dns::assert_round_robin(&support::greet_n(cluster.rest(), 400).await, &four);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_pod_still_in_the_answer_is_skipped_and_its_requests_retried() {
    let mut cluster = cluster(Mode::Dns).await;
    dns::until_resolves(&cluster.gateway.gateway, 1, WITHIN).await;
    let pods = names(&cluster);
    // Stopped, but still in the registry and so in the answer, as a crashed pod is.
    cluster.crash_pod(&pods[0]).await.unwrap();
    let hits = support::greet_n(cluster.rest(), 60).await;
    dns::assert_round_robin(&hits, &[&pods[1], &pods[2]]);
    let dns_pool = cluster.gateway.gateway.upstream.dns();
    assert_eq!(dns_pool.balancer().ready_count(), 3);
    assert_eq!(dns_pool.balancer().ejections(), 1);
    cluster.shutdown().await;
}

/// A gateway in dns mode for greet.invalid:50051, resolved by `resolver`
/// every `interval`, with no discovered pod.
async fn podless_dns_gateway(resolver: Resolver, interval: Duration) -> greet_gateway::GatewayHandle {
    let spec = GatewaySpec {
        mode: Mode::Dns,
        dns_interval: interval,
        dns_resolver: Some(resolver),
        ..support::gateway_spec(Mode::Dns)
    };
    spec.start(
        "greet.invalid:50051".into(),
        greet_gateway::discovery::static_endpoints(Default::default()),
        Default::default(),
    )
    .await
    .unwrap()
}

/// A resolver that finds no such name, as getaddrinfo says it.
fn no_such_name() -> ResolveFuture {
    Box::pin(async {
        Err(std::io::Error::other(
            "failed to lookup address information: Name or service not known",
        ))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_answer_requests_fail_at_once_saying_what_to_check() {
    // One resolve: the first, at start.
    let handle = podless_dns_gateway(Resolver::new(no_such_name), Duration::from_secs(3600)).await;
    dns::until_resolves(&handle.gateway, 1, WITHIN).await;
    let rest = RestClient::new(format!("http://{}", handle.rest_addr));
    let started = tokio::time::Instant::now();
    let response = rest.greet("Ada", "Lovelace").await.unwrap();
    assert!(started.elapsed() < Duration::from_millis(500));
    assert_eq!(response.status, 503);
    let expected = "dns mode has no address for greet.invalid:50051 (the name has no addresses: failed to lookup \
         address information: Name or service not known); check that the name resolves from the gateway (a \
         headless Service, clusterIP: None, with ready pods), or switch to balanced mode with PUT /mode";
    let body: serde_json::Value = serde_json::from_str(&response.body).unwrap();
    assert_eq!(body["error"], expected);
    let health = rest.send(Method::GET, "/healthz", None, "").await.unwrap();
    assert_eq!(health.status, 503);
    assert_eq!(health.json().unwrap()["error"], expected);
    let metrics = rest.send(Method::GET, "/metrics", None, "").await.unwrap().body;
    for line in [
        "greet_gateway_dns_resolves_total 1",
        "greet_gateway_dns_resolve_errors_total 1",
        "greet_gateway_dns_addresses 0",
    ] {
        assert!(metrics.lines().any(|l| l == line), "no {line:?} in\n{metrics}");
    }
    let mut ingress = GreetServiceClient::new(
        Channel::from_shared(format!("http://{}", handle.grpc_addr))
            .unwrap()
            .connect()
            .await
            .unwrap(),
    );
    let status = ingress.greet(GreetingRequest::default()).await.unwrap_err();
    assert_eq!((status.code(), status.message()), (tonic::Code::Unavailable, expected));
    handle.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lookup_that_never_answers_is_a_failed_resolve_and_is_never_doubled() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    // getaddrinfo against a blackholed nameserver: no answer for long.
    let lookups = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&lookups);
    let hanging = Resolver::new(move || -> ResolveFuture {
        counted.fetch_add(1, Ordering::SeqCst);
        Box::pin(std::future::pending())
    });
    let handle = podless_dns_gateway(hanging, Duration::from_millis(100)).await;
    // Each resolve waits at most 1 s (the interval, at least 1 s) for it.
    dns::until_resolves(&handle.gateway, 2, WITHIN).await;
    let dns = handle.gateway.upstream.dns();
    assert_eq!(dns.errors(), dns.resolves(), "every resolve a failure");
    assert_eq!(
        dns.answer().problem.as_deref(),
        Some("the lookup failed: no answer within 1s")
    );
    assert_eq!(
        lookups.load(Ordering::SeqCst),
        1,
        "the one lookup waited on again, not started anew"
    );
    handle.shutdown().await.unwrap();
}
