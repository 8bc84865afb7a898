//! The gateway's gRPC client side: one connection through the Service (sticky), or round robin across
//! the discovered endpoints, chosen per request by the current mode.

mod error;
mod greet;
pub(crate) mod outcome;
mod pools;
pub(crate) mod route;
mod sticky;
pub(crate) mod tries;

pub(crate) use error::UpstreamError;
use greet::Limit;

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::balancer::Balancer;
use super::connection::{raw_h2, unary};
use super::discovery::EndpointInfo;
use super::dns_mode::DnsPool;
use super::events::EventHub;
use super::health_check::{CheckOutcome, HealthBoard};
use super::in_flight::PodGauge;
use greet_proto::Mode;
use greet_proto::greet::{Greeting, GreetingRequest, GreetingResponse};
use greet_proto::greeting_text::pod_from_result;

/// Timeouts for upstream calls.
#[derive(Clone, Copy, Debug)]
pub struct UpstreamTimeouts {
    /// Whole-call deadline for one attempt.
    pub request: Duration,
    /// TCP connect deadline, so a dead endpoint fails fast and is skipped.
    pub connect: Duration,
}

impl Default for UpstreamTimeouts {
    fn default() -> Self {
        UpstreamTimeouts {
            request: Duration::from_secs(5),
            connect: Duration::from_secs(1),
        }
    }
}

/// A successful Greet call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GreetReply {
    /// The server's `Result` text.
    pub result: String,
    pub pod_name: String,
    pub pod_ip: String,
}

/// A per-endpoint connection, made when first used: or why the endpoint's
/// address cannot be dialled.
pub(crate) type EndpointConn = Result<EndpointConns, String>;

/// The gateway's one connection to an endpoint: REST's Greet calls, the
/// gRPC ingress's calls (passed through undecoded) and the health checks
/// all ride it.
pub struct EndpointConns {
    pub raw: Arc<raw_h2::RawH2>,
}

impl EndpointConns {
    /// HTTP/2 connections open to the endpoint (0 or 1; briefly 2 while a
    /// closing one finishes its calls).
    pub fn connections(&self) -> u32 {
        self.raw.connections()
    }
}

/// The connection to `info`'s address, or why it cannot be dialled.
fn endpoint_conns(info: &EndpointInfo, timeouts: UpstreamTimeouts) -> EndpointConn {
    Ok(EndpointConns {
        raw: Arc::new(raw_h2::RawH2::new(&info.address, timeouts.connect)?),
    })
}

pub struct Upstream {
    mode: AtomicU8,
    mode_switch: tokio::sync::Mutex<()>,
    sticky: sticky::StickyPin,
    balancer: Balancer<EndpointConn>,
    /// `dns` mode's own balancer, over the last DNS answer.
    dns: DnsPool<EndpointConn>,
    timeouts: UpstreamTimeouts,
    discovery_name: String,
    discovery_health: super::discovery::DiscoveryHealth,
    hub: Arc<EventHub>,
    /// Serializes endpoint reports, so the last one published is the current state.
    reporting: std::sync::Mutex<()>,
    /// What the gateway's own health checks found, by endpoint address.
    health: HealthBoard,
}

impl Upstream {
    /// `sticky_target` is `host:port`, e.g. the Kubernetes Service name;
    /// `dns_name` what `dns` mode resolves, for its messages.
    pub fn new(
        mode: Mode,
        sticky_target: String,
        dns_name: String,
        timeouts: UpstreamTimeouts,
        discovery_name: String,
        discovery_health: super::discovery::DiscoveryHealth,
        hub: Arc<EventHub>,
    ) -> anyhow::Result<Self> {
        let sticky = sticky::StickyPin::new(sticky_target.clone(), timeouts).map_err(|e| {
            anyhow::anyhow!("GRPC_SERVER_HOST:GRPC_SERVER_PORT {sticky_target:?} is not a valid address: {e}")
        })?;
        Ok(Upstream {
            mode: AtomicU8::new(mode as u8),
            mode_switch: tokio::sync::Mutex::new(()),
            sticky,
            balancer: Balancer::new(move |info: &EndpointInfo| endpoint_conns(info, timeouts)),
            dns: DnsPool::new(dns_name, move |info: &EndpointInfo| endpoint_conns(info, timeouts)),
            timeouts,
            discovery_name,
            discovery_health,
            hub,
            reporting: std::sync::Mutex::new(()),
            health: HealthBoard::default(),
        })
    }

