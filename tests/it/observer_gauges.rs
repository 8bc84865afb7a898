//! The gauges of the Observer's summaries: requests in flight to a pod and
//! the age of the oldest (through both front doors, REST and the gRPC
//! ingress), and the HTTP/2 connections the gateway holds to each pod, in
//! sticky and balanced mode. Real servers and gateway on loopback.

use greet_tests as support;

use std::net::SocketAddr;
use std::time::Duration;

use greet_demo::rest_client::RestClient;
use greet_gateway::GatewayHandle;
use greet_gateway::discovery::{self, EndpointInfo};
use greet_proto::Mode;
use greet_proto::greet::greet_service_client::GreetServiceClient;
use greet_proto::greet::greet_service_server::{GreetService, GreetServiceServer};
use greet_proto::greet::{Greeting, GreetingRequest, GreetingResponse};
use greet_proto::observe::{PodSummary, Summary};
use tokio::sync::watch;
use tokio::time::Instant;
use tonic::{Request, Response, Status};

/// A Greet server that answers nothing until released, then as `fake-pod`
/// (in its reply and, as greet-server does, its `x-pod-name` header).
#[derive(Clone)]
struct Stalling(watch::Receiver<bool>);

#[tonic::async_trait]
impl GreetService for Stalling {
    async fn greet(&self, _request: Request<GreetingRequest>) -> Result<Response<GreetingResponse>, Status> {
        let mut released = self.0.clone();
        let _ = released.wait_for(|released| *released).await;
        let mut response = Response::new(GreetingResponse {
            result: "Hello".into(),
            pod_name: "fake-pod".into(),
            pod_ip: "127.0.0.1".into(),
        });
        response
            .metadata_mut()
            .insert("x-pod-name", tonic::metadata::MetadataValue::from_static("fake-pod"));
        Ok(response)
    }
}

async fn stalling_server(released: watch::Receiver<bool>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(GreetServiceServer::new(Stalling(released)))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    addr
}

fn summary(gateway: &GatewayHandle) -> Summary {
    gateway.gateway.hub.build_summary(Duration::from_millis(250))
}

/// The row keyed `key` (a pod's name, or the address dialled when none is known).
fn row<'a>(summary: &'a Summary, key: &str) -> Option<&'a PodSummary> {
    summary.pods.iter().find(|pod| {
        if pod.pod_name.is_empty() {
            pod.endpoint == key
        } else {
            pod.pod_name == key
        }
    })
}

