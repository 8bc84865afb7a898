//! Every call through either front door (REST's `POST /greet`, the gRPC
//! ingress) is counted exactly once, in the Observer's summaries and in
//! `/metrics`: an answered call, a call the pod failed, a call retried on
//! another endpoint, and a call with nowhere to go. In-process pods and
//! gateway, on 127.0.0.1.

use greet_tests as support;

use std::collections::BTreeMap;
use std::time::Duration;

use greet_demo::GatewaySpec;
use greet_demo::rest_client::RestClient;
use greet_gateway::GatewayHandle;
use greet_gateway::discovery::{self, EndpointInfo};
use greet_proto::Mode;
use greet_proto::greet::greet_service_client::GreetServiceClient;
use greet_proto::grpc_code::go_code_name;
use greet_proto::observe::observer_client::ObserverClient;
use greet_proto::observe::{PodSummary, WatchRequest, event};
use http::Method;
use support::fake_pod;

#[derive(Clone, Copy, Debug)]
enum Door {
    Rest,
    Ingress,
}

/// A balanced gateway over `endpoints` (address, pod name).
async fn gateway(endpoints: &[(String, &str)]) -> GatewayHandle {
    let spec = GatewaySpec {
        mode: Mode::Balanced,
        ..GatewaySpec::default()
    };
    let set = endpoints
        .iter()
        .map(|(address, pod)| EndpointInfo::ready(address.clone()).with_pod_name(*pod))
        .collect();
    spec.start(
        "127.0.0.1:1".into(),
        discovery::static_endpoints(set),
        Default::default(),
    )
    .await
    .unwrap()
}

/// `n` Greet calls through `door`; how each ended: REST's HTTP status
/// (`HTTP 200`), the ingress's gRPC code (`gRPC 0`).
async fn call(gateway: &GatewayHandle, door: Door, n: usize) -> Vec<String> {
    let mut codes = Vec::new();
    match door {
        Door::Rest => {
            let rest = RestClient::new(format!("http://{}", gateway.rest_addr));
            for _ in 0..n {
                let response = rest.greet("Ada", "Lovelace").await.unwrap();
                codes.push(format!("HTTP {}", response.status.as_u16()));
            }
        }
        Door::Ingress => {
            let mut client = GreetServiceClient::connect(format!("http://{}", gateway.grpc_addr))
                .await
                .unwrap();
            for _ in 0..n {
                let code = match client.greet(fake_pod::greeting()).await {
                    Ok(_) => 0,
                    Err(status) => status.code() as i32,
                };
                codes.push(format!("gRPC {code}"));
            }
        }
    }
    codes
}

/// The Observer's cumulative summary once its total reaches `requests`,
/// and the one after it (a late second count would show there).
async fn summary(gateway: &GatewayHandle, requests: u64) -> (PodSummary, Vec<PodSummary>) {
    let mut observer = ObserverClient::connect(format!("http://{}", gateway.observe_addr))
        .await
        .unwrap();
    let request = WatchRequest {
        summary_interval_ms: 50,
        sample_per_second: 0,
    };
    let mut stream = observer.watch(request).await.unwrap().into_inner();
    let mut reached = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let event = tokio::time::timeout_at(deadline, stream.message())
            .await
            .expect("the summary reaches the calls made within 10 s")
            .unwrap()
            .expect("the stream goes on");
        let Some(event::Kind::Summary(summary)) = event.kind else {
            continue;
        };
        let total = summary.total.clone().unwrap_or_default();
        if reached {
            return (total, summary.pods);
        }
        reached = total.requests >= requests;
    }
}

/// `/metrics`' samples of `name` whose labels include `mode="balanced"`:
/// by (pod, outcome) for the requests, else the one value.
async fn metric(gateway: &GatewayHandle, name: &str) -> BTreeMap<(String, String), f64> {
    let response = RestClient::new(format!("http://{}", gateway.rest_addr))
        .send(Method::GET, "/metrics", None, "")
        .await
        .unwrap();
    assert_eq!(response.status, 200, "{}", response.body);
    let label = |series: &str, key: &str| {
        series
            .split_once(&format!("{key}=\""))
            .and_then(|(_, rest)| rest.split_once('"'))
            .map_or(String::new(), |(value, _)| value.to_owned())
    };
    response
        .body
        .lines()
        .filter(|line| line.starts_with(&format!("{name}{{")) || line.starts_with(&format!("{name} ")))
        .filter_map(|line| line.rsplit_once(' '))
        .map(|(series, value)| ((label(series, "pod"), label(series, "outcome")), value.parse().unwrap()))
        .collect()
}

