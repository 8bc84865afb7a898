//! A fake Kubernetes API server for tests, spoken to by the real `kube::Client`.
//!
//! [`FakeKube::start`] serves plain HTTP on `127.0.0.1:<free port>`; [`FakeKube::client`] builds a
//! `kube::Client` from a generated kubeconfig (static bearer token, current context with a
//! namespace), so code under test goes through the same config, HTTP and watch machinery as in a
//! cluster.
//!
//! What it serves (GET only; anything else is a `Status` JSON error like the real API server's):
//!
//! | path | does |
//! |---|---|
//! | `/api/v1/namespaces/{ns}/pods/{name}/portforward?ports=P[,P...]` | WebSocket port-forward, see below |
//! | `/api/v1/namespaces/{ns}/pods` | list, or watch with `watch=true` |
//! | `/api/v1/pods` | list, or watch (all namespaces) |
//! | `/api/v1/namespaces/{ns}/pods/{name}` | get |
//! | `/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices` | list, or watch |
//! | `/apis/discovery.k8s.io/v1/endpointslices` | list, or watch (all namespaces) |
//! | `/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices/{name}` | get |
//!
//! Semantics, as far as `kube::Api` and `kube::runtime::watcher` need them:
//!
//! - One global resourceVersion, an integer as a string, bumped by every change. Stored objects
//!   carry theirs in `metadata.resourceVersion`; a list carries the current one in its metadata.
//! - `labelSelector` (`k=v`, `k==v`, `k!=v`, `k`, `!k`, comma-separated, all must hold) and
//!   `fieldSelector` (`metadata.name`, `metadata.namespace`, same operators) filter lists and
//!   watches. Set-based selectors (`k in (a,b)`) answer 400.
//! - A watch replays the history after the given resourceVersion, then streams live changes, one
//!   JSON `WatchEvent` per line of a chunked `application/json` body. A change that moves an object
//!   into the selector is sent as `ADDED`, out of it as `DELETED`, as the API server's watch cache
//!   does. Without a resourceVersion (or with `"0"`) it first sends `ADDED` for every current match;
//!   with `sendInitialEvents=true` it also follows those with the `k8s.io/initial-events-end`
//!   bookmark (streaming lists).
//! - With `allowWatchBookmarks=true` a `BOOKMARK` carrying the newest resourceVersion the watch has
//!   accounted for goes out every [`BOOKMARK_INTERVAL`]; `timeoutSeconds` ends the response cleanly
//!   after that long.
//! - A watch from a resourceVersion older than the last [`FakeKube::expire_history`] answers 200 with
//!   a single `ERROR` event holding a 410 `Expired` `Status`, then ends, exactly as the API server's
//!   watch cache does. kube 5's watcher re-lists on that ERROR event (`watcher::Error::WatchError`,
//!   then `Init`...`InitDone`). It would *not* re-list on an HTTP 410 answer to the watch request: that
//!   surfaces as `WatchStartFailed` and the watcher retries the same resourceVersion forever, which is
//!   why the fake never answers a watch that way.
//! - Requests need `Authorization: Bearer <the kubeconfig's token>` (else 401).
//!
//! Port-forward (`Api::<Pod>::portforward`), as the API server and kubelet do it for kube 5's client:
//!
//! - kube 5 sends `GET .../pods/{name}/portforward?&ports=9092` with `Upgrade: websocket`,
//!   `Connection: Upgrade`, `Sec-WebSocket-Version: 13`, a `Sec-WebSocket-Key` and
//!   `Sec-WebSocket-Protocol: v5.channel.k8s.io, v4.channel.k8s.io`. The kubelet's port-forward
//!   speaks no v5, so the fake answers `101` with `v4.channel.k8s.io` and the `Sec-WebSocket-Accept`
//!   kube checks (it also wants `Upgrade: websocket` and `Connection: Upgrade` back).
//! - Checked before upgrading, in the API server's order: 401; 405 for a method other than GET
//!   (SPDY's POST is not spoken); 403 if [`FakeKube::forbid`]`("pods/portforward", true)` (verb
//!   `create`, as RBAC wants for a WebSocket port-forward); 404 for an unknown pod; 404 if no
//!   [`FakeKube::port_forward_to`] target is registered for the pod (a fake-only answer); 400 for a
//!   missing or bad `ports`; 400 for a request that is no WebSocket upgrade or offers no
//!   `v4.channel.k8s.io`. Every request lands in [`FakeKube::requests`].
//! - v4 channel framing: requested port `i` has data channel `2*i` and error channel `2*i+1`; every
//!   binary message starts with its channel byte. Right after the upgrade the server sends, on both
//!   channels of every port, the port number as 2 bytes little-endian (kube checks this). Then each
//!   port gets its own TCP connection to the registered target, and bytes are pumped both ways,
//!   client data arriving on the data channel. If that connection cannot be made, the error channel
//!   carries `error forwarding port P to pod NAME, uid UID: ...` (what kube's `take_error` yields) and
//!   the port is done.
//! - A port is done when its target connection ends (EOF or error) or cannot be made. When all are
//!   done the server sends a WebSocket Close (1000), which kube turns into EOF on every port's stream,
//!   and drops the connection once the client answers the Close (or after [`CLOSE_GRACE`]). v4 has
//!   no per-port half-close: when the client is done (kube sends Close once every port's stream has
//!   been shut down or dropped) the server answers the Close and drops the target connections.
//!   Dropping the [`FakeKube`] cuts every tunnel. (kube 5 quirk: after a server-sent Close, kube
//!   still sends its own Close when the streams are dropped, tungstenite refuses it, and
//!   `Portforwarder::join` returns `SendWebSocketMessage(Protocol(SendAfterClosing))`; a
//!   client-initiated close joins `Ok`. kube's `take_error` future resolves only when its task ends.)
//!
//! All state sits behind one `std::sync::Mutex`; request handling never panics on client input.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use tokio_util::sync::CancellationToken;

