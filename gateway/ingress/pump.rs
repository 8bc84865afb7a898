//! The request body's way upstream: frames from the client's body into the
//! upstream stream as they come, within the upstream's flow-control window.
//!
//! A unary call's body is usually whole by the time the call is forwarded:
//! then it is sent right away, in the caller's task; only a body still to
//! come (a client stream) gets a task of its own.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use h2::SendStream;
use http_body::Body;

use super::replay::AttemptBody;

/// Sends `body` on `upstream`: now if it is all there, else from a task
/// that ends with the body, the upstream's reset of the stream or the
/// client's (its body then fails).
pub(super) fn start(body: AttemptBody, upstream: SendStream<Bytes>) {
    let mut pump = Box::pin(Pump { body, upstream });
    let waker = std::task::Waker::noop();
    if pump.as_mut().poll(&mut Context::from_waker(waker)).is_pending() {
        tokio::spawn(pump);
    }
}

struct Pump {
    body: AttemptBody,
    upstream: SendStream<Bytes>,
}

impl Pump {
    /// Waits for room for at least one byte upstream (h2 keeps one frame
    /// beyond the window, so a body cannot pile up in the gateway).
    fn poll_room(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), h2::Error>> {
        self.upstream.reserve_capacity(1);
        while self.upstream.capacity() == 0 {
            match ready!(self.upstream.poll_capacity(cx)) {
                Some(Ok(_)) => {}
                Some(Err(err)) => return Poll::Ready(Err(err)),
                None => return Poll::Ready(Err(h2::Error::from(h2::Reason::CANCEL))),
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl Future for Pump {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        loop {
            if let Err(err) = ready!(this.poll_room(cx)) {
                tracing::debug!(%err, "the upstream stopped taking a call's request body");
                return Poll::Ready(());
            }
            let frame = match Pin::new(&mut this.body).poll_frame(cx) {
                Poll::Ready(frame) => frame,
                Poll::Pending => {
                    // The upstream may end the stream while the client is
                    // still silent (it answered early): stop waiting then.
                    if let Poll::Ready(reason) = this.upstream.poll_reset(cx) {
                        tracing::debug!(?reason, "the upstream reset a call while its request body was coming");
                        return Poll::Ready(());
                    }
                    return Poll::Pending;
                }
            };
            let sent = match frame {
                None => this.upstream.send_data(Bytes::new(), true),
                Some(Err(err)) => {
                    // The client's stream broke: the upstream's must not
                    // look complete.
                    tracing::debug!(%err, "a call's request body failed");
                    this.upstream.send_reset(h2::Reason::CANCEL);
                    return Poll::Ready(());
                }
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => {
                        let end = this.body.is_end_stream();
                        let sent = this.upstream.send_data(data, end);
                        if end || sent.is_err() {
                            return Poll::Ready(());
                        }
                        continue;
                    }
                    Err(frame) => match frame.into_trailers() {
                        Ok(trailers) => this.upstream.send_trailers(trailers),
                        Err(_) => continue,
                    },
                },
            };
            if let Err(err) = sent {
                tracing::debug!(%err, "could not end a call's request body upstream");
            }
            return Poll::Ready(());
        }
    }
}
