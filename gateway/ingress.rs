//! The transparent gRPC ingress: any gRPC call on `--grpc-port`,
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
mod request_pump;
mod server;
mod wire;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Gateway;
use super::connection::raw_h2::RawFailure;
use super::events::methods::MAX_METHOD_CHARS;
use crate::upstream::Upstream;
use crate::upstream::outcome::CallOutcome;
use crate::upstream::route::{NoRoute, Route};
use crate::upstream::tries::{Attempt, try_call};
use call::Forwarded;
use greet_proto::sanitize::sanitize_truncated;
use pump::Received;
use replay::{AttemptBody, Replay};
use request_pump::RequestPump;

/// Serves the ingress on `listener` until `shutdown`, then lets calls in
/// flight finish (the drain's timeout bounds long streams).
pub(crate) fn serve(
    gateway: Arc<Gateway>,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<(SocketAddr, JoinHandle<anyhow::Result<()>>)> {
    let addr = listener
        .local_addr()
        .context("reading the gRPC ingress listener's address")?;
    let task = tokio::spawn(async move {
        server::run(gateway, listener, shutdown).await;
        Ok(())
    });
    Ok((addr, task))
}

/// What a call gets back: headers that end it (a trailers-only answer), or
/// headers and the upstream's body to follow.
// The body boxed: it moves from frame to frame until it is relayed, each
// move a copy of it, dearer than the allocation (callgrind).
enum Reply {
    Whole(http::Response<()>),
    Streamed(http::Response<()>, Box<Forwarded>),
}

impl Reply {
    fn status(status: tonic::Status) -> Self {
        Reply::Whole(wire::status_response(status))
    }
}

async fn forward(gateway: &Gateway, request: http::Request<Received>, default_timeout: Duration) -> Reply {
    let started = Instant::now();
    let limit = wire::Deadline::of(request.headers(), started, default_timeout);
    let deadline = limit.map(|limit| limit.at);
    let method = sanitize_truncated(request.uri().path(), MAX_METHOD_CHARS);
    let mut completion = CallOutcome::begin_at(&gateway.hub, method, started);
    let upstream = &gateway.upstream;
    let mode = upstream.mode();
    let route = match Route::pick(upstream, mode) {
        Ok(route) => route,
        Err(NoRoute { error, endpoint }) => {
            let status = tonic::Status::unavailable(error.to_string());
            completion.no_route(mode, endpoint, call::failure(&status));
            return Reply::status(status);
        }
    };
    let (mut head, body) = request.into_parts();
    wire::strip_hop_by_hop(&mut head.headers);
    let replay = Replay::new(body);
    let mut forwarding = Forwarding {
        head: &head,
        replay: &replay,
        deadline,
        sent_deadline: limit.and_then(|limit| limit.sent()),
    };
    let tries = try_call(upstream, route, &mut forwarding, deadline, &mut completion).await;
    let mut route = tries.route;
    let response = match tries.result {
        Ok(sent) => sent,
        Err(failure) => {
            let status = match failure {
                TryFailure::DeadlinePassed => match limit {
                    Some(limit) => limit.passed(&format!("no response from {}", route.endpoint)),
                    None => tonic::Status::deadline_exceeded("the call's deadline passed"),
                },
                failure => tonic::Status::unavailable(format!(
                    "the gateway could not complete the call to {} ({failure}); check that it is running and reachable",
                    route.endpoint
                )),
            };
            completion.finish(Some(call::failure(&status)));
            return Reply::status(status);
        }
    };
    replay.response_began();
    let (response, request_pump) = response;
    let (mut parts, body) = response.into_parts();
    wire::strip_hop_by_hop(&mut parts.headers);
    let named = crate::response_headers::pod_header(&parts.headers);
    route.succeeded(upstream, named.as_deref());
    let pod_ip = crate::response_headers::header(&parts.headers, &crate::response_headers::POD_IP);
    completion.answered(named, pod_ip, || route.known_pod(upstream));
    if let Some(status) = wire::status_in(&parts.headers) {
        // Trailers-only: the call ended with its headers.
        completion.finish(call::ended(&status));
        return Reply::Whole(http::Response::from_parts(parts, ()));
    }
    Reply::Streamed(
        http::Response::from_parts(parts, ()),
        Box::new(Forwarded::new(body, limit, completion, request_pump)),
    )
}

/// Why one try of a call failed before any response byte.
#[derive(Debug, thiserror::Error)]
enum TryFailure {
    #[error("{0}")]
    Raw(RawFailure),
    #[error("no answer within {0:?}")]
    NoAnswer(std::time::Duration),
    /// The call's own deadline passed first.
    #[error("the call's deadline passed")]
    DeadlinePassed,
}

/// One ingress call's tries: its head, and its body as far as it is kept
/// for a retry.
struct Forwarding<'a> {
    head: &'a http::request::Parts,
    replay: &'a Replay<Received>,
    /// When the call must end here.
    deadline: Option<Instant>,
    /// What the upstream is told (the client's own deadline only).
    sent_deadline: Option<Instant>,
}

