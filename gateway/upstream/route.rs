//! Where one call goes, for both front doors (REST's Greet calls and the
//! gRPC ingress's): the connection through the Service (sticky), or the
//! next endpoint of the mode's pool; where a retry goes; and what a try's
//! end does to the pool (skip the endpoint, or end its skip). The front
//! doors keep only their retry rules: what may be sent again, and when.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::UpstreamError;
use crate::balancer::{Balancer, InFlight, Member};
use crate::events::RequestOutcome;
use crate::in_flight::Sending;
use greet_proto::Mode;

/// What a route needs of the upstream: the mode's pool of endpoints, the
/// connection through the Service, and where to say that a pool changed.
/// `Upstream` is the one in use; the unit tests route over fakes, with no
/// socket.
pub(crate) trait Pools {
    /// What a pool member holds: its connection, or why its address cannot
    /// be dialled.
    type Member;
    /// A connection calls are sent on.
    type Conn;
    fn pool(&self, mode: Mode) -> &Balancer<Self::Member>;
    fn connection_of(member: &Self::Member) -> Result<&Arc<Self::Conn>, &str>;
    /// A pool changed what it reports (a skip began or ended, a pod was named).
    fn pool_changed(&self, mode: Mode);
    /// Why `mode` has nowhere to send a call.
    fn nowhere(&self, mode: Mode) -> UpstreamError;
    /// The connection through the Service and its address.
    fn sticky(&self) -> (Arc<Self::Conn>, &str);
    fn sticky_sending(&self, sent: Instant) -> Sending;
    fn sticky_replied_from(&self, pod: &str);
    fn sticky_pod(&self) -> Option<String>;
}

enum Target<M> {
    /// One connection through the Service.
    Sticky,
    /// A balanced member, and when it was picked (to skip it if it fails).
    Balanced(Arc<Member<M>>, Instant),
}

/// Why a call has no route, and the endpoint it was about to dial (empty
/// when none).
#[derive(Debug)]
pub(crate) struct NoRoute {
    pub(crate) error: UpstreamError,
    pub(crate) endpoint: String,
}

pub(crate) struct Route<P: Pools> {
    target: Target<P::Member>,
    connection: Arc<P::Conn>,
    /// The address dialled: the Service, or the pod's endpoint.
    pub(crate) endpoint: String,
    mode: Mode,
    /// A balanced call, counted in flight until its response begins (then
    /// timed: least-loaded's latency) or the route is dropped.
    in_flight: Option<InFlight<P::Member>>,
    /// A sticky call, counted in flight on the sticky connection as long.
    sticky_sending: Option<Sending>,
}

impl<P: Pools> Route<P> {
    /// The route `mode` gives a new call, or why there is none.
    pub(crate) fn pick(upstream: &P, mode: Mode) -> Result<Self, NoRoute> {
        match mode {
            Mode::Sticky => Ok(Route::sticky(upstream)),
            mode @ (Mode::Balanced | Mode::LeastLoaded | Mode::Dns) => Route::balanced(upstream, mode, None),
        }
    }

    /// Where the call goes again after failing here before any response:
    /// sticky, the connection through the Service again (made anew if it
    /// broke); balanced, the next
    /// endpoint (this one is skipped if it was found down).
    pub(crate) fn retry(&self, upstream: &P) -> Result<Self, NoRoute> {
        match &self.target {
            Target::Sticky => Ok(Route::sticky(upstream)),
            Target::Balanced(failed, _) => Route::balanced(upstream, self.mode, Some(failed)),
        }
    }

    /// How many tries a call may make: sticky, the connection and once more
    /// on it made anew; balanced, one per ready endpoint, at most 3.
    pub(crate) fn max_attempts(&self, upstream: &P) -> u32 {
        match self.target {
            Target::Sticky => 2,
            Target::Balanced(..) => u32::try_from(upstream.pool(self.mode).ready_count().clamp(1, 3)).unwrap_or(3),
        }
    }

