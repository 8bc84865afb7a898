//! One hostile HTTP/2 client must not hurt the others: attacks built from
//! raw frames (hostile_h2/frames.rs) against the gateway's gRPC ingress and
//! REST port, on loopback, each bounded in count and time, while another
//! client's calls and streams go on.

mod frames;
mod storm;

use greet_tests as support;

use std::time::Duration;

use greet_demo::LocalCluster;
use greet_proto::greet::greet_service_client::GreetServiceClient;
use greet_proto::greet::{Greeting, GreetingRequest};
use tonic::transport::Channel;

fn greeting(last_name: &str) -> GreetingRequest {
    GreetingRequest {
        greeting: Some(Greeting {
            first_name: "Ada".into(),
            last_name: last_name.into(),
        }),
    }
}

async fn ingress_channel(addr: std::net::SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .timeout(Duration::from_secs(10))
        .connect()
        .await
        .unwrap()
}

/// A well-behaved client's unary calls, one after another until `stop`:
/// how many there were and the failures.
async fn unary_until(
    cluster_grpc: std::net::SocketAddr,
    stop: tokio_util::sync::CancellationToken,
) -> (usize, Vec<String>) {
    let mut client = GreetServiceClient::new(ingress_channel(cluster_grpc).await);
    let (mut calls, mut failures) = (0, Vec::new());
    while !stop.is_cancelled() {
        calls += 1;
        if let Err(status) = client.greet(greeting(&format!("calm-{calls}"))).await {
            failures.push(format!("{:?}: {}", status.code(), status.message()));
        }
    }
    (calls, failures)
}

#[allow(dead_code, reason = "each attack uses what it needs")]
fn grpc_addr(cluster: &LocalCluster) -> std::net::SocketAddr {
    cluster.gateway.grpc_addr
}
