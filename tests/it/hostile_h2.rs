//! One hostile HTTP/2 client must not hurt the others: attacks built from
//! raw frames (hostile_h2/frames.rs) against the gateway's gRPC ingress and
//! REST port, on loopback, each bounded in count and time, while another
//! client's calls and streams go on.

mod caps;
mod frames;
mod held_streams;
mod observer_cap;
mod rapid_reset;
mod slow;
mod storm;
mod zero_window;

use greet_tests as support;

use std::time::Duration;

use greet_demo::LocalCluster;
use greet_proto::greet::greet_service_client::GreetServiceClient;
use greet_proto::greet::{Greeting, GreetingRequest};
use greet_tests::counting::Counting;
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

/// A sticky gateway in this process in front of `upstream`, with the
/// front doors' default limits.
async fn gateway_in_front_of(upstream: std::net::SocketAddr) -> greet_gateway::GatewayHandle {
    support::gateway_spec(greet_proto::Mode::Sticky)
        .start(
            upstream.to_string(),
            greet_gateway::discovery::static_endpoints(Default::default()),
            Default::default(),
        )
        .await
        .unwrap()
}

/// The gateway binary, killed on drop.
struct GatewayProcess {
    child: std::process::Child,
    grpc: std::net::SocketAddr,
    rest: std::net::SocketAddr,
    observe: std::net::SocketAddr,
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The gateway binary, sticky in front of `upstream`, with `flags`.
fn gateway_process(upstream: std::net::SocketAddr, flags: &[&str]) -> GatewayProcess {
    let (child, line) = support::listening::spawn_until_logged(
        std::process::Command::new(env!("CARGO_BIN_EXE_greet-gateway"))
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                "0",
                "--observe-port",
                "0",
                "--grpc-port",
                "0",
            ])
            .args([
                "--grpc-server-host",
                "127.0.0.1",
                "--grpc-server-port",
                &upstream.port().to_string(),
            ])
            .args(["--endpoints", &upstream.to_string(), "--health-check-interval", "0"])
            .args(flags)
            .stdout(std::process::Stdio::null()),
        "greet-gateway listening",
    );
    GatewayProcess {
        child,
        grpc: support::listening::address_in(&line, "grpc_addr"),
        rest: support::listening::address_in(&line, "rest_addr"),
        observe: support::listening::address_in(&line, "observe_addr"),
    }
}
