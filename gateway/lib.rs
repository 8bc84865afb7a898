//! greet-gateway: REST and gRPC in, gRPC out, sticky, dns, balanced or
//! least-loaded, and an Observer stream of everything it does.
//!
//! ```text
//! POST /greet ─► rest ─► Upstream::greet ─► sticky: one Channel to GRPC_SERVER_HOST
//!                                        ├► balanced, least-loaded: Balancer::pick (one lazy Channel per endpoint)
//!                                        └► dns: a Balancer of its own over the last DNS answer
//!                          outcome ─► EventHub ─► Observer.Watch subscribers
//! any gRPC call ─► ingress (h2 server) ─► route: the sticky pin or the mode's pick ─► a stream on
//!                  that endpoint's own h2 connection (upstream/raw_h2.rs; no tonic Channel)
//! discovery stream ─► Balancer::update ─► EventHub (endpoints changed)
//! every --health-check-interval ─► health_check: Check each listed endpoint ─► EventHub (when its health changes)
//! resolver, every --dns-interval ─► DnsPool::apply (dns mode's balancer)
//! ```

mod balancer;
pub mod cli;
mod connection;
pub mod discovery;
mod dns_mode;
mod events;
mod grpc_headers;
mod health_check;
mod in_flight;
mod ingress;
mod io_reason;
mod keepalive;
mod listen;
mod metrics;
mod observer;
mod resolve;
mod response_headers;
pub mod rest;
mod skipped;
mod upstream;

// The surface: a gateway is started from a `GatewayConfig` and a discovery
// stream (`start`, `cli::run`); the rest is what a caller needs to build
// those and to watch the result in-process (the demo, the tests, benches).
pub use balancer::load::DECAY as LOAD_DECAY;
pub use balancer::try_limit::TRY_LIMIT_FLOOR;
pub use balancer::{EJECTION, MAX_EJECTION};
pub use dns_mode::DnsModeConfig;
pub use events::shared::Shared as HubEvent;
pub use events::{EventHub, RequestOutcome};
pub use listen::FrontDoorLimits;
pub use resolve::{ResolveFuture, Resolver};
pub use upstream::{Upstream, UpstreamTimeouts};

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_stream::StreamExt;
use tokio_util::sync::CancellationToken;

use discovery::DiscoveryStream;
use events::GatewayInfo;
use greet_proto::Mode;
use greet_proto::observe::observer_server::ObserverServer;
use greet_runtime::auth::ControlToken;

/// What the gateway is and where it sends requests.
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    /// Shown to Observer subscribers (the pod name in Kubernetes).
    pub name: String,
    /// Mode at start.
    pub mode: Mode,
    /// `host:port` for sticky mode: the Service, as in the article.
    pub sticky_target: String,
    /// Which discovery feeds balanced mode, for display and error messages.
    pub discovery_name: String,
    /// Set by the discovery source while it fails.
    pub discovery_health: discovery::DiscoveryHealth,
    pub timeouts: UpstreamTimeouts,
    /// What `dns` mode resolves, and how often.
    pub dns: dns_mode::DnsModeConfig,
    /// Required by `PUT /mode` and the Observer RPCs when set.
    pub control_token: Option<ControlToken>,
    /// What the ingress and REST ports hold against slow and hostile clients.
    pub front_door: FrontDoorLimits,
}

/// The gateway's shared state: upstream routing and the event hub.
pub struct Gateway {
    pub upstream: Upstream,
    pub hub: Arc<EventHub>,
    /// Required by `PUT /mode` (rest/auth.rs) when set.
    control_token: Option<ControlToken>,
    /// What only the metrics count (gateway/metrics.rs).
    pub(crate) metrics: metrics::GatewayCounts,
    /// Discovery's failures, counted for the metrics.
    discovery_health: discovery::DiscoveryHealth,
    /// Set on shutdown: /healthz turns 503 so load balancers stop sending.
    draining: std::sync::atomic::AtomicBool,
    /// The ports' limits and the caps they share.
    pub(crate) front_door: listen::FrontDoor,
}

