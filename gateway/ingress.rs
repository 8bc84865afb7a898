//! The transparent gRPC ingress (issue 11): any gRPC call on `--grpc-port`,
//! forwarded without decoding its messages (headers minus hop-by-hop ones,
//! message frames as they come, trailers) to where the current mode says:
//! sticky over the one connection to the Service, balanced to the next ready
//! endpoint in the balancer's round robin. A stream stays on the endpoint it
//! started on; a mode switch affects new calls only.
//!
//! The upstream side is the gateway's own tonic `Channel`s: a `Channel` is a
//! tower service over `http::Request<tonic::body::Body>`, so a call passes
//! through it as it came. Dropping the call (the client's cancel) resets the
//! upstream stream.

mod call;
mod wire;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use super::Gateway;
use super::balancer::Member;
use super::events::RequestOutcome;
use super::upstream::EndpointConn;
use crate::common::Mode;
use call::{Completion, Forwarded};

/// Serves the ingress on `listener` until `shutdown`, then lets calls in
/// flight finish (the drain's timeout bounds long streams).
pub fn serve(
    gateway: Arc<Gateway>,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<(SocketAddr, JoinHandle<anyhow::Result<()>>)> {
    let addr = listener
        .local_addr()
        .context("reading the gRPC ingress listener's address")?;
    let app = Router::new().fallback(forward).with_state(gateway);
    let listener = listener.tap_io(|tcp| {
        // Small frames of many calls: do not wait to coalesce them.
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::debug!(%err, "could not set TCP_NODELAY on a gRPC ingress connection");
        }
    });
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
            .with_context(|| format!("gRPC ingress on {addr} failed"))
    });
    Ok((addr, task))
}

/// Where one call goes.
struct Route {
    channel: Channel,
    /// The address dialled: the Service, or the pod's endpoint.
    endpoint: String,
    mode: Mode,
    /// The balanced member picked, and when, to skip it if it fails.
    member: Option<(Arc<Member<EndpointConn>>, Instant)>,
}

impl Route {
    /// The route the current mode gives a new call, or why there is none.
    fn pick(gateway: &Gateway) -> Result<Route, (tonic::Status, String)> {
        let upstream = &gateway.upstream;
        let mode = upstream.mode();
        if mode == Mode::Sticky {
            return Ok(Route {
                channel: upstream.sticky_channel(),
                endpoint: upstream.sticky_target().to_owned(),
                mode,
                member: None,
            });
        }
        let picked_at = Instant::now();
        let Some(member) = upstream.balancer().pick(picked_at) else {
            let message = format!(
                "no ready endpoint in balanced mode (discovery: {}); check that the gRPC pods are running and ready, or switch the gateway to sticky mode (PUT /mode)",
                upstream.discovery_description()
            );
            return Err((tonic::Status::unavailable(message), String::new()));
        };
        let endpoint = member.info.address.clone();
        match &member.conn {
            Ok(channel) => Ok(Route {
                channel: channel.clone(),
                endpoint,
                mode,
                member: Some((Arc::clone(&member), picked_at)),
            }),
            Err(message) => {
                let message = format!("endpoint {endpoint:?} is not a valid address: {message}");
                Err((tonic::Status::unavailable(message), endpoint))
            }
        }
    }

    /// The observation this call starts from.
    fn outcome(&self) -> RequestOutcome {
        let (pod_name, pod_ip) = match &self.member {
            Some((member, _)) => (
                member.info.pod_name.clone().unwrap_or_default(),
                host_of(&member.info.address).to_owned(),
            ),
            None => (String::new(), String::new()),
        };
        RequestOutcome {
            pod_name,
            pod_ip,
            endpoint: self.endpoint.clone(),
            mode: self.mode,
            attempts: 1,
            ..RequestOutcome::default()
        }
    }

    /// A response began: the endpoint is fine (its skip, if any, ends).
    fn succeeded(&self, gateway: &Gateway) {
        let Some((member, picked_at)) = &self.member else {
            return;
        };
        if gateway
            .upstream
            .balancer()
            .succeeded(member, *picked_at, Instant::now())
        {
            gateway.upstream.publish_endpoints();
        }
    }

