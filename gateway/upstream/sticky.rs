//! Sticky mode: one HTTP/2 connection through the Service (the article's
//! gateway), and the one retry that lets it ride out a rolling restart.

use std::sync::Arc;

use arc_swap::{ArcSwap, ArcSwapOption};
use tokio::time::Instant;
use tonic::transport::Channel;

use super::raw_h2::RawH2;
use super::{GreetReply, Limit, Tried, Upstream, UpstreamError, UpstreamTimeouts, channel_to};
use crate::in_flight::{OpenConnections, PodGauge, SendTimes, Sending};
use greet_proto::greet::GreetingRequest;

/// The pinned connection, replaced by a fresh one through the Service when it breaks.
pub(super) struct StickyPin {
    target: String,
    timeouts: UpstreamTimeouts,
    channel: ArcSwap<Channel>,
    /// The REST calls' pinned connections (the pin, and a replaced one
    /// while its last calls finish).
    channel_open: OpenConnections,
    channel_gauge: StickyGauge,
    /// The gRPC ingress's own connection through the Service (one client's).
    raw: Arc<RawH2>,
    raw_gauge: StickyGauge,
}

/// One sticky connection's requests in flight, and the pod its replies
/// named last: the pod behind the Service that the connection reaches.
#[derive(Default)]
pub(super) struct StickyGauge {
    sends: Arc<SendTimes>,
    pod: ArcSwapOption<String>,
}

impl StickyGauge {
    pub(super) fn sending(&self, sent: Instant) -> Sending {
        Sending::new(&self.sends, sent)
    }

    pub(super) fn replied_from(&self, pod: &str) {
        if pod.is_empty() || self.pod.load().as_deref().is_some_and(|known| known == pod) {
            return;
        }
        self.pod.store(Some(Arc::new(pod.to_owned())));
    }

    /// The pod the connection's replies named last, if any did.
    pub(super) fn pod(&self) -> Option<String> {
        self.pod.load().as_deref().cloned()
    }

    /// A new connection: no reply has named its pod yet.
    fn forget_pod(&self) {
        self.pod.store(None);
    }

    fn gauge(&self, target: &str, connections: u32, now: Instant) -> PodGauge {
        PodGauge {
            pod_name: self.pod().unwrap_or_default(),
            endpoint: target.to_owned(),
            in_flight: self.sends.count(),
            oldest_in_flight: self.sends.oldest(now),
            connections,
        }
    }
}

impl StickyPin {
    /// `target` is `host:port` (the Service); the error says why it cannot be dialled.
    pub(super) fn new(target: String, timeouts: UpstreamTimeouts) -> Result<Self, String> {
        let channel_open = OpenConnections::default();
        let channel = channel_to(&target, timeouts, &channel_open)?;
        Ok(StickyPin {
            raw: Arc::new(RawH2::new(&target, timeouts.connect)?),
            raw_gauge: StickyGauge::default(),
            target,
            timeouts,
            channel: ArcSwap::from_pointee(channel),
            channel_open,
            channel_gauge: StickyGauge::default(),
        })
    }

    pub(super) fn raw_gauge(&self) -> &StickyGauge {
        &self.raw_gauge
    }

    /// Both sticky connections' gauges at `now`.
    pub(super) fn gauges(&self, now: Instant) -> [PodGauge; 2] {
        [
            self.channel_gauge.gauge(&self.target, self.channel_open.count(), now),
            self.raw_gauge.gauge(&self.target, self.raw.connections(), now),
        ]
    }

    pub(super) fn target(&self) -> &str {
        &self.target
    }

    pub(super) fn raw(&self) -> &Arc<RawH2> {
        &self.raw
    }

    pub(super) fn current(&self) -> Arc<Channel> {
        self.channel.load_full()
    }

    /// A fresh connection through the Service in place of `broken`, which
    /// becomes the pin; unless a request that failed on `broken` at the same
    /// time already replaced it: then that one, so a broken pin costs one
    /// new connection, not one per request in flight.
    pub(super) fn repin(&self, broken: &Arc<Channel>) -> Arc<Channel> {
        // The target was dialled in `new`: this cannot fail, but if it did
        // the old channel (which reconnects by itself) is the best there is.
        let Ok(fresh) = channel_to(&self.target, self.timeouts, &self.channel_open) else {
            return Arc::clone(broken);
        };
        let fresh = Arc::new(fresh);
        let previous = self.channel.compare_and_swap(broken, Arc::clone(&fresh));
        if Arc::ptr_eq(&previous, broken) {
            self.channel_gauge.forget_pod();
            fresh
        } else {
            Arc::clone(&previous)
        }
    }
}

