//! Whom a failed sticky request is attributed to: the pod the sticky
//! connection's replies named last, as the summaries' gauges attribute its
//! requests in flight; through both front doors. Real gateway, an
//! in-process Greet server on loopback as the pinned upstream.

use greet_tests as support;

use support::fake_pod::{greeting, pod, serve};

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use greet_demo::rest_client::RestClient;
use greet_gateway::discovery;
use greet_proto::Mode;
use greet_proto::greet::greet_service_client::GreetServiceClient;
use greet_proto::observe::{RequestEvent, event};
use tonic::Request;

/// The pinned pod answers one request through each front door, then stops
/// answering: the next request through each fails (REST: the upstream
/// timeout, 504; ingress: the call's grpc-timeout), attributed to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_sticky_request_names_the_pod_its_connection_reached_last() {
    let pinned = pod("pinned-pod", false);
    let hung = Arc::clone(&pinned.hung);
    let service = serve(pinned).await.to_string();
    let mut spec = support::gateway_spec(Mode::Sticky);
    spec.timeouts.request = Duration::from_millis(300);
    let gateway = spec
        .start(
            service.clone(),
            discovery::static_endpoints(Default::default()),
            Default::default(),
        )
        .await
        .unwrap();
    let (_, mut events) = gateway.gateway.hub.subscribe();
    let rest = RestClient::new(format!("http://{}", gateway.rest_addr));
    let mut grpc = GreetServiceClient::connect(format!("http://{}", gateway.grpc_addr))
        .await
        .unwrap();
    let call = || {
        let mut request = Request::new(greeting());
        request.set_timeout(Duration::from_millis(300));
        request
    };
    assert_eq!(rest.greet("Ada", "Lovelace").await.unwrap().status, 200);
    grpc.greet(call()).await.unwrap();

    hung.store(true, Ordering::SeqCst);
    assert_eq!(rest.greet("Ada", "Lovelace").await.unwrap().status, 504);
    // The gateway's deadline or the client's own cancel at the same time.
    grpc.greet(call()).await.unwrap_err();

    let mut seen: Vec<RequestEvent> = Vec::new();
    while seen.len() < 4 {
        let event = tokio::time::timeout(Duration::from_secs(5), events.recv())
            .await
            .expect("the four requests' events")
            .unwrap();
        if let Some(event::Kind::Request(request)) = &event.kind {
            seen.push(request.clone());
        }
    }
    let failed: Vec<(&str, &str, &str)> = seen
        .iter()
        .filter(|e| e.grpc_code != 0)
        .map(|e| (e.pod_name.as_str(), e.endpoint.as_str(), e.method.as_str()))
        .collect();
    let method = "/greet.GreetService/Greet";
    let mut expected = [
        ("pinned-pod", service.as_str(), ""),
        ("pinned-pod", service.as_str(), method),
    ];
    if failed.first().is_some_and(|f| !f.2.is_empty()) {
        expected.reverse();
    }
    assert_eq!(failed, expected, "{seen:#?}");

    let summary = gateway.gateway.hub.build_summary(Duration::from_millis(250));
    let keys: Vec<(&str, &str, u64, u64)> = summary
        .pods
        .iter()
        .map(|p| (p.pod_name.as_str(), p.endpoint.as_str(), p.requests, p.errors))
        .collect();
    assert_eq!(
        keys,
        [("pinned-pod", service.as_str(), 4, 2)],
        "no row for the Service alone"
    );
    gateway.shutdown().await.unwrap();
}

/// A sticky connection that never got a reply names no pod: its failure
/// stays the Service's (the dashboard's "naming no pod").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_sticky_request_before_any_reply_names_no_pod() {
    let service = serve(pod("never-seen", true)).await.to_string();
    let mut spec = support::gateway_spec(Mode::Sticky);
    spec.timeouts.request = Duration::from_millis(300);
    let gateway = spec
        .start(
            service.clone(),
            discovery::static_endpoints(Default::default()),
            Default::default(),
        )
        .await
        .unwrap();
    let rest = RestClient::new(format!("http://{}", gateway.rest_addr));
    assert_eq!(rest.greet("Ada", "Lovelace").await.unwrap().status, 504);
    let summary = gateway.gateway.hub.build_summary(Duration::from_millis(250));
    let keys: Vec<(&str, &str, u64, u64)> = summary
        .pods
        .iter()
        .map(|p| (p.pod_name.as_str(), p.endpoint.as_str(), p.requests, p.errors))
        .collect();
    assert_eq!(keys, [("", service.as_str(), 1, 1)]);
    gateway.shutdown().await.unwrap();
}

/// A sticky answer that does not name its pod (a status from a layer in
/// front of the service) is the pod's the connection's replies named last,
/// not the Service's address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sticky_answer_that_names_no_pod_is_the_connections_pod() {
    let pinned = pod("pinned-pod", false);
    let failing = Arc::clone(&pinned.failing);
    let service = serve(pinned).await.to_string();
    let gateway = support::gateway_spec(Mode::Sticky)
        .start(
            service.clone(),
            discovery::static_endpoints(Default::default()),
            Default::default(),
        )
        .await
        .unwrap();
    let (_, mut events) = gateway.gateway.hub.subscribe();
    let mut grpc = GreetServiceClient::connect(format!("http://{}", gateway.grpc_addr))
        .await
        .unwrap();
    grpc.greet(greeting()).await.unwrap();
    failing.store(true, Ordering::SeqCst);
    let status = grpc.greet(greeting()).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::ResourceExhausted);
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let event = tokio::time::timeout(Duration::from_secs(5), events.recv())
            .await
            .expect("both calls' events")
            .unwrap();
        if let Some(event::Kind::Request(request)) = &event.kind {
            seen.push((request.pod_name.clone(), request.grpc_code));
        }
    }
    assert_eq!(
        seen,
        [
            ("pinned-pod".to_owned(), 0),
            ("pinned-pod".to_owned(), tonic::Code::ResourceExhausted as i32)
        ]
    );
    gateway.shutdown().await.unwrap();
}
