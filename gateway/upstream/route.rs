//! Where one call goes, for both front doors (REST's Greet calls and the
//! gRPC ingress's): the connection through the Service (sticky), or the
//! next endpoint of the mode's pool; where a retry goes; and what a try's
//! end does to the pool (skip the endpoint, or end its skip). The front
//! doors keep only their retry rules: what may be sent again, and when.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::{EndpointConn, Upstream, UpstreamError};
use crate::balancer::{InFlight, Member};
use crate::connection::raw_h2::RawH2;
use crate::events::RequestOutcome;
use crate::in_flight::Sending;
use greet_proto::Mode;

enum Target {
    /// One connection through the Service.
    Sticky,
    /// A balanced member, and when it was picked (to skip it if it fails).
    Balanced(Arc<Member<EndpointConn>>, Instant),
}

/// Why a call has no route, and the endpoint it was about to dial (empty
/// when none).
#[derive(Debug)]
pub(crate) struct NoRoute {
    pub(crate) error: UpstreamError,
    pub(crate) endpoint: String,
}

pub(crate) struct Route {
    target: Target,
    connection: Arc<RawH2>,
    /// The address dialled: the Service, or the pod's endpoint.
    pub(crate) endpoint: String,
    mode: Mode,
    /// A balanced call, counted in flight until its response begins (then
    /// timed: least-loaded's latency) or the route is dropped.
    in_flight: Option<InFlight<EndpointConn>>,
    /// A sticky call, counted in flight on the sticky connection as long.
    sticky_sending: Option<Sending>,
}

impl Route {
    /// The route `mode` gives a new call, or why there is none.
    pub(crate) fn pick(upstream: &Upstream, mode: Mode) -> Result<Self, NoRoute> {
        match mode {
            Mode::Sticky => Ok(Route::sticky(upstream)),
            mode @ (Mode::Balanced | Mode::LeastLoaded | Mode::Dns) => Route::balanced(upstream, mode, None),
        }
    }

    /// Where the call goes again after failing here before any response:
    /// sticky, the connection through the Service again (made anew if it
    /// broke, so the pod its replies named is forgotten); balanced, the next
    /// endpoint (this one is skipped if it was found down).
    pub(crate) fn retry(&self, upstream: &Upstream) -> Result<Self, NoRoute> {
        match &self.target {
            Target::Sticky => {
                upstream.sticky_forget_pod();
                Ok(Route::sticky(upstream))
            }
            Target::Balanced(failed, _) => Route::balanced(upstream, self.mode, Some(failed)),
        }
    }

    /// How many tries a call may make: sticky, the connection and once more
    /// on it made anew; balanced, one per ready endpoint, at most 3.
    pub(crate) fn max_attempts(&self, upstream: &Upstream) -> u32 {
        match self.target {
            Target::Sticky => 2,
            Target::Balanced(..) => u32::try_from(upstream.pool(self.mode).ready_count().clamp(1, 3)).unwrap_or(3),
        }
    }

    fn sticky(upstream: &Upstream) -> Self {
        Route {
            connection: upstream.sticky_connection(),
            target: Target::Sticky,
            endpoint: upstream.sticky_target().to_owned(),
            mode: Mode::Sticky,
            in_flight: None,
            sticky_sending: Some(upstream.sticky_sending(Instant::now())),
        }
    }

    /// `mode`: balanced (round robin), least-loaded (the balancer's power
    /// of two choices; ingress calls are not counted in its load, REST calls
    /// are) or dns (round robin over the last DNS answer).
    fn balanced(upstream: &Upstream, mode: Mode, not: Option<&Arc<Member<EndpointConn>>>) -> Result<Self, NoRoute> {
        let balancer = upstream.pool(mode);
        let picked_at = Instant::now();
        let pick = || match mode {
            Mode::LeastLoaded => balancer.pick_least_loaded(picked_at),
            _ => balancer.pick(picked_at),
        };
        // An endpoint whose address cannot be dialled is skipped like one
        // that refuses, and the next one picked; at most once per member.
        let mut bad = None;
        for _ in 0..=balancer.ready_count() {
            let mut member = pick();
            // Either picker may come back to the failed one; once more moves on
            // (unless it is the only one; least-loaded's pair is random).
            if let (Some(picked), Some(not)) = (&member, not)
                && Arc::ptr_eq(picked, not)
            {
                member = pick();
            }
            let Some(member) = member else { break };
            let endpoint = member.info.address.clone();
            match &member.conn {
                Ok(conns) => {
                    return Ok(Route {
                        connection: Arc::clone(&conns.raw),
                        in_flight: Some(balancer.start(&member, Instant::now())),
                        target: Target::Balanced(Arc::clone(&member), picked_at),
                        endpoint,
                        mode,
                        sticky_sending: None,
                    });
                }
                Err(message) => {
                    let error = UpstreamError::BadEndpoint {
                        endpoint: endpoint.clone(),
                        message: message.clone(),
                    };
                    if let Some(reason) = super::error::skip_reason(&error)
                        && balancer.eject(&member, picked_at, Instant::now(), &reason)
                    {
                        upstream.pool_changed(mode);
                    }
                    bad = Some(NoRoute { error, endpoint });
                }
            }
        }
        Err(bad.unwrap_or_else(|| NoRoute {
            error: match mode {
                Mode::Dns => UpstreamError::NoDnsAnswer(upstream.dns().no_address_message()),
                mode => upstream.no_endpoints(mode),
            },
            endpoint: String::new(),
        }))
    }

