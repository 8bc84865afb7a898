//! Self-test of the fake Kubernetes API server (this crate) against the real
//! `kube::Client`, `kube::Api` and `kube::runtime::watcher`. Every wait is bounded.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use fake_kube::*;
use futures_util::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, ListParams, WatchEvent, WatchParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Resource, ResourceExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::net::TcpListener;

/// The longest any single wait may take.
const WAIT: Duration = Duration::from_secs(15);
const SELECTOR: &str = "run=greetserver";
const SLICE_SELECTOR: &str = "kubernetes.io/service-name=greetserver";

async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(WAIT, future).await {
        Ok(value) => value,
        Err(_) => panic!("timed out after {WAIT:?} waiting for {what}"),
    }
}

fn greet_pod(name: &str, ip: &str) -> Pod {
    pod("default", name, &[("run", "greetserver"), ("app", "greet")], ip, true)
}

fn names<K: Resource>(objects: &[K]) -> Vec<String> {
    objects.iter().map(ResourceExt::name_any).collect()
}

fn api_status(error: &kube::Error) -> &kube::core::Status {
    match error {
        kube::Error::Api(status) => status,
        other => panic!("expected kube::Error::Api, got {other:?}"),
    }
}

/// A `kube::runtime::watcher` with the default backoff, folded into a store the way a reflector
/// would, with a log of what it yielded.
struct Watched<K> {
    stream: Pin<Box<dyn Stream<Item = Result<Event<K>, watcher::Error>> + Send>>,
    store: BTreeMap<String, K>,
    /// Objects of a re-list in progress (between `Init` and `InitDone`).
    relist: Option<BTreeMap<String, K>>,
    /// `Init`, `InitApply a`, `InitDone`, `Apply a`, `Delete a`, `Error ...`.
    log: Vec<String>,
    errors: Vec<watcher::Error>,
}

impl<K> Watched<K>
where
    K: Resource<DynamicType = ()> + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
{
    fn start(api: Api<K>, config: watcher::Config) -> Self {
        Watched {
            stream: watcher::watcher(api, config).default_backoff().boxed(),
            store: BTreeMap::new(),
            relist: None,
            log: Vec::new(),
            errors: Vec::new(),
        }
    }

    /// Takes the next item from the watcher (which must come within [`WAIT`]).
    async fn step(&mut self) {
        let item = within("the next watcher event", self.stream.next())
            .await
            .expect("the watcher stream never ends");
        let line = match item {
            Ok(Event::Init) => {
                self.relist = Some(BTreeMap::new());
                "Init".to_owned()
            }
            Ok(Event::InitApply(object)) => {
                let name = object.name_any();
                self.relist
                    .as_mut()
                    .expect("InitApply after Init")
                    .insert(name.clone(), object);
                format!("InitApply {name}")
            }
            Ok(Event::InitDone) => {
                self.store = self.relist.take().expect("InitDone after Init");
                "InitDone".to_owned()
            }
            Ok(Event::Apply(object)) => {
                let name = object.name_any();
                self.store.insert(name.clone(), object);
                format!("Apply {name}")
            }
            Ok(Event::Delete(object)) => {
                let name = object.name_any();
                self.store.remove(&name);
                format!("Delete {name}")
            }
            Err(error) => {
                let line = format!("Error {error}");
                self.errors.push(error);
                line
            }
        };
        self.log.push(line);
    }

    /// Steps until the store holds exactly `expected` (by name) and no re-list is half done.
    async fn until_names(&mut self, expected: &[&str]) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while self.relist.is_some() || self.store.keys().map(String::as_str).collect::<Vec<_>>() != expected {
            assert!(
                tokio::time::Instant::now() < deadline,
                "watcher never converged to {expected:?}; store {:?}, log {:?}",
                self.store.keys().collect::<Vec<_>>(),
                self.log
            );
            self.step().await;
        }
    }

    fn log_since(&self, from: usize) -> &[String] {
        &self.log[from..]
    }
}

