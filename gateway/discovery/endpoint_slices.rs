//! Kubernetes discovery: the Service's EndpointSlices, watched and merged
//! into one endpoint set.
//!
//! A Service can have many slices; each update replaces one slice's share of
//! the set. A re-list (after a dropped watch or `410 Gone`) is buffered and
//! swapped in whole, so the balancer never sees a half-empty set meanwhile.

mod catch_up;
mod follow;

use std::collections::BTreeMap;

use futures_util::StreamExt;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::runtime::watcher;

use super::{
    DiscoveryHealth, DiscoveryStream, EndpointInfo, EndpointSet, normalize, serve_terminating_when_none_ready,
};

/// Which port of the slices to dial: the named one, else the numbered one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortSelector {
    pub name: String,
    pub number: u16,
}

/// The endpoints of one slice, with readiness as the balancer needs it:
/// ready unless `ready` is false or the endpoint is terminating; one
/// terminating with `serving: true` is flagged `terminating` (not ready
/// here: the whole set decides, see [`SliceAggregator::current`]).
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
            let terminating = conditions.and_then(|c| c.terminating) == Some(true);
            let ready = conditions.and_then(|c| c.ready) != Some(false) && !terminating;
            // As kube-proxy reads them: an unset `serving` counts as true.
            let serving = conditions.and_then(|c| c.serving) != Some(false);
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
                terminating: terminating && serving,
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
    /// during a slice rebalancing counts once); the serving-but-terminating
    /// ones ready only while no other endpoint is.
    pub(crate) fn current(&self) -> EndpointSet {
        serve_terminating_when_none_ready(normalize(self.slices.values().flatten().cloned()))
    }
}

fn slice_key(slice: &EndpointSlice) -> String {
    slice.metadata.name.clone().unwrap_or_default()
}

/// Watches the EndpointSlices labelled `kubernetes.io/service-name=<service>`
/// in `namespace` and yields the merged set on every change. After an error
/// the watch starts over with a list, soon (see `catch_up.rs`); the last set
/// stays in force meanwhile.
pub fn watch(
    client: kube::Client,
    namespace: &str,
    service: &str,
    port: PortSelector,
    health: DiscoveryHealth,
) -> DiscoveryStream {
    let api: Api<EndpointSlice> = Api::namespaced(client, namespace);
    let config = watcher::Config::default().labels(&format!("kubernetes.io/service-name={service}"));
    let (sets, rx) = tokio::sync::mpsc::channel(16);
    let sink = follow::Sink {
        namespace: namespace.to_owned(),
        health,
        sets,
    };
    // No `default_backoff()`: `follow` paces the retries itself.
    let start = move || watcher(api.clone(), config.clone()).boxed();
    tokio::spawn(follow::follow(start, port, sink, catch_up::CatchUp::new()));
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
}

#[cfg(test)]
mod tests;
