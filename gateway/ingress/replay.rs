//! A request body that can be sent again: every frame passed upstream is
//! kept while the total stays small ([`LIMIT`]), so a call that failed
//! before any response byte can be retried with exactly what was sent, the
//! rest of the client's body following as it comes. Once more was sent than
//! was kept, or a response began, it cannot be retried.

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame};

/// The most request bytes kept for a retry.
pub(super) const LIMIT: usize = 64 * 1024;

/// A kept frame: message bytes or the client's trailers.
#[derive(Clone)]
enum Kept {
    Data(Bytes),
    Trailers(HeaderMap),
}

impl Kept {
    fn frame(&self) -> Frame<Bytes> {
        match self {
            Kept::Data(data) => Frame::data(data.clone()),
            Kept::Trailers(trailers) => Frame::trailers(trailers.clone()),
        }
    }
}

struct Shared<S> {
    source: S,
    kept: Vec<Kept>,
    kept_bytes: usize,
    /// More was sent than kept, or a response began: no retry any more.
    spent: bool,
    /// The client's body ended.
    ended: bool,
    /// Which attempt's body may read on; an older attempt's gets nothing more.
    attempt: u32,
}

/// The client's request body, shared by the attempts of one call.
pub(super) struct Replay<S>(Arc<Mutex<Shared<S>>>);

impl<S> Clone for Replay<S> {
    fn clone(&self) -> Self {
        Replay(Arc::clone(&self.0))
    }
}

impl<S: Body<Data = Bytes> + Unpin> Replay<S> {
    pub(super) fn new(source: S) -> Self {
        Replay(Arc::new(Mutex::new(Shared {
            source,
            kept: Vec::new(),
            kept_bytes: 0,
            spent: false,
            ended: false,
            attempt: 0,
        })))
    }

    fn lock(&self) -> MutexGuard<'_, Shared<S>> {
        // Every update leaves the state whole: a panic elsewhere cannot break it.
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The body of the next attempt: what was sent so far, then the rest.
    /// Older attempts' bodies end.
    pub(super) fn attempt(&self) -> AttemptBody<S> {
        let mut shared = self.lock();
        shared.attempt += 1;
        AttemptBody {
            replay: self.clone(),
            attempt: shared.attempt,
            position: 0,
        }
    }

    /// Whether everything sent so far was kept (a retry sends it again).
    pub(super) fn can_retry(&self) -> bool {
        !self.lock().spent
    }

    /// Whether the client's whole request was received and kept: a call that
    /// waits too long for an answer can be sent elsewhere entire.
    pub(super) fn is_whole(&self) -> bool {
        let shared = self.lock();
        shared.ended && !shared.spent
    }

    /// A response began: never retried now, so nothing more is kept.
    /// What was kept is still sent in full by the attempt that is replaying
    /// it (a response may begin before its body is all sent: a bidi stream),
    /// then freed.
    pub(super) fn response_began(&self) {
        self.lock().spent = true;
    }
}

/// One attempt's view of the request body.
pub(super) struct AttemptBody<S> {
    replay: Replay<S>,
    attempt: u32,
    /// The next kept frame to send.
    position: usize,
}