impl Attempt<Upstream> for Forwarding<'_> {
    type Answer = Sent;
    type Failure = TryFailure;

    /// One retry at most: a call's body may be long, and each try holds it.
    fn max_attempts(&self, _route_max: u32) -> u32 {
        2
    }

    /// A try that has another endpoint to go to waits only its limit
    /// (balancer/try_limit.rs), then goes there if the client's whole
    /// request was kept; else it waits for the call's deadline.
    async fn send(&mut self, route: &Route<Upstream>, limit: Option<Duration>) -> Result<Sent, TryFailure> {
        let sent = attempt(route, self.head, self.replay, self.sent_deadline);
        tokio::pin!(sent);
        let result = match limit {
            Some(limit) => match tokio::time::timeout(limit, &mut sent).await {
                Ok(result) => Some(result.map_err(TryFailure::Raw)),
                Err(_) if self.replay.is_whole() => Some(Err(TryFailure::NoAnswer(limit))),
                Err(_) => within(sent, self.deadline).await,
            },
            None => within(sent, self.deadline).await,
        };
        result.unwrap_or(Err(TryFailure::DeadlinePassed))
    }

    /// No I/O error under it (a GOAWAY race): the pod may well be fine.
    fn skip_reason(failure: &TryFailure) -> Option<String> {
        match failure {
            TryFailure::Raw(raw) => raw.skip_reason(),
            TryFailure::NoAnswer(limit) => Some(format!("no answer within {limit:?}")),
            TryFailure::DeadlinePassed => None,
        }
    }

    /// No response byte came: once more, if all that was sent can be sent again.
    fn may_retry(&self, failure: &TryFailure, _cut_short: bool) -> bool {
        !matches!(failure, TryFailure::DeadlinePassed) && self.replay.can_retry()
    }
}

/// The response's head, and the request body's pump if the body is still
/// on its way (driven by the call's task until the response ends).
type Sent = (http::Response<h2::RecvStream>, Option<UpstreamPump>);
type UpstreamPump = RequestPump<AttemptBody<Received>>;

/// A try's outcome by the call's deadline (`None`: it passed first).
async fn within(
    sent: impl std::future::Future<Output = Result<Sent, RawFailure>>,
    deadline: Option<Instant>,
) -> Option<Result<Sent, TryFailure>> {
    let result = match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline, sent).await.ok()?,
        None => sent.await,
    };
    Some(result.map_err(TryFailure::Raw))
}

/// One attempt of a call on `route`: the stream opened with the call's
/// head, the body on its way, until the response's head.
async fn attempt(
    route: &Route<Upstream>,
    head: &http::request::Parts,
    replay: &Replay<Received>,
    deadline: Option<Instant>,
) -> Result<Sent, RawFailure> {
    let connection = route.connection();
    let body = replay.attempt();
    let end_of_stream = http_body::Body::is_end_stream(&body);
    let upstream_request = || {
        let mut request = http::Request::new(());
        *request.method_mut() = head.method.clone();
        *request.uri_mut() = upstream_uri(&head.uri, connection.authority());
        *request.headers_mut() = head.headers.clone();
        // The time the call has left, not what the client first gave it.
        if let Some(deadline) = deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            request
                .headers_mut()
                .insert(crate::grpc_headers::GRPC_TIMEOUT.clone(), wire::grpc_timeout(left));
        }
        request
    };
    let (response, send) = connection.open(upstream_request, end_of_stream).await?;
    // Dropped with the attempt or its response: a request body still being
    // sent upstream then stops, and its stream is reset.
    let mut request_pump = if end_of_stream {
        None
    } else {
        RequestPump::start(body, send)
    };
    let response = RequestPump::beside(&mut request_pump, response).await?;
    Ok((response, request_pump))
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