#[tokio::test]
async fn list_and_get_pods_through_a_generated_kubeconfig() {
    let kube = FakeKube::start().await;
    kube.apply_pod(greet_pod("greetserver-b", "10.1.0.2"));
    kube.apply_pod(greet_pod("greetserver-a", "10.1.0.1"));
    kube.apply_pod(pod("default", "other-a", &[("run", "other")], "10.1.0.3", true));
    kube.apply_pod(pod(
        "kube-system",
        "greetserver-x",
        &[("run", "greetserver")],
        "10.1.0.4",
        true,
    ));

    // The client reads the kubeconfig from a file, as the binaries will.
    let dir = std::env::temp_dir().join(format!("fake-kube-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = kube.write_kubeconfig(&dir, "default");
    let kubeconfig = kube::config::Kubeconfig::read_from(&path).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    assert_eq!(config.cluster_url.to_string().trim_end_matches('/'), kube.url());
    assert_eq!(config.default_namespace, "default");
    let client = kube::Client::try_from(config).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();

    let pods: Api<Pod> = Api::default_namespaced(client);
    let list = within("list", pods.list(&ListParams::default().labels(SELECTOR)))
        .await
        .unwrap();
    assert_eq!(names(&list.items), ["greetserver-a", "greetserver-b"]);
    assert_eq!(
        list.metadata.resource_version.as_deref(),
        Some(kube.resource_version().as_str())
    );
    let a = &list.items[0];
    assert!(a.resource_version().is_some_and(|rv| rv.parse::<u64>().is_ok()));
    let status = a.status.as_ref().unwrap();
    assert_eq!(status.pod_ip.as_deref(), Some("10.1.0.1"));
    assert_eq!(status.phase.as_deref(), Some("Running"));
    let ready = status
        .conditions
        .as_ref()
        .unwrap()
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(ready.status, "True");
    assert_eq!(status.container_statuses.as_ref().unwrap()[0].restart_count, 0);
    assert!(a.metadata.creation_timestamp.is_some());
    assert!(a.spec.as_ref().unwrap().node_name.is_some());

    let everything = within("list all", pods.list(&ListParams::default())).await.unwrap();
    assert_eq!(names(&everything.items), ["greetserver-a", "greetserver-b", "other-a"]);
    let with_two = ListParams::default().labels("run=greetserver,app=greet");
    assert_eq!(
        names(&within("list", pods.list(&with_two)).await.unwrap().items),
        ["greetserver-a", "greetserver-b"]
    );
    let not = ListParams::default().labels("run!=greetserver");
    assert_eq!(
        names(&within("list", pods.list(&not)).await.unwrap().items),
        ["other-a"]
    );

    let got = within("get", pods.get("greetserver-b")).await.unwrap();
    assert_eq!(got.status.unwrap().pod_ip.as_deref(), Some("10.1.0.2"));
    let missing = within("get missing", pods.get("nope")).await.unwrap_err();
    let status = api_status(&missing);
    assert_eq!(status.code, 404);
    assert!(status.is_not_found(), "{status:?}");
    assert_eq!(status.message, "pods \"nope\" not found");

    assert!(
        kube.requests()
            .iter()
            .any(|r| r.starts_with("GET /api/v1/namespaces/default/pods?")
                && r.contains("labelSelector=run%3Dgreetserver")),
        "{:?}",
        kube.requests()
    );
    assert_eq!(kube.list_count("pods"), 4);
    assert_eq!(kube.watch_count(), 0);
}

#[tokio::test]
async fn pod_watcher_lists_follows_resumes_and_relists() {
    let kube = FakeKube::start().await;
    kube.apply_pod(greet_pod("greetserver-a", "10.1.0.1"));
    kube.apply_pod(greet_pod("greetserver-b", "10.1.0.2"));
    kube.apply_pod(pod("default", "other-a", &[("run", "other")], "10.1.0.3", true));
    let pods: Api<Pod> = Api::namespaced(kube.client("default").await, "default");
    let mut watched = Watched::start(pods, watcher::Config::default().labels(SELECTOR));

    // (2) list, then watch.
    watched.until_names(&["greetserver-a", "greetserver-b"]).await;
    assert_eq!(
        watched.log,
        ["Init", "InitApply greetserver-a", "InitApply greetserver-b", "InitDone"]
    );
    assert_eq!(kube.list_count("pods"), 1);

    let mark = watched.log.len();
    kube.apply_pod(greet_pod("greetserver-c", "10.1.0.4"));
    watched
        .until_names(&["greetserver-a", "greetserver-b", "greetserver-c"])
        .await;
    kube.delete_pod("default", "greetserver-b");
    watched.until_names(&["greetserver-a", "greetserver-c"]).await;
    // Leaving the selector reads as a delete, as from the API server's watch cache.
    kube.apply_pod(pod(
        "default",
        "greetserver-a",
        &[("run", "elsewhere")],
        "10.1.0.1",
        true,
    ));
    watched.until_names(&["greetserver-c"]).await;
    assert_eq!(
        watched.log_since(mark),
        ["Apply greetserver-c", "Delete greetserver-b", "Delete greetserver-a"]
    );
    // Changes outside the selector are not sent at all.
    kube.apply_pod(pod("default", "other-a", &[("run", "other")], "10.9.9.9", false));
    assert_eq!(kube.watch_count(), 1);

    // (3) The watch dies abruptly; what changed meanwhile arrives from the history on resume,
    // without a re-list.
    kube.drop_watches();
    kube.apply_pod(greet_pod("greetserver-d", "10.1.0.5"));
    kube.delete_pod("default", "greetserver-c");
    let mark = watched.log.len();
    watched.until_names(&["greetserver-d"]).await;
    let events: Vec<&String> = watched
        .log_since(mark)
        .iter()
        .filter(|l| !l.starts_with("Error"))
        .collect();
    assert_eq!(events, ["Apply greetserver-d", "Delete greetserver-c"]);
    assert_eq!(kube.list_count("pods"), 1, "resumed without a re-list");
    assert_eq!(kube.watch_count(), 2);
    kube.apply_pod(greet_pod("greetserver-e", "10.1.0.6"));
    watched.until_names(&["greetserver-d", "greetserver-e"]).await;

    // (4) The watch dies and the history is compacted past the watcher's resourceVersion: the
    // resume gets 410 Expired and the watcher re-lists.
    kube.drop_watches();
    kube.apply_pod(greet_pod("greetserver-f", "10.1.0.7"));
    kube.delete_pod("default", "greetserver-d");
    kube.expire_history();
    let mark = watched.log.len();
    watched.until_names(&["greetserver-e", "greetserver-f"]).await;
    let gone = watched
        .errors
        .iter()
        .find_map(|error| match error {
            watcher::Error::WatchError(status) => Some(status),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no WatchError in {:?}", watched.log));
    assert_eq!(gone.code, 410);
    assert_eq!(gone.reason, "Expired");
    assert!(
        watched.log_since(mark).contains(&"Init".to_owned()),
        "{:?}",
        watched.log
    );
    assert_eq!(kube.list_count("pods"), 2, "{:#?}", kube.requests());
    // And it follows live changes again.
    kube.apply_pod(greet_pod("greetserver-g", "10.1.0.8"));
    watched
        .until_names(&["greetserver-e", "greetserver-f", "greetserver-g"])
        .await;
    assert_eq!(watched.log.last().unwrap(), "Apply greetserver-g");
}

#[tokio::test]
async fn raw_watch_sends_bookmarks_transitions_and_410() {
    let kube = FakeKube::start().await;
    kube.apply_pod(greet_pod("greetserver-a", "10.1.0.1"));
    let pods: Api<Pod> = Api::namespaced(kube.client("default").await, "default");
    let rv = kube.resource_version();
    let mut stream = within("watch", pods.watch(&WatchParams::default().labels(SELECTOR), &rv))
        .await
        .unwrap()
        .boxed();
    // The next event that is not a bookmark (bookmarks may come in between at any time).
    let mut next = async || loop {
        match within("a watch event", stream.next())
            .await
            .expect("stream open")
            .unwrap()
        {
            WatchEvent::Bookmark(_) => continue,
            event => break event,
        }
    };

    kube.apply_pod(greet_pod("greetserver-b", "10.1.0.2"));
    assert!(matches!(next().await, WatchEvent::Added(p) if p.name_any() == "greetserver-b"));
    kube.apply_pod(greet_pod("greetserver-b", "10.1.0.9"));
    match next().await {
        WatchEvent::Modified(p) => assert_eq!(p.status.unwrap().pod_ip.as_deref(), Some("10.1.0.9")),
        other => panic!("expected Modified, got {other:?}"),
    }
    kube.apply_pod(pod("default", "greetserver-b", &[], "10.1.0.9", true));
    assert!(matches!(next().await, WatchEvent::Deleted(p) if p.name_any() == "greetserver-b"));
    kube.apply_pod(greet_pod("greetserver-b", "10.1.0.9"));
    assert!(matches!(next().await, WatchEvent::Added(p) if p.name_any() == "greetserver-b"));
    kube.delete_pod("default", "greetserver-b");
    match next().await {
        WatchEvent::Deleted(p) => assert_eq!(p.resource_version(), Some(kube.resource_version())),
        other => panic!("expected Deleted, got {other:?}"),
    }
    // Nothing else happens: a bookmark at the newest resourceVersion comes within a second or so.
    let newest = kube.resource_version();
    loop {
        match within("a bookmark", stream.next()).await.expect("stream open").unwrap() {
            WatchEvent::Bookmark(bookmark) if bookmark.metadata.resource_version == newest => {
                assert_eq!(bookmark.types.kind, "Pod");
                assert_eq!(bookmark.types.api_version, "v1");
                break;
            }
            WatchEvent::Bookmark(_) => {}
            other => panic!("expected a bookmark, got {other:?}"),
        }
    }

    // A watch from before the compaction: 200, one ERROR event with the 410 Status, then the end.
    kube.expire_history();
    let mut stream = within("watch", pods.watch(&WatchParams::default(), &rv))
        .await
        .unwrap()
        .boxed();
    match within("the 410", stream.next()).await.unwrap().unwrap() {
        WatchEvent::Error(status) => {
            assert_eq!(status.code, 410);
            assert_eq!(status.reason, "Expired");
            assert!(status.message.starts_with("too old resource version"), "{status:?}");
        }
        other => panic!("expected an ERROR event, got {other:?}"),
    }
    assert!(within("the end", stream.next()).await.is_none());

    // timeoutSeconds ends the response cleanly.
    let rv = kube.resource_version();
    let mut stream = within(
        "watch",
        pods.watch(&WatchParams::default().timeout(1).disable_bookmarks(), &rv),
    )
    .await
    .unwrap()
    .boxed();
    assert!(within("the timeout", stream.next()).await.is_none());
}

#[tokio::test]
async fn watcher_with_streaming_lists() {
    let kube = FakeKube::start().await;
    kube.apply_pod(greet_pod("greetserver-a", "10.1.0.1"));
    kube.apply_pod(pod("default", "other-a", &[("run", "other")], "10.1.0.3", true));
    let pods: Api<Pod> = Api::namespaced(kube.client("default").await, "default");
    let mut watched = Watched::start(pods, watcher::Config::default().labels(SELECTOR).streaming_lists());
    watched.until_names(&["greetserver-a"]).await;
    assert_eq!(watched.log, ["Init", "InitApply greetserver-a", "InitDone"]);
    kube.apply_pod(greet_pod("greetserver-b", "10.1.0.2"));
    watched.until_names(&["greetserver-a", "greetserver-b"]).await;
    assert_eq!(kube.list_count("pods"), 0);
    assert!(
        kube.requests()[0].contains("sendInitialEvents=true"),
        "{:?}",
        kube.requests()
    );
}

#[tokio::test]
async fn endpoint_slices_by_service_name() {
    let kube = FakeKube::start().await;
    kube.apply_slice(endpoint_slice(
        "default",
        "greetserver-abcde",
        "greetserver",
        "http",
        8080,
        &[
            ("10.1.0.1", "greetserver-a", true, false),
            ("10.1.0.2", "greetserver-b", true, false),
        ],
    ));
    kube.apply_slice(endpoint_slice(
        "default",
        "greetserver-fghij",
        "greetserver",
        "http",
        8080,
        &[("10.1.0.3", "greetserver-c", false, false)],
    ));
    kube.apply_slice(endpoint_slice(
        "default",
        "other-klmno",
        "other",
        "http",
        8080,
        &[("10.1.0.9", "other-a", true, false)],
    ));
    let slices: Api<EndpointSlice> = Api::namespaced(kube.client("default").await, "default");

    let list = within("list", slices.list(&ListParams::default().labels(SLICE_SELECTOR)))
        .await
        .unwrap();
    assert_eq!(names(&list.items), ["greetserver-abcde", "greetserver-fghij"]);
    let first = &list.items[0];
    assert_eq!(first.address_type, "IPv4");
    assert_eq!(first.ports.as_ref().unwrap()[0].port, Some(8080));
    assert_eq!(first.ports.as_ref().unwrap()[0].name.as_deref(), Some("http"));
    let endpoint = &first.endpoints[0];
    assert_eq!(endpoint.addresses, ["10.1.0.1"]);
    assert_eq!(
        endpoint.target_ref.as_ref().unwrap().name.as_deref(),
        Some("greetserver-a")
    );
    assert_eq!(endpoint.conditions.as_ref().unwrap().ready, Some(true));
    assert_eq!(
        list.items[1].endpoints[0].conditions.as_ref().unwrap().ready,
        Some(false)
    );

    let mut watched = Watched::start(slices.clone(), watcher::Config::default().labels(SLICE_SELECTOR));
    watched.until_names(&["greetserver-abcde", "greetserver-fghij"]).await;

    // One endpoint starts terminating: the slice is modified.
    kube.apply_slice(endpoint_slice(
        "default",
        "greetserver-abcde",
        "greetserver",
        "http",
        8080,
        &[
            ("10.1.0.1", "greetserver-a", true, false),
            ("10.1.0.2", "greetserver-b", true, true),
        ],
    ));
    let mark = watched.log.len();
    while watched.log.len() == mark {
        watched.step().await;
    }
    assert_eq!(watched.log_since(mark), ["Apply greetserver-abcde"]);
    let conditions = watched.store["greetserver-abcde"].endpoints[1]
        .conditions
        .clone()
        .unwrap();
    assert_eq!(
        (conditions.ready, conditions.serving, conditions.terminating),
        (Some(false), Some(true), Some(true))
    );
    kube.delete_slice("default", "greetserver-fghij");
    kube.delete_slice("default", "other-klmno");
    watched.until_names(&["greetserver-abcde"]).await;

    // Resume and re-list work the same for slices.
    kube.drop_watches();
    kube.apply_slice(endpoint_slice(
        "default",
        "greetserver-zzzzz",
        "greetserver",
        "http",
        8080,
        &[],
    ));
    kube.expire_history();
    watched.until_names(&["greetserver-abcde", "greetserver-zzzzz"]).await;
    assert_eq!(kube.list_count("endpointslices"), 3, "{:#?}", kube.requests());

    // Forbidden, with the API server's wording.
    kube.forbid("endpointslices", true);
    let error = within("list", slices.list(&ListParams::default().labels(SLICE_SELECTOR)))
        .await
        .unwrap_err();
    let status = api_status(&error);
    assert_eq!(status.code, 403);
    assert!(status.is_forbidden());
    assert_eq!(
        status.message,
        format!(
            "endpointslices.discovery.k8s.io is forbidden: User \"{FAKE_USER}\" cannot list resource \
             \"endpointslices\" in API group \"discovery.k8s.io\" in the namespace \"default\""
        )
    );
    assert_eq!(status.details.as_ref().unwrap().group, "discovery.k8s.io");
    kube.forbid("endpointslices", false);
    within("list", slices.list(&ListParams::default())).await.unwrap();
}

#[tokio::test]
async fn forbidden_pods_fail_list_and_watch_until_allowed() {
    let kube = FakeKube::start().await;
    kube.apply_pod(greet_pod("greetserver-a", "10.1.0.1"));
    let pods: Api<Pod> = Api::namespaced(kube.client("default").await, "default");
    kube.forbid("pods", true);

    let error = within("list", pods.list(&ListParams::default().labels(SELECTOR)))
        .await
        .unwrap_err();
    let status = api_status(&error);
    assert_eq!(status.code, 403);
    assert_eq!(status.reason, "Forbidden");
    assert!(status.is_forbidden());
    assert_eq!(
        status.message,
        format!(
            "pods is forbidden: User \"{FAKE_USER}\" cannot list resource \"pods\" in API group \"\" in the \
             namespace \"default\""
        )
    );
    let error = within("get", pods.get("greetserver-a")).await.unwrap_err();
    assert!(api_status(&error).message.contains("cannot get resource \"pods\""));
    let all: Api<Pod> = Api::all(kube.client("default").await);
    let error = within("list all", all.list(&ListParams::default())).await.unwrap_err();
    assert!(
        api_status(&error)
            .message
            .ends_with("cannot list resource \"pods\" in API group \"\" at the cluster scope")
    );

    // The watcher reports the initial list failing with the 403, then recovers once allowed.
    let mut watched = Watched::start(pods.clone(), watcher::Config::default().labels(SELECTOR));
    watched.step().await;
    watched.step().await;
    assert_eq!(watched.log[0], "Init");
    match &watched.errors[..] {
        [watcher::Error::InitialListFailed(kube::Error::Api(status))] => assert_eq!(status.code, 403),
        other => panic!("expected InitialListFailed(Api 403), got {other:?}"),
    }
    kube.forbid("pods", false);
    watched.until_names(&["greetserver-a"]).await;

    // A watch answers 403 too.
    kube.forbid("pods", true);
    let error = within("watch", pods.watch(&WatchParams::default(), "0"))
        .await
        .err()
        .expect("watch refused");
    assert!(api_status(&error).message.contains("cannot watch resource \"pods\""));
}

#[tokio::test]
async fn bad_requests_get_status_errors_and_the_server_survives() {
    let kube = FakeKube::start().await;
    kube.apply_pod(greet_pod("greetserver-a", "10.1.0.1"));
    let client = kube.client("default").await;
    let raw = |uri: &str| http::Request::get(uri).body(Vec::new()).unwrap();

    for (uri, code) in [
        ("/api/v1/namespaces/default/pods?timeoutSeconds=abc&watch=true", 400),
        ("/api/v1/namespaces/default/pods?labelSelector=run+in+%28a%2Cb%29", 400),
        ("/api/v1/namespaces/default/pods?watch=maybe", 400),
        ("/api/v1/namespaces/default/pods?resourceVersion=x", 400),
        ("/api/v1/namespaces/default/pods?%zz", 200),
        ("/api/v1/namespaces/default/services", 404),
        ("/apis/apps/v1/namespaces/default/deployments", 404),
        ("/version", 404),
    ] {
        let result = within(uri, client.request_text(raw(uri))).await;
        match (code, result) {
            (200, Ok(_)) => {}
            (_, Err(error)) => assert_eq!(api_status(&error).code, code, "{uri}: {error}"),
            (_, Ok(text)) => panic!("{uri}: expected {code}, got {text}"),
        }
    }
    let post = http::Request::post("/api/v1/namespaces/default/pods")
        .body(b"{}".to_vec())
        .unwrap();
    let error = within("post", client.request_text(post)).await.unwrap_err();
    assert_eq!(api_status(&error).code, 405);

    // A wrong token is turned away.
    let yaml = kube.kubeconfig_yaml("default").replace(FAKE_TOKEN, "wrong");
    let config =
        kube::Config::from_custom_kubeconfig(kube::config::Kubeconfig::from_yaml(&yaml).unwrap(), &Default::default())
            .await
            .unwrap();
    let intruder: Api<Pod> = Api::default_namespaced(kube::Client::try_from(config).unwrap());
    let error = within("list", intruder.list(&ListParams::default())).await.unwrap_err();
    assert_eq!(api_status(&error).code, 401);

    let pods: Api<Pod> = Api::default_namespaced(client);
    assert_eq!(
        names(&within("list", pods.list(&ListParams::default())).await.unwrap().items),
        ["greetserver-a"]
    );
}

/// Sends a raw HTTP/1.1 watch request; returns the stream once the response head has arrived.
async fn raw_watch(kube: &FakeKube, query: &str) -> (tokio::net::TcpStream, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = kube.url().trim_start_matches("http://").to_owned();
    let mut tcp = within("connect", tokio::net::TcpStream::connect(addr)).await.unwrap();
    let request = format!(
        "GET /api/v1/namespaces/default/pods?watch=true&{query} HTTP/1.1\r\nHost: fake\r\nAuthorization: Bearer \
         {FAKE_TOKEN}\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut received = Vec::new();
    while !received.windows(4).any(|w| w == b"\r\n\r\n") {
        let mut buf = [0; 4096];
        let n = within("the response head", tcp.read(&mut buf)).await.unwrap();
        assert!(n > 0, "closed before the head: {}", String::from_utf8_lossy(&received));
        received.extend_from_slice(&buf[..n]);
    }
    (tcp, received)
}

/// Reads until the chunked body's terminating chunk or until the server closes the connection;
/// returns whether the body was terminated properly.
async fn read_body_end(tcp: &mut tokio::net::TcpStream, received: &mut Vec<u8>) -> bool {
    use tokio::io::AsyncReadExt;
    loop {
        if received.ends_with(b"\r\n0\r\n\r\n") {
            return true;
        }
        let mut buf = [0; 4096];
        let n = within("the end of the body", tcp.read(&mut buf)).await.unwrap_or(0);
        if n == 0 {
            return false;
        }
        received.extend_from_slice(&buf[..n]);
    }
}

#[tokio::test]
async fn drop_watches_cuts_the_connection_mid_body() {
    let kube = FakeKube::start().await;
    kube.apply_pod(greet_pod("greetserver-a", "10.1.0.1"));

    // A timed-out watch ends with the terminating chunk...
    let (mut tcp, mut received) = raw_watch(&kube, "resourceVersion=0&timeoutSeconds=1").await;
    assert!(read_body_end(&mut tcp, &mut received).await);
    let text = String::from_utf8_lossy(&received).to_lowercase();
    assert!(text.starts_with("http/1.1 200 ok"), "{text}");
    assert!(text.contains("transfer-encoding: chunked") && text.contains("content-type: application/json"));
    assert!(text.contains("\"type\":\"added\""), "{text}");

    // ...a dropped one does not: the connection closes in the middle of the chunked body.
    let (mut tcp, mut received) = raw_watch(&kube, "resourceVersion=0").await;
    kube.drop_watches();
    let terminated = read_body_end(&mut tcp, &mut received).await;
    let text = String::from_utf8_lossy(&received);
    assert!(text.contains("\"type\":\"ADDED\""), "{text}");
    assert!(!terminated, "{text:?}");
}

// ---------------------------------------------------------------------------------------------
// Port-forward

const PORT_FORWARD_PATH: &str = "GET /api/v1/namespaces/default/pods/greetserver-a/portforward?&ports=9092";

/// A TCP echo server on loopback, serving every connection until the test ends.
async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut read, mut write) = tcp.split();
                let _ = tokio::io::copy(&mut read, &mut write).await;
            });
        }
    });
    addr
}

