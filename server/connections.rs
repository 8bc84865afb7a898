//! greet-server's accept loop. tonic's builder fixes the max connection age
//! when the server starts; to change it at run time every connection is
//! served by tonic on its own (the same HTTP/2 settings and layers as
//! before) with a shutdown signal of its own: its GOAWAY (hyper's graceful
//! shutdown: in-flight calls finish) when it reaches the age as it is then,
//! or when the server drains.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::stream::{self, StreamExt};
use greet_runtime::write_batch::WriteBatch;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, DropGuard, WaitForCancellationFutureOwned};

use super::clients::{ClientGuard, Clients};
use super::connection_age::{Jitter, MaxConnectionAge};

/// One accepted connection as tonic serves it: a stream that yields it and
/// then nothing (never ends: an ended stream would make tonic shut the
/// connection down at once).
pub(super) type OneConnection =
    stream::Chain<stream::Iter<std::option::IntoIter<io::Result<Connection>>>, stream::Pending<io::Result<Connection>>>;

/// How long to wait after an accept error that is not one connection's
/// (out of file descriptors): retrying at once would spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Accepts on `listener` until `stop`, each connection served by
/// `serve_one` until its signal (the max connection age as `age` says,
/// `stop`) and the end of its calls, and counted in `clients` while open.
/// After `stop` it refuses new connections at once and returns when every
/// connection has closed.
pub(super) async fn serve<F, Fut>(
    listener: TcpListener,
    age: MaxConnectionAge,
    clients: Clients,
    stop: CancellationToken,
    serve_one: F,
) -> anyhow::Result<()>
where
    F: Fn(OneConnection, WaitForCancellationFutureOwned) -> Fut,
    Fut: Future<Output = Result<(), tonic::transport::Error>> + Send + 'static,
{
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => break,
            // Reaps the connections that closed.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                let (io, closed) = Connection::new(stream, clients.connected(peer.ip()));
                let closing = CancellationToken::new();
                let served = serve_one(
                    stream::iter(Some(Ok(io))).chain(stream::pending()),
                    closing.clone().cancelled_owned(),
                );
                connections.spawn(until_closed(served, closing, closed, age.clone(), stop.clone()));
            }
            // One connection's trouble (it was reset or aborted before we
            // took it): the next one is taken at once, as tonic does.
            Err(err) if one_connections(&err) => {
                tracing::debug!("greet-server: a connection went before it was accepted: {err}");
            }
            Err(err) => {
                // Out of descriptors or the like: wait, or spin at 100 % CPU.
                tracing::warn!("greet-server: accepting a connection failed: {err}");
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep(ACCEPT_BACKOFF) => {}
                }
            }
        }
    }
    // Closes the listening socket now: new clients are refused, not left hanging.
    drop(listener);
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// Whether an accept error is about the one connection being accepted
/// (tonic's list), not the listener.
fn one_connections(err: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        err.kind(),
        ConnectionAborted | ConnectionReset | BrokenPipe | Interrupted | WouldBlock | TimedOut
    )
}

/// Runs one connection's server; signals it (`closing`) when the connection
/// reaches its age, or the server stops, or the connection closed by itself
/// (`closed`: then the signal only lets its server end).
async fn until_closed(
    served: impl Future<Output = Result<(), tonic::transport::Error>>,
    closing: CancellationToken,
    closed: CancellationToken,
    age: MaxConnectionAge,
    stop: CancellationToken,
) {
    let (start, jitter) = (Instant::now(), Jitter::random());
    let signal = async {
        let aged = tokio::select! {
            () = age.reached(start, jitter) => {
                tracing::debug!(age = ?age.get(), "greet-server: a connection reached its max age; GOAWAY");
                Some(age.closing_guard())
            }
            () = stop.cancelled() => None,
            () = closed.cancelled() => None,
        };
        closing.cancel();
        aged
    };
    // The guard counts the aged connection as closing until it has closed.
    let (result, _aged) = tokio::join!(served, signal);
    if let Err(err) = result {
        tracing::debug!("greet-server: serving a connection failed: {err}");
    }
}

