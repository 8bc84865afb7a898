//! The gateway's gRPC ingress (issue 11) end to end: real greet-servers
//! behind the Service proxy, any gRPC call sent to the gateway's gRPC port;
//! every kind of call to a test-only streaming service (ingress/streams.rs).

#[path = "ingress/echo.rs"]
mod echo;
#[path = "ingress/streams.rs"]
mod streams;
mod support;

use std::collections::BTreeMap;

use greet_top::common::Mode;
use greet_top::proto::greet::greet_service_client::GreetServiceClient;
use greet_top::proto::greet::{Greeting, GreetingRequest};
use tonic::transport::Channel;

fn greeting(i: usize) -> GreetingRequest {
    GreetingRequest {
        greeting: Some(Greeting {
            first_name: "Ada".into(),
            last_name: format!("Lovelace-{i}"),
        }),
    }
}

async fn ingress_channel(cluster: &greet_top::tui::demo::LocalCluster) -> Channel {
    Channel::from_shared(format!("http://{}", cluster.gateway.grpc_addr))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// The pods that answered `n` Greet calls through the ingress, in order.
async fn greet_pods(client: &mut GreetServiceClient<Channel>, n: usize) -> Vec<String> {
    let mut pods = Vec::new();
    for i in 0..n {
        let reply = client.greet(greeting(i)).await.unwrap().into_inner();
        assert!(reply.result.contains(&format!("Lovelace-{i}")), "{reply:?}");
        pods.push(reply.pod_name);
    }
    pods
}

#[tokio::test]
async fn greet_through_the_ingress_is_sticky_then_round_robin_and_observed() {
    let cluster = support::cluster(3, Mode::Sticky).await;
    let mut client = GreetServiceClient::new(ingress_channel(&cluster).await);

    let sticky = greet_pods(&mut client, 30).await;
    assert!(sticky.iter().all(|p| *p == sticky[0]), "sticky: one pod: {sticky:?}");

    cluster.rest().set_mode(Mode::Balanced).await.unwrap();
    // The same client connection: balancing is per call, not per connection.
    let balanced = greet_pods(&mut client, 30).await;
    let mut names: Vec<String> = cluster.pods().map(|(name, _)| name.to_owned()).collect();
    names.sort();
    let first: Vec<String> = balanced[..3].to_vec();
    let mut sorted = first.clone();
    sorted.sort();
    assert_eq!(sorted, names, "the first three calls went to three different pods");
    for (i, pod) in balanced.iter().enumerate() {
        assert_eq!(*pod, first[i % 3], "call {i} in exact round robin: {balanced:?}");
    }

    // Observed as REST requests are: counted per pod, in the totals.
    let state = cluster.gateway.gateway.hub.snapshot();
    assert_eq!(state.total_requests, 60);
    let hits: BTreeMap<String, u64> = state.pods.iter().map(|p| (p.pod_name.clone(), p.requests)).collect();
    let mut expected: BTreeMap<String, u64> = names.iter().map(|n| (n.clone(), 10)).collect();
    *expected.get_mut(&sticky[0]).unwrap() += 30;
    assert_eq!(hits, expected);
    assert!(state.pods.iter().all(|p| p.errors == 0), "{:?}", state.pods);
}