/// A server that says `bye` to every connection and closes it.
async fn bye_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let _ = tcp.write_all(b"bye").await;
        }
    });
    addr
}

/// Writes `payload` and reads it back (concurrently, so any size fits through the buffers).
async fn echo_round_trip(stream: &mut DuplexStream, payload: &[u8]) {
    let (mut read, mut write) = tokio::io::split(stream);
    let mut echoed = vec![0; payload.len()];
    let (written, read) = within(
        "the echo",
        futures_util::future::join(write.write_all(payload), read.read_exact(&mut echoed)),
    )
    .await;
    written.unwrap();
    read.unwrap();
    assert!(echoed == payload, "echo differs ({} bytes)", payload.len());
}

async fn forward(pods: &Api<Pod>, pod: &str, ports: &[u16]) -> kube::api::Portforwarder {
    match within("the port-forward upgrade", pods.portforward(pod, ports)).await {
        Ok(forwarder) => forwarder,
        Err(error) => panic!("port-forward to {pod} {ports:?} failed: {error}"),
    }
}

/// Waits for kube's forwarder task after the server ended the tunnel (its Close once every port's
/// target connection was done) and the stream was dropped. kube 5 then sends a Close of its own,
/// which tungstenite refuses once the peer has closed, so `join` reports `SendAfterClosing`: that
/// is kube's doing, the same against a real API server.
async fn join_after_server_close(forwarder: kube::api::Portforwarder) {
    let error = within("the forwarder", forwarder.join())
        .await
        .expect_err("kube 5 reports its own late Close");
    assert!(format!("{error:?}").contains("SendAfterClosing"), "{error:?}");
}

