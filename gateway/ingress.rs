//! The transparent gRPC ingress (issue 11): any gRPC call on `--grpc-port`,
//! forwarded without decoding its messages (headers minus hop-by-hop ones,
//! message frames as they come, trailers) to where the current mode says:
//! sticky over the one connection to the Service, balanced to the next ready
//! endpoint in the balancer's round robin. A stream stays on the endpoint it
//! started on; a mode switch affects new calls only.
//!
//! The upstream side is a raw HTTP/2 connection per endpoint (and one
//! through the Service), on the `h2` crate (upstream/raw_h2.rs says why):
//! a call passes through as it came. Dropping the call (the client's
//! cancel) resets the upstream stream.

mod call;
mod pump;
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
use super::upstream::raw_h2::RawFailure;
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
    let (mut head, body) = request.into_parts();
    wire::strip_hop_by_hop(&mut head.headers);
    let replay = Replay::new(body);
    let mut attempts = 1;
    let response = loop {
        let call = attempt(&route, &head, &replay);
        let result = match deadline {
            Some(deadline) => tokio::time::timeout_at(deadline, call).await.ok(),
            None => Some(call.await),
        };
        let failure = match result {
            Some(Ok(response)) => break response,
            Some(Err(failure)) => failure,
            None => {
                let status = deadline_passed(&route.endpoint);
                completion.finish(Some(&status));
                return wire::status_response(status);
            }
        };
        // No I/O error under it (a GOAWAY race): the pod may well be fine.
        if let Some(reason) = failure.skip_reason() {
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
        let status = tonic::Status::unavailable(format!(
            "the gateway could not complete the call to {} ({failure}); check that it is running and reachable",
            route.endpoint
        ));
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
        return Response::from_parts(parts, axum::body::Body::empty());
    }
    Response::from_parts(parts, axum::body::Body::new(Forwarded::new(body, deadline, completion)))
}

/// One attempt of a call on `route`: the stream opened with the call's
/// head, the body on its way, until the response's head.
async fn attempt(
    route: &Route,
    head: &http::request::Parts,
    replay: &Replay,
) -> Result<http::Response<h2::RecvStream>, RawFailure> {
    let connection = route.connection();
    let body = replay.attempt();
    let end_of_stream = http_body::Body::is_end_stream(&body);
    let upstream_request = || {
        let mut request = http::Request::new(());
        *request.method_mut() = head.method.clone();
        *request.uri_mut() = upstream_uri(&head.uri, connection.authority());
        *request.headers_mut() = head.headers.clone();
        request
    };
    let (response, send) = connection.open(upstream_request, end_of_stream).await?;
    if !end_of_stream {
        pump::start(body, send);
    }
    Ok(response.await?)
}

/// The call's path on the upstream's authority.
fn upstream_uri(uri: &http::Uri, authority: &http::uri::Authority) -> http::Uri {
    let mut parts = http::uri::Parts::default();
    parts.scheme = Some(http::uri::Scheme::HTTP);
    parts.authority = Some(authority.clone());
    parts.path_and_query = uri.path_and_query().cloned();
    // Scheme, authority and a path (or none) always make a URI.
    http::Uri::from_parts(parts).unwrap_or_else(|_| uri.clone())
}

fn deadline_passed(endpoint: &str) -> tonic::Status {
    tonic::Status::deadline_exceeded(format!("no response from {endpoint} within the call's grpc-timeout"))
}