impl Gateway {
    pub fn new(config: GatewayConfig) -> anyhow::Result<Arc<Gateway>> {
        let hub = Arc::new(EventHub::new(
            GatewayInfo {
                gateway: config.name,
                sticky_target: config.sticky_target.clone(),
                discovery: config.discovery_name.clone(),
            },
            config.mode,
        ));
        let discovery_health = config.discovery_health.clone();
        let upstream = Upstream::new(
            config.mode,
            config.sticky_target,
            config.dns.name,
            config.timeouts,
            config.discovery_name,
            config.discovery_health,
            Arc::clone(&hub),
        )?;
        let gateway = Arc::new(Gateway {
            upstream,
            hub,
            control_token: config.control_token,
            metrics: metrics::GatewayCounts::default(),
            discovery_health,
            draining: std::sync::atomic::AtomicBool::new(false),
            front_door: listen::FrontDoor::new(config.front_door),
        });
        // Weak: the hub is the gateway's, and must not keep it alive.
        let weak = Arc::downgrade(&gateway);
        gateway.hub.set_gauge_source(Box::new(move || {
            weak.upgrade()
                .map(|gateway| gateway.upstream.gauges(tokio::time::Instant::now()))
                .unwrap_or_default()
        }));
        Ok(gateway)
    }

    /// Starts shutting down: /healthz answers 503 from now on.
    pub fn start_draining(&self) {
        self.draining.store(true, std::sync::atomic::Ordering::Release);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Feeds every endpoint set from `discovery` to the balancer and the hub,
    /// until the stream ends (the last set stays in force).
    pub async fn follow_discovery(self: Arc<Self>, mut discovery: DiscoveryStream) {
        while let Some(set) = discovery.next().await {
            self.upstream.balancer().update(&set);
            let ready = set.iter().filter(|e| e.ready).count();
            tracing::info!(ready, total = set.len(), "endpoint set updated");
            self.upstream.publish_endpoints();
        }
    }
}

/// A running gateway: its addresses, and a way to stop it.
pub struct GatewayHandle {
    pub gateway: Arc<Gateway>,
    pub rest_addr: SocketAddr,
    pub observe_addr: SocketAddr,
    /// The gRPC ingress (any gRPC call, forwarded).
    pub grpc_addr: SocketAddr,
    shutdown: CancellationToken,
    rest: JoinHandle<anyhow::Result<()>>,
    observe: JoinHandle<anyhow::Result<()>>,
    grpc: JoinHandle<anyhow::Result<()>>,
    discovery: JoinHandle<()>,
    dns: JoinHandle<()>,
    /// The health checks of the listed endpoints, when on.
    health_checks: Option<JoinHandle<()>>,
}

impl GatewayHandle {
    /// Stops accepting, lets in-flight requests finish, ends Watch streams.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.wait().await
    }

    /// Waits until the gateway stops (after [`Self::shutdown`] or a server error).
    pub async fn wait(self) -> anyhow::Result<()> {
        let rest = self.rest.await.context("REST server task panicked")?;
        let observe = self.observe.await.context("Observer server task panicked")?;
        let grpc = self.grpc.await.context("gRPC ingress task panicked")?;
        self.discovery.abort();
        self.dns.abort();
        if let Some(checks) = &self.health_checks {
            checks.abort();
        }
        rest.and(observe).and(grpc)
    }

    /// A token that stops the gateway when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }
}

/// The gateway's bound ports (port 0 works: see the handle's addresses).
pub struct Listeners {
    /// POST /greet, GET|PUT /mode, GET /healthz, GET /metrics.
    pub rest: TcpListener,
    /// The Observer (and health, reflection).
    pub observe: TcpListener,
    /// The gRPC ingress.
    pub grpc: TcpListener,
}