/// The bearer token the generated kubeconfig carries and the server demands.
pub const FAKE_TOKEN: &str = "fake-kube-token";
/// The user the fake's 403 messages name, as a real API server names the caller.
pub const FAKE_USER: &str = "system:serviceaccount:default:fake-kube-test";
/// How often a watch with `allowWatchBookmarks=true` gets a `BOOKMARK`.
pub const BOOKMARK_INTERVAL: Duration = Duration::from_secs(1);
/// Watch length when the request carries no `timeoutSeconds`.
const DEFAULT_WATCH_TIMEOUT: Duration = Duration::from_secs(1800);
/// Broadcast capacity; a watch that falls further behind than this is ended (cleanly) and resumes.
const BROADCAST_CAPACITY: usize = 4096;
/// The first resourceVersion handed out.
const FIRST_RESOURCE_VERSION: u64 = 100;
/// The port-forward WebSocket subprotocol the fake speaks (the kubelet's; kube 5 also offers v5).
pub const PORT_FORWARD_PROTOCOL: &str = "v4.channel.k8s.io";
/// How long a port-forward tunnel that sent its Close waits for the client's before hanging up.
pub const CLOSE_GRACE: Duration = Duration::from_secs(5);
/// The most ports one port-forward request may name (two channels each, one byte per channel).
const MAX_FORWARDED_PORTS: usize = 128;

/// The resources the fake knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Kind {
    Pods,
    EndpointSlices,
}

impl Kind {
    fn from_plural(plural: &str) -> Option<Kind> {
        match plural {
            "pods" => Some(Kind::Pods),
            "endpointslices" => Some(Kind::EndpointSlices),
            _ => None,
        }
    }

    fn plural(self) -> &'static str {
        match self {
            Kind::Pods => "pods",
            Kind::EndpointSlices => "endpointslices",
        }
    }

    fn group(self) -> &'static str {
        match self {
            Kind::Pods => "",
            Kind::EndpointSlices => "discovery.k8s.io",
        }
    }

    /// `pods`, `endpointslices.discovery.k8s.io`: how the API server names a resource in messages.
    fn qualified(self) -> String {
        match self.group() {
            "" => self.plural().to_owned(),
            group => format!("{}.{group}", self.plural()),
        }
    }

    fn kind(self) -> &'static str {
        match self {
            Kind::Pods => "Pod",
            Kind::EndpointSlices => "EndpointSlice",
        }
    }

    fn api_version(self) -> &'static str {
        match self {
            Kind::Pods => "v1",
            Kind::EndpointSlices => "discovery.k8s.io/v1",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChangeType {
    Added,
    Modified,
    Deleted,
}

/// One committed change, as kept in the history and sent to live watches.
#[derive(Debug)]
struct Change {
    rv: u64,
    kind: Kind,
    namespace: String,
    change: ChangeType,
    /// The object after the change (for a delete: its last state, with the delete's resourceVersion).
    object: Arc<Value>,
    /// The object before the change (None for an add).
    previous: Option<Arc<Value>>,
}

type ObjectKey = (Kind, String, String);

struct Inner {
    rv: u64,
    objects: BTreeMap<ObjectKey, Arc<Value>>,
    history: Vec<Arc<Change>>,
    /// A watch from a resourceVersion below this gets 410 Gone.
    expired_below: u64,
    forbidden: HashSet<Kind>,
    /// `forbid("pods/portforward", true)`.
    port_forward_forbidden: bool,
    /// (namespace, pod) -> where every port forwarded to that pod goes.
    port_forward_targets: BTreeMap<(String, String), SocketAddr>,
    /// Port-forward requests answered with 101.
    port_forward_count: usize,
    requests: Vec<String>,
    watch_count: usize,
    /// Cancelled (and replaced) by `drop_watches`; every watch holds the one current at its start.
    drop_token: CancellationToken,
    next_uid: u64,
}

struct Shared {
    inner: Mutex<Inner>,
    changes: broadcast::Sender<Arc<Change>>,
    shutdown: CancellationToken,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The fake API server. Dropping it stops the server and ends its watches.
pub struct FakeKube {
    addr: SocketAddr,
    shared: Arc<Shared>,
    /// Stops the current server instance (see [`FakeKube::restart`]).
    server: Mutex<(CancellationToken, tokio::task::JoinHandle<()>)>,
}

/// Serves the fake on `listener` until `stop` (or the whole fake's shutdown).
fn serve(listener: TcpListener, shared: Arc<Shared>, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
    let app = Router::new().fallback(handle).with_state(shared);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await;
    })
}

