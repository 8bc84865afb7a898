//! Kubernetes sources for the dashboard: the greetserver pods (a reflector
//! over a Pod watch) and the gateway pods, each followed through the API
//! server's port-forward, so no kubectl is needed.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::StreamExt;
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, Endpoint};

use super::controls::GatewayChannels;
use super::network_text;
use super::observer_client::{self, GatewayLink, Subscription};
use super::state::AppEvent;
use greet_proto::sanitize::sanitize_truncated;
use greet_runtime::auth::ControlToken;
use kube_access::{KubeTarget, describe_watch_error};

mod pod_watch;
pub(crate) use pod_watch::watch_pods_and_metrics;
pub use pod_watch::{pod_info, watch_pods};

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
pub(crate) fn is_live_gateway(pod: &Pod) -> bool {
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

/// Whether `namespace` runs any gateway pod (`selector`): it decides the
/// default view. A list that fails counts as yes: following the gateways
/// then says why in words.
pub(crate) async fn has_gateway_pods(target: &KubeTarget, namespace: &str, selector: &str) -> bool {
    let api: Api<Pod> = Api::namespaced(target.client.clone(), namespace);
    let params = kube::api::ListParams::default().labels(selector).limit(1);
    let listed = tokio::time::timeout(Duration::from_secs(5), api.list_metadata(&params)).await;
    !matches!(listed, Ok(Ok(list)) if list.items.is_empty())
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
