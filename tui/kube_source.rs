//! Kubernetes sources for the dashboard: the greetserver pods (a reflector
//! over a Pod watch) and the gateway pods, each followed through the API
//! server's port-forward, so no kubectl is needed.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use futures_util::StreamExt;
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, Endpoint};

use super::controls::GatewayChannels;
use super::network_text;
use super::observer_client::{self, GatewayLink, Subscription};
use super::state::{AppEvent, KubeStatus, PodInfo, WatchState};
use greet_proto::sanitize::sanitize_truncated;
use greet_runtime::auth::ControlToken;
use kube_access::{KubeTarget, WatchProblem, describe_watch_error};

/// What the pods panel needs of a Pod. `now` pairs the two clocks, so the
/// creation time lands on this process's monotonic clock.
pub fn pod_info(pod: &Pod, now: (Instant, SystemTime)) -> PodInfo {
    let status = pod.status.as_ref();
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .is_some_and(|c| c.status == "True");
    let terminating = pod.metadata.deletion_timestamp.is_some();
    let phase = if terminating {
        Some("Terminating".to_owned())
    } else {
        status.and_then(|s| s.phase.clone())
    };
    let restarts = status
        .and_then(|s| s.container_statuses.as_ref())
        .map(|cs| cs.iter().map(|c| u32::try_from(c.restart_count).unwrap_or(0)).sum())
        .unwrap_or(0);
    let created = pod.metadata.creation_timestamp.as_ref().and_then(|t| {
        let created: SystemTime = t.0.into();
        let age = now.1.duration_since(created).unwrap_or_default();
        now.0.checked_sub(age)
    });
    // What the API server says is shown: cleaned here, where it enters.
    PodInfo {
        name: network_text::name(pod.metadata.name.as_deref().unwrap_or_default()),
        ip: network_text::name(status.and_then(|s| s.pod_ip.as_deref()).unwrap_or_default()),
        // The pod, not an address: the gateways' endpoint lists give those.
        endpoint: String::new(),
        ready: ready && !terminating,
        // Only the gateways know which pods their balancers skip.
        skipped: None,
        down: None,
        phase: phase.map(|p| sanitize_truncated(&p, network_text::MAX_PHASE)),
        restarts,
        node: pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .map(network_text::name),
        created,
    }
}

fn watch_state(problem: WatchProblem) -> WatchState {
    match problem {
        WatchProblem::Forbidden { rule } => WatchState::Forbidden(rule),
        WatchProblem::Other(text) => WatchState::Retrying(text),
    }
}

/// Watches the pods matching `selector` in `namespace` and sends the whole
/// list on every change, plus the watch's state for the header.
pub async fn watch_pods(
    target: KubeTarget,
    namespace: String,
    selector: String,
    tx: mpsc::Sender<AppEvent>,
    cancel: CancellationToken,
) {
    let api: Api<Pod> = Api::namespaced(target.client.clone(), &namespace);
    let (reader, writer) = reflector::store();
    let mut events = watcher(api, watcher::Config::default().labels(&selector))
        .default_backoff()
        .reflect(writer)
        .boxed();
    let status = |watch| {
        AppEvent::Kube(KubeStatus {
            context: target.context.clone(),
            namespace: namespace.clone(),
            watch,
        })
    };
    let mut state = WatchState::Starting;
    if tx.send(status(state.clone())).await.is_err() {
        return;
    }
    loop {
        // Stop when cancelled or when the watch stream ends.
        let Some(Some(event)) = cancel.run_until_cancelled(events.next()).await else {
            return;
        };
        let next = match event {
            Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => continue,
            Ok(_) => {
                let now = (Instant::now(), SystemTime::now());
                let pods = reader.state().iter().map(|p| pod_info(p, now)).collect();
                if tx.send(AppEvent::Pods(pods)).await.is_err() {
                    return;
                }
                WatchState::Synced
            }
            Err(err) => watch_state(describe_watch_error(
                &err,
                "pods",
                &namespace,
                "apply k8s/greet-top-rbac.yaml",
            )),
        };
        if next != state {
            state = next;
            if tx.send(status(state.clone())).await.is_err() {
                return;
            }
        }
    }
}

