//! The embedded demo: greet-servers, a kube-proxy-like service, a gateway and
//! load, all on loopback in one process, faithful to what a cluster does.
//!
//! ```text
//! sticky:   gateway ──one HTTP/2 connection──► service proxy ──(connection-level RR)──► pod
//! balanced: gateway ──per-request RR over the registry's endpoint set──────────────────► pods
//! ```

pub mod controller;
pub mod service_proxy;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::common::Mode;
use crate::gateway::discovery::{self, EndpointInfo, EndpointSet};
use crate::gateway::upstream::UpstreamTimeouts;
use crate::gateway::{GatewayConfig, GatewayHandle};
use crate::server::ServerConfig;

/// Port every demo pod listens on, each on its own 127.0.0.x address like pods.
pub const POD_PORT: u16 = 50051;
/// The demo's pods live on 127.0.0.(FIRST_POD_HOST + n).
const FIRST_POD_HOST: u8 = 11;

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

/// One demo pod: a real greet-server task.
pub struct DemoPod {
    pub name: String,
    pub addr: SocketAddr,
    stop: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

pub struct Demo {
    pods: Vec<DemoPod>,
    /// Like a ReplicaSet's pod-template hash: one per demo run.
    hash: String,
    next_ordinal: usize,
    registry: watch::Sender<EndpointSet>,
    backends: watch::Sender<Vec<SocketAddr>>,
    pub service_addr: SocketAddr,
    pub gateway: GatewayHandle,
    stop: CancellationToken,
}

/// A five-letter, lower-case id in the style of Kubernetes pod-name suffixes.
fn kube_style_id(mut seed: u64) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..5)
        .map(|_| {
            let c = ALPHABET[(seed % ALPHABET.len() as u64) as usize] as char;
            seed /= ALPHABET.len() as u64;
            c
        })
        .collect()
}

fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.finish()
}

impl Demo {
    pub async fn start(config: DemoConfig) -> anyhow::Result<Demo> {
        if config.pods > 200 {
            bail!("--pods {} is too many for the demo: use at most 200", config.pods);
        }
        let stop = CancellationToken::new();
        let (backends, backends_rx) = watch::channel(Vec::new());
        let service = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .context("binding the demo's service proxy on 127.0.0.1")?;
        let service_addr = service.local_addr()?;
        tokio::spawn(service_proxy::run(service, backends_rx, stop.clone()));

        let (registry, registry_rx) = watch::channel(EndpointSet::new());
        let gateway_config = GatewayConfig {
            name: "greetclient-demo".into(),
            mode: config.mode,
            sticky_target: service_addr.to_string(),
            discovery_name: "demo registry".into(),
            discovery_health: Default::default(),
            timeouts: UpstreamTimeouts {
                request: Duration::from_secs(2),
                connect: Duration::from_millis(300),
            },
        };
        let rest = TcpListener::bind(config.rest_addr)
            .await
            .with_context(|| format!("binding the demo gateway's REST port {}", config.rest_addr))?;
        let observe = TcpListener::bind(config.observe_addr)
            .await
            .with_context(|| format!("binding the demo gateway's Observer port {}", config.observe_addr))?;
        let gateway = crate::gateway::start(gateway_config, discovery::from_watch(registry_rx), rest, observe).await?;

        let mut demo = Demo {
            pods: Vec::new(),
            hash: kube_style_id(random_seed()),
            next_ordinal: 0,
            registry,
            backends,
            service_addr,
            gateway,
            stop,
        };
        for _ in 0..config.pods {
            demo.add_pod().await?;
        }
        Ok(demo)
    }

    /// Starts one more pod and adds it to the Service and the endpoint set.
    pub async fn add_pod(&mut self) -> anyhow::Result<String> {
        let ordinal = self.next_ordinal;
        let host = u8::try_from(usize::from(FIRST_POD_HOST) + ordinal)
            .ok()
            .filter(|h| *h < 255)
            .context("the demo ran out of 127.0.0.x addresses; restart it")?;
        self.next_ordinal += 1;
        let ip = Ipv4Addr::new(127, 0, 0, host);
        // The pod port, or any free port if something else holds it.
        let listener = match TcpListener::bind((ip, POD_PORT)).await {
            Ok(listener) => listener,
            Err(_) => TcpListener::bind((ip, 0))
                .await
                .with_context(|| format!("binding a demo pod on {ip}"))?,
        };
        let addr = listener.local_addr()?;
        let name = format!(
            "greetserver-demo-{}-{}",
            self.hash,
            kube_style_id(random_seed() ^ ordinal as u64)
        );
        let stop = CancellationToken::new();
        let config = ServerConfig {
            pod_name: name.clone(),
            pod_ip: ip.to_string(),
            max_connection_age: None,
            shutdown_delay: Duration::ZERO,
            drain_timeout: Duration::from_secs(1),
        };
        let task = tokio::spawn(crate::server::serve(listener, config, stop.clone().cancelled_owned()));
        self.pods.push(DemoPod {
            name: name.clone(),
            addr,
            stop,
            task,
        });
        self.publish();
        Ok(name)
    }

    /// Takes the pod out of the Service and the endpoint set, then stops it,
    /// as Kubernetes does when a pod is deleted.
    pub async fn kill_pod(&mut self, name: &str) -> anyhow::Result<()> {
        let index = self
            .pods
            .iter()
            .position(|p| p.name == name)
            .with_context(|| format!("no demo pod named {name}"))?;
        let pod = self.pods.remove(index);
        self.publish();
        pod.stop.cancel();
        match tokio::time::timeout(Duration::from_secs(3), pod.task).await {
            Ok(Ok(result)) => result,
            Ok(Err(join)) => Err(anyhow::anyhow!("demo pod {name} panicked: {join}")),
            Err(_) => Err(anyhow::anyhow!("demo pod {name} did not stop within 3 s")),
        }
    }

    /// Names and addresses of the running pods.
    pub fn pods(&self) -> impl Iterator<Item = (&str, SocketAddr)> {
        self.pods.iter().map(|p| (p.name.as_str(), p.addr))
    }

    fn publish(&self) {
        let set: EndpointSet = self
            .pods
            .iter()
            .map(|p| EndpointInfo::ready(p.addr.to_string()).with_pod_name(&p.name))
            .collect();
        self.backends.send_replace(self.pods.iter().map(|p| p.addr).collect());
        self.registry.send_replace(set);
    }

    /// Stops the gateway, the proxy and every pod.
    pub async fn shutdown(self) {
        let gateway = self.gateway.shutdown();
        if tokio::time::timeout(Duration::from_secs(3), gateway).await.is_err() {
            tracing::warn!("demo gateway did not stop within 3 s");
        }
        self.stop.cancel();
        for pod in self.pods {
            pod.stop.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(2), pod.task).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_look_like_kubernetes_suffixes() {
        let id = kube_style_id(123_456_789);
        assert_eq!(id.len(), 5);
        assert!(id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
        assert_ne!(kube_style_id(1), kube_style_id(2));
    }
}