impl FakeKube {
    /// Binds `127.0.0.1:0` and serves in a background tokio task.
    pub async fn start() -> FakeKube {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind fake kube");
        let addr = listener.local_addr().expect("fake kube address");
        let (changes, _) = broadcast::channel(BROADCAST_CAPACITY);
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                rv: FIRST_RESOURCE_VERSION,
                objects: BTreeMap::new(),
                history: Vec::new(),
                expired_below: 0,
                forbidden: HashSet::new(),
                port_forward_forbidden: false,
                port_forward_targets: BTreeMap::new(),
                port_forward_count: 0,
                requests: Vec::new(),
                watch_count: 0,
                drop_token: CancellationToken::new(),
                next_uid: 1,
            }),
            changes,
            shutdown: CancellationToken::new(),
        });
        let stop = shared.shutdown.child_token();
        let task = serve(listener, shared.clone(), stop.clone());
        FakeKube {
            addr,
            shared,
            server: Mutex::new((stop, task)),
        }
    }

    /// Stops the API server (open watches are cut, new connections refused)
    /// for `down_for`, then serves again on the same address with the same
    /// objects and history, as an API server restarts over the same etcd.
    pub async fn restart(&self, down_for: Duration) {
        let (stop, task) = {
            let mut server = self.server.lock().unwrap_or_else(PoisonError::into_inner);
            let placeholder = (CancellationToken::new(), tokio::spawn(async {}));
            std::mem::replace(&mut *server, placeholder)
        };
        // Stop accepting first, then cut the watches, so no new watch can
        // hold the old server open.
        stop.cancel();
        self.drop_watches();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("fake API server stops within 5 s")
            .expect("fake API server task");
        tokio::time::sleep(down_for).await;
        let listener = TcpListener::bind(self.addr)
            .await
            .expect("rebind fake kube on the same address");
        let stop = self.shared.shutdown.child_token();
        let task = serve(listener, self.shared.clone(), stop.clone());
        *self.server.lock().unwrap_or_else(PoisonError::into_inner) = (stop, task);
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kubeconfig whose current context points at this server, authenticates with
    /// [`FAKE_TOKEN`] and defaults to `namespace`.
    pub fn kubeconfig_yaml(&self, namespace: &str) -> String {
        // JSON strings are YAML strings: quote whatever the caller passed.
        let server = Value::String(self.url());
        let namespace = Value::String(namespace.to_owned());
        let token = Value::String(FAKE_TOKEN.to_owned());
        format!(
            "apiVersion: v1
kind: Config
clusters:
- name: fake-kube
  cluster:
    server: {server}
users:
- name: fake-kube-user
  user:
    token: {token}
contexts:
- name: fake-kube
  context:
    cluster: fake-kube
    user: fake-kube-user
    namespace: {namespace}
current-context: fake-kube
preferences: {{}}
"
        )
    }

    /// Writes [`Self::kubeconfig_yaml`] to `dir/kubeconfig` and returns that path.
    pub fn write_kubeconfig(&self, dir: &Path, namespace: &str) -> PathBuf {
        let path = dir.join("kubeconfig");
        std::fs::write(&path, self.kubeconfig_yaml(namespace)).expect("write kubeconfig");
        path
    }

    /// A real `kube::Client` built from [`Self::kubeconfig_yaml`] with
    /// `kube::Config::from_custom_kubeconfig`. Any `HTTPS_PROXY` in the environment is ignored
    /// so the traffic stays on loopback.
    pub async fn client(&self, namespace: &str) -> kube::Client {
        let kubeconfig =
            kube::config::Kubeconfig::from_yaml(&self.kubeconfig_yaml(namespace)).expect("parse kubeconfig");
        let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &kube::config::KubeConfigOptions::default())
            .await
            .expect("kube config from kubeconfig");
        config.proxy_url = None;
        kube::Client::try_from(config).expect("kube client")
    }

    /// Adds an EndpointSlice, or replaces the one with the same namespace and name (`ADDED` /
    /// `MODIFIED` to watchers). Bumps the resourceVersion. Panics without a namespace or name.
    pub fn apply_slice(&self, slice: EndpointSlice) {
        self.apply(
            Kind::EndpointSlices,
            serde_json::to_value(slice).expect("serialize slice"),
        );
    }

    /// Deletes an EndpointSlice (`DELETED` to watchers); no-op if there is none.
    pub fn delete_slice(&self, namespace: &str, name: &str) {
        self.delete(Kind::EndpointSlices, namespace, name);
    }

    /// Adds or replaces a Pod, like [`Self::apply_slice`].
    pub fn apply_pod(&self, pod: Pod) {
        self.apply(Kind::Pods, serde_json::to_value(pod).expect("serialize pod"));
    }

    /// Deletes a Pod (`DELETED` to watchers); no-op if there is none.
    pub fn delete_pod(&self, namespace: &str, name: &str) {
        self.delete(Kind::Pods, namespace, name);
    }

    /// Ends every open watch response abruptly: the connection is closed in the middle of the
    /// chunked body, as when an API server or a load balancer in front of it goes away. Clients
    /// must reconnect and resume from their last resourceVersion. Changes made after this call are
    /// not sent on the old watches. (kube's client reads the cut as an unexpected EOF and just ends
    /// the event stream, so the watcher resumes without yielding an error.)
    pub fn drop_watches(&self) {
        let mut inner = self.shared.lock();
        let old = std::mem::replace(&mut inner.drop_token, CancellationToken::new());
        old.cancel();
    }

    /// Compacts the history: every resourceVersion handed out so far becomes too old to watch
    /// from. The resourceVersion is bumped (as a compaction would) and any later watch from an older
    /// one gets a 410 `Expired` ERROR event, so the client has to re-list. Open watches go on.
    pub fn expire_history(&self) {
        let mut inner = self.shared.lock();
        inner.rv += 1;
        inner.expired_below = inner.rv;
        let below = inner.expired_below;
        inner.history.retain(|change| change.rv >= below);
    }

    /// With `forbidden`, list, watch and get of `resource` (`"pods"` or `"endpointslices"`) answer
    /// 403 with the API server's `Status` (reason `Forbidden`, message naming user, verb, resource,
    /// group and namespace). Open watches go on. `"pods/portforward"` forbids port-forwards (verb
    /// `create`), independently of `"pods"`, as with RBAC; open tunnels go on. Panics on an unknown
    /// resource.
    pub fn forbid(&self, resource: &str, forbidden: bool) {
        if resource == "pods/portforward" {
            self.shared.lock().port_forward_forbidden = forbidden;
            return;
        }
        let kind = Kind::from_plural(resource).unwrap_or_else(|| panic!("fake kube knows no resource {resource:?}"));
        let mut inner = self.shared.lock();
        if forbidden {
            inner.forbidden.insert(kind);
        } else {
            inner.forbidden.remove(&kind);
        }
    }

    /// Port-forwards to pod `namespace/pod` go to `target`: every port a request names gets its own
    /// TCP connection to `target` (so `ports=80,9092` means two connections to the same address).
    /// Replaces an earlier target of that pod; applies to tunnels opened afterwards. The pod itself
    /// must exist (see [`Self::apply_pod`]) when a port-forward is requested, else 404; the target
    /// stays registered if the pod is deleted and re-applied. A target nobody listens on behaves
    /// like a pod port nothing listens on: the upgrade succeeds and the error channel says why.
    pub fn port_forward_to(&self, namespace: &str, pod: &str, target: SocketAddr) {
        self.shared
            .lock()
            .port_forward_targets
            .insert((namespace.to_owned(), pod.to_owned()), target);
    }

    /// How many port-forward tunnels have been opened (requests answered with 101) so far.
    pub fn port_forward_count(&self) -> usize {
        self.shared.lock().port_forward_count
    }

    /// Every request seen, oldest first, as `"METHOD path?query"` (query as sent, percent-encoded;
    /// `"METHOD path"` without one).
    pub fn requests(&self) -> Vec<String> {
        self.shared.lock().requests.clone()
    }

    /// How many list requests (GET on a collection without `watch=true`) reached `resource`
    /// (`"pods"` or `"endpointslices"`), whatever they answered.
    pub fn list_count(&self, resource: &str) -> usize {
        let suffix = format!("/{resource}");
        self.requests()
            .iter()
            .filter(|line| {
                let Some(target) = line.strip_prefix("GET ") else {
                    return false;
                };
                let (path, query) = target.split_once('?').unwrap_or((target, ""));
                path.ends_with(&suffix) && !query.split('&').any(|pair| pair == "watch=true" || pair == "watch=1")
            })
            .count()
    }

    /// How many watch requests (`watch=true` on a known collection) have been received so far,
    /// whatever they answered.
    pub fn watch_count(&self) -> usize {
        self.shared.lock().watch_count
    }

    /// The current (newest) resourceVersion.
    pub fn resource_version(&self) -> String {
        self.shared.lock().rv.to_string()
    }

    fn apply(&self, kind: Kind, mut object: Value) {
        let namespace = object["metadata"]["namespace"]
            .as_str()
            .expect("object needs metadata.namespace")
            .to_owned();
        let name = object["metadata"]["name"]
            .as_str()
            .expect("object needs metadata.name")
            .to_owned();
        object["kind"] = json!(kind.kind());
        object["apiVersion"] = json!(kind.api_version());
        let mut inner = self.shared.lock();
        inner.rv += 1;
        let rv = inner.rv;
        let key = (kind, namespace.clone(), name);
        let previous = inner.objects.get(&key).cloned();
        let metadata = &mut object["metadata"];
        metadata["resourceVersion"] = json!(rv.to_string());
        if metadata.get("uid").is_none_or(Value::is_null) {
            let uid = match &previous {
                Some(previous) => previous["metadata"]["uid"].clone(),
                None => {
                    let n = inner.next_uid;
                    inner.next_uid += 1;
                    json!(format!("00000000-0000-4000-8000-{n:012}"))
                }
            };
            object["metadata"]["uid"] = uid;
        }
        let object = Arc::new(object);
        inner.objects.insert(key, object.clone());
        let change = ChangeType::from_previous(previous.is_some());
        self.commit(&mut inner, kind, namespace, change, object, previous);
    }

    fn delete(&self, kind: Kind, namespace: &str, name: &str) {
        let mut inner = self.shared.lock();
        let Some(previous) = inner.objects.remove(&(kind, namespace.to_owned(), name.to_owned())) else {
            return;
        };
        inner.rv += 1;
        let mut object = (*previous).clone();
        object["metadata"]["resourceVersion"] = json!(inner.rv.to_string());
        self.commit(
            &mut inner,
            kind,
            namespace.to_owned(),
            ChangeType::Deleted,
            Arc::new(object),
            Some(previous),
        );
    }

    /// Records a change at the current resourceVersion and tells the live watches, under the lock
    /// so that a watch starting concurrently sees it exactly once (replayed or live).
    fn commit(
        &self,
        inner: &mut Inner,
        kind: Kind,
        namespace: String,
        change: ChangeType,
        object: Arc<Value>,
        previous: Option<Arc<Value>>,
    ) {
        let change = Arc::new(Change {
            rv: inner.rv,
            kind,
            namespace,
            change,
            object,
            previous,
        });
        inner.history.push(change.clone());
        // No receiver is fine: nobody is watching.
        let _ = self.shared.changes.send(change);
    }
}