/// An accepted TCP connection that says when it is dropped (its HTTP/2
/// connection ended), counted among the server's clients until then.
pub(super) struct Connection {
    stream: WriteBatch<TcpStream>,
    _closed: DropGuard,
    _client: ClientGuard,
}

impl Connection {
    /// The connection, and the token its drop cancels.
    fn new(stream: TcpStream, client: ClientGuard) -> (Connection, CancellationToken) {
        let closed = CancellationToken::new();
        let connection = Connection {
            stream: WriteBatch::new(stream),
            _closed: closed.clone().drop_guard(),
            _client: client,
        };
        (connection, closed)
    }
}

impl tonic::transport::server::Connected for Connection {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.stream.get_ref().connect_info()
    }
}

impl AsyncRead for Connection {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Connection {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::io::AsyncReadExt;
    use tokio::sync::mpsc;

    use super::*;

    /// Serves with a stand-in for tonic that reads its connection until the
    /// client closes it or its signal comes, reports how long after the
    /// accept that was and whether the client was still there, and after a
    /// signal keeps the connection until the client closes it.
    async fn start(
        age: MaxConnectionAge,
    ) -> (
        std::net::SocketAddr,
        CancellationToken,
        mpsc::UnboundedReceiver<(Duration, bool)>,
        tokio::task::JoinHandle<anyhow::Result<()>>,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let (report, reports) = mpsc::unbounded_channel();
        let report = Arc::new(report);
        let server = tokio::spawn(serve(
            listener,
            age,
            Clients::default(),
            stop.clone(),
            move |mut incoming, signal| {
                let report = Arc::clone(&report);
                async move {
                    let accepted = Instant::now();
                    let Some(Ok(mut io)) = incoming.next().await else {
                        return Ok(());
                    };
                    let mut signal = std::pin::pin!(signal);
                    let mut buf = [0u8; 16];
                    let client_open = loop {
                        tokio::select! {
                            read = io.stream.read(&mut buf) => if matches!(read, Ok(0) | Err(_)) {
                                break false;
                            },
                            () = &mut signal => break true,
                        }
                    };
                    let _ = report.send((accepted.elapsed(), client_open));
                    if client_open {
                        // As hyper after its GOAWAY: open until the client closes it.
                        while matches!(io.stream.read(&mut buf).await, Ok(n) if n > 0) {}
                    } else {
                        drop(io);
                        signal.await;
                    }
                    Ok(())
                }
            },
        ));
        (addr, stop, reports, server)
    }

    #[tokio::test]
    async fn a_connection_its_client_closed_ends_without_a_signal_from_outside() {
        let (addr, stop, mut reports, server) = start(MaxConnectionAge::default()).await;
        drop(TcpStream::connect(addr).await.unwrap());
        let (_, client_open) = reports.recv().await.unwrap();
        assert!(!client_open);
        stop.cancel();
        server.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn an_age_set_while_connected_signals_the_connection_when_it_is_that_old() {
        let age = MaxConnectionAge::default();
        let (addr, stop, mut reports, server) = start(age.clone()).await;
        let client = TcpStream::connect(addr).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(reports.try_recv().is_err(), "no age: no signal");
        age.set(Some(Duration::from_millis(300)));
        let (after, client_open) = reports.recv().await.unwrap();
        assert!(client_open);
        // 300 ms ± 10 %, from the accept.
        assert!(
            after >= Duration::from_millis(270) && after < Duration::from_millis(600),
            "{after:?}"
        );
        assert_eq!(age.closing(), 1, "GOAWAY sent, the client still connected");
        drop(client);
        while age.closing() > 0 {
            tokio::task::yield_now().await;
        }
        stop.cancel();
        server.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn stop_signals_every_connection_and_waits_for_them() {
        let (addr, stop, mut reports, server) = start(MaxConnectionAge::default()).await;
        let clients = (
            TcpStream::connect(addr).await.unwrap(),
            TcpStream::connect(addr).await.unwrap(),
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        stop.cancel();
        for _ in 0..2 {
            assert!(reports.recv().await.unwrap().1, "signalled while the client was open");
        }
        assert!(!server.is_finished(), "it waits for its connections to close");
        drop(clients);
        server.await.unwrap().unwrap();
        assert!(TcpStream::connect(addr).await.is_err(), "the listener is closed");
    }
}
