//! The Observer port's accept loop: hyper's HTTP/2 server (gRPC only)
//! rather than tonic's, because tonic's takes no connection cap and no idle
//! limit. Its connections count under the Observer's own share of
//! `--max-connections` (listen.rs): a flood of idle clients on the ingress
//! and REST ports, which fills theirs, cannot lock the dashboards out.
//!
//! Limits that fit a Watch stream, which lives for hours and may carry
//! nothing for long (a raw Watch of a quiet gateway): keepalive PINGs tell a
//! live dashboard from a dead one; the idle limit counts only while the
//! connection has no stream open, so an open Watch is never cut by it.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use http_body_util::BodyExt;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tonic::body::Body;
use tonic::codegen::BoxFuture;
use tonic::service::Routes;

use super::FrontDoor;

/// Streams one Observer connection may have open: a dashboard needs one
/// Watch and a few calls.
const MAX_CONCURRENT_STREAMS: u32 = 100;
const MAX_PENDING_ACCEPT_RESET_STREAMS: usize = 20;
/// How long shutdown waits for streams still open (as the REST port).
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

/// Serves `routes` on `listener` until `shutdown`; Watch streams end then
/// (the service's own token), so the connections close after them.
pub(crate) async fn serve(front_door: &FrontDoor, listener: TcpListener, routes: Routes, shutdown: CancellationToken) {
    let limits = *front_door.limits();
    let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .keep_alive_interval((!limits.keepalive_interval.is_zero()).then_some(limits.keepalive_interval))
        .keep_alive_timeout(limits.keepalive_timeout)
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .max_pending_accept_reset_streams(MAX_PENDING_ACCEPT_RESET_STREAMS);
    let routes = routes.prepare();
    let mut acceptor = front_door.observer_acceptor(listener);
    let mut connections = JoinSet::new();
    while let Some((tcp, place)) = acceptor.next(&shutdown, &mut connections).await {
        let (streams, open) = watch::channel(0usize);
        let service = TowerToHyperService::new(Counted {
            inner: routes.clone(),
            streams: Arc::new(streams),
        });
        let connection = builder.serve_connection(TokioIo::new(tcp), service);
        let (shutdown, idle) = (shutdown.clone(), limits.idle_timeout);
        connections.spawn(async move {
            let _place = place;
            tokio::pin!(connection);
            let mut asked_to_go = false;
            loop {
                tokio::select! {
                    ended = connection.as_mut() => {
                        if let Err(err) = ended {
                            tracing::debug!(%err, "an Observer connection ended with an error");
                        }
                        return;
                    }
                    () = idle_for(open.clone(), idle), if !asked_to_go => {}
                    () = shutdown.cancelled(), if !asked_to_go => {}
                }
                // GOAWAY NO_ERROR: streams still open finish, no new one starts.
                connection.as_mut().graceful_shutdown();
                asked_to_go = true;
            }
        });
    }
    drop(acceptor);
    // Each connection goes once its last stream ended (Watch streams end
    // with the shutdown token; a health Watch would not).
    let drained = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_GRACE, drained).await.is_err() {
        tracing::debug!("Observer connections still open {SHUTDOWN_GRACE:?} after shutdown: dropped");
    }
    connections.abort_all();
}

/// Returns once the connection has had no stream open for `idle`; never
/// when `idle` is zero.
async fn idle_for(mut open: watch::Receiver<usize>, idle: std::time::Duration) {
    if idle.is_zero() {
        return std::future::pending().await;
    }
    loop {
        if open.wait_for(|n| *n == 0).await.is_err() {
            return std::future::pending().await;
        }
        if tokio::time::timeout(idle, open.wait_for(|n| *n > 0)).await.is_err() {
            return;
        }
    }
}

/// The Observer's routes, counting the connection's open streams: a
/// stream is open from its request until its response body is dropped.
#[derive(Clone)]
struct Counted {
    inner: Routes,
    streams: Arc<watch::Sender<usize>>,
}

/// One open stream; its drop closes it.
struct Open(Arc<watch::Sender<usize>>);

impl Open {
    fn new(streams: &Arc<watch::Sender<usize>>) -> Open {
        streams.send_modify(|n| *n += 1);
        Open(Arc::clone(streams))
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

impl tower::Service<http::Request<hyper::body::Incoming>> for Counted {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        tower::Service::<http::Request<hyper::body::Incoming>>::poll_ready(&mut self.inner, cx)
    }

    fn call(&mut self, request: http::Request<hyper::body::Incoming>) -> Self::Future {
        let open = Open::new(&self.streams);
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            Ok(response.map(|body| {
                Body::new(body.map_frame(move |frame| {
                    // Held by the body: dropped with it, when the stream ends.
                    let _open = &open;
                    frame
                }))
            }))
        })
    }
}
