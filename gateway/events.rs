//! The event hub: every completed request, mode change and endpoint change is
//! counted into running totals and broadcast to Observer subscribers.
//!
//! Publishing never waits for a subscriber: the broadcast ring is bounded and
//! a subscriber that falls behind is told how many events it missed.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::broadcast;

use crate::common::Mode;
use crate::proto::observe::{self, EndpointsChanged, Event, ModeChanged, PodTotals, RequestEvent, State, event};

/// Events kept for a slow subscriber before it is told it lagged.
pub const BROADCAST_CAPACITY: usize = 16 * 1024;

/// Facts about the gateway that do not change while it runs.
#[derive(Clone, Debug, Default)]
pub struct GatewayInfo {
    pub gateway: String,
    pub sticky_target: String,
    pub discovery: String,
}

/// What happened to one request, as the upstream saw it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestOutcome {
    pub pod_name: String,
    pub pod_ip: String,
    pub endpoint: String,
    pub mode: Mode,
    pub latency_us: u64,
    pub grpc_code: i32,
    pub error: String,
    pub attempts: u32,
}

struct Counted {
    seq: u64,
    mode: Mode,
    endpoints: Vec<observe::Endpoint>,
    /// Keyed by pod name, or by endpoint when the pod is unknown.
    pods: BTreeMap<String, PodTotals>,
    total_requests: u64,
}

pub struct EventHub {
    info: GatewayInfo,
    started_unix_us: i64,
    counted: Mutex<Counted>,
    tx: broadcast::Sender<Arc<Event>>,
}