impl ChangeType {
    fn from_previous(existed: bool) -> ChangeType {
        if existed {
            ChangeType::Modified
        } else {
            ChangeType::Added
        }
    }
}

impl Drop for FakeKube {
    fn drop(&mut self) {
        self.shared.shutdown.cancel();
        self.shared.lock().drop_token.cancel();
    }
}

/// An EndpointSlice of `service` as the EndpointSlice controller writes it: labels
/// `kubernetes.io/service-name=<service>` and the controller's managed-by, IPv4, one TCP port named
/// `port_name`, and per endpoint `(ip, pod name, ready, terminating)` a target ref to the pod, a
/// node name and conditions `serving = ready`, `terminating`, `ready = ready && !terminating`
/// (the controller's rule; `ready` means "the pod passes its readiness probe").
pub fn endpoint_slice(
    namespace: &str,
    name: &str,
    service: &str,
    port_name: &str,
    port: i32,
    endpoints: &[(&str, &str, bool, bool)],
) -> EndpointSlice {
    let endpoints: Vec<Value> = endpoints
        .iter()
        .map(|&(ip, pod, ready, terminating)| {
            json!({
                "addresses": [ip],
                "conditions": {"ready": ready && !terminating, "serving": ready, "terminating": terminating},
                "nodeName": "fake-node-1",
                "targetRef": {"kind": "Pod", "namespace": namespace, "name": pod},
            })
        })
        .collect();
    serde_json::from_value(json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {
                "kubernetes.io/service-name": service,
                "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
            },
            "creationTimestamp": "2025-01-01T00:00:00Z",
        },
        "addressType": "IPv4",
        "ports": [{"name": port_name, "port": port, "protocol": "TCP"}],
        "endpoints": endpoints,
    }))
    .expect("valid EndpointSlice")
}

/// A running Pod: `labels`, pod IP `ip`, node `fake-node-1`, a creationTimestamp, one container
/// `greetserver` (running, restartCount 0) and `Ready`/`ContainersReady` conditions set to `ready`.
pub fn pod(namespace: &str, name: &str, labels: &[(&str, &str)], ip: &str, ready: bool) -> Pod {
    let labels: BTreeMap<&str, &str> = labels.iter().copied().collect();
    let condition = if ready { "True" } else { "False" };
    let started = "2025-01-01T00:00:01Z";
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels,
            "creationTimestamp": "2025-01-01T00:00:00Z",
        },
        "spec": {
            "nodeName": "fake-node-1",
            "containers": [{"name": "greetserver", "image": "greet-top:test"}],
        },
        "status": {
            "phase": "Running",
            "hostIP": "10.0.0.1",
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "startTime": started,
            "conditions": [
                {"type": "Initialized", "status": "True", "lastTransitionTime": started},
                {"type": "Ready", "status": condition, "lastTransitionTime": started},
                {"type": "ContainersReady", "status": condition, "lastTransitionTime": started},
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": started},
            ],
            "containerStatuses": [{
                "name": "greetserver",
                "image": "greet-top:test",
                "imageID": "sha256:0000000000000000000000000000000000000000000000000000000000000000",
                "ready": ready,
                "started": true,
                "restartCount": 0,
                "state": {"running": {"startedAt": started}},
            }],
        },
    }))
    .expect("valid Pod")
}

// ---------------------------------------------------------------------------------------------
// Request handling

/// Which objects a request is about.
struct Target {
    kind: Kind,
    namespace: Option<String>,
    name: Option<String>,
}

impl Target {
    fn parse(path: &str) -> Option<Target> {
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let (kind, rest) = match segments.as_slice() {
            ["api", "v1", rest @ ..] => (Kind::Pods, rest),
            ["apis", "discovery.k8s.io", "v1", rest @ ..] => (Kind::EndpointSlices, rest),
            _ => return None,
        };
        let (namespace, plural, name) = match rest {
            [plural] => (None, *plural, None),
            ["namespaces", ns, plural] => (Some(*ns), *plural, None),
            ["namespaces", ns, plural, name] => (Some(*ns), *plural, Some(*name)),
            _ => return None,
        };
        if Kind::from_plural(plural) != Some(kind) || [namespace, name].into_iter().flatten().any(str::is_empty) {
            return None;
        }
        Some(Target {
            kind,
            namespace: namespace.map(str::to_owned),
            name: name.map(str::to_owned),
        })
    }