/// Whether a failed sticky call may go once more: its connection broke or
/// could not be made (UNAVAILABLE, including a reset, GOAWAY or "connection
/// closed" of a draining or killed pod), even after the response's headers:
/// the REST client has been sent nothing yet, and Greet is idempotent (as
/// balanced mode's retry, which never asked). A pod killed between a reply's
/// headers and its message lost one request in 1,585 when this waited for no
/// response to have begun (tests/it/rolling_restart.rs).
pub(super) fn retryable(result: &Result<GreetReply, UpstreamError>) -> bool {
    matches!(result, Err(UpstreamError::Unavailable { .. }))
}

impl Upstream {
    /// A call on the pinned connection; when that connection was closed
    /// under it, once more on a fresh connection through the Service, which
    /// becomes the pin (still sticky): see [`retryable`]. The endpoint is
    /// the Service; a failure's pod hint is the pod the failing connection's
    /// replies named last (none for a fresh one), as its gauge is attributed.
    pub(super) async fn greet_sticky(&self, request: GreetingRequest) -> Tried {
        let target = self.sticky.target();
        let gauge = &self.sticky.channel_gauge;
        let pinned = self.sticky.current();
        let mut last_try = Instant::now();
        let _sending = gauge.sending(last_try);
        let mut result = self
            .call(target, &pinned, request.clone(), Limit::whole(self.timeouts.request))
            .await;
        let mut attempts = 1;
        if retryable(&result) {
            let fresh = self.sticky.repin(&pinned);
            last_try = Instant::now();
            result = self
                .call(target, &fresh, request, Limit::whole(self.timeouts.request))
                .await;
            attempts = 2;
        }
        if let Ok(reply) = &result {
            gauge.replied_from(&reply.pod_name);
        }
        // After a repin the gauge forgot the broken connection's pod: the
        // fresh connection's is known only once it replied.
        let pod_hint = if result.is_err() { gauge.pod() } else { None };
        Tried {
            result,
            endpoint: target.to_owned(),
            pod_hint,
            attempts,
            last_try,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unavailable() -> Result<GreetReply, UpstreamError> {
        Err(UpstreamError::Unavailable {
            endpoint: "svc:50051".into(),
            message: "connection closed".into(),
            skip: None,
        })
    }

    #[test]
    fn only_a_broken_connection_is_retried() {
        assert!(retryable(&unavailable()));
        let timeout = Err(UpstreamError::Timeout {
            endpoint: "svc:50051".into(),
            after: std::time::Duration::from_secs(5),
        });
        assert!(
            !retryable(&timeout),
            "it may have been served, and the deadline is spent"
        );
        let failed = Err(UpstreamError::Failed {
            endpoint: "svc:50051".into(),
            code: tonic::Code::Internal,
            message: "boom".into(),
        });
        assert!(!retryable(&failed));
        let ok = Ok(GreetReply {
            result: String::new(),
            pod_name: String::new(),
            pod_ip: String::new(),
        });
        assert!(!retryable(&ok));
    }

    #[tokio::test]
    async fn a_broken_pin_is_replaced_once_for_all_its_requests() {
        let pin = StickyPin::new("127.0.0.1:9".into(), UpstreamTimeouts::default()).unwrap();
        let broken = pin.current();
        let first = pin.repin(&broken);
        assert!(!Arc::ptr_eq(&first, &broken), "a fresh connection");
        assert!(Arc::ptr_eq(&pin.current(), &first), "it is the pin");
        // Another request that failed on the old pin retries on the new one.
        assert!(Arc::ptr_eq(&pin.repin(&broken), &first));
        assert!(Arc::ptr_eq(&pin.current(), &first));
        // The new pin breaking too is replaced in turn.
        let second = pin.repin(&first);
        assert!(!Arc::ptr_eq(&second, &first));
        assert!(Arc::ptr_eq(&pin.current(), &second));
    }
}