/// A lazily connecting channel to `port` of `pod`, tunnelled through the API
/// server's port-forward (a new tunnel per connection).
pub fn port_forward_channel(api: Api<Pod>, pod: String, port: u16) -> Channel {
    let connector = tower::service_fn(move |_: http::Uri| {
        let api = api.clone();
        let pod = pod.clone();
        async move {
            let mut forwarder = api
                .portforward(&pod, &[port])
                .await
                .map_err(|err| port_forward_error(&err, &pod, api.namespace()))?;
            let stream = forwarder
                .take_stream(port)
                .ok_or_else(|| format!("port-forward to {pod} gave no stream for port {port}"))?;
            // The forwarder pumps the tunnel; it ends when the stream closes.
            tokio::spawn(async move {
                if let Err(err) = forwarder.join().await {
                    tracing::debug!("port-forward ended: {err}");
                }
            });
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(TokioIo::new(stream))
        }
    });
    // The URI only names the stream for HTTP/2; the connector ignores it.
    Endpoint::from_static("http://gateway.port-forward")
        .connect_timeout(Duration::from_secs(5))
        .http2_keep_alive_interval(Duration::from_secs(10))
        .keep_alive_timeout(Duration::from_secs(5))
        .connect_with_connector_lazy(connector)
}

/// Why a port-forward to `pod` failed, in words a user can act on.
fn port_forward_error(err: &kube::Error, pod: &str, namespace: Option<&str>) -> String {
    let namespace = namespace.unwrap_or("default");
    match err {
        kube::Error::Api(status) if status.code == 403 => format!(
            "port-forward to {pod} forbidden: needs create on pods/portforward in namespace {namespace} (apply k8s/greet-top-rbac.yaml)"
        ),
        kube::Error::Api(status) => sanitize_truncated(
            &format!(
                "port-forward to {pod} failed: API server answered {}: {}",
                status.code, status.message
            ),
            200,
        ),
        other => sanitize_truncated(&format!("port-forward to {pod} failed: {other}"), 200),
    }
}

/// A gateway pod worth following: running and not being deleted.
fn is_live_gateway(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none() && pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
}

/// Which gateway pods to follow, and how.
pub struct GatewayPods {
    pub namespace: String,
    pub selector: String,
    /// Their Observer port, reached through the API server's port-forward.
    pub port: u16,
    pub subscription: Subscription,
    /// Sent with every call through the tunnel, as to a gateway URL.
    pub token: Option<ControlToken>,
}

