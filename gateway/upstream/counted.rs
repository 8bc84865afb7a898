//! The gateway's tonic channels dial through this connector so that each
//! open connection is counted (the `connections` gauge of the summaries):
//! the count goes up when a TCP connection is made and down when the
//! channel drops it (closed, broken, or replaced by a reconnect).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::in_flight::{OpenConnections, OpenGuard};

/// A connection's I/O, counted in its [`OpenConnections`] while it lives.
pub(super) struct Counted {
    io: TcpStream,
    _open: OpenGuard,
}

/// Dials `address` (as tonic's own connector would, with TCP_NODELAY) and
/// counts each connection made in `open`.
pub(super) fn connector(
    address: String,
    open: OpenConnections,
) -> impl tower::Service<
    http::Uri,
    Response = TokioIo<Counted>,
    Error = io::Error,
    Future = impl std::future::Future<Output = io::Result<TokioIo<Counted>>> + Send,
> + Send
+ 'static {
    tower::service_fn(move |_uri: http::Uri| {
        let (address, open) = (address.clone(), open.clone());
        async move {
            let io = TcpStream::connect(address.as_str()).await?;
            io.set_nodelay(true)?;
            Ok(TokioIo::new(Counted {
                io,
                _open: open.opened(),
            }))
        }
    })
}

impl AsyncRead for Counted {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}