/// What one scenario must have counted, whichever door it came through.
struct Expected {
    requests: u64,
    errors: u64,
    attempts: u64,
    /// `greet_gateway_requests_total` by (pod, outcome).
    by_outcome: Vec<(&'static str, String, f64)>,
    retries: f64,
}

impl Expected {
    /// `requests` calls, `errors` of them failed, `attempts` tries, all
    /// counted under `pod` with `outcome`, `retries` of the tries retries.
    fn new(requests: u64, errors: u64, attempts: u64, (pod, outcome): (&'static str, &str), retries: f64) -> Self {
        let by_outcome = vec![(pod, outcome.to_owned(), requests as f64)];
        Expected {
            requests,
            errors,
            attempts,
            by_outcome,
            retries,
        }
    }
}

/// `codes.len()` calls through `door`, each ending with its code, counted as `expected`.
async fn assert_counted(gateway: &GatewayHandle, door: Door, codes: &[&str], expected: Expected) {
    assert_eq!(call(gateway, door, codes.len()).await, codes, "{door:?}");
    let (total, pods) = summary(gateway, expected.requests).await;
    assert_eq!(
        (total.requests, total.errors, total.attempts),
        (expected.requests, expected.errors, expected.attempts),
        "{door:?}: requests, errors, attempts in the Observer's summary: {pods:?}"
    );
    let by_outcome: BTreeMap<(String, String), f64> = expected
        .by_outcome
        .iter()
        .map(|(pod, outcome, n)| (((*pod).to_owned(), outcome.clone()), *n))
        .collect();
    assert_eq!(
        metric(gateway, "greet_gateway_requests_total").await,
        by_outcome,
        "{door:?}: /metrics"
    );
    let retries = metric(gateway, "greet_gateway_retries_total").await;
    assert_eq!(
        retries.values().sum::<f64>(),
        expected.retries,
        "{door:?}: retries in /metrics: {retries:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answered_call_is_counted_once_through_either_door() {
    let pod = fake_pod::serve(fake_pod::pod("pod-a", false)).await;
    for door in [Door::Rest, Door::Ingress] {
        let gateway = gateway(&[(pod.to_string(), "pod-a")]).await;
        let expected = Expected::new(3, 0, 3, ("pod-a", "ok"), 0.0);
        let codes = match door {
            Door::Rest => ["HTTP 200"; 3],
            Door::Ingress => ["gRPC 0"; 3],
        };
        assert_counted(&gateway, door, &codes, expected).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_the_pod_failed_is_counted_once_through_either_door() {
    let failing = fake_pod::pod("pod-b", false);
    failing.failing.store(true, std::sync::atomic::Ordering::SeqCst);
    let pod = fake_pod::serve(failing).await;
    let exhausted = tonic::Code::ResourceExhausted as i32;
    for (door, code) in [(Door::Rest, "HTTP 502"), (Door::Ingress, "gRPC 8")] {
        let gateway = gateway(&[(pod.to_string(), "pod-b")]).await;
        let expected = Expected::new(2, 2, 2, ("pod-b", go_code_name(exhausted)), 0.0);
        assert_counted(&gateway, door, &[code, code], expected).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_call_is_counted_once_through_either_door() {
    let pod = fake_pod::serve(fake_pod::pod("pod-a", false)).await;
    for door in [Door::Rest, Door::Ingress] {
        // Refused: the call that picks it goes on to pod-a, which takes the
        // other call too (the refused endpoint is skipped meanwhile).
        let refused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let refused_at = refused.local_addr().unwrap().to_string();
        drop(refused);
        let gateway = gateway(&[(refused_at, "pod-gone"), (pod.to_string(), "pod-a")]).await;
        let expected = Expected::new(2, 0, 3, ("pod-a", "ok"), 1.0);
        let code = match door {
            Door::Rest => "HTTP 200",
            Door::Ingress => "gRPC 0",
        };
        assert_counted(&gateway, door, &[code, code], expected).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_with_nowhere_to_go_is_counted_once_through_either_door() {
    let unavailable = tonic::Code::Unavailable as i32;
    for (door, code) in [(Door::Rest, "HTTP 503"), (Door::Ingress, "gRPC 14")] {
        let gateway = gateway(&[]).await;
        let expected = Expected::new(2, 2, 0, ("", go_code_name(unavailable)), 0.0);
        assert_counted(&gateway, door, &[code, code], expected).await;
    }
}
