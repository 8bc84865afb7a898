//! Item 1: the direct gRPC limit, h2load against one greet-server. h2load
//! counts HTTP 200s only, so a Rust client call checks that the same server
//! (and any other path driven this way) answers gRPC OK with a named pod.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::{Context, bail};
use greet_proto::greet::greet_service_client::GreetServiceClient;
use greet_proto::greet::{Greeting, GreetingRequest};

use super::loadgen;
use super::procs::total_cpu;

/// One h2load run against `target` (a greet-server or a proxy): requests
/// per second and latency, and the CPU µs per request of the processes
/// `pids` (the servers, the proxy): where the time goes on each path.
pub(crate) async fn run(
    target: SocketAddr,
    requests: usize,
    body_file: &Path,
    pids: &[u32],
) -> anyhow::Result<GrpcRun> {
    let before = total_cpu(pids)?;
    let h2load = loadgen::h2load(&target.to_string(), requests, body_file).await?;
    let cpu = total_cpu(pids)? - before;
    Ok(GrpcRun {
        h2load,
        cpu_us: cpu.as_secs_f64() * 1e6 / requests as f64,
    })
}

pub(crate) struct GrpcRun {
    pub h2load: loadgen::H2load,
    pub cpu_us: f64,
}

/// A few Greet calls over gRPC at `authority`: each must be OK (grpc-status
/// 0) and name a pod. Returns the pods that answered.
pub(crate) async fn check_grpc_ok(authority: &str, calls: usize) -> anyhow::Result<Vec<String>> {
    let mut client = GreetServiceClient::connect(format!("http://{authority}"))
        .await
        .with_context(|| format!("connecting to {authority}"))?;
    let mut pods = Vec::new();
    for _ in 0..calls {
        let request = GreetingRequest {
            greeting: Some(Greeting {
                first_name: "Hitesh".into(),
                last_name: "Pattanayak".into(),
            }),
        };
        let reply = client
            .greet(request)
            .await
            .with_context(|| format!("Greet via {authority} is not gRPC OK"))?
            .into_inner();
        if reply.pod_name.is_empty() {
            bail!("Greet via {authority} named no pod: {:?}", reply.result);
        }
        pods.push(reply.pod_name);
    }
    Ok(pods)
}
