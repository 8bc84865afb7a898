//! One forwarded call's end: the response body passed through frame by frame
//! until the upstream's trailers, the deadline or the client's cancel, when
//! it finishes the call's one outcome (upstream/outcome.rs; dropped
//! unfinished, the outcome counts the call as cancelled).

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame};
use tokio::time::Instant;

use super::pump::Received;
use super::{UpstreamPump, wire};
use crate::upstream::outcome::{CallOutcome, Failure};
use greet_proto::sanitize::sanitize_truncated;

/// A call's end as its outcome records it: none when OK, else the code
/// and the message (sanitised: it may come from the upstream).
pub(super) fn ended(status: &tonic::Status) -> Option<Failure> {
    (status.code() != tonic::Code::Ok).then(|| failure(status))
}

/// How the upstream's trailers end the call: none when OK (most calls,
/// told without making a `tonic::Status`), else its failure.
pub(super) fn ended_by(trailers: &HeaderMap) -> Option<Failure> {
    if crate::grpc_headers::ends_ok(trailers) {
        return None;
    }
    let status = wire::status_in(trailers)
        .unwrap_or_else(|| tonic::Status::unknown("the upstream's trailers carry no grpc-status"));
    ended(&status)
}

/// A failed call's code and message, as its outcome records them.
pub(super) fn failure(status: &tonic::Status) -> Failure {
    (status.code(), sanitize_truncated(status.message(), 300))
}

/// The upstream's response body, passed on as it comes; it ends the call at
/// the trailers or with UNAVAILABLE when the upstream stream broke. Its
/// deadline is the sender's to keep ([`Forwarded::deadline`]): the body is
/// not polled while the client's window is shut.
pub(super) struct Forwarded {
    /// `None` once the call ended.
    upstream: Option<Received>,
    deadline: Option<wire::Deadline>,
    completion: CallOutcome,
    /// The request body still on its way upstream, if any: the sender
    /// drives it ([`Forwarded::take_request_pump`]); dropped unfinished, it
    /// resets the upstream stream.
    request_pump: Option<UpstreamPump>,
}

impl Forwarded {
    pub(super) fn new(
        upstream: h2::RecvStream,
        deadline: Option<wire::Deadline>,
        completion: CallOutcome,
        request_pump: Option<UpstreamPump>,
    ) -> Self {
        Forwarded {
            upstream: Some(Received::new(upstream)),
            deadline,
            completion,
            request_pump,
        }
    }

    /// Ends the call with `status`.
    fn finish(&mut self, status: &tonic::Status) {
        self.upstream = None;
        self.completion.finish(ended(status));
    }

    /// The request body's pump, for the sender to drive beside the response.
    pub(super) fn take_request_pump(&mut self) -> Option<UpstreamPump> {
        self.request_pump.take()
    }

    /// When the call must end: its `grpc-timeout`, or the gateway's default.
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.deadline.map(|deadline| deadline.at)
    }

    /// The deadline passed: the call ends with DEADLINE_EXCEEDED (these
    /// trailers for the client), the upstream stream reset by dropping it.
    pub(super) fn deadline_passed(&mut self) -> HeaderMap {
        let status = match self.deadline {
            Some(deadline) => deadline.passed("the upstream's answer did not end"),
            None => tonic::Status::deadline_exceeded("the call's deadline passed in the gateway"),
        };
        self.finish(&status);
        wire::status_trailers(&status)
    }

    /// Ends the call with `status` in the client's trailers.
    fn end_with(&mut self, status: &tonic::Status) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.finish(status);
        Poll::Ready(Some(Ok(Frame::trailers(wire::status_trailers(status)))))
    }
}

impl Body for Forwarded {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = &mut *self;
        let Some(upstream) = &mut this.upstream else {
            return Poll::Ready(None);
        };
        match ready!(Pin::new(upstream).poll_frame(cx)) {
            Some(Ok(frame)) => {
                if let Some(trailers) = frame.trailers_ref() {
                    let end = ended_by(trailers);
                    this.upstream = None;
                    this.completion.finish(end);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Some(Err(broke)) => this.end_with(&tonic::Status::unavailable(format!(
                "the upstream stream broke: {broke}"
            ))),
            None => {
                this.finish(&tonic::Status::unknown(
                    "the upstream ended the call without a grpc-status",
                ));
                Poll::Ready(None)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        // Not the upstream's: its end must be polled to be observed.
        self.upstream.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trailers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (http::HeaderName::from_static(k), http::HeaderValue::from_static(v)))
            .collect()
    }

    #[test]
    fn the_trailers_end_the_call_as_their_status_says() {
        assert_eq!(ended_by(&trailers(&[("grpc-status", "0")])), None);
        assert_eq!(
            ended_by(&trailers(&[("grpc-status", "14"), ("grpc-message", "pod%20gone")])),
            Some((tonic::Code::Unavailable, "pod gone".to_owned()))
        );
        assert_eq!(
            ended_by(&trailers(&[("x-other", "1")])),
            Some((
                tonic::Code::Unknown,
                "the upstream's trailers carry no grpc-status".to_owned()
            ))
        );
    }
}
