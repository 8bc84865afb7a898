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
mod replay;
mod route;
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

use super::Gateway;
use super::events::RequestOutcome;
use super::events::methods::MAX_METHOD_CHARS;
use crate::common::sanitize::sanitize_truncated;
use call::{Completion, Forwarded};
use replay::Replay;
use route::Route;

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

async fn forward(State(gateway): State<Arc<Gateway>>, request: Request) -> Response {
    let started = Instant::now();
    let deadline = wire::deadline(request.headers(), started);
    let method = sanitize_truncated(request.uri().path(), MAX_METHOD_CHARS);
    let mut route = match Route::pick(&gateway) {
        Ok(route) => route,
        Err((status, endpoint)) => {
            let outcome = RequestOutcome {
                endpoint,
                mode: gateway.upstream.mode(),
                attempts: 0,
                method,
                ..RequestOutcome::default()
            };
            Completion::new(Arc::clone(&gateway.hub), started, outcome).finish(Some(&status));
            return wire::status_response(status);
        }
    };
    let mut completion = Completion::new(Arc::clone(&gateway.hub), started, route.outcome(1, &method));
    let (mut parts, body) = request.into_parts();
    wire::strip_hop_by_hop(&mut parts.headers);
    let replay = Replay::new(body);
    let mut attempts = 1;
    let response = loop {
        let attempt = http::Request::from_parts(parts.clone(), tonic::body::Body::new(replay.attempt()));
        let call = tower::ServiceExt::oneshot(route.channel(), attempt);
        let result = match deadline {
            Some(deadline) => tokio::time::timeout_at(deadline, call).await.ok(),
            None => Some(call.await),
        };
        let err = match result {
            Some(Ok(response)) => break response,
            Some(Err(err)) => err,
            None => {
                let status = deadline_passed(&route.endpoint);
                completion.finish(Some(&status));
                return wire::status_response(status);
            }
        };
        let status = upstream_failure(&route, &err);
        // No I/O error under it (a GOAWAY race): the pod may well be fine.
        if let Some(reason) = super::skipped::unavailable_reason(&tonic::Status::from_error(Box::new(err)), "") {
            route.failed(&gateway, &reason);
        }
        // No response byte came: once more elsewhere, if all that was sent can be sent again.
        if attempts == 1
            && replay.can_retry()
            && let Ok(next) = route.retry(&gateway)
        {
            attempts += 1;
            route = next;
            completion.retry(route.outcome(attempts, &method));
            continue;
        }
        completion.finish(Some(&status));
        return wire::status_response(status);
    };
    replay.response_began();
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
