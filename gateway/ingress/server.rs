//! The ingress's client side: HTTP/2 (prior knowledge, as gRPC clients
//! speak it) on the `h2` crate, a task per call.
//!
//! Not axum or hyper's server: they add a service layer per call and a
//! second copy of every body between their types and h2's; the ingress
//! passes frames from one h2 stream to another and needs neither
//! (bench/results.md has the CPU per call).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use h2::server::SendResponse;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::Reply;
use super::call::Forwarded;
use super::pump::{Pump, Received};
use crate::Gateway;

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
/// How long a new connection has to send its HTTP/2 preface.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts connections until `shutdown`, then asks each to finish (GOAWAY)
/// and waits until their calls have ended.
pub(super) async fn run(gateway: Arc<Gateway>, listener: TcpListener, shutdown: CancellationToken) {
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
            // Reaps ended connections, so the set holds only live ones.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        match accepted {
            Ok((tcp, _)) => {
                connections.spawn(connection(Arc::clone(&gateway), tcp, shutdown.clone()));
            }
            Err(err) => {
                // Out of descriptors or the like: wait a little, as hyper does.
                tracing::warn!(%err, "the gRPC ingress could not accept a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

/// One client connection: each call it opens gets a task.
async fn connection(gateway: Arc<Gateway>, tcp: TcpStream, shutdown: CancellationToken) {
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
        .handshake::<_, Bytes>(tcp);
    let mut connection = match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
        Ok(Ok(connection)) => connection,
        Ok(Err(err)) => {
            tracing::debug!(%err, "a gRPC ingress client did not speak HTTP/2");
            return;
        }
        Err(_) => {
            tracing::debug!("a gRPC ingress client sent no HTTP/2 preface within {HANDSHAKE_TIMEOUT:?}");
            return;
        }
    };
    let mut draining = false;
    loop {
        let next = tokio::select! {
            () = shutdown.cancelled(), if !draining => {
                // No new call; the connection ends once its calls have.
                connection.graceful_shutdown();
                draining = true;
                continue;
            }
            next = connection.accept() => next,
        };
        match next {
            Some(Ok((request, respond))) => {
                tokio::spawn(call(Arc::clone(&gateway), request, respond));
            }
            Some(Err(err)) => {
                tracing::debug!(%err, "a gRPC ingress connection failed");
                return;
            }
            None => return,
        }
    }
}

/// One call: forwarded, its answer sent back. A client that resets the
/// stream while the upstream has not answered drops the forwarding, which
/// resets the upstream stream.
async fn call(gateway: Arc<Gateway>, request: http::Request<h2::RecvStream>, mut respond: SendResponse<Bytes>) {
    let forwarding = super::forward(&gateway, request.map(Received::new));
    let reply = tokio::select! {
        reply = forwarding => reply,
        _ = std::future::poll_fn(|cx| respond.poll_reset(cx)) => return,
    };
    match reply {
        Reply::Whole(head) => {
            if let Err(err) = respond.send_response(head, true) {
                tracing::debug!(%err, "could not answer a gRPC ingress call");
            }
        }
        Reply::Streamed(head, body) => send(respond, head, body).await,
    }
}

/// Sends the response until it ends or the call's deadline passes, which
/// ends it even while a client that stopped reading keeps its window shut.
async fn send(mut respond: SendResponse<Bytes>, head: http::Response<()>, body: Forwarded) {
    let stream = match respond.send_response(head, false) {
        Ok(stream) => stream,
        // The client went away: dropping `body` observes the call as cancelled.
        Err(err) => return tracing::debug!(%err, "could not answer a gRPC ingress call"),
    };
    let deadline = body.deadline();
    let mut pump = Pump::new(body, stream);
    let Some(deadline) = deadline else {
        return pump.await;
    };
    tokio::select! {
        () = &mut pump => {}
        () = tokio::time::sleep_until(deadline) => pump.end_with(Forwarded::deadline_passed),
    }
}
