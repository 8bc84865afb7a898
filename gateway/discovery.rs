//! Endpoint discovery: every source yields whole endpoint sets as a stream,
//! so the balancer never cares where they came from.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use futures_util::Stream;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::WatchStream;

pub use crate::resolve::name_has_no_addresses;
use crate::resolve::{Lookup, ResolveLoop, Resolver};

mod endpoint_slices;
mod health;
/// The Kubernetes source: every EndpointSlice of a Service, merged.
pub use endpoint_slices::{PortSelector, watch as endpoint_slices};
pub use health::DiscoveryHealth;

/// One upstream endpoint.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EndpointInfo {
    /// `host:port` to dial.
    pub address: String,
    /// The pod behind the address, when the source knows it.
    pub pod_name: Option<String>,
    /// Not-ready endpoints are kept in the set (to be shown) but get no traffic.
    pub ready: bool,
    /// Terminating but still serving (an EndpointSlice's `serving: true,
    /// terminating: true`). Such an endpoint is ready only while no other
    /// endpoint of the Service is, as kube-proxy does: then it is "serving
    /// while terminating".
    pub terminating: bool,
}

impl EndpointInfo {
    pub fn ready(address: impl Into<String>) -> Self {
        EndpointInfo {
            address: address.into(),
            pod_name: None,
            ready: true,
            terminating: false,
        }
    }

    pub fn with_pod_name(mut self, pod_name: impl Into<String>) -> Self {
        self.pod_name = Some(pod_name.into());
        self
    }

    pub fn to_proto(&self) -> greet_proto::observe::Endpoint {
        greet_proto::observe::Endpoint {
            address: self.address.clone(),
            pod_name: self.pod_name.clone().unwrap_or_default(),
            ready: self.ready,
            serving_terminating: self.terminating,
            ..Default::default()
        }
    }
}

/// The whole current set of endpoints, sorted by address, one entry per address.
pub type EndpointSet = Vec<EndpointInfo>;

/// A source of endpoint sets. Each item replaces the previous set; when the
/// stream ends, the last set stays in force.
pub type DiscoveryStream = Pin<Box<dyn Stream<Item = EndpointSet> + Send>>;

/// Sorts by address and keeps one entry per address; where duplicates
/// disagree, a ready entry and a known pod name win (a plainly ready entry
/// over a terminating one).
pub fn normalize(endpoints: impl IntoIterator<Item = EndpointInfo>) -> EndpointSet {
    let mut by_address: BTreeMap<String, EndpointInfo> = BTreeMap::new();
    for endpoint in endpoints {
        match by_address.get_mut(&endpoint.address) {
            None => {
                by_address.insert(endpoint.address.clone(), endpoint);
            }
            Some(existing) => {
                let plainly_ready = |e: &EndpointInfo| e.ready && !e.terminating;
                existing.terminating = if plainly_ready(existing) || plainly_ready(&endpoint) {
                    false
                } else {
                    existing.terminating || endpoint.terminating
                };
                existing.ready |= endpoint.ready;
                if existing.pod_name.is_none() {
                    existing.pod_name = endpoint.pod_name;
                }
            }
        }
    }
    by_address.into_values().collect()
}

/// kube-proxy's fallback: when no endpoint of `set` is ready, the ones
/// terminating but still serving take the traffic (a rolling update of a
/// one-replica Service keeps answering); otherwise they get none.
pub fn serve_terminating_when_none_ready(mut set: EndpointSet) -> EndpointSet {
    let none_ready = !set.iter().any(|e| e.ready && !e.terminating);
    for endpoint in set.iter_mut().filter(|e| e.terminating) {
        endpoint.ready = none_ready;
    }
    set
}

