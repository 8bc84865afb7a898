//! Where one forwarded call goes: the sticky connection, or the balancer's
//! next endpoint; and where its one retry goes.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::Gateway;
use crate::balancer::{InFlight, Member};
use crate::events::RequestOutcome;
use crate::in_flight::Sending;
use crate::upstream::EndpointConn;
use crate::upstream::raw_h2::RawH2;
use greet_proto::Mode;

enum Target {
    /// One connection through the Service.
    Sticky,
    /// A balanced member, and when it was picked (to skip it if it fails).
    Balanced(Arc<Member<EndpointConn>>, Instant),
}

/// Why a call has no route: the status for the client, and the endpoint it
/// was about to dial (empty when none).
pub(super) type NoRoute = (tonic::Status, String);

pub(super) struct Route {
    target: Target,
    connection: Arc<RawH2>,
    /// The address dialled: the Service, or the pod's endpoint.
    pub(super) endpoint: String,
    mode: Mode,
    /// A balanced call, counted in flight until its response begins (then
    /// timed: least-loaded's latency) or the route is dropped.
    in_flight: Option<InFlight<EndpointConn>>,
    /// A sticky call, counted in flight on the sticky connection as long.
    sticky_sending: Option<Sending>,
}

impl Route {
    /// The route the current mode gives a new call, or why there is none.
    pub(super) fn pick(gateway: &Gateway) -> Result<Self, NoRoute> {
        let upstream = &gateway.upstream;
        match upstream.mode() {
            Mode::Sticky => Ok(Route::sticky(gateway)),
            mode @ (Mode::Balanced | Mode::LeastLoaded | Mode::Dns) => Route::balanced(gateway, mode, None),
        }
    }

    /// Where the call goes again after failing here before any response:
    /// sticky, the connection through the Service again (made anew if it
    /// broke); balanced, the next endpoint (this one is skipped if it was
    /// found down).
    pub(super) fn retry(&self, gateway: &Gateway) -> Result<Self, NoRoute> {
        match &self.target {
            Target::Sticky => Ok(Route::sticky(gateway)),
            Target::Balanced(failed, _) => Route::balanced(gateway, self.mode, Some(failed)),
        }
    }

    fn sticky(gateway: &Gateway) -> Self {
        Route {
            connection: gateway.upstream.sticky_raw(),
            target: Target::Sticky,
            endpoint: gateway.upstream.sticky_target().to_owned(),
            mode: Mode::Sticky,
            in_flight: None,
            sticky_sending: Some(gateway.upstream.sticky_raw_sending(Instant::now())),
        }
    }

    /// `mode`: balanced (round robin), least-loaded (the balancer's power
    /// of two choices; ingress calls are not counted in its load, REST calls
    /// are) or dns (round robin over the last DNS answer).
    fn balanced(gateway: &Gateway, mode: Mode, not: Option<&Arc<Member<EndpointConn>>>) -> Result<Self, NoRoute> {
        let upstream = &gateway.upstream;
        let balancer = upstream.pool(mode);
        let picked_at = Instant::now();
        let pick = || match mode {
            Mode::LeastLoaded => balancer.pick_least_loaded(picked_at),
            _ => balancer.pick(picked_at),
        };
        let mut member = pick();
        // Either picker may come back to the failed one; once more moves on
        // (unless it is the only one; least-loaded's pair is random).
        if let (Some(picked), Some(not)) = (&member, not)
            && Arc::ptr_eq(picked, not)
        {
            member = pick();
        }
        let Some(member) = member else {
            if mode == Mode::Dns {
                return Err((
                    tonic::Status::unavailable(upstream.dns().no_address_message()),
                    String::new(),
                ));
            }
            let message = format!(
                "no ready endpoint in {mode} mode (discovery: {}); check that the gRPC pods are running and ready, or switch the gateway to sticky mode (PUT /mode)",
                upstream.discovery_description()
            );
            return Err((tonic::Status::unavailable(message), String::new()));
        };
        let endpoint = member.info.address.clone();
        match &member.conn {
            Ok(conns) => Ok(Route {
                connection: Arc::clone(&conns.raw),
                in_flight: Some(balancer.start(&member, Instant::now())),
                target: Target::Balanced(Arc::clone(&member), picked_at),
                endpoint,
                mode,
                sticky_sending: None,
            }),
            Err(message) => {
                let message = format!("endpoint {endpoint:?} is not a valid address: {message}");
                Err((tonic::Status::unavailable(message), endpoint))
            }
        }
    }

    /// How long a try on this route may wait for its answer before the call
    /// goes elsewhere: `None` in sticky mode and when no other endpoint is
    /// ready (then the call's own deadline is the only limit).
    pub(super) fn try_limit(&self, gateway: &Gateway, deadline: Option<Instant>) -> Option<Duration> {
        let Target::Balanced(member, _) = &self.target else {
            return None;
        };
        if gateway.upstream.pool(self.mode).ready_count() < 2 {
            return None;
        }
        let left = deadline.map_or(Duration::MAX, |deadline| {
            deadline.saturating_duration_since(Instant::now())
        });
        Some(member.try_limit(left))
    }

    /// The connection to send on.
    pub(super) fn connection(&self) -> &RawH2 {
        &self.connection
    }

    /// The pod behind a balanced route, as discovery or its replies named it.
    pub(super) fn pod_name(&self) -> Option<String> {
        match &self.target {
            Target::Balanced(member, _) => member.pod_name(),
            Target::Sticky => None,
        }
    }

    /// The pod a call on this route that gets no answer is attributed to:
    /// sticky, the pod the connection's responses named last (as its gauge
    /// is); balanced, the member's (already in its outcome).
    pub(super) fn unanswered_pod(&self, gateway: &Gateway) -> Option<String> {
        match &self.target {
            Target::Balanced(member, _) => member.pod_name(),
            Target::Sticky => gateway.upstream.sticky_raw_pod(),
        }
    }

    /// The observation of a call of `method` on this route, its `attempts`th.
    pub(super) fn outcome(&self, attempts: u32, method: &str) -> RequestOutcome {
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
    pub(super) fn succeeded(&mut self, gateway: &Gateway, pod: Option<&str>) {
        if let Some(in_flight) = self.in_flight.take() {
            in_flight.finish(Instant::now());
        }
        self.sticky_sending = None;
        let upstream = &gateway.upstream;
        let Target::Balanced(member, picked_at) = &self.target else {
            if let Some(pod) = pod {
                upstream.sticky_raw_replied_from(pod);
            }
            return;
        };
        let named = pod.is_some_and(|pod| member.replied_from(pod));
        if upstream.pool(self.mode).succeeded(member, *picked_at, Instant::now()) || named {
            upstream.pool_changed(self.mode);
        }
    }

    /// The connection failed for `reason`: the endpoint is skipped for a while.
    pub(super) fn failed(&self, gateway: &Gateway, reason: &str) {
        let Target::Balanced(member, picked_at) = &self.target else {
            return;
        };
        let upstream = &gateway.upstream;
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
