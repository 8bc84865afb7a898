//! One HTTP/2 connection to an upstream, for every call the gateway sends
//! it (the gRPC ingress's, passed through without decoding; REST's and the
//! health checks', unary.rs), made when first needed and made again when it
//! closes.
//!
//! Written on the `h2` crate rather than a tonic `Channel` or hyper's client:
//! those hand every request to another task (tonic's buffer worker, hyper's
//! dispatch and a task per response) and add layers that rewrite the call
//! (tonic appends its own `user-agent`). Here the caller's task opens the
//! stream itself; that cut the ingress's CPU per call (bench/results.md).

use std::io;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use h2::SendStream;
use h2::client::{ResponseFuture, SendRequest};
use http::uri::Authority;
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::in_flight::OpenConnections;

/// Why a call could not be sent or answered on a connection.
#[derive(Debug, thiserror::Error)]
pub enum RawFailure {
    #[error("{0}")]
    Connect(io::Error),
    #[error("connecting took longer than {0:?}")]
    ConnectTimeout(Duration),
    #[error("{0}")]
    H2(#[from] h2::Error),
    /// The connect that calls waiting for it shared failed so.
    #[error("{0}")]
    Shared(Arc<RawFailure>),
}

impl RawFailure {
    /// Why the balancer skips the endpoint: the connection could not be made
    /// or broke under the call. `None` for a GOAWAY or a reset stream: the
    /// pod may well be fine.
    pub fn skip_reason(&self) -> Option<String> {
        match self {
            RawFailure::Connect(io) => Some(crate::io_reason::io_reason(io)),
            RawFailure::ConnectTimeout(_) => Some("connection timed out".to_owned()),
            RawFailure::H2(h2) => h2.get_io().map(crate::io_reason::io_reason),
            RawFailure::Shared(failure) => failure.skip_reason(),
        }
    }
}

/// A stream opened on the connection: the response to wait for and the
/// request body's sending half.
pub(crate) type Opened = (ResponseFuture, SendStream<Bytes>);

pub struct RawH2 {
    target: String,
    authority: Authority,
    connect_timeout: Duration,
    /// PING every `.0`, give up after `.1` without an answer.
    keepalive: (Duration, Duration),
    /// `None` before the first call and after the connection broke.
    live: ArcSwapOption<SendRequest<Bytes>>,
    /// One connect at a time: the calls that wait for it share its
    /// connection, or its failure (not one connect timeout after another).
    connecting: tokio::sync::Mutex<()>,
    /// The last connect's failure, and when it ended.
    failed: std::sync::Mutex<Option<(Instant, Arc<RawFailure>)>>,
    /// Connections open (each counted until its task ends).
    open: OpenConnections,
    /// Connections made so far: which one a reply came on.
    dialled: std::sync::atomic::AtomicU64,
    #[cfg(test)]
    dials: std::sync::atomic::AtomicUsize,
}

impl RawH2 {
    /// `target` is `host:port`; the error says why it is not one.
    pub fn new(target: &str, connect_timeout: Duration) -> Result<Self, String> {
        let authority: Authority = target.parse().map_err(|e: http::uri::InvalidUri| e.to_string())?;
        if authority.port_u16().is_none() {
            return Err(format!("{target:?} has no port"));
        }
        Ok(RawH2 {
            target: target.to_owned(),
            authority,
            connect_timeout,
            keepalive: (KEEPALIVE_INTERVAL, KEEPALIVE_TIMEOUT),
            live: ArcSwapOption::empty(),
            connecting: tokio::sync::Mutex::new(()),
            failed: std::sync::Mutex::new(None),
            open: OpenConnections::default(),
            dialled: std::sync::atomic::AtomicU64::new(0),
            #[cfg(test)]
            dials: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    /// Pings every `interval`; the connection is given up after `timeout`
    /// without an answer.
    pub fn with_keepalive(mut self, interval: Duration, timeout: Duration) -> Self {
        self.keepalive = (interval, timeout);
        self
    }

    /// Connections open to the upstream now (0 or 1; briefly 2 while an
    /// old one finishes its calls).
    pub fn connections(&self) -> u32 {
        self.open.count()
    }

    /// How many connections were made so far: a number that changes when
    /// the connection is made anew (through a Service: perhaps to another
    /// pod).
    pub fn dialled(&self) -> u64 {
        self.dialled.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The `:authority` calls on this connection carry (the upstream's, as a
    /// client dialling it would send).
    pub fn authority(&self) -> &Authority {
        &self.authority
    }

    /// Opens a stream for `request` (its head; `end_of_stream` when it has no
    /// body). A connection found closed is made again once, so a call is not
    /// failed for a connection that ended while idle (a GOAWAY at max age).
    pub async fn open(
        &self,
        request: impl Fn() -> http::Request<()>,
        end_of_stream: bool,
    ) -> Result<Opened, RawFailure> {
        let mut fresh = false;
        loop {
            let sender = match self.live.load_full() {
                Some(sender) => sender,
                None => {
                    fresh = true;
                    self.connect().await?
                }
            };
            let opened = async {
                let mut ready = SendRequest::clone(&sender).ready().await?;
                ready.send_request(request(), end_of_stream)
            }
            .await;
            match opened {
                Ok(opened) => return Ok(opened),
                Err(err) => {
                    self.discard(&sender);
                    if fresh {
                        return Err(err.into());
                    }
                    tracing::debug!(target = %self.target, %err, "an upstream connection had closed; making it again");
                }
            }
        }
    }

    /// The connection `broken` failed a call: the next call makes a new one
    /// (unless another call already did).
    fn discard(&self, broken: &Arc<SendRequest<Bytes>>) {
        let current = self.live.load();
        if current.as_ref().is_some_and(|c| Arc::ptr_eq(c, broken)) {
            self.live.compare_and_swap(&*current, None);
        }
    }

    async fn connect(&self) -> Result<Arc<SendRequest<Bytes>>, RawFailure> {
        let asked = Instant::now();
        let _one_at_a_time = self.connecting.lock().await;
        if let Some(sender) = self.live.load_full() {
            return Ok(sender);
        }
        let failed = self.failed.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some((at, failure)) = failed
            && at >= asked
        {
            return Err(RawFailure::Shared(failure));
        }
        self.dial().await.map_err(|failure| {
            let failure = Arc::new(failure);
            *self.failed.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), Arc::clone(&failure)));
            RawFailure::Shared(failure)
        })
    }

    async fn dial(&self) -> Result<Arc<SendRequest<Bytes>>, RawFailure> {
        #[cfg(test)]
        self.dials.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tcp = tokio::time::timeout(self.connect_timeout, TcpStream::connect(&self.target))
            .await
            .map_err(|_| RawFailure::ConnectTimeout(self.connect_timeout))?
            .map_err(RawFailure::Connect)?;
        // Small frames of many calls: do not wait to coalesce them.
        tcp.set_nodelay(true).map_err(RawFailure::Connect)?;
        let (sender, connection) = h2::client::Builder::new()
            // One stream's window a 256th of the connection's, so calls whose
            // clients stop reading pin a small share of the window every
            // other call on the connection shares (sticky mode puts all on
            // one); 256 KiB still fills a cluster's round trip.
            .initial_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .max_send_buffer_size(STREAM_WINDOW as usize)
            // The peer is our own greet-server, trusted: a storm of
            // downstream cancels must not make the client give the shared
            // connection up (h2's lifetime count of 1,024 local resets), and
            // frames still arriving for streams the gateway reset must meet a
            // remembered stream, not a protocol error.
            .max_local_error_reset_streams(None)
            .max_concurrent_reset_streams(MAX_CONCURRENT_RESET_STREAMS)
            .reset_stream_duration(RESET_STREAM_DURATION)
            .handshake::<_, Bytes>(greet_runtime::write_batch::WriteBatch::new(tcp))
            .await?;
        let target = self.target.clone();
        let keepalive_every = self.keepalive;
        let open = self.open.opened();
        tokio::spawn(async move {
            let _open = open;
            let mut connection = connection;
            let (interval, timeout) = keepalive_every;
            let keepalive = crate::keepalive::keepalive(connection.ping_pong(), interval, timeout);
            tokio::select! {
                // Polled at every frame of every call on it: no random start
                // drawn each time, the connection first.
                biased;
                ended = &mut connection => if let Err(err) = ended {
                    tracing::debug!(%target, %err, "an upstream connection ended");
                },
                () = keepalive => {
                    // Dropping the connection fails its calls (UNAVAILABLE):
                    // better than waiting on a peer that is gone.
                    tracing::warn!(%target, "an upstream connection answered no PING within {timeout:?}: closed");
                }
            }
        });
        let sender = Arc::new(sender);
        self.dialled.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        self.live.store(Some(Arc::clone(&sender)));
        Ok(sender)
    }
}

/// An upstream stream's flow-control window, and its connection's.
const STREAM_WINDOW: u32 = 256 * 1024;
const CONNECTION_WINDOW: u32 = 64 * 1024 * 1024;
/// Streams the gateway reset, remembered this long (h2: 50 for 1 s).
const MAX_CONCURRENT_RESET_STREAMS: usize = 1024;
const RESET_STREAM_DURATION: Duration = Duration::from_secs(5);

/// As the gateway's other connections (tonic's keepalive): a PING every
/// 30 s, and the connection is given up when 20 s pass without its answer,
/// so a pod that vanished without a reset does not hold calls forever.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_needs_a_host_and_a_port() {
        let ok = RawH2::new("greetserver:50051", Duration::from_secs(1)).unwrap();
        assert_eq!(ok.authority().as_str(), "greetserver:50051");
        assert_eq!(
            RawH2::new("greetserver", Duration::from_secs(1)).err().unwrap(),
            "\"greetserver\" has no port"
        );
        assert!(RawH2::new("bad host:1", Duration::from_secs(1)).is_err());
    }