    pub fn mode(&self) -> Mode {
        Mode::from_index(self.mode.load(Ordering::Acquire)).unwrap_or_default()
    }

    /// Switches mode for the next request; requests in flight finish as they started.
    pub async fn set_mode(&self, mode: Mode) {
        let _serialized = self.mode_switch.lock().await;
        self.mode.store(mode as u8, Ordering::Release);
        self.hub.publish_mode(mode);
    }

    pub fn balancer(&self) -> &Balancer<EndpointConn> {
        &self.balancer
    }

    /// `dns` mode's pool: the last answer and its balancer.
    pub fn dns(&self) -> &DnsPool<EndpointConn> {
        &self.dns
    }

    /// The balancer a `mode` other than sticky picks from: `dns` mode's own,
    /// else discovery's.
    pub fn pool(&self, mode: Mode) -> &Balancer<EndpointConn> {
        match mode {
            Mode::Dns => self.dns.balancer(),
            _ => &self.balancer,
        }
    }

    /// A member of `mode`'s pool was skipped or recovered: publishes the
    /// endpoints when they are discovery's (the set the Observer shows).
    pub fn pool_changed(&self, mode: Mode) {
        if mode != Mode::Dns {
            self.publish_endpoints();
        }
    }

    /// The connection requests to `address` use, while it is a member of
    /// discovery's pool (a ready endpoint).
    pub(crate) fn connection_to(&self, address: &str) -> Option<Arc<raw_h2::RawH2>> {
        let members = self.balancer.members();
        let member = members.iter().find(|member| member.info.address == address)?;
        member.conn.as_ref().ok().map(|conns| Arc::clone(&conns.raw))
    }

    pub fn sticky_target(&self) -> &str {
        self.sticky.target()
    }

    /// Every upstream's gauges at `now`: each member of both pools, and the
    /// sticky connection, attributed to the pod its replies named last (else
    /// to the Service's address).
    pub fn gauges(&self, now: Instant) -> Vec<PodGauge> {
        let mut gauges: Vec<PodGauge> = [&self.balancer, self.dns.balancer()]
            .into_iter()
            .flat_map(|pool| pool.members())
            .map(|member| PodGauge {
                pod_name: member.pod_name().unwrap_or_default(),
                endpoint: member.info.address.clone(),
                in_flight: member.in_flight(),
                oldest_in_flight: member.oldest_in_flight(now),
                connections: member.conn.as_ref().map_or(0, EndpointConns::connections),
            })
            .collect();
        gauges.push(self.sticky.gauge(now));
        gauges
    }

    /// Discovery's state for `/healthz`: its source, `ok` or `failing` with
    /// the cause and for how long (how stale the endpoint set is), and, while
    /// no endpoint is ready, the terminating ones still serving that take
    /// the traffic meanwhile (`serving_while_terminating`, left out when none).
    pub(crate) fn discovery_state(&self, now: tokio::time::Instant) -> serde_json::Value {
        let mut state = match (self.discovery_health.problem(), self.discovery_health.failing_since()) {
            (Some(error), Some(since)) => serde_json::json!({
                "source": self.discovery_name,
                "state": "failing",
                "error": error,
                "failing_for_ms": u64::try_from(now.saturating_duration_since(since).as_millis()).unwrap_or(u64::MAX),
            }),
            _ => serde_json::json!({"source": self.discovery_name, "state": "ok"}),
        };
        let endpoints = self.balancer.endpoints();
        let terminating: Vec<serde_json::Value> = super::discovery::serving_while_terminating(&endpoints)
            .map(|e| serde_json::json!({"address": e.address, "pod": e.pod_name}))
            .collect();
        if !terminating.is_empty() {
            state["serving_while_terminating"] = serde_json::Value::Array(terminating);
        }
        state
    }

