//! The ingress's client side: HTTP/2 (prior knowledge, as gRPC clients
//! speak it) on the `h2` crate, a task per call.
//!
//! Not axum or hyper's server: they add a service layer per call and a
//! second copy of every body between their types and h2's; the ingress
//! passes frames from one h2 stream to another and needs neither
//! (bench/results.md has the CPU per call).

mod budget;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use h2::server::SendResponse;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::OwnedSemaphorePermit;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Reply;
use super::call::Forwarded;
use super::pump::{Progress, Pump, Received};
use super::request_pump::RequestPump;
use crate::Gateway;
use crate::listen::stream_share::Place;
use budget::{Budget, LiveCall};

/// As hyper's server defaults, which the ingress was first served with,
/// but for the connection's window: several times a stream's, so one call
/// whose reader stalls does not stop the connection's other calls.
const MAX_CONCURRENT_STREAMS: u32 = 200;
const WINDOW: u32 = 1024 * 1024;
const CONNECTION_WINDOW: u32 = 8 * WINDOW;
const MAX_HEADER_LIST_SIZE: u32 = 16 * 1024;
const MAX_SEND_BUFFER: usize = 400 * 1024;
const MAX_PENDING_ACCEPT_RESET_STREAMS: usize = 20;
const MAX_LOCAL_ERROR_RESET_STREAMS: usize = 1024;
/// Calls of one connection still running, reset ones unwinding included:
/// a reset frees its h2 stream slot at once, so without this a client
/// could keep far more than 200 calls' worth of work going.
const MAX_UNWINDING: usize = 2 * MAX_CONCURRENT_STREAMS as usize;

/// Accepts connections until `shutdown`, then asks each to finish (GOAWAY)
/// and waits until their calls have ended.
pub(super) async fn run(gateway: Arc<Gateway>, listener: TcpListener, shutdown: CancellationToken) {
    let mut acceptor = gateway.front_door.acceptor(listener, "gRPC ingress");
    let mut connections = JoinSet::new();
    loop {
        let (tcp, permit) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = acceptor.accept() => accepted,
            // Reaps ended connections, so the set holds only live ones.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        connections.spawn(connection(Arc::clone(&gateway), tcp, shutdown.clone(), permit));
    }
    drop(acceptor);
    while connections.join_next().await.is_some() {}
}

