//! A loopback "cluster", the one the demo, the integration tests and the
//! benchmark all run: greet-server pods on 127.0.0.x, a Service proxy that
//! balances connections like kube-proxy, and a real gateway.
//!
//! ```text
//! sticky:   gateway ──one HTTP/2 connection──► service proxy ──(connection-level RR)──► pod
//! balanced: gateway ──per-request RR over the registry's endpoint set──────────────────► pods
//! ```

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::gateway_spec::{GatewaySpec, first_endpoint_set_applied};
use super::pod::{LocalPod, PodNames, PodOptions, kube_style_id, random_seed};
use super::service_proxy;
use crate::rest_client::RestClient;
use greet_gateway::GatewayHandle;
use greet_gateway::Resolver;
use greet_gateway::discovery::{self, DiscoveryHealth, EndpointInfo, EndpointSet};
use greet_server::ReplyDelay;

/// Where the gateway's sticky mode sends requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StickyTarget {
    /// The Service proxy, as in a cluster (the bug the demo shows).
    Service,
    /// The first pod directly: measures the gateway without the proxy's copy.
    FirstPod,
}

/// A cluster's shape. The default is the demo's.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// Pods at start.
    pub pods: usize,
    /// Pod n lives on 127.0.0.(first_host + n).
    pub first_host: u8,
    /// Port every pod tries first (falling back to any free port); `None`: any free port.
    pub preferred_port: Option<u16>,
    pub names: PodNames,
    pub pod: PodOptions,
    pub gateway: GatewaySpec,
    pub sticky: StickyTarget,
}

/// Port every demo pod listens on, each on its own 127.0.0.x address like pods.
pub const POD_PORT: u16 = 50051;

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            pods: 3,
            first_host: 11,
            preferred_port: Some(POD_PORT),
            names: PodNames::Kube {
                prefix: "greetserver-demo".into(),
            },
            pod: PodOptions::default(),
            gateway: GatewaySpec::default(),
            sticky: StickyTarget::Service,
        }
    }
}

/// A running loopback cluster. Dropping it stops everything without waiting;
/// [`Self::shutdown`] waits.
pub struct LocalCluster {
    config: ClusterConfig,
    pods: Vec<LocalPod>,
    /// Like a ReplicaSet's pod-template hash: one per cluster.
    hash: String,
    next_ordinal: usize,
    /// The endpoint set balanced mode follows (like EndpointSlices).
    registry: watch::Sender<EndpointSet>,
    /// The Service proxy's backends (like kube-proxy's rules).
    backends: watch::Sender<Vec<SocketAddr>>,
    pub service_addr: SocketAddr,
    pub gateway: GatewayHandle,
    rest: RestClient,
    /// Dropped, these stop the Service proxy and the gateway.
    proxy_guard: DropGuard,
    gateway_guard: DropGuard,
}

impl LocalCluster {
    pub async fn start(config: ClusterConfig) -> anyhow::Result<LocalCluster> {
        let proxy_stop = CancellationToken::new();
        let (backends, backends_rx) = watch::channel(Vec::new());
        let service = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .context("binding the Service proxy on 127.0.0.1")?;
        let service_addr = service.local_addr()?;
        tokio::spawn(service_proxy::run(service, backends_rx, proxy_stop.clone()));
        // From here on, an early return stops what was started.
        let proxy_guard = proxy_stop.drop_guard();

        let hash = kube_style_id(random_seed());
        let mut pods = Vec::with_capacity(config.pods);
        for ordinal in 0..config.pods {
            pods.push(start_pod(&config, &hash, ordinal).await?);
        }
        let sticky_target = match (config.sticky, pods.first()) {
            (StickyTarget::FirstPod, Some(pod)) => pod.addr.to_string(),
            _ => service_addr.to_string(),
        };
        let (registry, registry_rx) = watch::channel(endpoint_set(&pods));
        backends.send_replace(backend_addrs(&pods));
        // The pods as a headless Service's DNS name answers, for dns mode.
        let spec = GatewaySpec {
            dns_resolver: (config.gateway.dns_resolver.clone())
                .or_else(|| Some(Resolver::from_watch(registry_rx.clone()))),
            ..config.gateway.clone()
        };
        let gateway = spec
            .start(
                sticky_target,
                discovery::from_watch(registry_rx),
                DiscoveryHealth::default(),
            )
            .await?;
        let gateway_guard = gateway.shutdown_token().drop_guard();
        first_endpoint_set_applied(&gateway).await?;
        let rest = RestClient::new(format!("http://{}", gateway.rest_addr));
        Ok(LocalCluster {
            rest,
            next_ordinal: pods.len(),
            config,
            pods,
            hash,
            registry,
            backends,
            service_addr,
            gateway,
            proxy_guard,
            gateway_guard,
        })
    }

    /// Starts one more pod and adds it to the Service and the endpoint set.
    pub async fn add_pod(&mut self) -> anyhow::Result<String> {
        let pod = start_pod(&self.config, &self.hash, self.next_ordinal).await?;
        self.next_ordinal += 1;
        let name = pod.name.clone();
        self.pods.push(pod);
        self.publish();
        Ok(name)
    }

    /// Takes the pod out of the Service and the endpoint set, then stops it,
    /// as Kubernetes does when a pod is deleted.
    pub async fn kill_pod(&mut self, name: &str) -> anyhow::Result<()> {
        let index = self.index_of(name)?;
        let mut pod = self.pods.remove(index);
        self.publish();
        pod.stop().await
    }

