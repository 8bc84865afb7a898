//! Sticky mode: one HTTP/2 connection through the Service (the article's
//! gateway), and the pod its replies named last.

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use tokio::time::Instant;

use super::UpstreamTimeouts;
use crate::connection::raw_h2::RawH2;
use crate::in_flight::{PodGauge, SendTimes, Sending};

/// The one connection through the Service, for REST's calls and the gRPC
/// ingress's alike (one client's, as the article's gateway is); made again
/// through the Service when it breaks.
pub(super) struct StickyPin {
    target: String,
    raw: Arc<RawH2>,
    gauge: StickyGauge,
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
    pub(super) fn forget_pod(&self) {
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
        Ok(StickyPin {
            raw: Arc::new(RawH2::new(&target, timeouts.connect)?),
            gauge: StickyGauge::default(),
            target,
        })
    }

    pub(super) fn gauge_of_calls(&self) -> &StickyGauge {
        &self.gauge
    }

    /// The connection's gauge at `now`.
    pub(super) fn gauge(&self, now: Instant) -> PodGauge {
        self.gauge.gauge(&self.target, self.raw.connections(), now)
    }

    pub(super) fn target(&self) -> &str {
        &self.target
    }

    pub(super) fn raw(&self) -> &Arc<RawH2> {
        &self.raw
    }
}