/// Builds summaries until one satisfies `wanted` (at most 5 s).
async fn until(gateway: &GatewayHandle, wanted: impl Fn(&Summary) -> bool) -> Summary {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let summary = summary(gateway);
        if wanted(&summary) {
            return summary;
        }
        assert!(Instant::now() < deadline, "no such summary within 5 s: {summary:#?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn greeting() -> GreetingRequest {
    GreetingRequest {
        greeting: Some(Greeting {
            first_name: "Ada".into(),
            last_name: "Lovelace".into(),
        }),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_a_pod_has_not_answered_show_in_flight_with_a_growing_age_until_it_answers() {
    let (release, released) = watch::channel(false);
    let server = stalling_server(released).await;
    let endpoint = server.to_string();
    let spec = support::gateway_spec(Mode::Balanced);
    let set = [EndpointInfo::ready(endpoint.clone())].into_iter().collect();
    let gateway = spec
        .start(endpoint.clone(), discovery::static_endpoints(set), Default::default())
        .await
        .unwrap();
    // One call through each front door.
    let rest = RestClient::new(format!("http://{}", gateway.rest_addr));
    let by_rest = tokio::spawn(async move { rest.greet("Ada", "Lovelace").await.unwrap() });
    let mut grpc = GreetServiceClient::connect(format!("http://{}", gateway.grpc_addr))
        .await
        .unwrap();
    let by_grpc = tokio::spawn(async move { grpc.greet(greeting()).await });

    // No reply has named the pod yet: its row is keyed by the address.
    let first = until(&gateway, |s| row(s, &endpoint).is_some_and(|pod| pod.in_flight == 2)).await;
    let waited = row(&first, &endpoint).unwrap().oldest_in_flight_us;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let later = summary(&gateway);
    let pod = row(&later, &endpoint).unwrap();
    // Both front doors' calls ride the endpoint's one connection.
    assert_eq!((pod.requests, pod.in_flight, pod.connections), (0, 2, 1), "{pod:?}");
    assert!(
        pod.oldest_in_flight_us >= waited + 300_000,
        "{} then {}",
        waited,
        pod.oldest_in_flight_us
    );
    let total = later.total.clone().unwrap();
    assert_eq!((total.in_flight, total.connections), (2, 1));
    assert_eq!(total.oldest_in_flight_us, pod.oldest_in_flight_us);

    release.send_replace(true);
    assert_eq!(by_rest.await.unwrap().status, 200);
    assert_eq!(by_grpc.await.unwrap().unwrap().into_inner().pod_name, "fake-pod");
    let answered = until(&gateway, |s| s.total.as_ref().is_some_and(|t| t.in_flight == 0)).await;
    let pod = row(&answered, "fake-pod").expect("the pod is named by its replies");
    assert_eq!(
        (pod.requests, pod.in_flight, pod.oldest_in_flight_us, pod.connections),
        (2, 0, 0, 1),
        "{answered:#?}"
    );
    assert!(row(&answered, &endpoint).is_none(), "no row left under the address");
    gateway.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_sticky_mode_requests_in_flight_count_for_the_pod_the_connection_reached_last() {
    // Answers at first, then stops answering (as a pinned pod that hangs).
    let (release, released) = watch::channel(true);
    let server = stalling_server(released).await;
    let service = server.to_string();
    let spec = support::gateway_spec(Mode::Sticky);
    let gateway = spec
        .start(
            service.clone(),
            discovery::static_endpoints(Vec::new()),
            Default::default(),
        )
        .await
        .unwrap();
    let rest = RestClient::new(format!("http://{}", gateway.rest_addr));
    let mut grpc = GreetServiceClient::connect(format!("http://{}", gateway.grpc_addr))
        .await
        .unwrap();
    assert_eq!(rest.greet("Ada", "Lovelace").await.unwrap().status, 200);
    assert_eq!(grpc.greet(greeting()).await.unwrap().into_inner().pod_name, "fake-pod");
    release.send_replace(false);
    let by_rest = tokio::spawn(async move { rest.greet("Ada", "Lovelace").await.unwrap() });
    let by_grpc = tokio::spawn(async move { grpc.greet(greeting()).await });
    // The one sticky connection last carried fake-pod's replies: its row, not the Service's.
    let hung = until(&gateway, |s| row(s, "fake-pod").is_some_and(|pod| pod.in_flight == 2)).await;
    let pod = row(&hung, "fake-pod").unwrap();
    assert_eq!((pod.requests, pod.connections), (2, 1), "{pod:?}");
    assert!(row(&hung, &service).is_none(), "{hung:#?}");
    release.send_replace(true);
    assert_eq!(by_rest.await.unwrap().status, 200);
    assert!(by_grpc.await.unwrap().is_ok());
    let answered = until(&gateway, |s| s.total.as_ref().is_some_and(|t| t.in_flight == 0)).await;
    assert_eq!(row(&answered, "fake-pod").unwrap().requests, 4);
    gateway.shutdown().await.unwrap();
}

/// Each pod's connections in a summary after `n` greetings, by pod name.
async fn connections_after(cluster: &greet_demo::LocalCluster, n: usize) -> Vec<(String, u32)> {
    support::greet_n(cluster.rest(), n).await;
    let summary = summary(&cluster.gateway);
    summary
        .pods
        .iter()
        .map(|pod| (pod.pod_name.clone(), pod.connections))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sticky_mode_holds_one_connection_on_one_pod_balanced_one_on_each() {
    let sticky = support::cluster(3, Mode::Sticky).await;
    let connections = connections_after(&sticky, 30).await;
    // Only the pinned pod answered: one row, one connection.
    assert_eq!(connections.len(), 1, "{connections:?}");
    assert_eq!(connections[0].1, 1, "{connections:?}");
    sticky.shutdown().await;

    let balanced = support::cluster(3, Mode::Balanced).await;
    support::until_balancer_follows_the_registry(&balanced).await;
    let connections = connections_after(&balanced, 30).await;
    assert_eq!(connections.len(), 3, "{connections:?}");
    assert!(connections.iter().all(|(_, n)| *n == 1), "{connections:?}");
    balanced.shutdown().await;
}