    fn contains(&self, kind: Kind, namespace: &str) -> bool {
        self.kind == kind && self.namespace.as_deref().is_none_or(|ns| ns == namespace)
    }
}

/// `Status` JSON with `code` and the matching HTTP status.
fn status_response(code: StatusCode, reason: &str, message: &str, details: Option<Value>) -> Response {
    (code, json_body(&status_object(code.as_u16(), reason, message, details))).into_response()
}

fn status_object(code: u16, reason: &str, message: &str, details: Option<Value>) -> Value {
    let mut status = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    });
    if let Some(details) = details {
        status["details"] = details;
    }
    status
}

fn json_body(value: &Value) -> ([(header::HeaderName, &'static str); 1], String) {
    ([(header::CONTENT_TYPE, "application/json")], value.to_string())
}

fn bad_request(message: &str) -> Response {
    status_response(StatusCode::BAD_REQUEST, "BadRequest", message, None)
}

fn forbidden(kind: Kind, verb: &str, namespace: Option<&str>) -> Response {
    let scope = match namespace {
        Some(ns) => format!("in the namespace \"{ns}\""),
        None => "at the cluster scope".to_owned(),
    };
    let message = format!(
        "{} is forbidden: User \"{FAKE_USER}\" cannot {verb} resource \"{}\" in API group \"{}\" {scope}",
        kind.qualified(),
        kind.plural(),
        kind.group()
    );
    let mut details = json!({"kind": kind.plural()});
    if !kind.group().is_empty() {
        details["group"] = json!(kind.group());
    }
    status_response(StatusCode::FORBIDDEN, "Forbidden", &message, Some(details))
}

/// The query parameters the fake reads.
struct Params {
    watch: bool,
    resource_version: Option<u64>,
    timeout: Duration,
    bookmarks: bool,
    send_initial_events: bool,
    labels: Selector,
    fields: Selector,
}

impl Params {
    fn parse(uri: &Uri) -> Result<Params, String> {
        let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(uri).map_err(|e| e.body_text())?;
        let get = |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
        let flag = |key: &str| -> Result<bool, String> {
            match get(key) {
                None | Some("" | "false" | "0") => Ok(false),
                Some("true" | "1") => Ok(true),
                Some(other) => Err(format!("{key}: invalid value {other:?}: must be true or false")),
            }
        };
        let resource_version = match get("resourceVersion") {
            None | Some("") => None,
            Some(rv) => Some(
                rv.parse::<u64>()
                    .map_err(|_| format!("resourceVersion: Invalid value: {rv:?}: must be an integer"))?,
            ),
        };
        let timeout = match get("timeoutSeconds") {
            None | Some("") => DEFAULT_WATCH_TIMEOUT,
            Some(secs) => Duration::from_secs(
                secs.parse::<u64>()
                    .map_err(|_| format!("timeoutSeconds: Invalid value: {secs:?}: must be a non-negative integer"))?,
            ),
        };
        if let Some(limit) = get("limit")
            && !limit.is_empty()
            && limit.parse::<i64>().is_err()
        {
            return Err(format!("limit: Invalid value: {limit:?}: must be an integer"));
        }
        if get("continue").is_some_and(|token| !token.is_empty()) {
            return Err("continue: the fake never hands out continue tokens".to_owned());
        }
        Ok(Params {
            watch: flag("watch")?,
            resource_version,
            timeout,
            bookmarks: flag("allowWatchBookmarks")?,
            send_initial_events: flag("sendInitialEvents")?,
            labels: Selector::parse(get("labelSelector").unwrap_or(""), "labelSelector")?,
            fields: Selector::parse(get("fieldSelector").unwrap_or(""), "fieldSelector")?,
        })
    }

    fn matches(&self, object: &Value) -> bool {
        let metadata = &object["metadata"];
        let labels = |key: &str| metadata["labels"][key].as_str().map(str::to_owned);
        let fields = |key: &str| match key {
            "metadata.name" => metadata["name"].as_str().map(str::to_owned),
            "metadata.namespace" => metadata["namespace"].as_str().map(str::to_owned),
            _ => None,
        };
        self.labels.matches(labels) && self.fields.matches(fields)
    }
}

/// Equality-based selector: every requirement must hold.
struct Selector(Vec<Requirement>);

enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    Exists(String),
    NotExists(String),
}

impl Selector {
    fn parse(text: &str, what: &str) -> Result<Selector, String> {
        // A key or value may not hold what would make it part of a set-based or malformed selector.
        let bad = |s: &str| s.contains(|c: char| c.is_whitespace() || "()=!,".contains(c));
        let mut requirements = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (requirement, key, value) = if let Some((key, value)) = part.split_once("!=") {
                (
                    Requirement::NotEquals(key.trim().to_owned(), value.trim().to_owned()),
                    key,
                    value,
                )
            } else if let Some((key, value)) = part.split_once("==").or_else(|| part.split_once('=')) {
                (
                    Requirement::Equals(key.trim().to_owned(), value.trim().to_owned()),
                    key,
                    value,
                )
            } else if let Some(key) = part.strip_prefix('!') {
                (Requirement::NotExists(key.trim().to_owned()), key, "")
            } else {
                (Requirement::Exists(part.to_owned()), part, "")
            };
            if key.trim().is_empty() || bad(key.trim()) || bad(value.trim()) {
                return Err(format!("{what}: unsupported or invalid requirement {part:?}"));
            }
            requirements.push(requirement);
        }
        Ok(Selector(requirements))
    }

    fn matches(&self, lookup: impl Fn(&str) -> Option<String>) -> bool {
        self.0.iter().all(|requirement| match requirement {
            Requirement::Equals(key, value) => lookup(key).as_deref() == Some(value),
            Requirement::NotEquals(key, value) => lookup(key).as_deref() != Some(value),
            Requirement::Exists(key) => lookup(key).is_some(),
            Requirement::NotExists(key) => lookup(key).is_none(),
        })
    }
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, _body) = request.into_parts();
    let axum::http::request::Parts {
        method,
        uri,
        headers,
        mut extensions,
        ..
    } = parts;
    let line = match uri.query() {
        Some(query) => format!("{method} {}?{query}", uri.path()),
        None => format!("{method} {}", uri.path()),
    };
    shared.lock().requests.push(line);

    let authorized = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value == format!("Bearer {FAKE_TOKEN}"));
    if !authorized {
        return status_response(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized", None);
    }
    if let Some((namespace, pod)) = port_forward_path(uri.path()) {
        let request = PortForwardRequest {
            method: &method,
            uri: &uri,
            headers: &headers,
            namespace,
            pod,
        };
        return port_forward(&shared, &request, extensions.remove::<OnUpgrade>());
    }
    let Some(target) = Target::parse(uri.path()) else {
        return status_response(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the server could not find the requested resource",
            Some(json!({})),
        );
    };
    if method != Method::GET {
        return status_response(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            &format!("the fake kube API server only serves GET, not {method}"),
            None,
        );
    }
    let params = match Params::parse(&uri) {
        Ok(params) => params,
        Err(message) => return bad_request(&message),
    };
    match (&target.name, params.watch) {
        (Some(_), true) => bad_request("watch of a single object by path is not supported; use fieldSelector"),
        (Some(name), false) => get(&shared, &target, name),
        (None, false) => list(&shared, &target, &params),
        (None, true) => watch(&shared, target, params),
    }
}