impl EventHub {
    pub fn new(info: GatewayInfo, mode: Mode) -> Self {
        let (tx, _) = broadcast::channel(BROADCAST_CAPACITY);
        EventHub {
            info,
            started_unix_us: unix_micros_now(),
            counted: Mutex::new(Counted {
                seq: 0,
                mode,
                endpoints: Vec::new(),
                pods: BTreeMap::new(),
                total_requests: 0,
            }),
            tx,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Counted> {
        // The totals stay consistent even if a holder panicked mid-way: every
        // update is a handful of additions.
        self.counted.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts one completed request and broadcasts it.
    pub fn publish_request(&self, outcome: RequestOutcome) {
        let mut counted = self.lock();
        counted.seq += 1;
        counted.total_requests += 1;
        let key = if outcome.pod_name.is_empty() {
            &outcome.endpoint
        } else {
            &outcome.pod_name
        };
        // Look up first: the key is cloned only the first time a pod answers.
        if !counted.pods.contains_key(key) {
            let totals = PodTotals {
                pod_name: outcome.pod_name.clone(),
                pod_ip: outcome.pod_ip.clone(),
                endpoint: outcome.endpoint.clone(),
                ..PodTotals::default()
            };
            counted.pods.insert(key.clone(), totals);
        }
        let Some(totals) = counted.pods.get_mut(key) else {
            return;
        };
        totals.requests += 1;
        totals.latency_us_sum += outcome.latency_us;
        if outcome.grpc_code != 0 {
            totals.errors += 1;
        }
        if !outcome.pod_ip.is_empty() {
            totals.pod_ip.clone_from(&outcome.pod_ip);
        }
        let event = event::Kind::Request(RequestEvent {
            seq: counted.seq,
            timestamp_unix_us: unix_micros_now(),
            pod_name: outcome.pod_name,
            pod_ip: outcome.pod_ip,
            endpoint: outcome.endpoint,
            mode: outcome.mode.to_proto() as i32,
            latency_us: outcome.latency_us,
            grpc_code: outcome.grpc_code,
            error: outcome.error,
            attempts: outcome.attempts,
        });
        self.send(event);
    }

    /// Records a mode switch; no event when the mode is unchanged.
    pub fn publish_mode(&self, mode: Mode) {
        let mut counted = self.lock();
        if counted.mode == mode {
            return;
        }
        let previous = std::mem::replace(&mut counted.mode, mode);
        counted.seq += 1;
        let event = event::Kind::ModeChanged(ModeChanged {
            seq: counted.seq,
            timestamp_unix_us: unix_micros_now(),
            mode: mode.to_proto() as i32,
            previous: previous.to_proto() as i32,
        });
        self.send(event);
    }

    /// Records the full endpoint set after a discovery update.
    pub fn publish_endpoints(&self, endpoints: Vec<observe::Endpoint>) {
        let mut counted = self.lock();
        counted.seq += 1;
        counted.endpoints.clone_from(&endpoints);
        let event = event::Kind::EndpointsChanged(EndpointsChanged {
            seq: counted.seq,
            timestamp_unix_us: unix_micros_now(),
            endpoints,
        });
        self.send(event);
    }

    // Sent while the lock is held, so events reach subscribers in seq order
    // and a snapshot taken under the lock lines up with the stream.
    fn send(&self, kind: event::Kind) {
        // No subscriber is not an error.
        let _ = self.tx.send(Arc::new(Event { kind: Some(kind) }));
    }

    /// The current state: mode, endpoints and per-pod totals.
    pub fn snapshot(&self) -> State {
        self.snapshot_locked(&self.lock())
    }

    fn snapshot_locked(&self, counted: &Counted) -> State {
        State {
            mode: counted.mode.to_proto() as i32,
            endpoints: counted.endpoints.clone(),
            pods: counted.pods.values().cloned().collect(),
            total_requests: counted.total_requests,
            last_seq: counted.seq,
            sticky_target: self.info.sticky_target.clone(),
            discovery: self.info.discovery.clone(),
            started_unix_us: self.started_unix_us,
            gateway: self.info.gateway.clone(),
        }
    }

    /// A snapshot and a receiver of every event after it, with no gap and no overlap.
    pub fn subscribe(&self) -> (State, broadcast::Receiver<Arc<Event>>) {
        let counted = self.lock();
        let rx = self.tx.subscribe();
        (self.snapshot_locked(&counted), rx)
    }

    /// How many Observer subscriptions are open.
    pub fn subscribers(&self) -> usize {
        self.tx.receiver_count()
    }

    pub fn mode(&self) -> Mode {
        self.lock().mode
    }
}

/// Microseconds since the Unix epoch for event timestamps, 0 if the clock is before it.
fn unix_micros_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub() -> EventHub {
        EventHub::new(
            GatewayInfo {
                gateway: "gw".into(),
                sticky_target: "svc:50051".into(),
                discovery: "static".into(),
            },
            Mode::Sticky,
        )
    }

    fn ok(pod: &str, latency_us: u64) -> RequestOutcome {
        RequestOutcome {
            pod_name: pod.into(),
            pod_ip: format!("ip-{pod}"),
            endpoint: "svc:50051".into(),
            mode: Mode::Sticky,
            latency_us,
            ..RequestOutcome::default()
        }
    }

    #[test]
    fn totals_count_requests_errors_and_latency_per_pod() {
        let hub = hub();
        hub.publish_request(ok("a", 100));
        hub.publish_request(ok("a", 300));
        hub.publish_request(ok("b", 50));
        hub.publish_request(RequestOutcome {
            endpoint: "svc:50051".into(),
            grpc_code: 14,
            error: "refused".into(),
            ..RequestOutcome::default()
        });
        let state = hub.snapshot();
        assert_eq!(state.total_requests, 4);
        assert_eq!(state.last_seq, 4);
        let by_key: Vec<(&str, &str, u64, u64, u64)> = state
            .pods
            .iter()
            .map(|p| {
                (
                    p.pod_name.as_str(),
                    p.endpoint.as_str(),
                    p.requests,
                    p.errors,
                    p.latency_us_sum,
                )
            })
            .collect();
        assert_eq!(
            by_key,
            [
                ("a", "svc:50051", 2, 0, 400),
                ("b", "svc:50051", 1, 0, 50),
                ("", "svc:50051", 1, 1, 0)
            ]
        );
        assert_eq!(state.sticky_target, "svc:50051");
    }

    #[test]
    fn a_failure_that_names_no_ip_keeps_the_pods_known_ip() {
        let hub = hub();
        hub.publish_request(RequestOutcome {
            pod_ip: "10.0.0.1".into(),
            ..ok("pod-a", 100)
        });
        // Balanced mode knows the pod's name from discovery, not always its IP.
        hub.publish_request(RequestOutcome {
            pod_ip: String::new(),
            grpc_code: 14,
            ..ok("pod-a", 100)
        });
        let state = hub.snapshot();
        assert_eq!(state.pods.len(), 1);
        assert_eq!(state.pods[0].pod_ip, "10.0.0.1");
        assert_eq!((state.pods[0].requests, state.pods[0].errors), (2, 1));
    }

    #[test]
    fn events_and_the_start_carry_the_wall_clock_time() {
        let micros = || {
            let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
            i64::try_from(since.unwrap().as_micros()).unwrap()
        };
        let before = micros();
        let hub = hub();
        let (_, mut rx) = hub.subscribe();
        hub.publish_request(ok("pod-a", 100));
        hub.publish_mode(Mode::Balanced);
        hub.publish_endpoints(Vec::new());
        let after = micros();
        let started = hub.snapshot().started_unix_us;
        assert!((before..=after).contains(&started), "{before} <= {started} <= {after}");
        for _ in 0..3 {
            let stamp = match rx.try_recv().unwrap().kind.clone().unwrap() {
                event::Kind::Request(r) => r.timestamp_unix_us,
                event::Kind::ModeChanged(m) => m.timestamp_unix_us,
                event::Kind::EndpointsChanged(e) => e.timestamp_unix_us,
                other => panic!("unexpected {other:?}"),
            };
            assert!((started..=after).contains(&stamp), "{started} <= {stamp} <= {after}");
        }
    }

    #[test]
    fn subscriber_gets_events_after_its_snapshot_in_order() {
        let hub = hub();
        hub.publish_request(ok("a", 1));
        let (snapshot, mut rx) = hub.subscribe();
        assert_eq!(snapshot.last_seq, 1);
        hub.publish_mode(Mode::Balanced);
        hub.publish_mode(Mode::Balanced); // unchanged: no event
        hub.publish_request(ok("b", 1));
        let first = rx.try_recv().unwrap();
        match first.kind.as_ref().unwrap() {
            event::Kind::ModeChanged(m) => {
                assert_eq!(
                    (m.seq, m.mode, m.previous),
                    (2, observe::Mode::Balanced as i32, observe::Mode::Sticky as i32)
                )
            }
            other => panic!("expected a mode change, got {other:?}"),
        }
        match rx.try_recv().unwrap().kind.as_ref().unwrap() {
            event::Kind::Request(r) => assert_eq!((r.seq, r.pod_name.as_str()), (3, "b")),
            other => panic!("expected a request, got {other:?}"),
        }
        assert!(rx.try_recv().is_err());
        assert_eq!(hub.mode(), Mode::Balanced);
    }

    #[test]
    fn slow_subscriber_lags_without_blocking_publishers() {
        let hub = hub();
        let (_, mut rx) = hub.subscribe();
        let n = BROADCAST_CAPACITY + 10;
        for _ in 0..n {
            hub.publish_request(ok("a", 1));
        }
        assert_eq!(rx.try_recv().unwrap_err(), broadcast::error::TryRecvError::Lagged(10));
        assert_eq!(hub.snapshot().total_requests, n as u64);
    }
}
