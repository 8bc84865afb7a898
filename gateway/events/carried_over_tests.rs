//! Requests that began before a mode change and ended after it: counted in
//! the summaries' carried-over counters as well as in requests and errors.

use super::*;

fn hub() -> EventHub {
    EventHub::new(GatewayInfo::default(), Mode::Sticky)
}

fn outcome(pod: &str, grpc_code: i32, began_in_epoch: Option<u64>) -> RequestOutcome {
    RequestOutcome {
        pod_name: pod.into(),
        grpc_code,
        attempts: 1,
        began_in_epoch,
        ..RequestOutcome::default()
    }
}

/// (pod, requests, errors, carried-over requests, carried-over errors) of each pod.
fn counts(hub: &EventHub) -> Vec<(String, u64, u64, u64, u64)> {
    hub.counters
        .summaries()
        .0
        .into_iter()
        .map(|p| {
            (
                p.pod_name,
                p.requests,
                p.errors,
                p.carried_over_requests,
                p.carried_over_errors,
            )
        })
        .collect()
}

#[test]
fn a_request_that_began_before_a_mode_change_is_counted_as_carried_over() {
    let hub = hub();
    let before = hub.mode_epoch();
    hub.publish_request(outcome("a", 0, Some(before)));
    hub.publish_mode(Mode::Balanced);
    hub.publish_request(outcome("a", 0, Some(before)));
    hub.publish_request(outcome("a", 4, Some(before)));
    let after = hub.mode_epoch();
    hub.publish_request(outcome("a", 14, Some(after)));
    hub.publish_request(outcome("b", 14, None));
    assert_eq!(
        counts(&hub),
        [("a".to_owned(), 4, 2, 2, 1), ("b".to_owned(), 1, 1, 0, 0)],
        "two of a's began in sticky mode and ended in balanced, one of them failed"
    );
    assert_eq!(
        (hub.totals().carried_over_requests, hub.totals().carried_over_errors),
        (2, 1)
    );
}

#[test]
fn only_a_real_change_of_mode_starts_a_new_epoch() {
    let hub = hub();
    let before = hub.mode_epoch();
    hub.publish_mode(Mode::Sticky);
    assert_eq!(hub.mode_epoch(), before, "the same mode again is no change");
    hub.publish_mode(Mode::Balanced);
    hub.publish_mode(Mode::Sticky);
    assert_eq!(hub.mode_epoch(), before + 2);
    hub.publish_request(outcome("a", 0, Some(before)));
    assert_eq!(
        counts(&hub),
        [("a".to_owned(), 1, 0, 1, 0)],
        "back in the mode it began in, but across two changes"
    );
}