    /// How long a try on this route may wait for its answer before the call
    /// goes elsewhere: `None` in sticky mode and when no other endpoint is
    /// ready (then the call's own deadline is the only limit).
    pub(crate) fn try_limit(&self, upstream: &Upstream, deadline: Option<Instant>) -> Option<Duration> {
        let Target::Balanced(member, _) = &self.target else {
            return None;
        };
        if upstream.pool(self.mode).ready_count() < 2 {
            return None;
        }
        let left = deadline.map_or(Duration::MAX, |deadline| {
            deadline.saturating_duration_since(Instant::now())
        });
        Some(member.try_limit(left))
    }

    /// The connection to send on.
    pub(crate) fn connection(&self) -> &RawH2 {
        &self.connection
    }

    /// The pod behind a balanced route, as discovery or its replies named it.
    pub(crate) fn pod_name(&self) -> Option<String> {
        match &self.target {
            Target::Balanced(member, _) => member.pod_name(),
            Target::Sticky => None,
        }
    }

    /// The pod a call on this route that gets no answer is attributed to:
    /// sticky, the pod the connection's responses named last (as its gauge
    /// is); balanced, the member's (already in its outcome).
    pub(crate) fn unanswered_pod(&self, upstream: &Upstream) -> Option<String> {
        match &self.target {
            Target::Balanced(member, _) => member.pod_name(),
            Target::Sticky => upstream.sticky_pod(),
        }
    }

    /// The observation of a call of `method` on this route, its `attempts`th.
    pub(crate) fn outcome(&self, attempts: u32, method: &str) -> RequestOutcome {
        let (pod_name, pod_ip) = match &self.target {
            Target::Balanced(member, _) => (
                member.pod_name().unwrap_or_default(),
                host_of(&member.info.address).to_owned(),
            ),
            Target::Sticky => (String::new(), String::new()),
        };
        RequestOutcome {
            pod_name,
            pod_ip,
            endpoint: self.endpoint.clone(),
            mode: self.mode,
            attempts,
            method: method.to_owned(),
            ..RequestOutcome::default()
        }
    }

    /// A response began, from `pod` when its headers name one: the endpoint
    /// is fine (its skip, if any, ends) and, when discovery does not know
    /// its pod, named by it.
    pub(crate) fn succeeded(&mut self, upstream: &Upstream, pod: Option<&str>) {
        if let Some(in_flight) = self.in_flight.take() {
            in_flight.finish(Instant::now());
        }
        self.sticky_sending = None;
        let Target::Balanced(member, picked_at) = &self.target else {
            if let Some(pod) = pod {
                upstream.sticky_replied_from(pod);
            }
            return;
        };
        let named = pod.is_some_and(|pod| member.replied_from(pod));
        if upstream.pool(self.mode).succeeded(member, *picked_at, Instant::now()) || named {
            upstream.pool_changed(self.mode);
        }
    }

    /// The connection failed for `reason`: the endpoint is skipped for a while.
    pub(crate) fn failed(&self, upstream: &Upstream, reason: &str) {
        let Target::Balanced(member, picked_at) = &self.target else {
            return;
        };
        if upstream
            .pool(self.mode)
            .eject(member, *picked_at, Instant::now(), reason)
        {
            upstream.pool_changed(self.mode);
        }
    }
}

/// `host` of `host:port` (IPv6 brackets dropped).
fn host_of(address: &str) -> &str {
    let host = address.rsplit_once(':').map_or(address, |(host, _)| host);
    host.trim_start_matches('[').trim_end_matches(']')
}

#[cfg(test)]
mod tests {
    use super::host_of;

    #[test]
    fn the_host_of_an_endpoint() {
        assert_eq!(host_of("10.0.0.7:50051"), "10.0.0.7");
        assert_eq!(host_of("[fd00::7]:50051"), "fd00::7");
        assert_eq!(host_of("greet"), "greet");
    }
}