/// Finds the gateway pods and follows each one's Observer stream through a
/// port-forward; a gateway pod that goes away is dropped.
pub async fn follow_gateway_pods(
    target: KubeTarget,
    gateways: GatewayPods,
    tx: mpsc::Sender<AppEvent>,
    channels: GatewayChannels,
    cancel: CancellationToken,
) {
    let GatewayPods {
        namespace,
        selector,
        port,
        subscription,
        token,
    } = gateways;
    let api: Api<Pod> = Api::namespaced(target.client.clone(), &namespace);
    let mut events = watcher(api.clone(), watcher::Config::default().labels(&selector))
        .default_backoff()
        .boxed();
    let mut followed: BTreeMap<String, CancellationToken> = BTreeMap::new();
    let mut listing: Option<BTreeMap<String, bool>> = None;
    let mut live: BTreeMap<String, bool> = BTreeMap::new();
    loop {
        // Stop when cancelled or when the watch stream ends.
        let Some(Some(event)) = cancel.run_until_cancelled(events.next()).await else {
            return;
        };
        match event {
            Ok(watcher::Event::Init) => listing = Some(BTreeMap::new()),
            Ok(watcher::Event::InitApply(pod)) => {
                if let Some(name) = pod.metadata.name.clone() {
                    listing
                        .get_or_insert_with(BTreeMap::new)
                        .insert(name, is_live_gateway(&pod));
                }
                continue;
            }
            Ok(watcher::Event::InitDone) => live = listing.take().unwrap_or_default(),
            Ok(watcher::Event::Apply(pod)) => {
                if let Some(name) = pod.metadata.name.clone() {
                    live.insert(name, is_live_gateway(&pod));
                }
            }
            Ok(watcher::Event::Delete(pod)) => {
                if let Some(name) = &pod.metadata.name {
                    live.remove(name);
                }
            }
            Err(err) => {
                let problem = describe_watch_error(&err, "pods", &namespace, "apply k8s/greet-top-rbac.yaml");
                let notice = AppEvent::Notice {
                    text: network_text::error(&format!("finding gateway pods ({selector}): {problem}")),
                    error: true,
                };
                if tx.send(notice).await.is_err() {
                    return;
                }
                continue;
            }
        }
        if listing.is_some() {
            continue;
        }
        // Start following new live gateways, stop following the others.
        for (name, _) in live.iter().filter(|(_, is_live)| **is_live) {
            if followed.contains_key(name) {
                continue;
            }
            let link = GatewayLink::new(port_forward_channel(api.clone(), name.clone(), port), token.as_ref());
            // The pod's name is the gateway's name on screen: cleaned here.
            let gateway = network_text::name(name);
            channels
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(gateway.clone(), link.clone());
            let stop = cancel.child_token();
            let follow = observer_client::follow(gateway, link, subscription, tx.clone(), stop.clone());
            tokio::spawn(follow);
            followed.insert(name.clone(), stop);
        }
        let gone: Vec<String> = followed
            .keys()
            .filter(|name| live.get(*name) != Some(&true))
            .cloned()
            .collect();
        for name in gone {
            if let Some(token) = followed.remove(&name) {
                token.cancel();
            }
            let gateway = network_text::name(&name);
            channels.lock().unwrap_or_else(|p| p.into_inner()).remove(&gateway);
            if tx.send(AppEvent::GatewayRemoved { gateway }).await.is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{ContainerStatus, PodCondition, PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    use super::*;

    fn pod(ready: &str, phase: &str, restarts: &[i32], created_secs_ago: u64) -> Pod {
        let created = SystemTime::now() - Duration::from_secs(created_secs_ago);
        Pod {
            metadata: ObjectMeta {
                name: Some("greetserver-deploy-7595ccbdd5-l8kmv".into()),
                creation_timestamp: Some(Time(k8s_openapi::jiff::Timestamp::try_from(created).unwrap())),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec {
                node_name: Some("minikube".into()),
                ..PodSpec::default()
            }),
            status: Some(PodStatus {
                phase: Some(phase.into()),
                pod_ip: Some("172.17.0.2".into()),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: ready.into(),
                    ..PodCondition::default()
                }]),
                container_statuses: Some(
                    restarts
                        .iter()
                        .map(|r| ContainerStatus {
                            restart_count: *r,
                            ..ContainerStatus::default()
                        })
                        .collect(),
                ),
                ..PodStatus::default()
            }),
        }
    }

    #[test]
    fn pod_info_reads_readiness_restarts_node_and_age() {
        let now = (Instant::now(), SystemTime::now());
        let info = pod_info(&pod("True", "Running", &[1, 2], 120), now);
        assert_eq!(info.name, "greetserver-deploy-7595ccbdd5-l8kmv");
        assert_eq!(info.ip, "172.17.0.2");
        assert!(info.ready);
        assert_eq!(info.phase.as_deref(), Some("Running"));
        assert_eq!(info.restarts, 3);
        assert_eq!(info.node.as_deref(), Some("minikube"));
        let age = now.0.duration_since(info.created.unwrap()).as_secs();
        assert!((119..=121).contains(&age), "{age}");
    }

    #[test]
    fn pod_text_is_sanitised_where_it_enters() {
        let now = (Instant::now(), SystemTime::now());
        let mut evil = pod("True", "Run\u{1b}[2Jning for a very long time indeed", &[], 1);
        evil.metadata.name = Some("pod\u{1b}]0;x\u{7}-a".into());
        evil.spec = Some(PodSpec {
            node_name: Some("node\r\n".into()),
            ..PodSpec::default()
        });
        let info = pod_info(&evil, now);
        assert_eq!(info.name, "pod]0;x-a");
        assert_eq!(info.node.as_deref(), Some("node"));
        assert_eq!(info.phase.as_deref(), Some("Run[2Jning for a ve…"));
    }

    #[test]
    fn not_ready_and_terminating_pods_are_not_ready() {
        let now = (Instant::now(), SystemTime::now());
        assert!(!pod_info(&pod("False", "Running", &[], 1), now).ready);
        let mut deleting = pod("True", "Running", &[], 1);
        deleting.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::now()));
        let info = pod_info(&deleting, now);
        assert!(!info.ready);
        assert_eq!(info.phase.as_deref(), Some("Terminating"));
        assert!(!is_live_gateway(&deleting));
        assert!(is_live_gateway(&pod("True", "Running", &[], 1)));
        assert!(!is_live_gateway(&pod("False", "Pending", &[], 1)));
    }
}
