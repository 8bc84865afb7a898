//! The embedded demo: a [`LocalCluster`] with the demo's defaults (pods on
//! 127.0.0.11+ preferring port 50051, Kubernetes-style pod names), plus the
//! load the dashboard drives, all on loopback in one process.
//!
//! The same cluster runs the integration tests and the benchmark.

mod cluster;
mod gateway_spec;
mod pod;
pub mod rest_client;
pub mod service_proxy;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::{Deref, DerefMut};

use anyhow::bail;

pub use cluster::{ClusterConfig, LocalCluster, POD_PORT, StickyTarget};
pub use gateway_spec::GatewaySpec;
use greet_proto::Mode;
pub use pod::{LocalPod, PodNames, PodOptions};

/// The most pods the demo starts (127.0.0.11 up to .254 must hold them and those added later).
const MAX_PODS: usize = 200;

#[derive(Clone, Debug)]
pub struct DemoConfig {
    pub pods: usize,
    pub mode: Mode,
    /// Where the gateway listens (port 0: any free port).
    pub rest_addr: SocketAddr,
    pub observe_addr: SocketAddr,
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig {
            pods: 3,
            mode: Mode::Sticky,
            rest_addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            observe_addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
        }
    }
}

impl From<DemoConfig> for ClusterConfig {
    fn from(demo: DemoConfig) -> Self {
        let defaults = ClusterConfig::default();
        ClusterConfig {
            pods: demo.pods,
            gateway: GatewaySpec {
                mode: demo.mode,
                rest_addr: demo.rest_addr,
                observe_addr: demo.observe_addr,
                ..defaults.gateway
            },
            // Each pod serves its own metrics, as greet-server does in a cluster.
            pod: PodOptions {
                metrics: true,
                ..defaults.pod
            },
            ..defaults
        }
    }
}

/// The demo's cluster: everything [`LocalCluster`] offers (`gateway`,
/// `service_addr`, `pods()`, `add_pod`, `kill_pod`) through `Deref`.
pub struct Demo(LocalCluster);

impl Demo {
    pub async fn start(config: DemoConfig) -> anyhow::Result<Demo> {
        if config.pods > MAX_PODS {
            bail!(
                "--pods {} is too many for the demo: use at most {MAX_PODS}",
                config.pods
            );
        }
        Ok(Demo(LocalCluster::start(config.into()).await?))
    }

    /// Stops the gateway, the proxy and every pod.
    pub async fn shutdown(self) {
        self.0.shutdown().await;
    }
}

impl Deref for Demo {
    type Target = LocalCluster;

    fn deref(&self) -> &LocalCluster {
        &self.0
    }
}

impl DerefMut for Demo {
    fn deref_mut(&mut self) -> &mut LocalCluster {
        &mut self.0
    }
}