fn get(shared: &Shared, target: &Target, name: &str) -> Response {
    let inner = shared.lock();
    let Some(namespace) = target.namespace.as_deref() else {
        return bad_request("get needs a namespace");
    };
    if inner.forbidden.contains(&target.kind) {
        return forbidden(target.kind, "get", Some(namespace));
    }
    match inner.objects.get(&(target.kind, namespace.to_owned(), name.to_owned())) {
        Some(object) => (StatusCode::OK, json_body(object)).into_response(),
        None => {
            let mut details = json!({"name": name, "kind": target.kind.plural()});
            if !target.kind.group().is_empty() {
                details["group"] = json!(target.kind.group());
            }
            status_response(
                StatusCode::NOT_FOUND,
                "NotFound",
                &format!("{} \"{name}\" not found", target.kind.qualified()),
                Some(details),
            )
        }
    }
}

fn list(shared: &Shared, target: &Target, params: &Params) -> Response {
    let inner = shared.lock();
    if inner.forbidden.contains(&target.kind) {
        return forbidden(target.kind, "list", target.namespace.as_deref());
    }
    let items: Vec<Value> = matching(&inner, target, params)
        .map(|object| {
            // Items of a typed list carry no kind/apiVersion, as with the real API server.
            let mut item = (**object).clone();
            if let Some(map) = item.as_object_mut() {
                map.remove("kind");
                map.remove("apiVersion");
            }
            item
        })
        .collect();
    let list = json!({
        "kind": format!("{}List", target.kind.kind()),
        "apiVersion": target.kind.api_version(),
        "metadata": {"resourceVersion": inner.rv.to_string()},
        "items": items,
    });
    (StatusCode::OK, json_body(&list)).into_response()
}

fn matching<'a>(inner: &'a Inner, target: &'a Target, params: &'a Params) -> impl Iterator<Item = &'a Arc<Value>> {
    inner
        .objects
        .iter()
        .filter(move |((kind, namespace, _), object)| target.contains(*kind, namespace) && params.matches(object))
        .map(|(_, object)| object)
}

fn event_line(event_type: &str, object: &Value) -> Bytes {
    let mut line = json!({"type": event_type, "object": object}).to_string();
    line.push('\n');
    Bytes::from(line)
}

fn bookmark_line(kind: Kind, rv: u64, initial_events_end: bool) -> Bytes {
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if initial_events_end {
        metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    event_line(
        "BOOKMARK",
        &json!({"kind": kind.kind(), "apiVersion": kind.api_version(), "metadata": metadata}),
    )
}

/// How a change looks through a watch's filter, if at all.
fn render(change: &Change, target: &Target, params: &Params) -> Option<Bytes> {
    if !target.contains(change.kind, &change.namespace) {
        return None;
    }
    let was = change
        .previous
        .as_deref()
        .is_some_and(|previous| params.matches(previous));
    let event_type = match change.change {
        ChangeType::Deleted => was.then_some("DELETED")?,
        ChangeType::Added | ChangeType::Modified => match (was, params.matches(&change.object)) {
            (true, true) => "MODIFIED",
            (false, true) => "ADDED",
            (true, false) => "DELETED",
            (false, false) => return None,
        },
    };
    Some(event_line(event_type, &change.object))
}

fn watch(shared: &Arc<Shared>, target: Target, params: Params) -> Response {
    let mut inner = shared.lock();
    inner.watch_count += 1;
    if inner.forbidden.contains(&target.kind) {
        return forbidden(target.kind, "watch", target.namespace.as_deref());
    }
    let mut first: Vec<Bytes> = Vec::new();
    let mut end_after_first = false;
    match params.resource_version {
        Some(rv) if rv != 0 && rv < inner.expired_below => {
            let status = status_object(
                410,
                "Expired",
                &format!("too old resource version: {rv} ({})", inner.expired_below),
                None,
            );
            first.push(event_line("ERROR", &status));
            end_after_first = true;
        }
        Some(rv) if rv != 0 && !params.send_initial_events => {
            first.extend(
                inner
                    .history
                    .iter()
                    .filter(|change| change.rv > rv)
                    .filter_map(|change| render(change, &target, &params)),
            );
        }
        _ => {
            // "Any" resourceVersion, or a streaming list: the current state as ADDED events.
            first.extend(matching(&inner, &target, &params).map(|object| event_line("ADDED", object)));
            if params.send_initial_events {
                first.push(bookmark_line(target.kind, inner.rv, true));
            }
        }
    }
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(64);
    let watch = LiveWatch {
        tx,
        changes: shared.changes.subscribe(),
        position: inner.rv,
        target,
        params,
        dropped: inner.drop_token.clone(),
        shutdown: shared.shutdown.clone(),
    };
    drop(inner);
    tokio::spawn(watch.run(first, end_after_first));
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(ReceiverStream::new(rx)),
    )
        .into_response()
}

/// The task behind one watch response.
struct LiveWatch {
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
    changes: broadcast::Receiver<Arc<Change>>,
    /// Every change up to here has been sent or filtered out: what a bookmark may claim.
    position: u64,
    target: Target,
    params: Params,
    dropped: CancellationToken,
    shutdown: CancellationToken,
}