    #[tokio::test]
    async fn a_refused_connect_is_an_io_failure() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let target = listener.local_addr().unwrap().to_string();
        drop(listener);
        let raw = RawH2::new(&target, Duration::from_secs(1)).unwrap();
        let failure = raw.open(|| http::Request::new(()), true).await.err().unwrap();
        assert_eq!(failure.skip_reason().as_deref(), Some("connection refused"));
    }

    #[tokio::test]
    async fn a_peer_that_stops_answering_pings_fails_the_calls_waiting_on_it() {
        // An HTTP/2 server that completes its handshake, then never reads again.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target = listener.local_addr().unwrap().to_string();
        let (frozen_tx, frozen_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut connection = h2::server::handshake(tcp).await.unwrap();
            // Takes the client's first stream, so its request is on the wire.
            let _call = connection.accept().await;
            let _ = frozen_tx.send(connection);
        });
        let raw = RawH2::new(&target, Duration::from_secs(1))
            .unwrap()
            .with_keepalive(Duration::from_millis(100), Duration::from_millis(100));
        let request = || {
            let mut request = http::Request::new(());
            *request.uri_mut() = format!("http://{target}/greet.GreetService/Greet").parse().unwrap();
            request
        };
        let (response, _body) = raw.open(request, true).await.unwrap();
        let _server = frozen_rx.await.unwrap();
        let failed = tokio::time::timeout(Duration::from_secs(5), response)
            .await
            .expect("the keepalive must give the connection up within about 200 ms");
        assert!(failed.is_err(), "no answer can come from a frozen peer: {failed:?}");
    }

    #[tokio::test]
    async fn calls_waiting_on_a_failing_connect_share_its_failure() {
        // A listener whose accept queue is full drops new SYNs: each dial
        // waits for its timeout, as one to a vanished node does.
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(0).unwrap();
        let target = listener.local_addr().unwrap();
        let mut queued = Vec::new();
        for _ in 0..2 {
            if let Ok(Ok(tcp)) = tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(target)).await {
                queued.push(tcp);
            }
        }
        let raw = Arc::new(RawH2::new(&target.to_string(), Duration::from_millis(300)).unwrap());
        let calls: Vec<_> = (0..5)
            .map(|_| {
                let raw = Arc::clone(&raw);
                tokio::spawn(async move { raw.open(|| http::Request::new(()), true).await.err() })
            })
            .collect();
        for call in calls {
            let failure = call.await.unwrap().expect("no connection can be made");
            assert_eq!(failure.to_string(), "connecting took longer than 300ms");
            assert_eq!(failure.skip_reason().as_deref(), Some("connection timed out"));
        }
        assert_eq!(
            raw.dials.load(std::sync::atomic::Ordering::Relaxed),
            1,
            "one dial for the 5 calls"
        );
        drop((listener, queued));
    }
}
