//! Whose time a request's latency is: a request retried after a pod did
//! not answer within its try's limit counts, for the pod that answered,
//! only that pod's own attempt; the whole request's time stays the
//! client's (the request metric, RequestEvent.request_latency_us). Real
//! gateway, in-process Greet servers on loopback.

use greet_tests as support;

use support::fake_pod::{greeting, pod, serve};

use std::time::Duration;

use greet_demo::rest_client::RestClient;
use greet_gateway::GatewayHandle;
use greet_gateway::TRY_LIMIT_FLOOR;
use greet_gateway::discovery::{self, EndpointInfo};
use greet_proto::Mode;
use greet_proto::greet::greet_service_client::GreetServiceClient;
use greet_proto::latency_buckets::lower_bound_us;
use greet_proto::observe::{PodSummary, RequestEvent, event};

#[derive(Clone, Copy, Debug)]
enum FrontDoor {
    Rest,
    Ingress,
}

async fn greet(gateway: &GatewayHandle, door: FrontDoor) {
    match door {
        FrontDoor::Rest => {
            let rest = RestClient::new(format!("http://{}", gateway.rest_addr));
            assert_eq!(rest.greet("Ada", "Lovelace").await.unwrap().status, 200);
        }
        FrontDoor::Ingress => {
            let mut grpc = GreetServiceClient::connect(format!("http://{}", gateway.grpc_addr))
                .await
                .unwrap();
            grpc.greet(greeting()).await.unwrap();
        }
    }
}

fn row<'a>(pods: &'a [PodSummary], name: &str) -> &'a PodSummary {
    pods.iter()
        .find(|pod| pod.pod_name == name)
        .unwrap_or_else(|| panic!("no row {name}: {pods:#?}"))
}

/// Two requests through `door` of a balanced gateway over a hung pod and a
/// healthy one: one of them tries the hung pod first, waits its try's limit
/// and is answered by the healthy pod.
async fn one_retried_after_a_hung_pod(door: FrontDoor) {
    let hung = serve(pod("pod-hung", true)).await;
    let healthy = serve(pod("pod-b", false)).await;
    let set = [
        EndpointInfo::ready(hung.to_string()),
        EndpointInfo::ready(healthy.to_string()),
    ]
    .into_iter()
    .collect();
    let gateway = support::gateway_spec(Mode::Balanced)
        .start(
            healthy.to_string(),
            discovery::static_endpoints(set),
            Default::default(),
        )
        .await
        .unwrap();
    let (_, mut events) = gateway.gateway.hub.subscribe();
    for _ in 0..2 {
        greet(&gateway, door).await;
    }

    let mut seen: Vec<RequestEvent> = Vec::new();
    while seen.len() < 2 {
        let event = tokio::time::timeout(Duration::from_secs(5), events.recv())
            .await
            .expect("both requests' events")
            .unwrap();
        if let Some(event::Kind::Request(request)) = &event.kind {
            seen.push(request.clone());
        }
    }
    let floor = u64::try_from(TRY_LIMIT_FLOOR.as_micros()).unwrap();
    let retried: Vec<&RequestEvent> = seen.iter().filter(|e| e.attempts == 2).collect();
    assert_eq!(retried.len(), 1, "{seen:#?}");
    let retried = retried[0];
    assert_eq!(retried.pod_name, "pod-b");
    assert!(retried.request_latency_us >= floor, "the client waited: {retried:?}");
    assert!(retried.latency_us < 100_000, "pod-b's own attempt: {retried:?}");

    let summary = gateway.gateway.hub.build_summary(Duration::from_millis(250));
    let b = row(&summary.pods, "pod-b");
    assert_eq!((b.requests, b.errors, b.attempts), (2, 0, 3), "{b:?}");
    assert!(b.latency_us_sum < 200_000, "pod-b answered both at once: {b:?}");
    let slowest = b.latency_buckets.len() - 1;
    assert!(lower_bound_us(slowest) < 100_000, "pod-b's histogram: {b:?}");
    // The request metric is the client's: the wait on the hung pod included.
    let (counts, sum_us) = gateway.gateway.hub.request_durations();
    assert_eq!(counts.iter().sum::<u64>(), 2);
    assert!(sum_us >= floor, "{sum_us}");
    gateway.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rest_request_retried_after_a_hung_pod_adds_only_its_answering_try_to_that_pod() {
    one_retried_after_a_hung_pod(FrontDoor::Rest).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ingress_call_retried_after_a_hung_pod_adds_only_its_answering_try_to_that_pod() {
    one_retried_after_a_hung_pod(FrontDoor::Ingress).await;
}
