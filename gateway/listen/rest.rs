//! The REST port's accept loop: hyper-util's server builder, which (unlike
//! axum's `serve`) takes a header-read timeout, HTTP/2 keepalive and stream
//! limits; connections count under the shared cap, and shutdown is graceful
//! (in-flight requests finish, idle connections close).

use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::FrontDoor;

/// As the ingress's HTTP/2 limits, fewer streams: REST calls are short.
const MAX_CONCURRENT_STREAMS: u32 = 100;
const MAX_PENDING_ACCEPT_RESET_STREAMS: usize = 20;
const MAX_LOCAL_ERROR_RESET_STREAMS: usize = 1024;
const MAX_HEADER_LIST_SIZE: u32 = 16 * 1024;
/// How long graceful shutdown waits for a connection's request in flight
/// beyond the drain (the drain's own timeout bounds the whole).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Serves `app` on `listener` until `shutdown`, then lets requests in
/// flight finish.
pub(crate) async fn serve(
    front_door: &FrontDoor,
    listener: TcpListener,
    app: axum::Router,
    shutdown: CancellationToken,
) {
    let limits = front_door.limits();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.first_request_timeout)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval((!limits.keepalive_interval.is_zero()).then_some(limits.keepalive_interval))
        .keep_alive_timeout(limits.keepalive_timeout)
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .max_pending_accept_reset_streams(MAX_PENDING_ACCEPT_RESET_STREAMS)
        .max_local_error_reset_streams(MAX_LOCAL_ERROR_RESET_STREAMS)
        .max_header_list_size(MAX_HEADER_LIST_SIZE);
    let graceful = GracefulShutdown::new();
    let mut acceptor = front_door.acceptor(listener, "REST port");
    let mut connections = JoinSet::new();
    while let Some((tcp, place)) = acceptor.next(&shutdown, &mut connections).await {
        let service = TowerToHyperService::new(app.clone());
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(tcp), service).into_owned());
        connections.spawn(async move {
            let _place = place;
            if let Err(err) = connection.await {
                tracing::debug!(err = %err, "a REST connection ended with an error");
            }
        });
    }
    drop(acceptor);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await.is_err() {
        tracing::debug!("REST connections still open {SHUTDOWN_GRACE:?} after shutdown: dropped");
    }
    connections.abort_all();
}
