//! Shared fixtures: real greet-servers, a kube-proxy-like service and a real
//! gateway, all on loopback.

#![allow(dead_code)]
pub mod fake_kube;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use greet_top::common::Mode;
use greet_top::gateway::discovery::{self, EndpointInfo, EndpointSet};
use greet_top::gateway::upstream::UpstreamTimeouts;
use greet_top::gateway::{GatewayConfig, GatewayHandle};
use greet_top::server::ServerConfig;
use greet_top::tui::rest_client::RestClient;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub struct TestServer {
    pub pod_name: String,
    pub addr: SocketAddr,
    pub stop: CancellationToken,
    pub task: JoinHandle<anyhow::Result<()>>,
}

/// A greet-server on exactly `addr`; `None` if that address is taken.
pub async fn start_server_at(pod_name: &str, addr: SocketAddr) -> Option<TestServer> {
    let listener = TcpListener::bind(addr).await.ok()?;
    Some(serve_on(pod_name, listener, None))
}

/// A greet-server on 127.0.0.`host`, any free port.
pub async fn start_server(pod_name: &str, host: u8, max_connection_age: Option<Duration>) -> TestServer {
    let listener = TcpListener::bind((format!("127.0.0.{host}"), 0)).await.unwrap();
    serve_on(pod_name, listener, max_connection_age)
}

fn serve_on(pod_name: &str, listener: TcpListener, max_connection_age: Option<Duration>) -> TestServer {
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let config = ServerConfig {
        pod_name: pod_name.to_owned(),
        pod_ip: addr.ip().to_string(),
        max_connection_age,
        shutdown_delay: Duration::ZERO,
        drain_timeout: Duration::from_secs(5),
    };
    let task = tokio::spawn(greet_top::server::serve(
        listener,
        config,
        stop.clone().cancelled_owned(),
    ));
    TestServer {
        pod_name: pod_name.to_owned(),
        addr,
        stop,
        task,
    }
}

/// Three pods, a connection-balancing "Service" in front of them, and a
/// gateway whose sticky target is that Service and whose balanced mode
/// follows `endpoints`.
pub struct Cluster {
    pub servers: Vec<TestServer>,
    pub service_addr: SocketAddr,
    pub endpoints: watch::Sender<EndpointSet>,
    pub gateway: GatewayHandle,
    pub rest: RestClient,
    stop: CancellationToken,
}

impl Cluster {
    pub async fn start(pods: usize, mode: Mode) -> Cluster {
        Self::start_with(pods, mode, None).await
    }

    pub async fn start_with(pods: usize, mode: Mode, max_connection_age: Option<Duration>) -> Cluster {
        let mut servers = Vec::new();
        for i in 0..pods {
            let host = u8::try_from(i + 2).unwrap();
            servers.push(start_server(&format!("greetserver-test-{i}"), host, max_connection_age).await);
        }
        let stop = CancellationToken::new();
        let backends: Vec<SocketAddr> = servers.iter().map(|s| s.addr).collect();
        let (_backends_tx, backends_rx) = watch::channel(backends);
        let service = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let service_addr = service.local_addr().unwrap();
        tokio::spawn(greet_top::tui::demo::service_proxy::run(
            service,
            backends_rx,
            stop.clone(),
        ));
        std::mem::forget(_backends_tx); // the backend list stays for the test's life

        let set: EndpointSet = servers
            .iter()
            .map(|s| EndpointInfo::ready(s.addr.to_string()).with_pod_name(&s.pod_name))
            .collect();
        let (endpoints, rx) = watch::channel(set);
        let gateway = start_gateway(mode, service_addr.to_string(), discovery::from_watch(rx)).await;
        let rest = RestClient::new(format!("http://{}", gateway.rest_addr));
        Cluster {
            servers,
            service_addr,
            endpoints,
            gateway,
            rest,
            stop,
        }
    }

    pub fn observe_url(&self) -> String {
        format!("http://{}", self.gateway.observe_addr)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop.cancel();
        for server in &self.servers {
            server.stop.cancel();
        }
        self.gateway.shutdown_token().cancel();
    }
}

pub async fn start_gateway(
    mode: Mode,
    sticky_target: String,
    discovery: greet_top::gateway::discovery::DiscoveryStream,
) -> GatewayHandle {
    start_gateway_with_health(mode, sticky_target, discovery, Default::default()).await
}

/// [`start_gateway`], sharing `discovery_health` with the discovery source.
pub async fn start_gateway_with_health(
    mode: Mode,
    sticky_target: String,
    discovery: greet_top::gateway::discovery::DiscoveryStream,
    discovery_health: greet_top::gateway::discovery::DiscoveryHealth,
) -> GatewayHandle {
    let config = GatewayConfig {
        name: "gateway-test".into(),
        mode,
        sticky_target,
        discovery_name: "test".into(),
        discovery_health,
        timeouts: UpstreamTimeouts {
            request: Duration::from_secs(5),
            connect: Duration::from_millis(500),
        },
    };
    let rest = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let observe = TcpListener::bind("127.0.0.1:0").await.unwrap();
    greet_top::gateway::start(config, discovery, rest, observe)
        .await
        .unwrap()
}

/// The pod named in a `/greet` reply body.
pub fn pod_of(body: &str) -> String {
    greet_top::gateway::upstream::pod_from_result(body)
        .unwrap_or_else(|| panic!("no pod in reply {body:?}"))
        .0
}

/// Sends `n` greetings one after another; returns hits per pod. Panics on a non-200.
pub async fn greet_n(rest: &RestClient, n: usize) -> BTreeMap<String, usize> {
    let mut hits = BTreeMap::new();
    for i in 0..n {
        let response = rest.greet("Ada", &format!("Lovelace-{i}")).await.unwrap();
        assert_eq!(response.status, 200, "request {i}: {}", response.body);
        *hits.entry(pod_of(&response.body)).or_default() += 1;
    }
    hits
}