    /// The connection failed for `reason`: the endpoint is skipped for a while.
    fn failed(&self, gateway: &Gateway, reason: &str) {
        let Some((member, picked_at)) = &self.member else {
            return;
        };
        if gateway
            .upstream
            .balancer()
            .eject(member, *picked_at, Instant::now(), reason)
        {
            gateway.upstream.publish_endpoints();
        }
    }
}

/// `host` of `host:port` (IPv6 brackets dropped).
fn host_of(address: &str) -> &str {
    let host = address.rsplit_once(':').map_or(address, |(host, _)| host);
    host.trim_start_matches('[').trim_end_matches(']')
}

async fn forward(State(gateway): State<Arc<Gateway>>, request: Request) -> Response {
    let started = Instant::now();
    let deadline = wire::deadline(request.headers(), started);
    let route = match Route::pick(&gateway) {
        Ok(route) => route,
        Err((status, endpoint)) => {
            let outcome = RequestOutcome {
                endpoint,
                mode: gateway.upstream.mode(),
                ..RequestOutcome::default()
            };
            Completion::new(Arc::clone(&gateway.hub), started, outcome).finish(Some(&status));
            return wire::status_response(status);
        }
    };
    let mut completion = Completion::new(Arc::clone(&gateway.hub), started, route.outcome());
    let (mut parts, body) = request.into_parts();
    wire::strip_hop_by_hop(&mut parts.headers);
    let upstream_request = http::Request::from_parts(parts, tonic::body::Body::new(body));
    let call = tower::ServiceExt::oneshot(route.channel.clone(), upstream_request);
    let response = match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline, call).await.ok(),
        None => Some(call.await),
    };
    let response = match response {
        Some(Ok(response)) => response,
        Some(Err(err)) => {
            let status = upstream_failure(&route, &err);
            // No I/O error under it (a GOAWAY race): the pod may well be fine.
            if let Some(reason) = super::skipped::unavailable_reason(&tonic::Status::from_error(Box::new(err)), "") {
                route.failed(&gateway, &reason);
            }
            completion.finish(Some(&status));
            return wire::status_response(status);
        }
        None => {
            let status = deadline_passed(&route.endpoint);
            completion.finish(Some(&status));
            return wire::status_response(status);
        }
    };
    route.succeeded(&gateway);
    let (mut parts, body) = response.into_parts();
    wire::strip_hop_by_hop(&mut parts.headers);
    completion.pod_from(&parts.headers);
    if let Some(status) = wire::status_in(&parts.headers) {
        // Trailers-only: the call ended with its headers.
        completion.finish(Some(&status));
        return Response::from_parts(parts, axum::body::Body::new(body));
    }
    Response::from_parts(parts, axum::body::Body::new(Forwarded::new(body, deadline, completion)))
}

/// The status a client gets when the call did not reach the upstream or its
/// connection failed before a response began.
fn upstream_failure(route: &Route, err: &tonic::transport::Error) -> tonic::Status {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(inner) = source {
        if inner.is::<tonic::TimeoutExpired>() {
            return deadline_passed(&route.endpoint);
        }
        source = inner.source();
    }
    let cause = std::error::Error::source(err).map_or_else(|| err.to_string(), ToString::to_string);
    tonic::Status::unavailable(format!(
        "the gateway could not complete the call to {} ({cause}); check that it is running and reachable",
        route.endpoint
    ))
}

fn deadline_passed(endpoint: &str) -> tonic::Status {
    tonic::Status::deadline_exceeded(format!("no response from {endpoint} within the call's grpc-timeout"))
}

#[cfg(test)]
mod tests {
    use super::host_of;

    #[test]
    fn the_host_of_an_endpoint() {
        assert_eq!(host_of("10.0.0.7:50051"), "10.0.0.7");
        assert_eq!(host_of("[fd00::7]:50051"), "fd00::7");
        assert_eq!(host_of("greet"), "greet");
    }
}
