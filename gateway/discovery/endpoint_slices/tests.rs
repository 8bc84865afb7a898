use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::*;

pub(super) fn grpc() -> PortSelector {
    PortSelector {
        name: "grpc".into(),
        number: 50051,
    }
}

/// (ip, pod, ready, terminating)
pub(super) fn slice(
    name: &str,
    port: (&str, i32),
    endpoints: &[(&str, &str, Option<bool>, Option<bool>)],
) -> EndpointSlice {
    EndpointSlice {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        address_type: "IPv4".into(),
        ports: Some(vec![EndpointPort {
            name: Some(port.0.into()),
            port: Some(port.1),
            ..EndpointPort::default()
        }]),
        endpoints: endpoints
            .iter()
            .map(|(ip, pod, ready, terminating)| Endpoint {
                addresses: vec![(*ip).into()],
                conditions: Some(EndpointConditions {
                    ready: *ready,
                    serving: *ready,
                    terminating: *terminating,
                }),
                target_ref: Some(ObjectReference {
                    kind: Some("Pod".into()),
                    name: Some((*pod).into()),
                    ..ObjectReference::default()
                }),
                ..Endpoint::default()
            })
            .collect(),
    }
}

fn summary(set: &EndpointSet) -> Vec<(String, String, bool)> {
    set.iter()
        .map(|e| (e.address.clone(), e.pod_name.clone().unwrap_or_default(), e.ready))
        .collect()
}

#[test]
fn readiness_follows_ready_and_terminating() {
    let s = slice(
        "a",
        ("grpc", 50051),
        &[
            ("10.0.0.1", "p1", Some(true), Some(false)),
            ("10.0.0.2", "p2", None, None),
            ("10.0.0.3", "p3", Some(false), None),
            ("10.0.0.4", "p4", Some(true), Some(true)),
        ],
    );
    assert_eq!(
        summary(&endpoints_of(&s, &grpc())),
        [
            ("10.0.0.1:50051".into(), "p1".into(), true),
            ("10.0.0.2:50051".into(), "p2".into(), true),
            ("10.0.0.3:50051".into(), "p3".into(), false),
            ("10.0.0.4:50051".into(), "p4".into(), false),
        ]
    );
}

#[test]
fn port_is_picked_by_name_then_number() {
    let by_name = slice("a", ("grpc", 8080), &[("10.0.0.1", "p", None, None)]);
    assert_eq!(endpoints_of(&by_name, &grpc())[0].address, "10.0.0.1:8080");
    let by_number = slice("a", ("other", 50051), &[("10.0.0.1", "p", None, None)]);
    assert_eq!(endpoints_of(&by_number, &grpc())[0].address, "10.0.0.1:50051");
    let neither = slice("a", ("http", 80), &[("10.0.0.1", "p", None, None)]);
    assert!(endpoints_of(&neither, &grpc()).is_empty());
    let mut v6 = slice("a", ("grpc", 50051), &[("fd00::1", "p", None, None)]);
    v6.address_type = "IPv6".into();
    assert_eq!(endpoints_of(&v6, &grpc())[0].address, "[fd00::1]:50051");
}

#[test]
fn slices_are_aggregated_replaced_and_removed() {
    let mut agg = SliceAggregator::new(grpc());
    assert_eq!(agg.apply(watcher::Event::Init), None);
    agg.apply(watcher::Event::InitApply(slice(
        "s1",
        ("grpc", 50051),
        &[("10.0.0.1", "p1", None, None)],
    )));
    agg.apply(watcher::Event::InitApply(slice(
        "s2",
        ("grpc", 50051),
        &[("10.0.0.2", "p2", None, None)],
    )));
    let set = agg.apply(watcher::Event::InitDone).unwrap();
    assert_eq!(set.len(), 2);

    // s1 changes: its share is replaced, s2's stays.
    let set = agg
        .apply(watcher::Event::Apply(slice(
            "s1",
            ("grpc", 50051),
            &[("10.0.0.1", "p1", Some(false), None), ("10.0.0.3", "p3", None, None)],
        )))
        .unwrap();
    assert_eq!(
        summary(&set),
        [
            ("10.0.0.1:50051".into(), "p1".into(), false),
            ("10.0.0.2:50051".into(), "p2".into(), true),
            ("10.0.0.3:50051".into(), "p3".into(), true),
        ]
    );
    let set = agg
        .apply(watcher::Event::Delete(slice("s2", ("grpc", 50051), &[])))
        .unwrap();
    assert_eq!(set.len(), 2);
    assert!(set.iter().all(|e| e.address != "10.0.0.2:50051"));
}

