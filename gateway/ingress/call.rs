//! One forwarded call's end: the response body passed through frame by frame
//! until the upstream's trailers, the deadline or the client's cancel, and
//! the one observation each call makes when it ends, however it ends.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame};
use tokio::time::Instant;

use super::pump::Received;
use super::{UpstreamPump, wire};
use crate::events::{EventHub, RequestOutcome};
use crate::response_headers::{POD_IP, header};
use greet_proto::sanitize::sanitize_truncated;

/// Publishes the call's observation exactly once: when it is finished, or
/// when it is dropped unfinished (the client went away: CANCELLED).
pub(super) struct Completion {
    hub: Arc<EventHub>,
    started: Instant,
    /// When the current attempt began: its own time is the pod's latency.
    try_started: Instant,
    /// Whom the call is attributed to if no response names a pod.
    unanswered_pod: Option<String>,
    /// The hub's mode epoch when the call began (before its route was picked).
    began_in_epoch: u64,
    /// `None` once published.
    outcome: Option<RequestOutcome>,
}

impl Completion {
    /// `began_in_epoch`: [`EventHub::mode_epoch`] read before the call's mode.
    pub(super) fn new(hub: Arc<EventHub>, started: Instant, began_in_epoch: u64, outcome: RequestOutcome) -> Self {
        Completion {
            hub,
            started,
            try_started: started,
            unanswered_pod: None,
            began_in_epoch,
            outcome: Some(outcome),
        }
    }

    /// The call goes again, as `outcome` says (another endpoint, its attempts).
    pub(super) fn retry(&mut self, outcome: RequestOutcome) {
        if self.outcome.is_some() {
            self.outcome = Some(outcome);
            self.try_started = Instant::now();
        }
    }

    /// The pod the current attempt is attributed to if no response comes.
    pub(super) fn unanswered_from(&mut self, pod: Option<String>) {
        self.unanswered_pod = pod;
    }

    /// A response began: the pod, from its `x-pod-name` / `x-pod-ip`
    /// (greet-server sets them) where the route did not know it already,
    /// else `known` (what the endpoint's or the sticky connection's earlier
    /// replies named).
    pub(super) fn pod_from(
        &mut self,
        named: Option<String>,
        headers: &HeaderMap,
        known: impl FnOnce() -> Option<String>,
    ) {
        let Some(outcome) = &mut self.outcome else { return };
        if outcome.pod_name.is_empty()
            && let Some(name) = named.or_else(known)
        {
            outcome.pod_name = name;
        }
        if let Some(ip) = header(headers, &POD_IP) {
            outcome.pod_ip = ip;
        }
        // An answer from a pod the route did not know and that did not name
        // itself: shown as the Service. A call with no answer names the pod
        // set by `unanswered_from` (as a REST request's), else none.
        if outcome.pod_name.is_empty() {
            outcome.pod_name.clone_from(&outcome.endpoint);
        }
    }

    /// Ends the call with `status` (`None`: OK).
    pub(super) fn finish(&mut self, status: Option<&tonic::Status>) {
        let Some(mut outcome) = self.outcome.take() else { return };
        if outcome.pod_name.is_empty()
            && let Some(pod) = self.unanswered_pod.take()
        {
            outcome.pod_name = pod;
        }
        let micros = |since: Instant| u64::try_from(since.elapsed().as_micros()).unwrap_or(u64::MAX);
        outcome.latency_us = micros(self.try_started);
        outcome.request_latency_us = micros(self.started);
        outcome.began_in_epoch = Some(self.began_in_epoch);
        if let Some(status) = status.filter(|s| s.code() != tonic::Code::Ok) {
            outcome.grpc_code = status.code() as i32;
            outcome.error = sanitize_truncated(status.message(), 300);
        }
        self.hub.publish_request(outcome);
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        self.finish(Some(&tonic::Status::cancelled("the client cancelled the call")));
    }
}

/// The upstream's response body, passed on as it comes; it ends the call at
/// the trailers or with UNAVAILABLE when the upstream stream broke. Its
/// deadline is the sender's to keep ([`Forwarded::deadline`]): the body is
/// not polled while the client's window is shut.
pub(super) struct Forwarded {
    /// `None` once the call ended.
    upstream: Option<Received>,
    deadline: Option<wire::Deadline>,
    completion: Completion,
    /// The request body still on its way upstream, if any: the sender
    /// drives it ([`Forwarded::take_request_pump`]); dropped unfinished, it
    /// resets the upstream stream.
    request_pump: Option<UpstreamPump>,
}

impl Forwarded {
    pub(super) fn new(
        upstream: h2::RecvStream,
        deadline: Option<wire::Deadline>,
        completion: Completion,
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
        self.completion.finish(Some(status));
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
                    let status = wire::status_in(trailers)
                        .unwrap_or_else(|| tonic::Status::unknown("the upstream's trailers carry no grpc-status"));
                    this.finish(&status);
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