/// One client connection: each call it opens gets a task. It ends when the
/// client goes, answers no PING in time, sends no complete request within
/// the first-request limit, stays without a call past the idle timeout
/// (GOAWAY), or resets too many streams before their answer (GOAWAY
/// ENHANCE_YOUR_CALM).
async fn connection(gateway: Arc<Gateway>, tcp: TcpStream, shutdown: CancellationToken, _place: OwnedSemaphorePermit) {
    let limits = *gateway.front_door.limits();
    let opened = Instant::now();
    let peer = match tcp.peer_addr() {
        Ok(peer) => peer,
        Err(err) => return tracing::debug!(%err, "a gRPC ingress client went before it was served"),
    };
    let streams = gateway.front_door.stream_holder(peer.ip());
    // Small frames of many calls: do not wait to coalesce them.
    if let Err(err) = tcp.set_nodelay(true) {
        tracing::debug!(%err, "could not set TCP_NODELAY on a gRPC ingress connection");
    }
    let handshake = h2::server::Builder::new()
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .initial_window_size(WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .max_header_list_size(MAX_HEADER_LIST_SIZE)
        .max_send_buffer_size(MAX_SEND_BUFFER)
        .max_pending_accept_reset_streams(MAX_PENDING_ACCEPT_RESET_STREAMS)
        .max_local_error_reset_streams(Some(MAX_LOCAL_ERROR_RESET_STREAMS))
        .handshake::<_, Bytes>(greet_runtime::write_batch::WriteBatch::new(tcp));
    let first_request_by = opened + limits.first_request_timeout;
    let mut connection = match tokio::time::timeout_at(first_request_by, handshake).await {
        Ok(Ok(connection)) => connection,
        Ok(Err(err)) => {
            tracing::debug!(%err, "a gRPC ingress client did not speak HTTP/2");
            return;
        }
        Err(_) => {
            tracing::debug!(
                "a gRPC ingress client sent no HTTP/2 preface within {:?}",
                limits.first_request_timeout
            );
            return;
        }
    };
    let budget = Arc::new(Budget::new());
    let keepalive = crate::keepalive::keepalive(
        connection.ping_pong(),
        limits.keepalive_interval,
        limits.keepalive_timeout,
    );
    tokio::pin!(keepalive);
    let idle = limits.idle_timeout;
    let idle_check = tokio::time::sleep(if idle.is_zero() { Duration::MAX / 4 } else { idle });
    tokio::pin!(idle_check);
    // Made once, not at each turn of the loop: each would be made, polled
    // (registered) and dropped again for every call the connection brings.
    let cancelled = shutdown.cancelled();
    tokio::pin!(cancelled);
    let flagged = budget.flagged.notified();
    tokio::pin!(flagged);
    let first_request = tokio::time::sleep_until(first_request_by);
    tokio::pin!(first_request);
    let mut got_first = false;
    let mut draining = false;
    let mut flag_seen = false;
    // Once asked to go, a client that keeps the connection (an open header
    // block is no stream to wait for) is closed this much later.
    let mut close_by: Option<Instant> = None;
    loop {
        let next = tokio::select! {
            // In this order: a connection told to go goes before it takes
            // another call (and no random start to draw at each turn).
            biased;
            () = &mut cancelled, if !draining => {
                // No new call; the connection ends once its calls have.
                connection.graceful_shutdown();
                draining = true;
                continue;
            }
            () = &mut flagged, if !flag_seen => {
                flag_seen = true;
                tracing::debug!(
                    "a gRPC ingress client reset at least {}% of {}+ streams before their answer: GOAWAY ENHANCE_YOUR_CALM",
                    budget::PREMATURE_PERCENT,
                    budget::PREMATURE_MIN_STREAMS
                );
                connection.abrupt_shutdown(h2::Reason::ENHANCE_YOUR_CALM);
                draining = true;
                close_by.get_or_insert(Instant::now() + limits.first_request_timeout);
                continue;
            }
            () = &mut keepalive => {
                tracing::debug!("a gRPC ingress client answered no PING within {:?}: closed", limits.keepalive_timeout);
                return;
            }
            () = &mut first_request, if !got_first => {
                tracing::debug!(
                    "a gRPC ingress client sent no complete request within {:?}: closed",
                    limits.first_request_timeout
                );
                return;
            }
            () = &mut idle_check, if !idle.is_zero() && got_first && !draining => {
                let quiet_until = budget.quiet_since() + idle;
                if budget.live() == 0 && Instant::now() >= quiet_until {
                    tracing::debug!("a gRPC ingress connection had no call for {idle:?}: GOAWAY");
                    connection.graceful_shutdown();
                    draining = true;
                    close_by = Some(Instant::now() + limits.first_request_timeout);
                } else {
                    let next = if budget.live() == 0 { quiet_until } else { Instant::now() + idle };
                    idle_check.as_mut().reset(next);
                }
                continue;
            }
            () = sleep_until_some(close_by) => return,
            next = connection.accept() => next,
        };
        match next {
            Some(Ok((request, mut respond))) => {
                got_first = true;
                budget.opened();
                if budget.live() >= MAX_UNWINDING {
                    respond.send_reset(h2::Reason::REFUSED_STREAM);
                    continue;
                }
                let Some(place) = streams.place() else {
                    respond.send_reset(h2::Reason::REFUSED_STREAM);
                    continue;
                };
                let live = budget.call_started();
                let budget = Arc::clone(&budget);
                // Boxed: the task cell then holds a pointer, not the call's whole
                // state, which spawning moved several times (callgrind).
                tokio::spawn(Box::pin(call(
                    Arc::clone(&gateway),
                    request,
                    respond,
                    budget,
                    (place, live),
                )));
            }
            Some(Err(err)) => {
                tracing::debug!(%err, "a gRPC ingress connection failed");
                return;
            }
            None => return,
        }
    }
}

async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// One call: forwarded, its answer sent back, and reset when nothing moves
/// either way for the stream idle timeout, or when a lighter holder's call
/// takes its place under the full stream cap. Holds its places under the
/// stream cap and in its connection's count of live calls till it ends.
async fn call(
    gateway: Arc<Gateway>,
    request: http::Request<h2::RecvStream>,
    mut respond: SendResponse<Bytes>,
    budget: Arc<Budget>,
    places: (Place, LiveCall),
) {
    let limits = *gateway.front_door.limits();
    let progress = Progress::new();
    let request = {
        let progress = progress.clone();
        request.map(move |body| Received::new(body).watched(progress))
    };
    let (place, _live) = &places;
    // Dropping the unfinished answer drops the forwarding, which resets the
    // upstream stream.
    let reason = {
        let answering = answer(&gateway, request, &mut respond, &budget, &progress);
        tokio::select! {
            biased;
            () = answering => return,
            () = progress.idle_for(limits.stream_idle_timeout) => {
                tracing::debug!(
                    "a gRPC ingress call moved no frame either way for {:?}: reset",
                    limits.stream_idle_timeout
                );
                h2::Reason::CANCEL
            }
            () = place.preempted() => {
                tracing::debug!(
                    "a gRPC ingress call gave its place under the full stream cap to a lighter client's: reset"
                );
                h2::Reason::ENHANCE_YOUR_CALM
            }
        }
    };
    respond.send_reset(reason);
}

/// Forwards the call and sends its answer. A client that resets the stream
/// while the upstream has not answered drops the forwarding, which resets
/// the upstream stream, and counts against its connection.
async fn answer(
    gateway: &Gateway,
    request: http::Request<Received>,
    respond: &mut SendResponse<Bytes>,
    budget: &Budget,
    progress: &Progress,
) {
    let limits = gateway.front_door.limits();
    let forwarding = super::forward(gateway, request, limits.default_call_timeout);
    let reply = tokio::select! {
        // The reset first: a call reset in the write that opened it is
        // never sent upstream.
        biased;
        _ = std::future::poll_fn(|cx| respond.poll_reset(cx)) => {
            budget.premature_reset();
            return;
        }
        reply = forwarding => reply,
    };
    match reply {
        Reply::Whole(head) => {
            if let Err(err) = respond.send_response(head, true) {
                tracing::debug!(%err, "could not answer a gRPC ingress call");
            }
        }
        Reply::Streamed(head, body) => send(respond, head, body, progress, limits.stall_timeout).await,
    }
}

/// Sends the response until it ends or the call's deadline passes, which
/// ends it even while a client that stopped reading keeps its window shut;
/// a window shut past the stall timeout resets the stream sooner.
async fn send(
    respond: &mut SendResponse<Bytes>,
    head: http::Response<()>,
    mut body: Box<Forwarded>,
    progress: &Progress,
    stall_timeout: Duration,
) {
    let mut request_pump = body.take_request_pump();
    let stream = match respond.send_response(head, false) {
        Ok(stream) => stream,
        // The client went away: dropping `body` observes the call as cancelled.
        Err(err) => return tracing::debug!(%err, "could not answer a gRPC ingress call"),
    };
    let deadline = body.deadline();
    let mut pump = Pump::new(body, stream)
        .watched(progress.clone())
        .stall_after(stall_timeout);
    let relayed = RequestPump::beside(&mut request_pump, &mut pump);
    let Some(deadline) = deadline else {
        return relayed.await;
    };
    tokio::select! {
        // The answer first: most are whole when first polled, and the
        // deadline's timer is then never registered (nor a random start drawn).
        biased;
        () = relayed => {}
        () = tokio::time::sleep_until(deadline) => pump.end_with(|body| body.deadline_passed()),
    }
}