fn port_forward_error(result: kube::Result<kube::api::Portforwarder>) -> kube::Error {
    match result {
        Ok(_) => panic!("expected the port-forward to be refused"),
        Err(error) => error,
    }
}

#[tokio::test]
async fn port_forward_tunnels_bytes_to_the_registered_target() {
    let kube = FakeKube::start().await;
    kube.apply_pod(greet_pod("greetserver-a", "10.1.0.1"));
    kube.port_forward_to("default", "greetserver-a", echo_server().await);
    let pods: Api<Pod> = Api::namespaced(kube.client("default").await, "default");

    let mut first = forward(&pods, "greetserver-a", &[9092]).await;
    let mut one = first.take_stream(9092).unwrap();
    echo_round_trip(&mut one, b"hello through the tunnel").await;
    // A second, independent tunnel while the first is open; then both, interleaved.
    let mut second = forward(&pods, "greetserver-a", &[9092]).await;
    let mut two = second.take_stream(9092).unwrap();
    echo_round_trip(&mut two, b"second tunnel").await;
    let big: Vec<u8> = (0..3 * 1024 * 1024).map(|i: u32| (i % 251) as u8).collect();
    futures_util::future::join(echo_round_trip(&mut one, &big), echo_round_trip(&mut two, b"small")).await;
    assert_eq!(kube.port_forward_count(), 2);
    assert_eq!(
        kube.requests().iter().filter(|r| *r == PORT_FORWARD_PATH).count(),
        2,
        "{:#?}",
        kube.requests()
    );

    // The client ends a tunnel by closing its stream: the forwarder finishes cleanly.
    drop(one);
    within("the first forwarder", first.join()).await.unwrap();
    echo_round_trip(&mut two, b"still there").await;
    drop(two);
    within("the second forwarder", second.join()).await.unwrap();

    // Several ports in one request: each its own connection to the target.
    let mut both = forward(&pods, "greetserver-a", &[80, 9092]).await;
    let mut web = both.take_stream(80).unwrap();
    let mut grpc = both.take_stream(9092).unwrap();
    echo_round_trip(&mut grpc, b"to 9092").await;
    echo_round_trip(&mut web, b"to 80").await;
    drop((web, grpc));
    within("the two-port forwarder", both.join()).await.unwrap();

    // The target closes its connection: the client reads to EOF, with no error.
    kube.apply_pod(greet_pod("greetserver-b", "10.1.0.2"));
    kube.port_forward_to("default", "greetserver-b", bye_server().await);
    let mut bye = forward(&pods, "greetserver-b", &[9092]).await;
    let error = bye.take_error(9092).unwrap();
    let mut stream = bye.take_stream(9092).unwrap();
    let mut said = Vec::new();
    within("EOF from the target", stream.read_to_end(&mut said))
        .await
        .unwrap();
    assert_eq!(said, b"bye");
    // kube resolves the error future with None only once its task ends, after the stream is gone.
    drop(stream);
    join_after_server_close(bye).await;
    assert_eq!(within("the error channel", error).await, None);

    // Nothing listens at the target: the upgrade works, the error channel says why, then EOF.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    kube.apply_pod(greet_pod("greetserver-c", "10.1.0.3"));
    kube.port_forward_to("default", "greetserver-c", closed);
    let mut refused = forward(&pods, "greetserver-c", &[9092]).await;
    let error = refused.take_error(9092).unwrap();
    let mut stream = refused.take_stream(9092).unwrap();
    let message = within("the error message", error).await.expect("an error message");
    assert!(
        message.starts_with("error forwarding port 9092 to pod greetserver-c, uid "),
        "{message}"
    );
    let mut nothing = Vec::new();
    within("EOF", stream.read_to_end(&mut nothing)).await.unwrap();
    assert!(nothing.is_empty());
    drop(stream);
    join_after_server_close(refused).await;
}