/// How often the gateway checks every listed endpoint unless told otherwise.
pub const DEFAULT_HEALTH_CHECK_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Starts the gateway on already bound listeners, following `discovery`
/// for balanced mode, checking every listed endpoint every
/// [`DEFAULT_HEALTH_CHECK_INTERVAL`].
pub async fn start(
    config: GatewayConfig,
    discovery: DiscoveryStream,
    listeners: Listeners,
) -> anyhow::Result<GatewayHandle> {
    start_checking(config, discovery, listeners, Some(DEFAULT_HEALTH_CHECK_INTERVAL)).await
}

/// [`start`], checking every listed endpoint every `health_check_interval`
/// (`None`: not at all).
pub async fn start_checking(
    config: GatewayConfig,
    discovery: DiscoveryStream,
    listeners: Listeners,
    health_check_interval: Option<std::time::Duration>,
) -> anyhow::Result<GatewayHandle> {
    let Listeners {
        rest: rest_listener,
        observe: observe_listener,
        grpc: grpc_listener,
    } = listeners;
    let observer_auth = observer::ObserverAuth::new(config.control_token.clone());
    let dns_config = config.dns.clone();
    let gateway = Gateway::new(config)?;
    let rest_addr = rest_listener
        .local_addr()
        .context("reading the REST listener's address")?;
    let observe_addr = observe_listener
        .local_addr()
        .context("reading the Observer listener's address")?;
    let shutdown = CancellationToken::new();

    let discovery = tokio::spawn(Arc::clone(&gateway).follow_discovery(discovery));
    tokio::spawn(observer::publish_discovery_changes(
        Arc::downgrade(&gateway),
        gateway.discovery_health.changes(),
        shutdown.clone(),
    ));
    let dns = tokio::spawn(dns_mode::follow(
        Arc::clone(&gateway),
        dns_config.resolver,
        dns_config.interval,
    ));

    let health_checks = health_check_interval
        .filter(|interval| !interval.is_zero())
        .map(|interval| tokio::spawn(health_check::probe::follow(Arc::clone(&gateway), interval)));

    let app = rest::router(Arc::clone(&gateway));
    let rest_shutdown = shutdown.clone();
    let rest_gateway = Arc::clone(&gateway);
    let rest = tokio::spawn(async move {
        listen::rest::serve(&rest_gateway.front_door, rest_listener, app, rest_shutdown).await;
        Ok(())
    });

    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<ObserverServer<observer::ObserverService>>().await;
    let (reflection, reflection_v1alpha) = greet_runtime::reflection::services(&["greet.observe.v1.Observer"])?;
    let observer =
        observer::ObserverRoutes::new(observer::ObserverService::new(Arc::clone(&gateway), shutdown.clone()));
    // The token guards the Observer only: health and reflection stay open.
    let observer = tonic::service::interceptor::InterceptedService::new(observer, observer_auth);
    let routes = tonic::service::Routes::new(health_service)
        .add_service(reflection)
        .add_service(reflection_v1alpha)
        .add_service(observer);
    let (observe_gateway, observe_shutdown) = (Arc::clone(&gateway), shutdown.clone());
    let observe = tokio::spawn(async move {
        listen::observer::serve(&observe_gateway.front_door, observe_listener, routes, observe_shutdown).await;
        Ok(())
    });

    let (grpc_addr, grpc) = ingress::serve(Arc::clone(&gateway), grpc_listener, shutdown.clone())?;

    tracing::info!(%rest_addr, %observe_addr, %grpc_addr, mode = %gateway.upstream.mode(), sticky_target = gateway.upstream.sticky_target(), "greet-gateway listening");
    Ok(GatewayHandle {
        gateway,
        rest_addr,
        observe_addr,
        grpc_addr,
        shutdown,
        rest,
        observe,
        grpc,
        discovery,
        dns,
        health_checks,
    })
}
