//! One socket write for the frames of many calls.
//!
//! h2 flushes each time its connection task runs with frames to send, and
//! under tokio that task runs right after each call's task that woke it:
//! the gateway made close to two `writev`s a call (one per side), each a
//! trip through the kernel's TCP stack. `WriteBatch` holds what h2 writes
//! and, on the first flush, lets the other ready tasks run once (a yield)
//! before one write of everything gathered by then. greet-server's and the
//! gateway's HTTP/2 connections (both sides) run over it.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Past this much gathered, writes go out without waiting for the flush:
/// a bound on the copy, and what one `write` to a socket takes in at once.
const GATHER_LIMIT: usize = 64 * 1024;

/// Kept between batches at most this much: an idle connection should not
/// hold the largest batch it ever wrote.
const RETAINED: usize = 16 * 1024;

/// A stream whose writes are gathered until a flush, and a flush that
/// yields once first.
pub struct WriteBatch<T> {
    io: T,
    gathered: BytesMut,
    /// Whether this flush already yielded: the next one writes.
    yielded: bool,
}

impl<T> WriteBatch<T> {
    /// `io`, its writes gathered from now on.
    pub fn new(io: T) -> Self {
        WriteBatch {
            io,
            gathered: BytesMut::new(),
            yielded: false,
        }
    }

    /// The stream underneath (its addresses, say).
    pub fn get_ref(&self) -> &T {
        &self.io
    }
}

impl<T: AsyncWrite + Unpin> WriteBatch<T> {
    /// Writes out all that is gathered.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.gathered.is_empty() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.gathered))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.gathered.advance(n);
        }
        if self.gathered.capacity() > RETAINED {
            self.gathered = BytesMut::new();
        }
        Poll::Ready(Ok(()))
    }

    /// Room for more: drains first when the gathered bytes reach the limit.
    fn poll_room(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.gathered.len() >= GATHER_LIMIT {
            ready!(self.poll_drain(cx))?;
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WriteBatch<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WriteBatch<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        ready!(self.poll_room(cx))?;
        self.gathered.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_room(cx))?;
        let mut written = 0;
        for buf in bufs {
            self.gathered.extend_from_slice(buf);
            written += buf.len();
        }
        Poll::Ready(Ok(written))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.gathered.is_empty() && !self.yielded {
            // Woken while it runs, the task goes to the back of the run
            // queue: the calls ready now add their frames before the write.
            self.yielded = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        ready!(self.poll_drain(cx))?;
        self.yielded = false;
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_drain(cx))?;
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests;
