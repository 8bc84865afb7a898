//! The endpoints the balancer skips, as the Observer stream and `/healthz`
//! report them (why a failure skips one is the upstream error's to say:
//! `upstream::error::skip_reason`).

use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use super::balancer::Skip;
use super::discovery::EndpointInfo;
use greet_proto::observe;

/// Every endpoint with its skip, as [`super::balancer::Balancer::report`] gives them.
pub(crate) type Report = [(EndpointInfo, Option<Skip>)];

/// The endpoints for the Observer: each with its skip's reason and the Unix
/// time (µs) of its re-try, `now` being `now_unix_us`.
pub(crate) fn endpoints_proto(report: &Report, now: Instant, now_unix_us: i64) -> Vec<observe::Endpoint> {
    report
        .iter()
        .map(|(info, skip)| match skip {
            None => info.to_proto(),
            Some(skip) => observe::Endpoint {
                skipped_reason: skip.reason.clone(),
                skipped_until_unix_us: unix_us(skip.until, now, now_unix_us),
                ..info.to_proto()
            },
        })
        .collect()
}

fn unix_us(at: Instant, now: Instant, now_unix_us: i64) -> i64 {
    let micros = |d: Duration| i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
    match at.checked_duration_since(now) {
        Some(ahead) => now_unix_us.saturating_add(micros(ahead)),
        None => now_unix_us.saturating_sub(micros(now.saturating_duration_since(at))),
    }
}

/// One skipped endpoint in `/healthz`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct SkippedEndpoint {
    pub address: String,
    /// `null` when discovery does not know the pod.
    pub pod: Option<String>,
    pub reason: String,
    /// Until the balancer tries it again; 0 once due (it stays skipped until
    /// a request on it succeeds).
    pub retry_in_ms: u64,
}

/// The skipped endpoints, in address order.
pub(crate) fn skipped_endpoints(report: &Report, now: Instant) -> Vec<SkippedEndpoint> {
    report
        .iter()
        .filter_map(|(info, skip)| {
            let skip = skip.as_ref()?;
            Some(SkippedEndpoint {
                address: info.address.clone(),
                pod: info.pod_name.clone(),
                reason: skip.reason.clone(),
                retry_in_ms: u64::try_from(skip.until.saturating_duration_since(now).as_millis()).unwrap_or(u64::MAX),
            })
        })
        .collect()
}

/// Ready endpoints the balancer does not skip.
pub(crate) fn usable(report: &Report) -> usize {
    report
        .iter()
        .filter(|(info, skip)| info.ready && skip.is_none())
        .count()
}

/// Why balanced mode has nothing to send to although endpoints are ready, and what to check.
pub(crate) fn all_skipped_message(skipped: &[SkippedEndpoint]) -> String {
    const LISTED: usize = 3;
    let mut list: Vec<String> = skipped
        .iter()
        .take(LISTED)
        .map(|s| format!("{}: {}", s.address, s.reason))
        .collect();
    if skipped.len() > LISTED {
        list.push(format!("{} more", skipped.len() - LISTED));
    }
    format!(
        "balanced mode is skipping every ready greet-server endpoint after failures ({}); check that the greet-server pods are running and reachable from the gateway (each is retried when its skip ends), or switch to sticky mode with PUT /mode",
        list.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(now: Instant) -> Vec<(EndpointInfo, Option<Skip>)> {
        let skip = |reason: &str, until| {
            Some(Skip {
                reason: reason.into(),
                until,
                failures: 1,
            })
        };
        let mut not_ready = EndpointInfo::ready("10.0.0.3:50051");
        not_ready.ready = false;
        vec![
            (EndpointInfo::ready("10.0.0.1:50051").with_pod_name("p1"), None),
            (
                EndpointInfo::ready("10.0.0.2:50051").with_pod_name("p2"),
                skip("connection refused", now + Duration::from_millis(1500)),
            ),
            (not_ready, None),
            (
                EndpointInfo::ready("10.0.0.4:50051"),
                skip("no answer within 5s", now - Duration::from_millis(20)),
            ),
        ]
    }

    #[test]
    fn the_observer_gets_each_skip_with_its_reason_and_unix_deadline() {
        let now = Instant::now();
        let endpoints = endpoints_proto(&report(now), now, 1_000_000_000);
        let fields: Vec<(&str, &str, bool, &str, i64)> = endpoints
            .iter()
            .map(|e| {
                (
                    e.address.as_str(),
                    e.pod_name.as_str(),
                    e.ready,
                    e.skipped_reason.as_str(),
                    e.skipped_until_unix_us,
                )
            })
            .collect();
        assert_eq!(
            fields,
            [
                ("10.0.0.1:50051", "p1", true, "", 0),
                ("10.0.0.2:50051", "p2", true, "connection refused", 1_001_500_000),
                ("10.0.0.3:50051", "", false, "", 0),
                ("10.0.0.4:50051", "", true, "no answer within 5s", 999_980_000),
            ]
        );
    }

    #[test]
    fn healthz_lists_skips_and_counts_only_usable_endpoints() {
        let now = Instant::now();
        let report = report(now);
        assert_eq!(usable(&report), 1);
        assert_eq!(usable(&[report[0].clone(), report[0].clone()]), 2);
        assert_eq!(usable(&report[1..]), 0);
        let skipped = skipped_endpoints(&report, now);
        assert_eq!(
            serde_json::to_value(&skipped).unwrap(),
            serde_json::json!([
                {"address": "10.0.0.2:50051", "pod": "p2", "reason": "connection refused", "retry_in_ms": 1500},
                {"address": "10.0.0.4:50051", "pod": null, "reason": "no answer within 5s", "retry_in_ms": 0},
            ])
        );
        assert_eq!(
            all_skipped_message(&skipped),
            "balanced mode is skipping every ready greet-server endpoint after failures (10.0.0.2:50051: connection refused, 10.0.0.4:50051: no answer within 5s); check that the greet-server pods are running and reachable from the gateway (each is retried when its skip ends), or switch to sticky mode with PUT /mode"
        );
        let many = vec![skipped[0].clone(); 5];
        assert!(all_skipped_message(&many).contains("connection refused, 2 more); check"));
        let three = vec![skipped[0].clone(); 3];
        assert!(all_skipped_message(&three).contains("connection refused); check"));
    }
}
