//! The demo cluster's gateway: what it is called, where it listens, how it
//! is configured, and its start, which waits for the pods' endpoint set.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;

use greet_gateway::UpstreamTimeouts;
use greet_gateway::discovery::{DiscoveryHealth, DiscoveryStream};
use greet_gateway::{DnsModeConfig, FrontDoorLimits, Resolver};
use greet_gateway::{GatewayConfig, GatewayHandle, Listeners};
use greet_proto::Mode;
use greet_runtime::auth::ControlToken;

/// What the gateway is called and where it listens.
#[derive(Clone, Debug)]
pub struct GatewaySpec {
    /// Shown to Observer subscribers.
    pub name: String,
    pub mode: Mode,
    /// Named in the gateway's errors about balanced mode.
    pub discovery_name: String,
    pub timeouts: UpstreamTimeouts,
    /// `dns` mode's re-resolve interval, and its resolver (`None`: the
    /// system's, of the sticky target; a cluster answers with its pods).
    pub dns_interval: Duration,
    pub dns_resolver: Option<Resolver>,
    /// Required by `PUT /mode` and the Observer when set (none in the demo).
    pub control_token: Option<ControlToken>,
    /// What its ports hold against slow and hostile clients.
    pub front_door: FrontDoorLimits,
    /// Where it listens (port 0: any free port).
    pub rest_addr: SocketAddr,
    pub observe_addr: SocketAddr,
    /// The gRPC ingress.
    pub grpc_addr: SocketAddr,
}

/// The demo's gateway: sticky at start, any free port on 127.0.0.1.
impl Default for GatewaySpec {
    fn default() -> Self {
        GatewaySpec {
            name: "greetclient-demo".into(),
            mode: Mode::Sticky,
            discovery_name: "demo registry".into(),
            timeouts: UpstreamTimeouts {
                request: Duration::from_secs(2),
                connect: Duration::from_millis(300),
            },
            // Short, so the demo shows a new pod waiting for the next resolve.
            dns_interval: Duration::from_secs(5),
            dns_resolver: None,
            control_token: None,
            front_door: FrontDoorLimits::default(),
            rest_addr: localhost_any_port(),
            observe_addr: localhost_any_port(),
            grpc_addr: localhost_any_port(),
        }
    }
}

impl GatewaySpec {
    /// Starts a gateway with this spec, sticky to `sticky_target`, balanced
    /// over `discovery` (whose failures `health` reports).
    pub async fn start(
        &self,
        sticky_target: String,
        discovery: DiscoveryStream,
        health: DiscoveryHealth,
    ) -> anyhow::Result<GatewayHandle> {
        let resolver = self.dns_resolver.clone().unwrap_or_else(|| {
            let (host, port) = sticky_target.rsplit_once(':').unwrap_or((sticky_target.as_str(), "0"));
            Resolver::system(host.to_owned(), port.parse().unwrap_or(0))
        });
        let config = GatewayConfig {
            name: self.name.clone(),
            mode: self.mode,
            dns: DnsModeConfig {
                name: sticky_target.clone(),
                resolver,
                interval: self.dns_interval,
            },
            sticky_target,
            discovery_name: self.discovery_name.clone(),
            discovery_health: health,
            timeouts: self.timeouts,
            control_token: self.control_token.clone(),
            front_door: self.front_door,
        };
        let rest = TcpListener::bind(self.rest_addr)
            .await
            .with_context(|| format!("binding the gateway's REST port {}", self.rest_addr))?;
        let observe = TcpListener::bind(self.observe_addr)
            .await
            .with_context(|| format!("binding the gateway's Observer port {}", self.observe_addr))?;
        let grpc = TcpListener::bind(self.grpc_addr)
            .await
            .with_context(|| format!("binding the gateway's gRPC ingress port {}", self.grpc_addr))?;
        greet_gateway::start(config, discovery, Listeners { rest, observe, grpc }).await
    }
}

/// Waits until the gateway has applied discovery's first endpoint set, so
/// that a balanced request sent right after start finds the pods (a gateway
/// answers 503 until then, as in a cluster).
pub(crate) async fn first_endpoint_set_applied(gateway: &GatewayHandle) -> anyhow::Result<()> {
    // The first event a fresh gateway's hub counts is that set.
    let (snapshot, mut events) = gateway.gateway.hub.subscribe();
    if snapshot.last_seq > 0 {
        return Ok(());
    }
    tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .context("the gateway did not take the pods' endpoint set within 5 s")?
        .context("the gateway stopped before taking the pods' endpoint set")?;
    Ok(())
}

fn localhost_any_port() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)
}
