//! The gauges of a summary (requests in flight, the oldest one's age, open
//! connections): read from the upstreams when the summary is built and
//! joined to the pods' counters by the same key, the pod's name or else the
//! address dialled. Unlike the counters they are not cumulative.

use crate::in_flight::PodGauge;
use greet_proto::observe::PodSummary;

/// Reads every upstream's gauges now.
pub(crate) type GaugeSource = Box<dyn Fn() -> Vec<PodGauge> + Send + Sync>;

/// The key the counters give a pod's summary (counters.rs).
fn key_of(pod: &PodSummary) -> &str {
    if pod.pod_name.is_empty() {
        &pod.endpoint
    } else {
        &pod.pod_name
    }
}

/// Adds `gauges` to the rows of `pods` (in key order) with the same key,
/// and to `total`. Several gauges of one key add up (a pod reached by
/// REST and by the ingress, or in two pools). A pod with something in
/// flight or a connection open but no request counted yet gets a row of
/// its own; an idle one none.
pub(crate) fn merge(pods: &mut Vec<PodSummary>, total: &mut PodSummary, gauges: &[PodGauge]) {
    for gauge in gauges {
        let oldest_us = u64::try_from(gauge.oldest_in_flight.as_micros()).unwrap_or(u64::MAX);
        let at = pods.binary_search_by(|pod| key_of(pod).cmp(gauge.key()));
        let pod = match at {
            Ok(at) => &mut pods[at],
            Err(_) if gauge.is_idle() => continue,
            Err(at) => {
                pods.insert(
                    at,
                    PodSummary {
                        pod_name: gauge.pod_name.clone(),
                        endpoint: gauge.endpoint.clone(),
                        ..PodSummary::default()
                    },
                );
                &mut pods[at]
            }
        };
        for summary in [pod, &mut *total] {
            summary.in_flight += gauge.in_flight;
            summary.oldest_in_flight_us = summary.oldest_in_flight_us.max(oldest_us);
            summary.connections += gauge.connections;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn pod(pod_name: &str, endpoint: &str, requests: u64) -> PodSummary {
        PodSummary {
            pod_name: pod_name.into(),
            endpoint: endpoint.into(),
            requests,
            ..PodSummary::default()
        }
    }

    fn gauge(pod_name: &str, endpoint: &str, in_flight: u64, oldest_ms: u64, connections: u32) -> PodGauge {
        PodGauge {
            pod_name: pod_name.into(),
            endpoint: endpoint.into(),
            in_flight,
            oldest_in_flight: Duration::from_millis(oldest_ms),
            connections,
        }
    }

    /// (key, requests, in flight, oldest µs, connections) of each row.
    fn rows(pods: &[PodSummary]) -> Vec<(&str, u64, u64, u64, u32)> {
        pods.iter()
            .map(|p| (key_of(p), p.requests, p.in_flight, p.oldest_in_flight_us, p.connections))
            .collect()
    }

    #[test]
    fn gauges_join_their_pods_rows_add_up_per_key_and_in_the_total() {
        let mut pods = vec![
            pod("", "127.0.0.1:27852", 3),
            pod("acc-pod-1", "127.0.0.1:27851", 10),
            pod("acc-pod-3", "127.0.0.1:27853", 10),
        ];
        let mut total = PodSummary::default();
        merge(
            &mut pods,
            &mut total,
            &[
                gauge("acc-pod-1", "127.0.0.1:27851", 0, 0, 1),
                // REST's and the ingress's connections to one pod.
                gauge("acc-pod-3", "127.0.0.1:27853", 2, 700, 1),
                gauge("acc-pod-3", "127.0.0.1:27853", 1, 40, 1),
                // In flight to an endpoint no reply has named yet.
                gauge("", "127.0.0.1:27852", 4, 1200, 1),
                // A pod with a request in flight and none counted yet.
                gauge("acc-pod-2", "127.0.0.1:27854", 1, 5, 1),
                // Idle and never counted: no row.
                gauge("acc-pod-4", "127.0.0.1:27855", 0, 0, 0),
            ],
        );
        assert_eq!(
            rows(&pods),
            [
                ("127.0.0.1:27852", 3, 4, 1_200_000, 1),
                ("acc-pod-1", 10, 0, 0, 1),
                ("acc-pod-2", 0, 1, 5_000, 1),
                ("acc-pod-3", 10, 3, 700_000, 2),
            ]
        );
        assert_eq!(
            (total.in_flight, total.oldest_in_flight_us, total.connections),
            (8, 1_200_000, 5)
        );
    }
}
