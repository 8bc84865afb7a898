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
    /// The pod, and the connection (its `RawH2::dialled` number) whose
    /// reply named it: a connection made anew may reach another pod.
    pod: ArcSwapOption<(String, u64)>,
}

impl StickyGauge {
    pub(super) fn sending(&self, sent: Instant) -> Sending {
        Sending::new(&self.sends, sent)
    }

    /// A reply on connection number `dialled` named `pod`.
    pub(super) fn replied_from(&self, pod: &str, dialled: u64) {
        let known = self.pod.load();
        if pod.is_empty()
            || known
                .as_deref()
                .is_some_and(|(known, on)| known == pod && *on == dialled)
        {
            return;
        }
        self.pod.store(Some(Arc::new((pod.to_owned(), dialled))));
    }

    /// The pod a reply on connection number `dialled` named last, if any did.
    pub(super) fn pod(&self, dialled: u64) -> Option<String> {
        self.pod
            .load()
            .as_deref()
            .filter(|(_, on)| *on == dialled)
            .map(|(pod, _)| pod.clone())
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

    pub(super) fn sending(&self, sent: Instant) -> Sending {
        self.gauge.sending(sent)
    }

    /// A reply on the connection named `pod`.
    pub(super) fn replied_from(&self, pod: &str) {
        self.gauge.replied_from(pod, self.raw.dialled());
    }

    /// The pod the connection's replies named last; none when it was made
    /// anew since.
    pub(super) fn pod(&self) -> Option<String> {
        self.gauge.pod(self.raw.dialled())
    }

    /// The connection's gauge at `now`.
    pub(super) fn gauge(&self, now: Instant) -> PodGauge {
        PodGauge {
            pod_name: self.pod().unwrap_or_default(),
            endpoint: self.target.clone(),
            in_flight: self.gauge.sends.count(),
            oldest_in_flight: self.gauge.sends.oldest(now),
            connections: self.raw.connections(),
        }
    }

    pub(super) fn target(&self) -> &str {
        &self.target
    }

    pub(super) fn raw(&self) -> &Arc<RawH2> {
        &self.raw
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pod_a_reply_named_holds_for_its_connection_only() {
        let gauge = StickyGauge::default();
        assert_eq!(gauge.pod(1), None);
        gauge.replied_from("pod-a", 1);
        assert_eq!(gauge.pod(1).as_deref(), Some("pod-a"));
        assert_eq!(gauge.pod(2), None, "a connection made anew may reach another pod");
        gauge.replied_from("", 2);
        assert_eq!(gauge.pod(2), None, "an empty name names nothing");
        gauge.replied_from("pod-b", 2);
        assert_eq!(gauge.pod(2).as_deref(), Some("pod-b"));
    }
}