impl<S: Body<Data = Bytes> + Unpin> Body for AttemptBody<S> {
    type Data = Bytes;
    type Error = S::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, S::Error>>> {
        // Borrowed, not cloned: no reference count moved at each poll.
        let this = &mut *self;
        let mut shared = this.replay.lock();
        if shared.attempt != this.attempt {
            return Poll::Ready(None);
        }
        if let Some(kept) = shared.kept.get(this.position) {
            let frame = kept.frame();
            this.position += 1;
            if shared.spent && this.position == shared.kept.len() {
                // Sent again in full, and never needed after.
                shared.kept = Vec::new();
                this.position = 0;
            }
            return Poll::Ready(Some(Ok(frame)));
        }
        if shared.ended {
            return Poll::Ready(None);
        }
        let frame = loop {
            match Pin::new(&mut shared.source).poll_frame(cx) {
                // An empty DATA frame carries nothing, and a peer counts them:
                // h2 closes a connection after 100 (ENHANCE_YOUR_CALM).
                Poll::Ready(Some(Ok(frame))) if frame.data_ref().is_some_and(Bytes::is_empty) => {}
                Poll::Ready(Some(Ok(frame))) => break frame,
                Poll::Ready(None) => {
                    shared.ended = true;
                    return Poll::Ready(None);
                }
                other => return other,
            }
        };
        if !shared.spent {
            let kept = match frame.data_ref() {
                Some(data) => Kept::Data(data.clone()),
                None => Kept::Trailers(frame.trailers_ref().cloned().unwrap_or_default()),
            };
            shared.kept_bytes += frame.data_ref().map_or(0, Bytes::len);
            if shared.kept_bytes > LIMIT {
                shared.spent = true;
                shared.kept = Vec::new();
            } else {
                shared.kept.push(kept);
                this.position += 1;
            }
        }
        Poll::Ready(Some(Ok(frame)))
    }

    /// Told, hyper ends the upstream stream with the last DATA frame (no
    /// empty one after it) and sends a unary call's body without a task of
    /// its own.
    fn is_end_stream(&self) -> bool {
        let shared = self.replay.lock();
        shared.attempt != self.attempt
            || (self.position >= shared.kept.len() && (shared.ended || shared.source.is_end_stream()))
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    type Full = http_body_util::Full<Bytes>;

    async fn collect(body: AttemptBody<Full>) -> Vec<u8> {
        body.collect().await.unwrap().to_bytes().to_vec()
    }

    #[tokio::test]
    async fn a_retry_sends_what_was_sent_then_the_rest() {
        let replay = Replay::new(Full::from("hello"));
        assert_eq!(collect(replay.attempt()).await, b"hello");
        assert!(replay.can_retry());
        assert_eq!(collect(replay.attempt()).await, b"hello", "the whole body again");
        replay.response_began();
        assert!(!replay.can_retry());
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_not_retried_and_an_old_attempt_ends() {
        let big = vec![7u8; LIMIT + 1];
        let replay = Replay::new(Full::from(big.clone()));
        let first = replay.attempt();
        let second = replay.attempt();
        assert_eq!(collect(first).await, b"", "superseded");
        assert_eq!(collect(second).await, big);
        assert!(!replay.can_retry());
    }

    #[tokio::test]
    async fn a_response_beginning_while_a_retry_replays_cuts_nothing() {
        let (frames, received) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::convert::Infallible>>(4);
        let source = http_body_util::StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(received));
        let replay = Replay::new(source);
        let data = |text: &'static str| Ok(Frame::data(Bytes::from_static(text.as_bytes())));
        let next = |body: &mut AttemptBody<_>| {
            let frame = futures_util::FutureExt::now_or_never(body.frame());
            frame.map(|f| f.map(|f| f.unwrap().into_data().unwrap()))
        };
        frames.send(data("a")).await.unwrap();
        frames.send(data("b")).await.unwrap();
        let mut first = replay.attempt();
        assert_eq!(next(&mut first), Some(Some(Bytes::from("a"))));
        assert_eq!(next(&mut first), Some(Some(Bytes::from("b"))));
        // The first attempt failed; the retry replays, and its response begins midway.
        let mut retry = replay.attempt();
        assert_eq!(next(&mut retry), Some(Some(Bytes::from("a"))));
        replay.response_began();
        assert_eq!(
            next(&mut retry),
            Some(Some(Bytes::from("b"))),
            "the rest of what was kept"
        );
        assert_eq!(next(&mut retry), None, "then the client's next frame, not yet sent");
        frames.send(data("c")).await.unwrap();
        drop(frames);
        assert_eq!(next(&mut retry), Some(Some(Bytes::from("c"))));
        assert_eq!(next(&mut retry), Some(None));
        assert!(!replay.can_retry());
    }
}
