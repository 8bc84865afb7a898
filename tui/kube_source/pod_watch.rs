//! The greetserver pods: a reflector over a Pod watch, turned into the
//! dashboard's pod list and, for the pods' own metrics, their scrape targets.

use std::time::{Instant, SystemTime};

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::metrics_targets::{METRICS_PORT_NAME, ProxyTargets};
use crate::network_text;
use crate::state::{AppEvent, KubeStatus, PodInfo, WatchState};
use greet_proto::sanitize::sanitize_truncated;
use kube_access::{KubeTarget, WatchProblem, describe_watch_error};
use pod_metrics::Target;

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
        serving_terminating: false,
        phase: phase.map(|p| sanitize_truncated(&p, network_text::MAX_PHASE)),
        restarts,
        node: pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .map(network_text::name),
        created,
        metrics_family: None,
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
    watch_pods_and_metrics(target, namespace, selector, tx, None, cancel).await;
}

/// [`watch_pods`], also keeping `metrics` up to date with the pods' metrics
/// endpoints (the same watch: no second one on the API server).
pub(crate) async fn watch_pods_and_metrics(
    target: KubeTarget,
    namespace: String,
    selector: String,
    tx: mpsc::Sender<AppEvent>,
    metrics: Option<(ProxyTargets, watch::Sender<Vec<Target>>)>,
    cancel: CancellationToken,
) {
    let mut portless_told = false;
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
                let state = reader.state();
                let pods = state.iter().map(|p| pod_info(p, now)).collect();
                if tx.send(AppEvent::Pods(pods)).await.is_err() {
                    return;
                }
                if let Some((proxy, targets)) = &metrics {
                    let (scraped, portless) = proxy.of(state.iter().map(|p| p.as_ref()));
                    targets.send_if_modified(|known| {
                        let changed = *known != scraped;
                        *known = scraped;
                        changed
                    });
                    // Said once: the list of such pods changes little.
                    if !portless.is_empty() && !portless_told {
                        portless_told = true;
                        let text = format!(
                            "{} has no container port named `{METRICS_PORT_NAME}`: its metrics are not read; pass --metrics-port",
                            portless.join(", ")
                        );
                        if tx.send(AppEvent::Notice { text, error: true }).await.is_err() {
                            return;
                        }
                    }
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

#[cfg(test)]
mod tests;
