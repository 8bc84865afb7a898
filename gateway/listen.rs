//! What the gateway's front doors (the gRPC ingress, the REST port, the
//! Observer port) hold against slow, idle and hostile clients: the time
//! limits a connection and a stream get, one cap on connections and one on
//! in-flight ingress streams (shared out among the clients when full:
//! [`stream_share`]), and an `accept` that backs off when the process is
//! out of descriptors instead of spinning.
//!
//! Each gateway has its own ([`FrontDoor`], from `GatewayConfig`'s
//! [`FrontDoorLimits`]): the binary's come from its flags, a gateway started
//! in process (the demo, tests) takes the defaults or its own.

pub(crate) mod observer;
pub(crate) mod rest;
pub(crate) mod stream_share;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use stream_share::{StreamHolder, StreamShare};

/// The front doors' limits; each default is in `--help` and docs/hardening.md.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrontDoorLimits {
    /// A PING this often on an ingress (and REST HTTP/2) connection ...
    pub keepalive_interval: Duration,
    /// ... and the connection is closed when its answer takes longer.
    pub keepalive_timeout: Duration,
    /// An ingress connection with no call for this long is asked to go
    /// (GOAWAY); zero: never.
    pub idle_timeout: Duration,
    /// A connection that sent no complete request (an ingress call's
    /// HEADERS, a REST request's header) this long after it opened is
    /// closed: a preface then nothing, a header block never ended.
    pub first_request_timeout: Duration,
    /// An ingress call with no frame either way for this long is reset
    /// (CANCEL); zero: never.
    pub stream_idle_timeout: Duration,
    /// A response the client gives no flow-control window for this long is
    /// reset (CANCEL), and its upstream stream with it.
    pub stall_timeout: Duration,
    /// The deadline of an ingress call that sent no `grpc-timeout` of its
    /// own; zero: none.
    pub default_call_timeout: Duration,
    /// Open connections on the three ports together; accept waits while
    /// a port's share is taken. The Observer port has its own share, a
    /// sixteenth (at least one), the ingress and REST ports the rest.
    pub max_connections: usize,
    /// Ingress calls in flight across all connections. When it is reached,
    /// a new call of a client that holds fewer than the heaviest holder
    /// (by peer IP, then by connection) takes the place of that holder's
    /// oldest call, which is reset (ENHANCE_YOUR_CALM); any other is
    /// refused (REFUSED_STREAM: the client may retry it elsewhere).
    pub max_streams: usize,
}

impl Default for FrontDoorLimits {
    fn default() -> Self {
        FrontDoorLimits {
            keepalive_interval: Duration::from_secs(20),
            keepalive_timeout: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(60),
            first_request_timeout: Duration::from_secs(10),
            stream_idle_timeout: Duration::from_secs(300),
            stall_timeout: Duration::from_secs(10),
            default_call_timeout: Duration::from_secs(3600),
            max_connections: 1024,
            max_streams: 4096,
        }
    }
}

/// One gateway's front doors: their limits, and the caps its ports share.
pub(crate) struct FrontDoor {
    limits: FrontDoorLimits,
    /// The ingress's and REST port's share of the connection cap.
    connections: Arc<Semaphore>,
    /// The Observer port's share.
    observer_connections: Arc<Semaphore>,
    streams: Arc<StreamShare>,
}

/// The connection cap split between the client-facing ports (ingress and
/// REST) and the Observer port. One pool would let a flood of idle clients
/// lock the dashboards out, blinding the operators during the very attack
/// they need to see; a share of its own, carved out of the cap, keeps the
/// total (and so the memory it is sized for) as the flag says. A sixteenth
/// (64 of 1,024): a dashboard holds one connection.
pub(crate) fn connection_shares(max_connections: usize) -> (usize, usize) {
    let observer = (max_connections / 16).max(1);
    (max_connections.saturating_sub(observer).max(1), observer)
}

impl FrontDoor {
    pub(crate) fn new(limits: FrontDoorLimits) -> Self {
        let (clients, observer) = connection_shares(limits.max_connections);
        FrontDoor {
            connections: Arc::new(Semaphore::new(clients)),
            observer_connections: Arc::new(Semaphore::new(observer)),
            streams: StreamShare::new(limits.max_streams),
            limits,
        }
    }

    pub(crate) fn limits(&self) -> &FrontDoorLimits {
        &self.limits
    }

    /// The share of the ingress's streams of a connection from `peer`: its
    /// calls' places come from it.
    pub(crate) fn stream_holder(&self, peer: IpAddr) -> StreamHolder {
        self.streams.holder(peer)
    }

    /// Accepts on `listener` (`what`: its name in the log) under the
    /// client-facing ports' share of the connection cap.
    pub(crate) fn acceptor(&self, listener: TcpListener, what: &'static str) -> Acceptor {
        Acceptor::new(listener, what, &self.connections)
    }

    /// Accepts on the Observer's `listener` under its own share.
    pub(crate) fn observer_acceptor(&self, listener: TcpListener) -> Acceptor {
        Acceptor::new(listener, "Observer port", &self.observer_connections)
    }
}

impl Acceptor {
    fn new(listener: TcpListener, what: &'static str, cap: &Arc<Semaphore>) -> Acceptor {
        Acceptor {
            listener,
            what,
            cap: Arc::clone(cap),
            backoff: FIRST_BACKOFF,
            failures: 0,
            warned: None,
            waiting: None,
        }
    }
}