/// The endpoints that take traffic only because none is ready (serving while terminating).
pub fn serving_while_terminating(set: &[EndpointInfo]) -> impl Iterator<Item = &EndpointInfo> {
    set.iter().filter(|e| e.ready && e.terminating)
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EndpointListError {
    #[error("endpoint {0:?} is not host:port (e.g. 10.0.0.5:50051)")]
    NotHostPort(String),
    #[error("endpoint {0:?} has an invalid port: use a number from 1 to 65535")]
    BadPort(String),
}

/// Parses `--endpoints host:port,host:port,...`; an empty string is an empty set.
pub fn parse_endpoint_list(list: &str) -> Result<EndpointSet, EndpointListError> {
    let mut endpoints = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (host, port) = item
            .rsplit_once(':')
            .filter(|(host, _)| !host.is_empty())
            .ok_or_else(|| EndpointListError::NotHostPort(item.to_owned()))?;
        match port.parse::<u16>() {
            Ok(p) if p > 0 => {}
            _ => return Err(EndpointListError::BadPort(item.to_owned())),
        }
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(EndpointListError::NotHostPort(item.to_owned()));
        }
        endpoints.push(EndpointInfo::ready(item));
    }
    Ok(normalize(endpoints))
}

/// A fixed set, emitted once.
pub fn static_endpoints(set: EndpointSet) -> DiscoveryStream {
    Box::pin(tokio_stream::once(normalize(set)))
}

/// Endpoint sets pushed through a watch channel (the demo's registry, tests).
pub fn from_watch(rx: tokio::sync::watch::Receiver<EndpointSet>) -> DiscoveryStream {
    Box::pin(WatchStream::new(rx).map(normalize))
}

/// The endpoint set of resolved socket addresses (one per address).
pub fn endpoints_from_addrs(addrs: impl IntoIterator<Item = SocketAddr>) -> EndpointSet {
    normalize(addrs.into_iter().map(|addr| EndpointInfo::ready(addr.to_string())))
}

/// Re-resolves `host:port` every `interval` (a headless Service's DNS name
/// returns one address per ready pod) and yields the set whenever it changes.
/// A name with no addresses twice in a row is an empty set (no ready pod);
/// any other failed lookup keeps the previous set: a DNS hiccup must not
/// empty the balancer.
pub fn dns(host: String, port: u16, interval: Duration, health: DiscoveryHealth) -> DiscoveryStream {
    dns_with(
        Resolver::system(host.clone(), port),
        format!("{host}:{port}"),
        interval,
        health,
    )
}

/// [`dns`] with the resolver given: the same loop (and the same time limit
/// on a lookup that never answers) as `dns` mode's.
pub fn dns_with(resolver: Resolver, name: String, interval: Duration, health: DiscoveryHealth) -> DiscoveryStream {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tokio::spawn(async move {
        let mut lookups = ResolveLoop::new(resolver, interval);
        let mut last: Option<EndpointSet> = None;
        let mut no_addresses_in_a_row = 0;
        let mut last_answer = tokio::time::Instant::now();
        loop {
            let set = match lookups.next().await {
                Lookup::Found(addrs) => {
                    no_addresses_in_a_row = 0;
                    Ok(endpoints_from_addrs(addrs))
                }
                Lookup::NoSuchName(error) => {
                    no_addresses_in_a_row += 1;
                    if no_addresses_in_a_row >= 2 {
                        Ok(EndpointSet::new())
                    } else {
                        Err(format!("the name has no addresses: {error}"))
                    }
                }
                Lookup::Failed(error) => Err(format!("the lookup failed: {error}")),
            };
            match set {
                Ok(set) => {
                    last_answer = tokio::time::Instant::now();
                    health.recovered();
                    if last.as_ref() != Some(&set) {
                        last = Some(set.clone());
                        if tx.send(set).await.is_err() {
                            return;
                        }
                    }
                }
                Err(problem) => {
                    health.kept_stale(last_answer);
                    tracing::warn!("resolving {name} for DNS discovery: {problem}; keeping the last endpoint set");
                }
            }
            if tx.is_closed() {
                return;
            }
        }
    });
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
}

impl Resolver {
    /// Answers with the ready addresses of a watched endpoint set, as a
    /// headless Service's DNS name does (the demo's registry): no ready
    /// endpoint is a name with no addresses.
    pub fn from_watch(set: tokio::sync::watch::Receiver<EndpointSet>) -> Self {
        Resolver::new(move || {
            let addresses: Vec<SocketAddr> = set
                .borrow()
                .iter()
                .filter(|e| e.ready)
                .filter_map(|e| e.address.parse().ok())
                .collect();
            Box::pin(async move {
                if addresses.is_empty() {
                    return Err(std::io::Error::new(std::io::ErrorKind::NotFound, "no ready pod"));
                }
                Ok(addresses)
            })
        })
    }
}

#[cfg(test)]
mod tests;
