//! The fake's state: the objects, their history of changes, and what tests switched on.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::pod_proxy::ProxyCounters;

/// The resources the fake knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Kind {
    Pods,
    EndpointSlices,
}

impl Kind {
    pub(crate) fn from_plural(plural: &str) -> Option<Kind> {
        match plural {
            "pods" => Some(Kind::Pods),
            "endpointslices" => Some(Kind::EndpointSlices),
            _ => None,
        }
    }

    pub(crate) fn plural(self) -> &'static str {
        match self {
            Kind::Pods => "pods",
            Kind::EndpointSlices => "endpointslices",
        }
    }

    pub(crate) fn group(self) -> &'static str {
        match self {
            Kind::Pods => "",
            Kind::EndpointSlices => "discovery.k8s.io",
        }
    }

    /// `pods`, `endpointslices.discovery.k8s.io`: how the API server names a resource in messages.
    pub(crate) fn qualified(self) -> String {
        match self.group() {
            "" => self.plural().to_owned(),
            group => format!("{}.{group}", self.plural()),
        }
    }

    pub(crate) fn kind(self) -> &'static str {
        match self {
            Kind::Pods => "Pod",
            Kind::EndpointSlices => "EndpointSlice",
        }
    }

    pub(crate) fn api_version(self) -> &'static str {
        match self {
            Kind::Pods => "v1",
            Kind::EndpointSlices => "discovery.k8s.io/v1",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChangeType {
    Added,
    Modified,
    Deleted,
}

/// One committed change, as kept in the history and sent to live watches.
#[derive(Debug)]
pub(crate) struct Change {
    pub(crate) rv: u64,
    pub(crate) kind: Kind,
    pub(crate) namespace: String,
    pub(crate) change: ChangeType,
    /// The object after the change (for a delete: its last state, with the delete's resourceVersion).
    pub(crate) object: Arc<Value>,
    /// The object before the change (None for an add).
    pub(crate) previous: Option<Arc<Value>>,
}

type ObjectKey = (Kind, String, String);

pub(crate) struct Inner {
    pub(crate) rv: u64,
    pub(crate) objects: BTreeMap<ObjectKey, Arc<Value>>,
    pub(crate) history: Vec<Arc<Change>>,
    /// A watch from a resourceVersion below this gets 410 Gone.
    pub(crate) expired_below: u64,
    pub(crate) forbidden: HashSet<Kind>,
    /// `forbid("pods/portforward", true)`.
    pub(crate) port_forward_forbidden: bool,
    /// (namespace, pod) -> where every port forwarded to that pod goes.
    pub(crate) port_forward_targets: BTreeMap<(String, String), SocketAddr>,
    /// Port-forward requests answered with 101.
    pub(crate) port_forward_count: usize,
    /// `forbid("pods/proxy", true)`.
    pub(crate) pod_proxy_forbidden: bool,
    /// (namespace, pod, port) -> the loopback address standing in for the pod's IP and that port.
    pub(crate) pod_proxy_targets: BTreeMap<(String, String, u16), SocketAddr>,
    /// How long one proxied request may take, connect to last body byte.
    pub(crate) pod_proxy_time_limit: Duration,
    pub(crate) requests: Vec<String>,
    pub(crate) watch_count: usize,
    /// Cancelled (and replaced) by `drop_watches`; every watch holds the one current at its start.
    /// A child of `instance_stop`, so a watch that starts on an old keep-alive connection after a
    /// restart began ends at once instead of holding the stopped server open.
    pub(crate) drop_token: CancellationToken,
    /// Stops the server instance now serving (see `FakeKube::restart`).
    pub(crate) instance_stop: CancellationToken,
    pub(crate) next_uid: u64,
}

pub(crate) struct Shared {
    pub(crate) inner: Mutex<Inner>,
    pub(crate) changes: broadcast::Sender<Arc<Change>>,
    pub(crate) shutdown: CancellationToken,
    pub(crate) proxy_counters: ProxyCounters,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl ChangeType {
    pub(crate) fn from_previous(existed: bool) -> ChangeType {
        if existed {
            ChangeType::Modified
        } else {
            ChangeType::Added
        }
    }
}