    /// Why `mode` (not sticky, not dns) has nowhere to send a call.
    pub(crate) fn no_endpoints(&self, mode: Mode) -> UpstreamError {
        UpstreamError::NoEndpoints {
            mode,
            discovery: self.discovery_description(),
        }
    }

    pub fn discovery_description(&self) -> String {
        match self.discovery_health.problem() {
            Some(problem) => format!("{}, which is failing: {problem}", self.discovery_name),
            None => self.discovery_name.clone(),
        }
    }

    /// Publishes every endpoint with its skip (after a discovery update, an
    /// ejection or a recovery). Each call reads the balancer after the change
    /// it follows, under a lock: the last set published is the current one.
    pub fn publish_endpoints(&self) {
        self.report_endpoints(true);
    }

    /// Every endpoint with its skip and its health; sent as an event when
    /// `publish`, else only kept for the next snapshot (a check's time).
    fn report_endpoints(&self, publish: bool) {
        let _order = self.reporting.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let report = self.balancer.report();
        let now_unix_us = super::events::unix_micros_now();
        let mut endpoints = super::skipped::endpoints_proto(&report, Instant::now(), now_unix_us);
        self.health.fill(&mut endpoints);
        let discovery = self
            .discovery_health
            .to_proto(&self.discovery_name, Instant::now(), now_unix_us);
        self.hub.set_discovery(discovery);
        if publish {
            self.hub.publish_endpoints(endpoints);
        } else {
            self.hub.keep_endpoints(endpoints);
        }
    }

    /// What the health checks found so far.
    pub fn health(&self) -> &HealthBoard {
        &self.health
    }

    /// A health check of `address` ended with `outcome`, its answer naming
    /// `pod`: the pod names the endpoint as a reply would (discovery's name
    /// wins). The endpoints are published when that or the endpoint's
    /// health changed, else only kept for snapshots.
    pub fn health_checked(&self, address: &str, outcome: &CheckOutcome, pod: Option<&str>) {
        let named = pod.is_some_and(|pod| {
            self.balancer
                .members()
                .iter()
                .find(|member| member.info.address == address)
                .is_some_and(|member| member.replied_from(pod))
        });
        let changed = self.health.record(address, outcome, super::events::unix_micros_now());
        self.report_endpoints(named || changed);
    }

    /// Whether `mode` has somewhere to send a request now.
    pub fn can_serve_in(&self, mode: Mode) -> bool {
        match mode {
            Mode::Sticky => true,
            mode => self.pool(mode).ready_count() > 0,
        }
    }

    /// Greets through the current mode and publishes exactly one request event.
    pub async fn greet(&self, first_name: String, last_name: String) -> Result<GreetReply, UpstreamError> {
        let mut outcome = outcome::CallOutcome::begin(&self.hub, String::new());
        let mode = self.mode();
        let request = GreetingRequest {
            greeting: Some(Greeting { first_name, last_name }),
        };
        let result = self.greet_routed(mode, request, &mut outcome).await;
        outcome.finish(result.as_ref().err().map(|err| (err.grpc_code(), err.to_string())));
        result
    }

    /// One attempt of a Greet call on `connection`, given `limit.wait`.
    async fn call(
        &self,
        endpoint: &str,
        connection: &raw_h2::RawH2,
        request: &GreetingRequest,
        limit: Limit,
    ) -> Result<GreetReply, UpstreamError> {
        let (response, _headers): (GreetingResponse, _) = unary::call(connection, GREET_PATH, request, limit.wait)
            .await
            .map_err(|failure| UpstreamError::from_unary(endpoint, failure, limit.named))?;
        let (pod_name, pod_ip) = if response.pod_name.is_empty() {
            // An article-era server: the pod is only named in the text.
            pod_from_result(&response.result).unwrap_or_default()
        } else {
            (response.pod_name, response.pod_ip)
        };
        Ok(GreetReply {
            result: response.result,
            pod_name,
            pod_ip,
        })
    }
}

/// The Greet method's path, as its service descriptor names it.
const GREET_PATH: &str = "/greet.GreetService/Greet";