#[test]
fn a_pod_in_two_slices_counts_once() {
    let mut agg = SliceAggregator::new(grpc());
    agg.apply(watcher::Event::Apply(slice(
        "s1",
        ("grpc", 50051),
        &[("10.0.0.1", "p1", None, None)],
    )));
    let set = agg
        .apply(watcher::Event::Apply(slice(
            "s2",
            ("grpc", 50051),
            &[("10.0.0.1", "p1", None, None)],
        )))
        .unwrap();
    assert_eq!(set.len(), 1);
}

#[test]
fn relist_keeps_the_old_set_until_done_then_replaces_it() {
    let mut agg = SliceAggregator::new(grpc());
    agg.apply(watcher::Event::Apply(slice(
        "old",
        ("grpc", 50051),
        &[("10.0.0.1", "p1", None, None)],
    )));
    assert_eq!(agg.apply(watcher::Event::Init), None);
    assert_eq!(agg.current().len(), 1, "the set stays while re-listing");
    agg.apply(watcher::Event::InitApply(slice(
        "new",
        ("grpc", 50051),
        &[("10.0.0.9", "p9", None, None)],
    )));
    assert_eq!(summary(&agg.current())[0].0, "10.0.0.1:50051");
    let set = agg.apply(watcher::Event::InitDone).unwrap();
    assert_eq!(summary(&set), [("10.0.0.9:50051".into(), "p9".into(), true)]);
}

/// (address, ready, terminating) of each endpoint.
fn routing(set: &EndpointSet) -> Vec<(String, bool, bool)> {
    set.iter()
        .map(|e| (e.address.clone(), e.ready, e.terminating))
        .collect()
}

#[test]
fn serving_terminating_endpoints_take_traffic_only_while_none_is_ready() {
    let mut agg = SliceAggregator::new(grpc());
    // (ip, pod, ready = serving, terminating)
    let set = agg
        .apply(watcher::Event::Apply(slice(
            "s1",
            ("grpc", 50051),
            &[
                ("10.0.0.1", "p1", Some(true), Some(false)),
                ("10.0.0.2", "p2", Some(true), Some(true)),
                ("10.0.0.3", "p3", Some(false), Some(true)),
            ],
        )))
        .unwrap();
    assert_eq!(
        routing(&set),
        [
            ("10.0.0.1:50051".into(), true, false),
            ("10.0.0.2:50051".into(), false, true),
            ("10.0.0.3:50051".into(), false, false),
        ]
    );
    assert_eq!(serving_while_terminating_addresses(&set), Vec::<String>::new());

    // The ready one is gone: the serving one of the terminating ones takes over.
    let set = agg
        .apply(watcher::Event::Apply(slice(
            "s1",
            ("grpc", 50051),
            &[
                ("10.0.0.2", "p2", Some(true), Some(true)),
                ("10.0.0.3", "p3", Some(false), Some(true)),
            ],
        )))
        .unwrap();
    assert_eq!(
        routing(&set),
        [
            ("10.0.0.2:50051".into(), true, true),
            ("10.0.0.3:50051".into(), false, false),
        ]
    );
    assert_eq!(serving_while_terminating_addresses(&set), ["10.0.0.2:50051"]);

    // A ready endpoint in another slice ends the fallback.
    let set = agg
        .apply(watcher::Event::Apply(slice(
            "s2",
            ("grpc", 50051),
            &[("10.0.0.4", "p4", None, None)],
        )))
        .unwrap();
    assert_eq!(
        routing(&set),
        [
            ("10.0.0.2:50051".into(), false, true),
            ("10.0.0.3:50051".into(), false, false),
            ("10.0.0.4:50051".into(), true, false),
        ]
    );
}

#[test]
fn an_unset_serving_condition_counts_as_serving_as_kube_proxy_reads_it() {
    let mut s = slice("a", ("grpc", 50051), &[("10.0.0.1", "p1", None, Some(true))]);
    let conditions = s.endpoints[0].conditions.as_mut().unwrap();
    conditions.ready = Some(false);
    conditions.serving = None;
    assert_eq!(
        routing(&endpoints_of(&s, &grpc())),
        [("10.0.0.1:50051".into(), false, true)]
    );
}

#[test]
fn a_pod_ready_in_one_slice_and_terminating_in_another_is_plainly_ready() {
    let mut agg = SliceAggregator::new(grpc());
    agg.apply(watcher::Event::Apply(slice(
        "s1",
        ("grpc", 50051),
        &[("10.0.0.1", "p1", Some(true), Some(true))],
    )));
    let set = agg
        .apply(watcher::Event::Apply(slice(
            "s2",
            ("grpc", 50051),
            &[("10.0.0.1", "p1", Some(true), Some(false))],
        )))
        .unwrap();
    assert_eq!(routing(&set), [("10.0.0.1:50051".into(), true, false)]);
}

fn serving_while_terminating_addresses(set: &EndpointSet) -> Vec<String> {
    crate::discovery::serving_while_terminating(set)
        .map(|e| e.address.clone())
        .collect()
}
