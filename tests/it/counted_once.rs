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

/// `n` Greet calls through `door`; the gRPC code of each (0: OK).
async fn call(gateway: &GatewayHandle, door: Door, n: usize) -> Vec<i32> {
    let mut codes = Vec::new();
    match door {
        Door::Rest => {
            let rest = RestClient::new(format!("http://{}", gateway.rest_addr));
            for _ in 0..n {
                let response = rest.greet("Ada", "Lovelace").await.unwrap();
                codes.push(if response.status == 200 { 0 } else { -1 });
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
                codes.push(code);
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

async fn assert_counted(gateway: &GatewayHandle, door: Door, expected: Expected) {
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
        assert_eq!(call(&gateway, door, 3).await, [0, 0, 0]);
        let expected = Expected {
            requests: 3,
            errors: 0,
            attempts: 3,
            by_outcome: vec![("pod-a", "ok".into(), 3.0)],
            retries: 0.0,
        };
        assert_counted(&gateway, door, expected).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_the_pod_failed_is_counted_once_through_either_door() {
    let failing = fake_pod::pod("pod-b", false);
    failing.failing.store(true, std::sync::atomic::Ordering::SeqCst);
    let pod = fake_pod::serve(failing).await;
    let exhausted = tonic::Code::ResourceExhausted as i32;
    for (door, code) in [(Door::Rest, -1), (Door::Ingress, exhausted)] {
        let gateway = gateway(&[(pod.to_string(), "pod-b")]).await;
        assert_eq!(call(&gateway, door, 2).await, [code, code]);
        let expected = Expected {
            requests: 2,
            errors: 2,
            attempts: 2,
            by_outcome: vec![("pod-b", go_code_name(exhausted).to_owned(), 2.0)],
            retries: 0.0,
        };
        assert_counted(&gateway, door, expected).await;
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
        assert_eq!(call(&gateway, door, 2).await, [0, 0]);
        let expected = Expected {
            requests: 2,
            errors: 0,
            attempts: 3,
            by_outcome: vec![("pod-a", "ok".into(), 2.0)],
            retries: 1.0,
        };
        assert_counted(&gateway, door, expected).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_with_nowhere_to_go_is_counted_once_through_either_door() {
    let unavailable = tonic::Code::Unavailable as i32;
    for (door, code) in [(Door::Rest, -1), (Door::Ingress, unavailable)] {
        let gateway = gateway(&[]).await;
        assert_eq!(call(&gateway, door, 2).await, [code, code]);
        let expected = Expected {
            requests: 2,
            errors: 2,
            attempts: 0,
            by_outcome: vec![("", go_code_name(unavailable).to_owned(), 2.0)],
            retries: 0.0,
        };
        assert_counted(&gateway, door, expected).await;
    }
}
