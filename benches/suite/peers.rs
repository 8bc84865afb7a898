//! The proxies the gateway's gRPC ingress is measured beside (item 2):
//! nginx, HAProxy and Envoy, each over the same greet-servers with the same
//! h2load workload, started from configs the suite writes into its temp dir.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use super::procs::Child;

/// A peer proxy process, killed when dropped (its `Child`).
pub(crate) struct Proxy {
    pub name: &'static str,
    pub child: Child,
    pub addr: SocketAddr,
}

impl Proxy {
    /// Its processes now (it and any children): all count for its CPU.
    pub(crate) fn pids(&self) -> anyhow::Result<Vec<u32>> {
        super::procs::process_tree(self.child.pid())
    }
}

/// Starts nginx, HAProxy and Envoy in front of `servers`, in that order,
/// each checked to answer gRPC OK and to round-robin over all of them.
pub(crate) async fn start_all(dir: &Path, servers: &[SocketAddr]) -> anyhow::Result<[Proxy; 3]> {
    let nginx = super::nginx::start(dir, servers).await?;
    check_round_robin(nginx.name, nginx.addr, servers.len()).await?;
    let haproxy = super::haproxy::start(dir, servers).await?;
    check_round_robin(haproxy.name, haproxy.addr, servers.len()).await?;
    let envoy = super::envoy::start(dir, servers).await?;
    check_round_robin(envoy.name, envoy.addr, servers.len()).await?;
    Ok([nginx, haproxy, envoy])
}

/// Two rounds of Greet calls on one connection via `addr`: each gRPC OK,
/// and each of the `servers` answering exactly two of them.
pub(crate) async fn check_round_robin(name: &str, addr: SocketAddr, servers: usize) -> anyhow::Result<()> {
    let pods = super::direct_grpc::check_grpc_ok(&addr.to_string(), 2 * servers).await?;
    let mut calls = BTreeMap::new();
    for pod in &pods {
        *calls.entry(pod.as_str()).or_insert(0) += 1;
    }
    anyhow::ensure!(
        calls.len() == servers && calls.values().all(|n| *n == 2),
        "{name} did not round-robin over the {servers} greet-servers: {pods:?}"
    );
    Ok(())
}
