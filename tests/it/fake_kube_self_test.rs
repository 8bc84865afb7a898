//! Self-test of the fake Kubernetes API server (tests/fake-kube) against the
//! real `kube::Client`, `kube::Api` and `kube::runtime::watcher`. Every wait
//! is bounded. A module per concern; the helpers they share are here.

mod access;
mod pod_proxy;
mod port_forward;
mod raw_watch;
mod watch;

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

/// Asserts `error` is the API server's 403 with exactly `message`.
fn assert_forbidden(error: &kube::Error, message: &str) {
    let status = api_status(error);
    assert_eq!(status.code, 403);
    assert_eq!(status.reason, "Forbidden");
    assert!(status.is_forbidden());
    assert_eq!(status.message, message);
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
