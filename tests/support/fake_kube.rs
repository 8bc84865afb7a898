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
//! All state sits behind one `std::sync::Mutex`; request handling never panics on client input.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
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
                requests: Vec::new(),
                watch_count: 0,
                drop_token: CancellationToken::new(),
                next_uid: 1,
            }),
            changes,
            shutdown: CancellationToken::new(),
        });
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let shutdown = shared.shutdown.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown.cancelled_owned())
                .await;
        });
        FakeKube { addr, shared }
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
    /// group and namespace). Open watches go on. Panics on an unknown resource.
    pub fn forbid(&self, resource: &str, forbidden: bool) {
        let kind = Kind::from_plural(resource).unwrap_or_else(|| panic!("fake kube knows no resource {resource:?}"));
        let mut inner = self.shared.lock();
        if forbidden {
            inner.forbidden.insert(kind);
        } else {
            inner.forbidden.remove(&kind);
        }
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

async fn handle(State(shared): State<Arc<Shared>>, method: Method, uri: Uri, headers: HeaderMap) -> Response {
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