/// Accepts connections on one listener, each holding a place under the
/// shared connection cap for as long as it lives.
pub(crate) struct Acceptor {
    listener: TcpListener,
    what: &'static str,
    /// The share of the connection cap this port's connections take.
    cap: Arc<Semaphore>,
    backoff: Duration,
    /// Failures since the last warning.
    failures: u64,
    /// When the last warning was logged, and whether an accept has
    /// succeeded since (logged once).
    warned: Option<(Instant, bool)>,
    /// Accepted, waiting for a place under the cap.
    waiting: Option<TcpStream>,
}

const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// At most one warning this often: at the descriptor limit, accepts fail and
/// succeed by turns as connections close (a line per connection, else).
const WARN_EVERY: Duration = Duration::from_secs(30);

impl Acceptor {
    /// The next connection, once it is under the cap. Out of descriptors
    /// (EMFILE, ENFILE) or memory, it waits 50 ms, doubling to 1 s while
    /// the failures go on, and warns at most every 30 s, not once a failure.
    pub(crate) async fn accept(&mut self) -> (TcpStream, OwnedSemaphorePermit) {
        loop {
            if self.waiting.is_none() {
                self.waiting = Some(self.accept_any().await);
            }
            // The place is taken after the accept, so an idle listener holds
            // none; the one connection accepted over the cap waits here, kept
            // in `waiting` when the caller drops this future (cancel-safe:
            // an accept loop's select must not drop an accepted client), and
            // the listener accepts no other meanwhile. (The semaphore is
            // never closed.)
            if let Ok(permit) = Arc::clone(&self.cap).acquire_owned().await
                && let Some(tcp) = self.waiting.take()
            {
                return (tcp, permit);
            }
        }
    }

    /// The next connection under the cap, TCP_NODELAY set, reaping the
    /// port's `connections` that ended meanwhile; `None` once `shutdown`.
    pub(crate) async fn next(
        &mut self,
        shutdown: &CancellationToken,
        connections: &mut JoinSet<()>,
    ) -> Option<(TcpStream, OwnedSemaphorePermit)> {
        loop {
            let (tcp, place) = tokio::select! {
                () = shutdown.cancelled() => return None,
                accepted = self.accept() => accepted,
                Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            };
            if let Err(err) = tcp.set_nodelay(true) {
                tracing::debug!(%err, "could not set TCP_NODELAY on a connection to the {}", self.what);
            }
            return Some((tcp, place));
        }
    }

    async fn accept_any(&mut self) -> TcpStream {
        loop {
            match self.listener.accept().await {
                Ok((tcp, _)) => {
                    if let Some((_, said_again @ false)) = &mut self.warned {
                        *said_again = true;
                        tracing::info!("the {} accepts connections again", self.what);
                    }
                    self.backoff = FIRST_BACKOFF;
                    return tcp;
                }
                // The peer gave up before we took it: nothing to wait for.
                Err(err) if is_connection_error(&err) => continue,
                Err(err) => {
                    self.failures += 1;
                    if self.warned.is_none_or(|(at, _)| at.elapsed() >= WARN_EVERY) {
                        tracing::warn!(
                            %err,
                            failures = self.failures,
                            "the {} cannot accept connections (out of file descriptors?); retrying with backoff up to {MAX_BACKOFF:?}",
                            self.what
                        );
                        self.warned = Some((Instant::now(), false));
                        self.failures = 0;
                    }
                    tokio::time::sleep(self.backoff).await;
                    self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }
}

/// Errors of the one connection being accepted, not of the listener (as
/// hyper's and tonic's accept loops tell them apart).
fn is_connection_error(err: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    matches!(err.kind(), ConnectionRefused | ConnectionAborted | ConnectionReset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_the_documented_ones() {
        let limits = FrontDoorLimits::default();
        assert_eq!(limits.keepalive_interval, Duration::from_secs(20));
        assert_eq!(limits.keepalive_timeout, Duration::from_secs(20));
        assert_eq!(limits.idle_timeout, Duration::from_secs(60));
        assert_eq!(limits.first_request_timeout, Duration::from_secs(10));
        assert_eq!(limits.stream_idle_timeout, Duration::from_secs(300));
        assert_eq!(limits.stall_timeout, Duration::from_secs(10));
        assert_eq!(limits.default_call_timeout, Duration::from_secs(3600));
        assert_eq!((limits.max_connections, limits.max_streams), (1024, 4096));
    }

    #[test]
    fn the_observer_port_has_a_sixteenth_of_the_connections_and_at_least_one() {
        assert_eq!(connection_shares(1024), (960, 64));
        assert_eq!(connection_shares(32), (30, 2));
        assert_eq!(connection_shares(16), (15, 1));
        assert_eq!(connection_shares(1), (1, 1));
    }

    #[test]
    fn only_the_connection_being_accepted_failing_is_retried_at_once() {
        let kind = |kind| std::io::Error::from(kind);
        assert!(is_connection_error(&kind(std::io::ErrorKind::ConnectionAborted)));
        assert!(!is_connection_error(&std::io::Error::from_raw_os_error(24)), "EMFILE");
    }
}