impl LiveWatch {
    async fn run(mut self, first: Vec<Bytes>, end_after_first: bool) {
        for line in first {
            if self.tx.send(Ok(line)).await.is_err() {
                return;
            }
        }
        if end_after_first {
            return;
        }
        let deadline = tokio::time::sleep(self.params.timeout);
        tokio::pin!(deadline);
        let mut bookmarks =
            tokio::time::interval_at(tokio::time::Instant::now() + BOOKMARK_INTERVAL, BOOKMARK_INTERVAL);
        bookmarks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let line = tokio::select! {
                biased;
                () = self.dropped.cancelled() => {
                    // An error from the body stream makes hyper abort the connection mid-body.
                    let _ = self.tx.send(Err(std::io::Error::other("fake kube: watch dropped"))).await;
                    return;
                }
                () = self.shutdown.cancelled() => return,
                () = &mut deadline => return,
                () = self.tx.closed() => return,
                change = self.changes.recv() => match change {
                    Ok(change) => {
                        self.position = change.rv;
                        match render(&change, &self.target, &self.params) {
                            Some(line) => line,
                            None => continue,
                        }
                    }
                    // Fell behind, or the server is going away: end cleanly, the client resumes.
                    Err(_) => return,
                },
                _ = bookmarks.tick(), if self.params.bookmarks => bookmark_line(self.target.kind, self.position, false),
            };
            if self.tx.send(Ok(line)).await.is_err() {
                return;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Port-forward

/// `/api/v1/namespaces/{ns}/pods/{name}/portforward` -> (ns, name).
fn port_forward_path(path: &str) -> Option<(&str, &str)> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["api", "v1", "namespaces", ns, "pods", name, "portforward"] if !ns.is_empty() && !name.is_empty() => {
            Some((ns, name))
        }
        _ => None,
    }
}

struct PortForwardRequest<'a> {
    method: &'a Method,
    uri: &'a Uri,
    headers: &'a HeaderMap,
    namespace: &'a str,
    pod: &'a str,
}

/// Where one tunnel goes and what its error messages name.
struct TunnelSpec {
    ports: Vec<u16>,
    target: SocketAddr,
    pod: String,
    uid: String,
}

/// Answers a port-forward request: a `Status` error, or 101 and a tunnel task.
fn port_forward(shared: &Arc<Shared>, request: &PortForwardRequest<'_>, on_upgrade: Option<OnUpgrade>) -> Response {
    let (namespace, pod) = (request.namespace, request.pod);
    if request.method != Method::GET {
        return status_response(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            &format!(
                "the fake kube API server serves port-forward over WebSocket (GET) only, not {}",
                request.method
            ),
            None,
        );
    }
    let mut inner = shared.lock();
    if inner.port_forward_forbidden {
        let message = format!(
            "pods \"{pod}\" is forbidden: User \"{FAKE_USER}\" cannot create resource \"pods/portforward\" in API \
             group \"\" in the namespace \"{namespace}\""
        );
        let details = json!({"name": pod, "kind": "pods"});
        return status_response(StatusCode::FORBIDDEN, "Forbidden", &message, Some(details));
    }
    let Some(object) = inner.objects.get(&(Kind::Pods, namespace.to_owned(), pod.to_owned())) else {
        return status_response(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("pods \"{pod}\" not found"),
            Some(json!({"name": pod, "kind": "pods"})),
        );
    };
    let uid = object["metadata"]["uid"].as_str().unwrap_or_default().to_owned();
    let Some(&target) = inner.port_forward_targets.get(&(namespace.to_owned(), pod.to_owned())) else {
        return status_response(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("the fake kube API server has no port-forward target for pod \"{pod}\" (see port_forward_to)"),
            Some(json!({"name": pod, "kind": "pods"})),
        );
    };
    let ports = match forwarded_ports(request.uri) {
        Ok(ports) => ports,
        Err(message) => return bad_request(&message),
    };
    let accept = match websocket_accept(request.headers) {
        Ok(accept) => accept,
        Err(message) => return bad_request(&message),
    };
    let Some(on_upgrade) = on_upgrade else {
        return bad_request("Upgrade request required: this connection cannot be upgraded");
    };
    inner.port_forward_count += 1;
    drop(inner);

    let spec = TunnelSpec {
        ports,
        target,
        pod: pod.to_owned(),
        uid,
    };
    tokio::spawn(run_tunnel(on_upgrade, spec, shared.shutdown.clone()));
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::UPGRADE, "websocket")
        .header(header::CONNECTION, "Upgrade")
        .header(header::SEC_WEBSOCKET_ACCEPT, accept)
        .header(header::SEC_WEBSOCKET_PROTOCOL, PORT_FORWARD_PROTOCOL)
        .body(Body::empty())
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// The `ports` query parameter(s), each a comma-separated list of ports 1..=65535.
fn forwarded_ports(uri: &Uri) -> Result<Vec<u16>, String> {
    let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(uri).map_err(|e| e.body_text())?;
    let mut ports = Vec::new();
    for value in pairs.iter().filter(|(key, _)| key == "ports").map(|(_, value)| value) {
        for text in value.split(',').map(str::trim) {
            match text.parse::<u16>() {
                Ok(port) if port > 0 => ports.push(port),
                _ => {
                    return Err(format!(
                        "ports: Invalid value: {text:?}: must be a port number in 1-65535"
                    ));
                }
            }
        }
    }
    if ports.is_empty() {
        return Err("ports: Required value: at least one port must be specified".to_owned());
    }
    if ports.len() > MAX_FORWARDED_PORTS {
        return Err(format!(
            "ports: Too many: at most {MAX_FORWARDED_PORTS} ports may be forwarded"
        ));
    }
    Ok(ports)
}

/// Checks the WebSocket upgrade headers; returns the `Sec-WebSocket-Accept` value.
fn websocket_accept(headers: &HeaderMap) -> Result<String, String> {
    let values = |name: header::HeaderName| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(|token| token.trim().to_owned())
            .filter(|token| !token.is_empty())
            .collect()
    };
    let upgrade = values(header::UPGRADE)
        .iter()
        .any(|v| v.eq_ignore_ascii_case("websocket"));
    let connection = values(header::CONNECTION)
        .iter()
        .any(|v| v.eq_ignore_ascii_case("upgrade"));
    let version = values(header::SEC_WEBSOCKET_VERSION).iter().any(|v| v == "13");
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .map(|key| key.as_bytes())
        .filter(|key| !key.is_empty());
    let (true, true, true, Some(key)) = (upgrade, connection, version, key) else {
        return Err("Upgrade request required: port-forward needs a WebSocket upgrade (version 13)".to_owned());
    };
    let protocols = values(header::SEC_WEBSOCKET_PROTOCOL);
    if !protocols.iter().any(|p| p == PORT_FORWARD_PROTOCOL) {
        return Err(format!(
            "requested protocol(s) are not supported: {protocols:?}; supports [\"{PORT_FORWARD_PROTOCOL}\"]"
        ));
    }
    Ok(derive_accept_key(key))
}

