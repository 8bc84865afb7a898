//! Kubernetes discovery: the Service's EndpointSlices, watched and merged
//! into one endpoint set.
//!
//! A Service can have many slices; each update replaces one slice's share of
//! the set. A re-list (after a dropped watch or `410 Gone`) is buffered and
//! swapped in whole, so the balancer never sees a half-empty set meanwhile.

use std::collections::BTreeMap;

use futures_util::StreamExt;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::runtime::{WatchStreamExt, watcher};

use super::discovery::{DiscoveryHealth, DiscoveryStream, EndpointInfo, EndpointSet, normalize};

/// Which port of the slices to dial: the named one, else the numbered one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortSelector {
    pub name: String,
    pub number: u16,
}

/// The endpoints of one slice, with readiness as the balancer needs it:
/// ready unless `ready` is false or the endpoint is terminating.
pub(crate) fn endpoints_of(slice: &EndpointSlice, port: &PortSelector) -> EndpointSet {
    let ports = slice.ports.as_deref().unwrap_or_default();
    let by_name = ports.iter().find(|p| p.name.as_deref() == Some(port.name.as_str()));
    let by_number = ports.iter().find(|p| p.port == Some(i32::from(port.number)));
    let Some(number) = by_name.or(by_number).and_then(|p| p.port) else {
        return Vec::new();
    };
    let ipv6 = slice.address_type == "IPv6";
    slice
        .endpoints
        .iter()
        .flat_map(|endpoint| {
            let conditions = endpoint.conditions.as_ref();
            let ready =
                conditions.and_then(|c| c.ready) != Some(false) && conditions.and_then(|c| c.terminating) != Some(true);
            let pod_name = endpoint
                .target_ref
                .as_ref()
                .filter(|r| r.kind.as_deref().is_none_or(|k| k == "Pod"))
                .and_then(|r| r.name.clone());
            endpoint.addresses.iter().map(move |address| EndpointInfo {
                address: if ipv6 {
                    format!("[{address}]:{number}")
                } else {
                    format!("{address}:{number}")
                },
                pod_name: pod_name.clone(),
                ready,
            })
        })
        .collect()
}

/// The merged endpoint set of all slices of one Service.
#[derive(Debug)]
pub(crate) struct SliceAggregator {
    port: PortSelector,
    slices: BTreeMap<String, EndpointSet>,
    /// Slices of a re-list in progress; swapped in at `InitDone`.
    relisting: Option<BTreeMap<String, EndpointSet>>,
}

impl SliceAggregator {
    pub(crate) fn new(port: PortSelector) -> Self {
        SliceAggregator {
            port,
            slices: BTreeMap::new(),
            relisting: None,
        }
    }

    /// Folds in one watcher event; returns the new set when it may have changed.
    pub(crate) fn apply(&mut self, event: watcher::Event<EndpointSlice>) -> Option<EndpointSet> {
        match event {
            watcher::Event::Init => {
                self.relisting = Some(BTreeMap::new());
                None
            }
            watcher::Event::InitApply(slice) => {
                let endpoints = endpoints_of(&slice, &self.port);
                self.relisting
                    .get_or_insert_with(BTreeMap::new)
                    .insert(slice_key(&slice), endpoints);
                None
            }
            watcher::Event::InitDone => {
                self.slices = self.relisting.take().unwrap_or_default();
                Some(self.current())
            }
            watcher::Event::Apply(slice) => {
                self.slices.insert(slice_key(&slice), endpoints_of(&slice, &self.port));
                Some(self.current())
            }
            watcher::Event::Delete(slice) => {
                self.slices.remove(&slice_key(&slice));
                Some(self.current())
            }
        }
    }

    /// All slices' endpoints, one per address (a pod listed in two slices
    /// during a slice rebalancing counts once).
    pub(crate) fn current(&self) -> EndpointSet {
        normalize(self.slices.values().flatten().cloned())
    }
}

fn slice_key(slice: &EndpointSlice) -> String {
    slice.metadata.name.clone().unwrap_or_default()
}

/// Watches the EndpointSlices labelled `kubernetes.io/service-name=<service>`
/// in `namespace` and yields the merged set on every change. Watch errors are
/// retried with kube's default backoff; the last set stays in force meanwhile.
pub fn watch(
    client: kube::Client,
    namespace: &str,
    service: &str,
    port: PortSelector,
    health: DiscoveryHealth,
) -> DiscoveryStream {
    let api: Api<EndpointSlice> = Api::namespaced(client, namespace);
    let config = watcher::Config::default().labels(&format!("kubernetes.io/service-name={service}"));
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let namespace = namespace.to_owned();
    tokio::spawn(async move {
        let mut aggregator = SliceAggregator::new(port);
        let mut last: Option<EndpointSet> = None;
        let mut events = watcher(api, config).default_backoff().boxed();
        while let Some(event) = events.next().await {
            match event {
                Ok(event) => {
                    health.recovered();
                    let Some(set) = aggregator.apply(event) else { continue };
                    if last.as_ref() == Some(&set) {
                        continue;
                    }
                    last = Some(set.clone());
                    if tx.send(set).await.is_err() {
                        return;
                    }
                }
                Err(err) => {
                    let problem = kube_access::describe_watch_error(
                        &err,
                        "endpointslices.discovery.k8s.io",
                        &namespace,
                        "apply k8s/greetclient-rbac.yaml",
                    );
                    tracing::warn!("EndpointSlice watch: {problem}; retrying, keeping the last endpoint set");
                    health.failing(format!("EndpointSlice watch: {problem}"));
                }
            }
        }
    });
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::ObjectReference;
    use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    fn grpc() -> PortSelector {
        PortSelector {
            name: "grpc".into(),
            number: 50051,
        }
    }

    /// (ip, pod, ready, terminating)
    fn slice(name: &str, port: (&str, i32), endpoints: &[(&str, &str, Option<bool>, Option<bool>)]) -> EndpointSlice {
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
}
