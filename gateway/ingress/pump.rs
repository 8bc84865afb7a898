//! Bodies between HTTP/2 streams: a received stream read as a body
//! ([`Received`]), and a body sent on a stream ([`Pump`]) as it comes, within
//! the peer's flow-control window. The request goes client → upstream and
//! the response upstream → client through the same two pieces.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use h2::{RecvStream, SendStream};
use http::HeaderMap;
use http_body::{Body, Frame};
use tokio::time::{Instant, Sleep};

/// When a call last moved a frame, either way: its bodies mark it, and
/// [`Progress::idle_for`] waits until it has not moved for a while.
#[derive(Clone, Debug)]
pub(super) struct Progress {
    since: Instant,
    /// Milliseconds after `since` of the last frame.
    last: Arc<AtomicU64>,
}

impl Progress {
    pub(super) fn new() -> Self {
        Progress {
            since: Instant::now(),
            last: Arc::new(AtomicU64::new(0)),
        }
    }

    fn mark(&self) {
        let millis = u64::try_from(self.since.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(millis, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.since + Duration::from_millis(self.last.load(Ordering::Relaxed))
    }

    /// Ends once no frame moved for `limit` (never when `limit` is zero).
    pub(super) async fn idle_for(&self, limit: Duration) {
        if limit.is_zero() {
            return std::future::pending().await;
        }
        loop {
            let last = self.last();
            tokio::time::sleep_until(last + limit).await;
            if self.last() == last {
                return;
            }
        }
    }
}

/// A received stream as a body: DATA frames then trailers. Each frame's
/// bytes are released to the sender's window once read, so the peer sends
/// only as fast as the other side takes them.
pub(super) struct Received {
    stream: RecvStream,
    /// Every DATA frame was read: the trailers are next.
    data_done: bool,
    progress: Option<Progress>,
}

impl Received {
    pub(super) fn new(stream: RecvStream) -> Self {
        Received {
            stream,
            data_done: false,
            progress: None,
        }
    }

    /// Each frame read marks `progress`.
    pub(super) fn watched(mut self, progress: Progress) -> Self {
        self.progress = Some(progress);
        self
    }
}

impl Body for Received {
    type Data = Bytes;
    type Error = h2::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, h2::Error>>> {
        let this = &mut *self;
        while !this.data_done {
            match ready!(this.stream.poll_data(cx)) {
                Some(Ok(data)) => {
                    // An error means the stream is gone: the next poll says so.
                    let _ = this.stream.flow_control().release_capacity(data.len());
                    if let Some(progress) = &this.progress {
                        progress.mark();
                    }
                    // Nothing to pass on, and h2 peers count empty DATA
                    // frames: h2 closes a connection after 100 of them.
                    if !data.is_empty() {
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                }
                Some(Err(err)) => return Poll::Ready(Some(Err(err))),
                None => this.data_done = true,
            }
        }
        match ready!(this.stream.poll_trailers(cx)) {
            Ok(Some(trailers)) => Poll::Ready(Some(Ok(Frame::trailers(trailers)))),
            Ok(None) => Poll::Ready(None),
            Err(err) => Poll::Ready(Some(Err(err))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.stream.is_end_stream()
    }
}

/// Sends a body on a stream until the body ends, fails (the stream is reset
/// then: it must not look complete), the peer resets the stream, or the
/// call it belongs to is given up (the stream is reset then too).
pub(super) struct Pump<B> {
    body: B,
    stream: SendStream<Bytes>,
    progress: Option<Progress>,
    /// How long the peer may keep the window shut before the stream is
    /// reset, and the timer running while it is shut.
    stall_after: Option<Duration>,
    stalled: Option<Pin<Box<Sleep>>>,
    /// What the body gave after the DATA being coalesced, to send next.
    held: Option<Held>,
}

/// A body's next frame that is not DATA.
enum Held {
    Trailers(HeaderMap),
    End,
    Failed(String),
}

/// DATA frames already received are sent on as one, up to this size: a
/// client's burst of small frames (one byte each, say) costs the shared
/// upstream connection a frame per burst, not one per frame.
const COALESCE_UP_TO: usize = 16 * 1024;

impl<B> Pump<B>
where
    B: Body<Data = Bytes> + Unpin + Send + 'static,
    B::Error: std::fmt::Display,
{
    pub(super) fn new(body: B, stream: SendStream<Bytes>) -> Self {
        Pump {
            body,
            stream,
            progress: None,
            stall_after: None,
            stalled: None,
            held: None,
        }
    }

    /// Each frame sent marks `progress`.
    pub(super) fn watched(mut self, progress: Progress) -> Self {
        self.progress = Some(progress);
        self
    }

    /// A peer that gives the stream no window for `limit` gets it reset
    /// (CANCEL): the body then drops, and with it what it holds upstream.
    pub(super) fn stall_after(mut self, limit: Duration) -> Self {
        self.stall_after = Some(limit);
        self
    }

    /// `data` and the DATA frames the body already has after it, as one,
    /// up to [`COALESCE_UP_TO`]; a frame of another kind (trailers, the end,
    /// an error) is held for the next turn.
    fn coalesce(&mut self, data: Bytes, cx: &mut Context<'_>) -> Bytes {
        let mut merged: Option<BytesMut> = None;
        while merged.as_ref().map_or(data.len(), BytesMut::len) < COALESCE_UP_TO && !self.body.is_end_stream() {
            match Pin::new(&mut self.body).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(more) => merged
                        .get_or_insert_with(|| BytesMut::from(&data[..]))
                        .extend_from_slice(&more),
                    Err(other) => {
                        // Only trailers are not DATA in an HTTP/2 body.
                        if let Ok(trailers) = other.into_trailers() {
                            self.held = Some(Held::Trailers(trailers));
                        }
                        break;
                    }
                },
                Poll::Ready(Some(Err(err))) => {
                    self.held = Some(Held::Failed(err.to_string()));
                    break;
                }
                Poll::Ready(None) => {
                    self.held = Some(Held::End);
                    break;
                }
                Poll::Pending => break,
            }
        }
        merged.map_or(data, BytesMut::freeze)
    }

    /// Pending while the window is shut; ready (the stream reset) once it
    /// has been shut for the stall limit.
    fn poll_stall(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(limit) = self.stall_after else {
            return Poll::Pending;
        };
        let timer = self.stalled.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        ready!(timer.as_mut().poll(cx));
        tracing::debug!("a client gave a call's response no window for {limit:?}: reset");
        self.stream.send_reset(h2::Reason::CANCEL);
        Poll::Ready(())
    }

    /// Resets the stream (CANCEL): the call gave the body up.
    pub(super) fn reset(&mut self) {
        self.stream.send_reset(h2::Reason::CANCEL);
    }

    /// Waits for room for at least one byte (h2 keeps one frame beyond the
    /// window, so a body cannot pile up in the gateway).
    fn poll_room(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), h2::Error>> {
        self.stream.reserve_capacity(1);
        while self.stream.capacity() == 0 {
            match ready!(self.stream.poll_capacity(cx)) {
                Some(Ok(_)) => {}
                Some(Err(err)) => return Poll::Ready(Err(err)),
                None => return Poll::Ready(Err(h2::Error::from(h2::Reason::CANCEL))),
            }
        }
        Poll::Ready(Ok(()))
    }

    fn send_trailers(&mut self, trailers: HeaderMap) -> Result<(), h2::Error> {
        self.stream.send_trailers(trailers)
    }

    /// Ends the stream now with the trailers `end` makes of the body (sent
    /// even with the window shut: HEADERS frames are not flow-controlled).
    pub(super) fn end_with(mut self, end: impl FnOnce(&mut B) -> HeaderMap) {
        let trailers = end(&mut self.body);
        if let Err(err) = self.send_trailers(trailers) {
            tracing::debug!(%err, "could not end a call's stream");
        }
    }
}

impl<B> Future for Pump<B>
where
    B: Body<Data = Bytes> + Unpin + Send + 'static,
    B::Error: std::fmt::Display,
{
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        loop {
            match this.poll_room(cx) {
                Poll::Ready(Ok(())) => this.stalled = None,
                Poll::Ready(Err(err)) => {
                    tracing::debug!(%err, "a stream stopped taking a call's body");
                    return Poll::Ready(());
                }
                Poll::Pending => return this.poll_stall(cx),
            }
            let polled = match this.held.take() {
                Some(Held::End) => Poll::Ready(None),
                Some(Held::Trailers(trailers)) => Poll::Ready(Some(Ok(Frame::trailers(trailers)))),
                Some(Held::Failed(err)) => {
                    tracing::debug!(%err, "a call's body failed");
                    this.stream.send_reset(h2::Reason::CANCEL);
                    return Poll::Ready(());
                }
                None => Pin::new(&mut this.body).poll_frame(cx),
            };
            let frame = match polled {
                Poll::Ready(frame) => frame,
                Poll::Pending => {
                    // The peer may end the stream while the body is silent
                    // (an upstream that answered early, a client that left).
                    if let Poll::Ready(reason) = this.stream.poll_reset(cx) {
                        tracing::debug!(?reason, "a call's stream was reset while its body was coming");
                        return Poll::Ready(());
                    }
                    return Poll::Pending;
                }
            };
            let sent = match frame {
                None => this.stream.send_data(Bytes::new(), true),
                Some(Err(err)) => {
                    tracing::debug!(%err, "a call's body failed");
                    this.stream.send_reset(h2::Reason::CANCEL);
                    return Poll::Ready(());
                }
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => {
                        if let Some(progress) = &this.progress {
                            progress.mark();
                        }
                        let data = this.coalesce(data, cx);
                        let end = match this.held {
                            Some(Held::End) => {
                                this.held = None;
                                true
                            }
                            Some(_) => false,
                            None => this.body.is_end_stream(),
                        };
                        let sent = this.stream.send_data(data, end);
                        if !end && sent.is_ok() {
                            continue;
                        }
                        sent
                    }
                    Err(frame) => match frame.into_trailers() {
                        Ok(trailers) => this.send_trailers(trailers),
                        Err(_) => continue,
                    },
                },
            };
            if let Err(err) = sent {
                tracing::debug!(%err, "could not send a call's body on its stream");
            }
            return Poll::Ready(());
        }
    }
}

#[cfg(test)]
mod tests;