/// A binary message on `channel`.
fn channel_message(channel: u8, payload: &[u8]) -> WsMessage {
    let mut message = BytesMut::with_capacity(payload.len() + 1);
    message.put_u8(channel);
    message.put_slice(payload);
    WsMessage::Binary(message.freeze())
}

/// Port index `i`'s data channel; its error channel is one more. `i` < [`MAX_FORWARDED_PORTS`].
fn data_channel(index: usize) -> u8 {
    u8::try_from(2 * index).expect("port index checked against MAX_FORWARDED_PORTS")
}

type Tunnel = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// One port-forward connection, from the upgrade to the last byte. Ends on `shutdown` at the latest.
async fn run_tunnel(on_upgrade: OnUpgrade, spec: TunnelSpec, shutdown: CancellationToken) {
    let work = async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let mut ws: Tunnel = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        // First message on every channel: the port, 2 bytes little-endian.
        for (index, port) in spec.ports.iter().enumerate() {
            for channel in [data_channel(index), data_channel(index) + 1] {
                if ws.feed(channel_message(channel, &port.to_le_bytes())).await.is_err() {
                    return;
                }
            }
        }
        if ws.flush().await.is_err() {
            return;
        }
        let (sink, stream) = ws.split();
        // Cancelled when the client closes or the connection breaks: stop forwarding.
        let closing = CancellationToken::new();
        // Cancelled when the close handshake is over or given up on: stop reading.
        let stop_reading = CancellationToken::new();
        let (out_tx, out_rx) = mpsc::channel::<WsMessage>(16);
        let mut inbound = Vec::with_capacity(spec.ports.len());
        let mut forwards = Vec::with_capacity(spec.ports.len());
        for (index, &port) in spec.ports.iter().enumerate() {
            let (tx, rx) = mpsc::channel::<Bytes>(16);
            inbound.push(tx);
            forwards.push(forward_port(&spec, index, port, rx, out_tx.clone(), closing.clone()));
        }
        drop(out_tx);
        tokio::join!(
            read_client(stream, inbound, &closing, &stop_reading),
            write_client(sink, out_rx, &closing, &stop_reading),
            futures_util::future::join_all(forwards),
        );
    };
    tokio::select! {
        () = work => {}
        () = shutdown.cancelled() => {}
    }
}

/// Client -> ports. A Close from the client ends the forwarding; reading on after it sends the
/// Close reply (tungstenite queues it) and then ends the stream.
async fn read_client(
    mut stream: futures_util::stream::SplitStream<Tunnel>,
    inbound: Vec<mpsc::Sender<Bytes>>,
    closing: &CancellationToken,
    stop_reading: &CancellationToken,
) {
    loop {
        let message = tokio::select! {
            message = stream.next() => message,
            () = stop_reading.cancelled() => break,
        };
        match message {
            Some(Ok(WsMessage::Binary(bytes))) if bytes.len() > 1 => {
                let channel = usize::from(bytes[0]);
                // Data for a port's data channel; anything else (the error channels) is ignored.
                if channel % 2 == 0
                    && let Some(port) = inbound.get(channel / 2)
                {
                    tokio::select! {
                        // A port that is done has dropped its receiver: its data is discarded.
                        _ = port.send(bytes.slice(1..)) => {}
                        () = stop_reading.cancelled() => break,
                    }
                }
            }
            Some(Ok(WsMessage::Close(_))) => closing.cancel(),
            Some(Ok(_)) => {}
            Some(Err(_)) | None => break,
        }
    }
    closing.cancel();
}

/// Ports -> client; a Close once every port is done, then waits (bounded) for the client's.
async fn write_client(
    mut sink: futures_util::stream::SplitSink<Tunnel, WsMessage>,
    mut out: mpsc::Receiver<WsMessage>,
    closing: &CancellationToken,
    stop_reading: &CancellationToken,
) {
    loop {
        let message = tokio::select! {
            biased;
            () = closing.cancelled() => return,
            message = out.recv() => message,
        };
        let Some(message) = message else { break };
        if sink.send(message).await.is_err() {
            closing.cancel();
            stop_reading.cancel();
            return;
        }
    }
    let close = CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    };
    if sink.send(WsMessage::Close(Some(close))).await.is_ok() {
        // The reader sees the client's Close (or the connection end) and cancels `closing`.
        let _ = tokio::time::timeout(CLOSE_GRACE, closing.cancelled()).await;
    }
    stop_reading.cancel();
}

/// One forwarded port: a TCP connection to the target, bytes both ways, until either side ends.
async fn forward_port(
    spec: &TunnelSpec,
    index: usize,
    port: u16,
    mut inbound: mpsc::Receiver<Bytes>,
    out: mpsc::Sender<WsMessage>,
    closing: CancellationToken,
) {
    let data = data_channel(index);
    let connected = tokio::select! {
        connected = TcpStream::connect(spec.target) => connected,
        () = closing.cancelled() => return,
    };
    let tcp = match connected {
        Ok(tcp) => tcp,
        Err(error) => {
            let message = format!(
                "error forwarding port {port} to pod {}, uid {}: failed to connect to {}: {error}",
                spec.pod, spec.uid, spec.target
            );
            let _ = out.send(channel_message(data + 1, message.as_bytes())).await;
            return;
        }
    };
    let _ = tcp.set_nodelay(true);
    let (mut from_target, mut to_target) = tcp.into_split();
    let upstream = async {
        while let Some(bytes) = inbound.recv().await {
            if to_target.write_all(&bytes).await.is_err() {
                return;
            }
        }
    };
    let downstream = async {
        let mut buffer = vec![0; 32 * 1024];
        loop {
            match from_target.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if out.send(channel_message(data, &buffer[..n])).await.is_err() {
                        return;
                    }
                }
            }
        }
    };
    tokio::select! {
        () = upstream => {}
        () = downstream => {}
        () = closing.cancelled() => {}
    }
}