    fn sticky(upstream: &P) -> Self {
        let (connection, target) = upstream.sticky();
        Route {
            endpoint: target.to_owned(),
            connection,
            target: Target::Sticky,
            mode: Mode::Sticky,
            in_flight: None,
            sticky_sending: Some(upstream.sticky_sending(Instant::now())),
        }
    }

    /// `mode`: balanced (round robin), least-loaded (the balancer's power
    /// of two choices; ingress calls are not counted in its load, REST calls
    /// are) or dns (round robin over the last DNS answer).
    fn balanced(upstream: &P, mode: Mode, not: Option<&Arc<Member<P::Member>>>) -> Result<Self, NoRoute> {
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
            match P::connection_of(&member.conn) {
                Ok(connection) => {
                    return Ok(Route {
                        connection: Arc::clone(connection),
                        // The pick's time: a clock read less a call.
                        in_flight: Some(balancer.start(&member, picked_at)),
                        target: Target::Balanced(Arc::clone(&member), picked_at),
                        endpoint,
                        mode,
                        sticky_sending: None,
                    });
                }
                Err(message) => {
                    let error = UpstreamError::BadEndpoint {
                        endpoint: endpoint.clone(),
                        message: message.to_owned(),
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
            error: upstream.nowhere(mode),
            endpoint: String::new(),
        }))
    }

    /// How long a try on this route may wait for its answer before the call
    /// goes elsewhere: `None` in sticky mode and when no other endpoint is
    /// ready (then the call's own deadline is the only limit).
    pub(crate) fn try_limit(&self, upstream: &P, deadline: Option<Instant>) -> Option<Duration> {
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
    pub(crate) fn connection(&self) -> &P::Conn {
        &self.connection
    }

    /// The pod behind this route as far as it is known: balanced, the
    /// member's (discovery's name, or its replies'); sticky, the one the
    /// connection's replies named last. A call that gets no answer, or an
    /// answer that does not name its pod, is attributed to it.
    pub(crate) fn known_pod(&self, upstream: &P) -> Option<String> {
        match &self.target {
            Target::Balanced(member, _) => member.pod_name(),
            Target::Sticky => upstream.sticky_pod(),
        }
    }

    /// A try of a call on this route, its `attempts`th, in `outcome`: the
    /// endpoint, the mode and the pod as far as the route knows it (the
    /// call's method stays).
    pub(crate) fn describe(&self, outcome: &mut RequestOutcome, attempts: u32) {
        match &self.target {
            Target::Balanced(member, _) => {
                outcome.pod_name = member.pod_name().unwrap_or_default();
                host_of(&member.info.address).clone_into(&mut outcome.pod_ip);
            }
            Target::Sticky => {
                outcome.pod_name.clear();
                outcome.pod_ip.clear();
            }
        }
        self.endpoint.clone_into(&mut outcome.endpoint);
        outcome.mode = self.mode;
        outcome.attempts = attempts;
    }

    /// A response began, from `pod` when its headers name one: the endpoint
    /// is fine (its skip, if any, ends) and, when discovery does not know
    /// its pod, named by it.
    pub(crate) fn succeeded(&mut self, upstream: &P, pod: Option<&str>) {
        let now = Instant::now();
        if let Some(in_flight) = self.in_flight.take() {
            in_flight.finish(now);
        }
        self.sticky_sending = None;
        let Target::Balanced(member, picked_at) = &self.target else {
            if let Some(pod) = pod {
                upstream.sticky_replied_from(pod);
            }
            return;
        };
        let named = pod.is_some_and(|pod| member.replied_from(pod));
        if upstream.pool(self.mode).succeeded(member, *picked_at, now) || named {
            upstream.pool_changed(self.mode);
        }
    }

    /// The connection failed for `reason`: the endpoint is skipped for a while.
    pub(crate) fn failed(&self, upstream: &P, reason: &str) {
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
pub(crate) mod tests;