#[tokio::test]
async fn port_forward_refusals_are_status_errors() {
    let kube = FakeKube::start().await;
    kube.apply_pod(greet_pod("greetserver-a", "10.1.0.1"));
    kube.apply_pod(greet_pod("greetserver-b", "10.1.0.2"));
    kube.port_forward_to("default", "greetserver-a", echo_server().await);
    let client = kube.client("default").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");

    // Forbidden, with the API server's wording; "pods" and "pods/portforward" are separate.
    kube.forbid("pods/portforward", true);
    let error = port_forward_error(within("port-forward", pods.portforward("greetserver-a", &[9092])).await);
    let status = api_status(&error);
    assert_eq!(status.code, 403);
    assert!(status.is_forbidden());
    assert_eq!(
        status.message,
        format!(
            "pods \"greetserver-a\" is forbidden: User \"{FAKE_USER}\" cannot create resource \"pods/portforward\" \
             in API group \"\" in the namespace \"default\""
        )
    );
    within("get", pods.get("greetserver-a")).await.unwrap();
    kube.forbid("pods/portforward", false);
    kube.forbid("pods", true);
    let mut forwarder = forward(&pods, "greetserver-a", &[9092]).await;
    echo_round_trip(&mut forwarder.take_stream(9092).unwrap(), b"allowed").await;
    kube.forbid("pods", false);

    // An unknown pod, and a pod without a target: 404 before any upgrade.
    let error = port_forward_error(within("port-forward", pods.portforward("nope", &[9092])).await);
    let status = api_status(&error);
    assert_eq!((status.code, status.message.as_str()), (404, "pods \"nope\" not found"));
    assert!(status.is_not_found());
    let error = port_forward_error(within("port-forward", pods.portforward("greetserver-b", &[9092])).await);
    let status = api_status(&error);
    assert_eq!(status.code, 404);
    assert!(status.message.contains("no port-forward target"), "{status:?}");
    assert_eq!(kube.port_forward_count(), 1);

    // Bad ports, and a GET that is no WebSocket upgrade: 400.
    let path = "/api/v1/namespaces/default/pods/greetserver-a/portforward";
    for query in ["", "?ports=http", "?ports=0", "?ports=9092,70000"] {
        let request = http::Request::get(format!("{path}{query}")).body(Vec::new()).unwrap();
        let error = match within("connect", client.connect(request)).await {
            Ok(_) => panic!("{query}: upgraded"),
            Err(error) => error,
        };
        assert_eq!(api_status(&error).code, 400, "{query}: {error}");
    }
    let plain = http::Request::get(format!("{path}?ports=9092"))
        .body(Vec::new())
        .unwrap();
    let error = within("plain GET", client.request_text(plain)).await.unwrap_err();
    let status = api_status(&error);
    assert_eq!(status.code, 400);
    assert!(status.message.starts_with("Upgrade request required"), "{status:?}");
    assert_eq!(kube.port_forward_count(), 1);

    // On the wire: only v4.channel.k8s.io is spoken; the 101 carries the RFC 6455 accept key, and
    // the first frames are the port (little-endian) on the data and error channels.
    let raw = async |protocol: &str| {
        let addr = kube.url().trim_start_matches("http://").to_owned();
        let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!(
            "GET {path}?ports=9092 HTTP/1.1\r\nHost: fake\r\nAuthorization: Bearer {FAKE_TOKEN}\r\nUpgrade: \
             websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: \
             dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: {protocol}\r\n\r\n"
        );
        tcp.write_all(request.as_bytes()).await.unwrap();
        let mut received = Vec::new();
        while !received.windows(4).any(|w| w == b"\r\n\r\n") {
            let mut buf = [0; 4096];
            let n = tcp.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed before the head: {}", String::from_utf8_lossy(&received));
            received.extend_from_slice(&buf[..n]);
        }
        (tcp, received)
    };
    let (_, head) = within("a v5-only request", raw("v5.channel.k8s.io")).await;
    assert!(head.starts_with(b"HTTP/1.1 400 "), "{}", String::from_utf8_lossy(&head));
    let (mut tcp, mut received) = within("a v4 request", raw("v4.channel.k8s.io")).await;
    let end = received.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8_lossy(&received[..end]).to_lowercase();
    assert!(head.starts_with("http/1.1 101 "), "{head}");
    assert!(
        head.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
        "{head}"
    );
    assert!(head.contains("sec-websocket-protocol: v4.channel.k8s.io"), "{head}");
    let mut frames = received.split_off(end);
    while frames.len() < 10 {
        let mut buf = [0; 64];
        let n = within("the port frames", tcp.read(&mut buf)).await.unwrap();
        assert!(n > 0, "closed after {frames:?}");
        frames.extend_from_slice(&buf[..n]);
    }
    // FIN+binary, unmasked, 3 bytes: channel, then 9092 = 0x2384 little-endian.
    assert_eq!(frames[..10], [0x82, 3, 0, 0x84, 0x23, 0x82, 3, 1, 0x84, 0x23]);
    assert_eq!(kube.port_forward_count(), 2);
}