    /// Stops the pod's greet-server but leaves it in the Service and the
    /// endpoint set, as a crashed pod is until Kubernetes notices;
    /// [`Self::kill_pod`] then removes it.
    pub async fn crash_pod(&mut self, name: &str) -> anyhow::Result<()> {
        let index = self.index_of(name)?;
        self.pods[index].stop().await
    }

    fn index_of(&self, name: &str) -> anyhow::Result<usize> {
        self.pods
            .iter()
            .position(|p| p.name == name)
            .with_context(|| format!("no pod named {name}"))
    }

    /// The demo's slow pod: when no pod is slow, the first one waits `delay`
    /// before every reply; otherwise every pod is back to normal speed. The
    /// pod and whether it is slow now; `None` without pods.
    pub fn toggle_slow_pod(&self, delay: Duration) -> Option<(String, bool)> {
        if let Some(slow) = self.pods.iter().find(|p| !p.reply_delay.get().is_zero()) {
            slow.reply_delay.set(Duration::ZERO);
            return Some((slow.name.clone(), false));
        }
        let first = self.pods.first()?;
        first.reply_delay.set(delay);
        Some((first.name.clone(), true))
    }

    /// Every pod's max connection age, now and for pods added later
    /// (`None`: no GOAWAY): open connections older than it move on.
    pub fn set_max_connection_age(&mut self, age: Option<Duration>) {
        self.config.pod.max_connection_age = age;
        for pod in &self.pods {
            pod.max_connection_age.set(age);
        }
    }

    pub fn max_connection_age(&self) -> Option<Duration> {
        self.config.pod.max_connection_age
    }

    /// Connections the pods sent a GOAWAY for their age that are still open.
    pub fn connections_closing(&self) -> usize {
        self.pods.iter().map(|p| p.max_connection_age.closing()).sum()
    }

    /// The reply delay of the pod named `name` (to slow it down at run time).
    pub fn reply_delay(&self, name: &str) -> Option<&ReplyDelay> {
        self.pods.iter().find(|p| p.name == name).map(|p| &p.reply_delay)
    }

    /// Each pod's name and metrics address, for those that serve metrics.
    pub fn metrics_addrs(&self) -> impl Iterator<Item = (&str, SocketAddr)> {
        self.pods
            .iter()
            .filter_map(|p| Some((p.name.as_str(), p.metrics_addr?)))
    }

    /// Names and addresses of the pods, in the order they were started.
    pub fn pods(&self) -> impl Iterator<Item = (&str, SocketAddr)> {
        self.pods.iter().map(|p| (p.name.as_str(), p.addr))
    }

    /// The endpoint set the gateway's balanced mode follows.
    pub fn registry(&self) -> EndpointSet {
        self.registry.borrow().clone()
    }

    /// Where the Service proxy sends new connections.
    pub fn backends(&self) -> Vec<SocketAddr> {
        self.backends.borrow().clone()
    }

    /// Follows the endpoint set as it changes.
    pub fn watch_registry(&self) -> watch::Receiver<EndpointSet> {
        self.registry.subscribe()
    }

    /// Follows the Service proxy's backends as they change.
    pub fn watch_backends(&self) -> watch::Receiver<Vec<SocketAddr>> {
        self.backends.subscribe()
    }

    /// A client of the gateway's REST API (one connection pool, shared by clones).
    pub fn rest(&self) -> &RestClient {
        &self.rest
    }

    pub fn observe_url(&self) -> String {
        format!("http://{}", self.gateway.observe_addr)
    }

    fn publish(&self) {
        self.backends.send_replace(backend_addrs(&self.pods));
        self.registry.send_replace(endpoint_set(&self.pods));
    }

    /// Stops the gateway (in-flight requests finish), the proxy and every pod.
    pub async fn shutdown(self) {
        let LocalCluster {
            gateway,
            gateway_guard,
            pods,
            proxy_guard,
            ..
        } = self;
        gateway_guard.disarm();
        if tokio::time::timeout(Duration::from_secs(3), gateway.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("gateway did not stop within 3 s");
        }
        drop(proxy_guard);
        for mut pod in pods {
            if let Err(err) = pod.stop().await {
                tracing::warn!("{err:#}");
            }
        }
    }
}

/// Starts the `ordinal`-th pod of a cluster.
async fn start_pod(config: &ClusterConfig, hash: &str, ordinal: usize) -> anyhow::Result<LocalPod> {
    let host = u8::try_from(usize::from(config.first_host) + ordinal)
        .ok()
        .filter(|h| *h < 255)
        .context("ran out of 127.0.0.x addresses for pods; restart it")?;
    let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, host));
    let name = config.names.name(hash, ordinal);
    match config.preferred_port {
        Some(port) => LocalPod::start_preferring(name, SocketAddr::new(ip, port), config.pod).await,
        None => LocalPod::start(name, SocketAddr::new(ip, 0), config.pod).await,
    }
}

/// The endpoint set of the pods, each named (a crashed pod stays until killed).
fn endpoint_set(pods: &[LocalPod]) -> EndpointSet {
    pods.iter()
        .map(|p| EndpointInfo::ready(p.addr.to_string()).with_pod_name(&p.name))
        .collect()
}

fn backend_addrs(pods: &[LocalPod]) -> Vec<SocketAddr> {
    pods.iter().map(|p| p.addr).collect()
}
