//! The lines an operator follows: one per ejection of an endpoint and one
//! per re-admission, each with its reason first. Both front doors eject and
//! re-admit through the balancer, so each change is logged once, here.

use super::skip::{Skip, ejection_for};

/// `connection refused: skipping endpoint 10.0.0.5:50051 (pod-a) for 2 s (ejection 1 in a row)`.
pub(super) fn ejected(address: &str, pod: Option<&str>, skip: &Skip) -> String {
    format!(
        "{}: skipping endpoint {}{} for {} s (ejection {} in a row)",
        reason(&skip.reason),
        clean(address),
        of_pod(pod),
        ejection_for(skip.failures).as_secs(),
        skip.failures
    )
}

/// `a request succeeded: endpoint 10.0.0.5:50051 (pod-a) back in rotation
/// after 2 ejections in a row (last: connection refused)`.
pub(super) fn readmitted(address: &str, pod: Option<&str>, skip: &Skip) -> String {
    let ejections = if skip.failures == 1 { "ejection" } else { "ejections" };
    format!(
        "a request succeeded: endpoint {}{} back in rotation after {} {ejections} in a row (last: {})",
        clean(address),
        of_pod(pod),
        skip.failures,
        reason(&skip.reason)
    )
}

/// A reason can carry a pod's own words (a gRPC status message).
fn reason(text: &str) -> String {
    greet_proto::sanitize::sanitize_truncated(text, 200)
}

fn clean(text: &str) -> String {
    greet_proto::sanitize::sanitize_truncated(text, 100)
}

fn of_pod(pod: Option<&str>) -> String {
    pod.map(|pod| format!(" ({})", clean(pod))).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skip(reason: &str, failures: u32) -> Skip {
        Skip {
            reason: reason.into(),
            until: tokio::time::Instant::now(),
            failures,
        }
    }

    #[test]
    fn an_ejection_says_the_cause_then_the_endpoint_and_how_long() {
        assert_eq!(
            ejected("10.0.0.5:50051", Some("pod-a"), &skip("connection refused", 1)),
            "connection refused: skipping endpoint 10.0.0.5:50051 (pod-a) for 2 s (ejection 1 in a row)"
        );
        assert_eq!(
            ejected("10.0.0.5:50051", None, &skip("no answer within 5s", 6)),
            "no answer within 5s: skipping endpoint 10.0.0.5:50051 for 30 s (ejection 6 in a row)"
        );
    }

    #[test]
    fn a_readmission_says_what_ended_it_and_the_last_failure() {
        assert_eq!(
            readmitted("10.0.0.5:50051", Some("pod-a"), &skip("connection refused", 1)),
            "a request succeeded: endpoint 10.0.0.5:50051 (pod-a) back in rotation after 1 ejection in a row (last: connection refused)"
        );
        assert_eq!(
            readmitted("10.0.0.5:50051", None, &skip("UNAVAILABLE: \u{1b}[2Jdraining", 3)),
            "a request succeeded: endpoint 10.0.0.5:50051 back in rotation after 3 ejections in a row (last: UNAVAILABLE: [2Jdraining)"
        );
    }
}
