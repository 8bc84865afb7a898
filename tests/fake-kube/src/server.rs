//! The fake API server: start, restart, kubeconfig, and the calls tests make to change its objects.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::pod_proxy::{PodProxyStats, ProxyCounters};
use crate::request::handle;
use crate::store::{Change, ChangeType, Inner, Kind, Shared};
use crate::{FAKE_TOKEN, PROXY_TIME_LIMIT};

/// Broadcast capacity; a watch that falls further behind than this is ended (cleanly) and resumes.
const BROADCAST_CAPACITY: usize = 4096;

/// The first resourceVersion handed out.
const FIRST_RESOURCE_VERSION: u64 = 100;

/// The fake API server. Dropping it stops the server and ends its watches.
pub struct FakeKube {
    addr: SocketAddr,
    shared: Arc<Shared>,
    /// Stops the current server instance; `None` while stopped (see [`FakeKube::stop`]).
    server: Mutex<Option<(CancellationToken, tokio::task::JoinHandle<()>)>>,
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
        let shutdown = CancellationToken::new();
        let stop = shutdown.child_token();
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
                pod_proxy_forbidden: false,
                pod_proxy_targets: BTreeMap::new(),
                pod_proxy_time_limit: PROXY_TIME_LIMIT,
                requests: Vec::new(),
                watch_count: 0,
                drop_token: stop.child_token(),
                instance_stop: stop.clone(),
                next_uid: 1,
            }),
            changes,
            shutdown,
            proxy_counters: ProxyCounters::default(),
        });
        let task = serve(listener, shared.clone(), stop.clone());
        FakeKube {
            addr,
            shared,
            server: Mutex::new(Some((stop, task))),
        }
    }

    /// Stops the API server (open watches are cut, new connections refused)
    /// for `down_for`, then serves again on the same address with the same
    /// objects and history, as an API server restarts over the same etcd.
    /// [`Self::stop`], a sleep, then [`Self::serve_again`].
    pub async fn restart(&self, down_for: Duration) {
        self.stop().await;
        tokio::time::sleep(down_for).await;
        self.serve_again().await;
    }

    /// Stops the API server: open watches are cut and, once this returns, new
    /// connections are refused (the listener is closed). Objects and history
    /// stay, and the calls that change them still work, so a test can change
    /// slices or [`Self::expire_history`] during the outage. No-op when stopped.
    pub async fn stop(&self) {
        let Some((stop, task)) = self.server.lock().unwrap_or_else(PoisonError::into_inner).take() else {
            return;
        };
        // Stopping the instance cuts its watches too, also those that start
        // later on a connection it still finishes (drop tokens are its children).
        stop.cancel();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("fake API server stops within 5 s")
            .expect("fake API server task");
    }

    /// Serves again on the same address after [`Self::stop`], with the same
    /// objects and history; the listener is bound when this returns. No-op
    /// while serving.
    pub async fn serve_again(&self) {
        if self.server.lock().unwrap_or_else(PoisonError::into_inner).is_some() {
            return;
        }
        let listener = TcpListener::bind(self.addr)
            .await
            .expect("rebind fake kube on the same address");
        let stop = self.shared.shutdown.child_token();
        {
            let mut inner = self.shared.lock();
            inner.instance_stop = stop.clone();
            inner.drop_token = stop.child_token();
        }
        let task = serve(listener, self.shared.clone(), stop.clone());
        *self.server.lock().unwrap_or_else(PoisonError::into_inner) = Some((stop, task));
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

    /// The `kube::Config` [`Self::kubeconfig_yaml`] gives, through
    /// `kube::Config::from_custom_kubeconfig`. Any `HTTPS_PROXY` in the environment is ignored
    /// so the traffic stays on loopback.
    pub async fn config(&self, namespace: &str) -> kube::Config {
        let kubeconfig =
            kube::config::Kubeconfig::from_yaml(&self.kubeconfig_yaml(namespace)).expect("parse kubeconfig");
        let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &kube::config::KubeConfigOptions::default())
            .await
            .expect("kube config from kubeconfig");
        config.proxy_url = None;
        config
    }

    /// A real `kube::Client` built from [`Self::config`].
    pub async fn client(&self, namespace: &str) -> kube::Client {
        kube::Client::try_from(self.config(namespace).await).expect("kube client")
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
        let fresh = inner.instance_stop.child_token();
        let old = std::mem::replace(&mut inner.drop_token, fresh);
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
    /// `create`), independently of `"pods"`, as with RBAC; open tunnels go on. `"pods/proxy"`
    /// forbids the pods/proxy route (verb `get`), also independently. Panics on an unknown resource.
    pub fn forbid(&self, resource: &str, forbidden: bool) {
        match resource {
            "pods/portforward" => {
                self.shared.lock().port_forward_forbidden = forbidden;
                return;
            }
            "pods/proxy" => {
                self.shared.lock().pod_proxy_forbidden = forbidden;
                return;
            }
            _ => {}
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

    /// `GET .../pods/{pod}:{port}/proxy/...` in `namespace` goes to `target` (a loopback listener
    /// standing in for the pod's IP and that port): a fresh HTTP/1.1 connection per request. Replaces
    /// an earlier target of that pod and port. A pod with no target at all answers 400 `address not
    /// allowed` (as one without an IP does); a pod with targets for other ports only answers 503
    /// `connection refused` for this one, as a pod port nothing listens on does. The pod itself must
    /// exist (see [`Self::apply_pod`]) and have a `status.podIP`, which error messages name.
    pub fn proxy_to(&self, namespace: &str, pod: &str, port: u16, target: SocketAddr) {
        self.shared
            .lock()
            .pod_proxy_targets
            .insert((namespace.to_owned(), pod.to_owned(), port), target);
    }

    /// How long one proxied request may take, connect to last body byte, before the fake answers
    /// 504 (default [`PROXY_TIME_LIMIT`]). Applies to requests that start afterwards.
    pub fn set_proxy_time_limit(&self, limit: Duration) {
        self.shared.lock().pod_proxy_time_limit = limit;
    }

    /// The pods/proxy route's counters: requests, forwarded answers and body bytes, since the start.
    /// Read without the store's lock.
    pub fn pod_proxy_stats(&self) -> PodProxyStats {
        self.shared.proxy_counters.stats()
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

impl Drop for FakeKube {
    fn drop(&mut self) {
        self.shared.shutdown.cancel();
        self.shared.lock().drop_token.cancel();
    }
}
