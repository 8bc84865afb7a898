//! Proto Observer events into the dashboard's own types, their text
//! sanitised: the state never sees a proto type or raw network text.

use crate::network_text;
use crate::state::stats::Tally;
use crate::state::stats::methods::ByMethod;
use crate::state::{AppEvent, DiscoveryStatus, GatewayEvent, Gauges, PodInfo, PodTotals, Request, Snapshot};
use greet_proto::limits::MAX_METHODS;
use greet_proto::observe::{self, event};
use greet_proto::{Mode, latency_buckets};

/// Most pods (or endpoints) kept from one message: far above any real
/// gateway's pod count, and a bound on what a hostile one can make the
/// dashboard hold and sort every frame.
pub const MAX_PODS: usize = 10_000;

/// A gateway's answer to a mode switch, its error text sanitised.
pub fn mode_set(gateway: String, result: Result<Mode, String>) -> AppEvent {
    AppEvent::ModeSet {
        gateway,
        result: result.map_err(|e| network_text::error(&e)),
    }
}

/// The discovery state a snapshot or an endpoint set carries, as its own
/// event (folded after the event it came with); `None` from other events
/// and from gateways that send none.
pub fn discovery_event(kind: &event::Kind) -> Option<GatewayEvent> {
    let state = match kind {
        event::Kind::Snapshot(state) => state.discovery_state.as_ref(),
        event::Kind::EndpointsChanged(change) => change.discovery.as_ref(),
        _ => None,
    }?;
    Some(GatewayEvent::Discovery(DiscoveryStatus {
        source: network_text::name(&state.source),
        last_error: network_text::error(&state.last_error),
        failing_since_unix_us: state.failing_since_unix_us,
        set_age: std::time::Duration::from_millis(state.set_age_ms),
    }))
}

/// An Observer event in the dashboard's terms, its text sanitised. In a
/// summary subscription (`sampled`), request events are samples, not counts.
pub fn gateway_event(kind: event::Kind, sampled: bool) -> GatewayEvent {
    match kind {
        event::Kind::Snapshot(state) => GatewayEvent::Snapshot(Snapshot {
            mode: Mode::from_proto(state.mode),
            unknown_mode: Mode::unknown_number(state.mode),
            started_unix_us: state.started_unix_us,
            sticky_target: network_text::name(&state.sticky_target),
            last_seq: state.last_seq,
            endpoints: state.endpoints.iter().take(MAX_PODS).map(endpoint).collect(),
            pods: state
                .pods
                .iter()
                .take(MAX_PODS)
                .map(|totals| PodTotals {
                    name: network_text::name(&totals.pod_name),
                    ip: pod_ip(&totals.pod_ip, &totals.endpoint),
                    endpoint: network_text::name(&totals.endpoint),
                    requests: totals.requests,
                    errors: totals.errors,
                    methods: methods(&totals.methods),
                    ..PodTotals::default()
                })
                .collect(),
        }),
        event::Kind::Request(request) => {
            let request = Request {
                seq: request.seq,
                name: network_text::name(&request.pod_name),
                ip: pod_ip(&request.pod_ip, &request.endpoint),
                endpoint: network_text::name(&request.endpoint),
                mode: Mode::from_proto(request.mode),
                latency_us: request.latency_us,
                grpc_code: request.grpc_code,
                error: network_text::error(&request.error),
            };
            if sampled {
                GatewayEvent::Sample(request)
            } else {
                GatewayEvent::Request(request)
            }
        }
        event::Kind::ModeChanged(change) => GatewayEvent::ModeChanged {
            seq: change.seq,
            mode: Mode::from_proto(change.mode),
            unknown: Mode::unknown_number(change.mode),
        },
        event::Kind::EndpointsChanged(change) => GatewayEvent::EndpointsChanged {
            seq: change.seq,
            endpoints: change.endpoints.iter().take(MAX_PODS).map(endpoint).collect(),
        },
        event::Kind::Lagged(lagged) => GatewayEvent::Lagged {
            dropped: lagged.dropped,
        },
        event::Kind::Summary(summary) => {
            GatewayEvent::Summary(summary.pods.iter().take(MAX_PODS).map(pod_summary).collect())
        }
    }
}

/// One pod's cumulative counters from a summary. The histogram is cut at the
/// fixed bucket count: a longer one is not from a gateway that follows the proto.
fn pod_summary(pod: &observe::PodSummary) -> PodTotals {
    let mut buckets = pod.latency_buckets.clone();
    buckets.truncate(latency_buckets::BUCKETS);
    PodTotals {
        name: network_text::name(&pod.pod_name),
        ip: pod_ip(&pod.pod_ip, &pod.endpoint),
        endpoint: network_text::name(&pod.endpoint),
        requests: pod.requests,
        errors: pod.errors,
        latency_buckets: Some(buckets),
        gauges: Some(Gauges {
            in_flight: pod.in_flight,
            oldest_in_flight_us: pod.oldest_in_flight_us,
            connections: pod.connections,
        }),
        // Codes outside gRPC's are counted as UNKNOWN by the gateway; a
        // hostile one cannot add entries beyond the few codes there are.
        error_codes: pod
            .error_codes
            .iter()
            .filter(|c| (1..=16).contains(&c.code))
            .map(|c| (c.code, c.count))
            .collect(),
        methods: methods(&pod.methods),
        carried_over: Tally {
            requests: pod.carried_over_requests,
            errors: pod.carried_over_errors,
        },
    }
}

/// Requests by method. The gateway names at most 16 methods per pod and
/// the others: a hostile one cannot add more.
fn methods(counts: &[observe::MethodCount]) -> ByMethod {
    counts
        .iter()
        .take(MAX_METHODS + 1)
        .map(|m| {
            let tally = Tally {
                requests: m.requests,
                errors: m.errors,
            };
            (network_text::name(&m.method), tally)
        })
        .collect()
}

/// The pod's IP: as reported, else the host of the address the gateway dialled.
fn pod_ip(ip: &str, endpoint: &str) -> String {
    if ip.is_empty() {
        network_text::host_of(endpoint)
    } else {
        network_text::name(ip)
    }
}

/// An endpoint as a listed pod, named by its address when the gateway
/// knows no name (several pods can share an IP, never an address).
fn endpoint(e: &observe::Endpoint) -> PodInfo {
    let ip = network_text::host_of(&e.address);
    let address = network_text::name(&e.address);
    let name = if e.pod_name.is_empty() {
        address.clone()
    } else {
        network_text::name(&e.pod_name)
    };
    PodInfo {
        name,
        ip,
        endpoint: address,
        ready: e.ready,
        skipped: (!e.skipped_reason.is_empty()).then(|| network_text::error(&e.skipped_reason)),
        down: (!e.health_failure.is_empty()).then(|| network_text::error(&e.health_failure)),
        serving_terminating: e.ready && e.serving_terminating,
        ..PodInfo::default()
    }
}

#[cfg(test)]
mod tests;
