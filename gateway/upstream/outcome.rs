//! A call's one outcome, for both front doors: begun when the call arrives,
//! moved on by the routing core at each try (tries.rs: the route, the
//! attempt, when it began), and published to the event hub (the Observer's
//! events and summaries, and `/metrics`, which reads the hub's counters)
//! exactly once: when the front door finishes it, or when it is dropped
//! unfinished (the client went away: CANCELLED). No other code on a call's
//! path publishes a request, so no path counts a call twice or not at all.

use std::sync::Arc;

use tokio::time::Instant;

use super::route::{Pools, Route};
use crate::events::{EventHub, RequestOutcome};
use greet_proto::Mode;

pub(crate) struct CallOutcome {
    hub: Arc<EventHub>,
    started: Instant,
    /// When the current try began: its own time is the pod's latency.
    try_started: Instant,
    /// Whom the call is attributed to if no response names a pod.
    unanswered_pod: Option<String>,
    /// The hub's mode epoch when the call began (before its route was picked).
    began_in_epoch: u64,
    /// `None` once published.
    outcome: Option<RequestOutcome>,
}

/// A call's end that is not OK: its gRPC code and the error text shown.
pub(crate) type Failure = (tonic::Code, String);

impl CallOutcome {
    /// A call of `method` (empty for REST's Greet) arriving now; begun before
    /// the mode is read, so a mode switch meanwhile marks it carried over.
    pub(crate) fn begin(hub: &Arc<EventHub>, method: String) -> Self {
        Self::begin_at(hub, method, Instant::now())
    }

    /// [`CallOutcome::begin`] for a call whose front door read the clock
    /// on its arrival already (`now`).
    pub(crate) fn begin_at(hub: &Arc<EventHub>, method: String, now: Instant) -> Self {
        let began_in_epoch = hub.mode_epoch();
        CallOutcome {
            hub: Arc::clone(hub),
            started: now,
            try_started: now,
            unanswered_pod: None,
            began_in_epoch,
            outcome: Some(RequestOutcome {
                method,
                ..RequestOutcome::default()
            }),
        }
    }

    /// The call found no route in `mode`: it ends with no try, attributed
    /// to `endpoint` (the address it was about to dial, or none).
    pub(crate) fn no_route(&mut self, mode: Mode, endpoint: String, failure: Failure) {
        if let Some(outcome) = &mut self.outcome {
            outcome.mode = mode;
            outcome.endpoint = endpoint;
        }
        self.finish(Some(failure));
    }

    /// A try of the call begins on `route`, its `attempts`th.
    pub(crate) fn trying<P: Pools>(&mut self, pools: &P, route: &Route<P>, attempts: u32) {
        let Some(outcome) = &mut self.outcome else { return };
        route.describe(outcome, attempts);
        self.try_started = Instant::now();
        // A balanced route names its member's pod in `describe` already.
        self.unanswered_pod = if outcome.pod_name.is_empty() {
            route.known_pod(pools)
        } else {
            None
        };
    }

    /// The pod the call is attributed to if no response comes.
    pub(crate) fn unanswered_from(&mut self, pod: Option<String>) {
        self.unanswered_pod = pod;
    }

    /// A response began: the pod it names (`named`: its `x-pod-name`), where
    /// the route did not know it already, else `known` (what the endpoint's
    /// or the sticky connection's earlier replies named); its `x-pod-ip`.
    pub(crate) fn answered(
        &mut self,
        named: Option<String>,
        pod_ip: Option<String>,
        known: impl FnOnce() -> Option<String>,
    ) {
        let Some(outcome) = &mut self.outcome else { return };
        if outcome.pod_name.is_empty()
            && let Some(name) = named.or_else(known)
        {
            outcome.pod_name = name;
        }
        if let Some(ip) = pod_ip {
            outcome.pod_ip = ip;
        }
        // An answer from a pod the route did not know and that did not name
        // itself: shown as the Service. A call with no answer names the pod
        // of `unanswered_pod`, else none.
        if outcome.pod_name.is_empty() {
            outcome.pod_name.clone_from(&outcome.endpoint);
        }
    }

    /// A reply's message named its pod (REST's Greet): that pod, whatever
    /// the route knew.
    pub(crate) fn replied_from(&mut self, pod_name: &str, pod_ip: &str) {
        if let Some(outcome) = &mut self.outcome {
            pod_name.clone_into(&mut outcome.pod_name);
            pod_ip.clone_into(&mut outcome.pod_ip);
        }
    }

    /// Ends the call, OK or with `failure`, and publishes it; once only.
    pub(crate) fn finish(&mut self, failure: Option<Failure>) {
        let Some(mut outcome) = self.outcome.take() else { return };
        if outcome.pod_name.is_empty()
            && let Some(pod) = self.unanswered_pod.take()
        {
            outcome.pod_name = pod;
        }
        // One clock read for both.
        let now = Instant::now();
        let micros = |since: Instant| u64::try_from((now - since).as_micros()).unwrap_or(u64::MAX);
        outcome.latency_us = micros(self.try_started);
        outcome.request_latency_us = micros(self.started);
        outcome.began_in_epoch = Some(self.began_in_epoch);
        if let Some((code, error)) = failure.filter(|(code, _)| *code != tonic::Code::Ok) {
            outcome.grpc_code = code as i32;
            outcome.error = error;
        }
        self.hub.publish_request(outcome);
    }
}

impl Drop for CallOutcome {
    fn drop(&mut self) {
        if self.outcome.is_none() {
            return;
        }
        self.finish(Some((
            tonic::Code::Cancelled,
            "the client cancelled the call".to_owned(),
        )));
    }
}
