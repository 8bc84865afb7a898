//! `greet-top` without a subcommand: find the sources (a gateway's Observer,
//! the cluster's pods, the pods' own metrics), wire them to the dashboard
//! or to a `--once` report.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::pod_source::{self, MetricsArgs, Source};
use super::{AttachArgs, DEFAULT_GATEWAY, DEFAULT_LOAD_RATE, OnceArgs};
use crate::controls::{Controls, GatewayChannels};
use crate::kube_source::{self, GatewayPods};
use crate::observer_client::{self, GatewayLink, Subscription};
use crate::state::{App, AppEvent, LoadState, Views};
use crate::terminal::{self, EVENT_QUEUE};
use crate::{load, network_text, once};

/// Where the gateways come from, once the command line and the cluster are known.
enum GatewaySource {
    Url(String),
    KubePods,
}

pub(super) async fn run(
    args: AttachArgs,
    metrics: MetricsArgs,
    once: OnceArgs,
    subscription: Subscription,
) -> anyhow::Result<()> {
    let token = match &args.token {
        Some(setting) => Some(setting.token("--token / GREET_TOP_TOKEN")?),
        None => None,
    };
    let cancel = CancellationToken::new();
    let (tx, mut rx) = mpsc::channel(EVENT_QUEUE);
    // The cluster, unless told not to; without a kubeconfig greet-top still
    // works against a gateway URL or metrics URLs, and says so.
    let wants_kube = args.context.is_some() || args.namespace.is_some();
    let kube = if args.no_kube {
        None
    } else {
        match kube_access::connect(args.context.as_deref()).await {
            Ok(target) => Some(target),
            Err(err) if wants_kube => return Err(err),
            Err(err) => {
                let instead = if metrics.metrics_url.is_empty() {
                    "pods come from the gateway"
                } else {
                    "pods come from --metrics-url"
                };
                let text = network_text::error(&format!("no Kubernetes access ({err:#}); {instead}"));
                let _ = tx.send(AppEvent::Notice { text, error: false }).await;
                None
            }
        }
    };
    let namespace = kube.as_ref().map(|target| {
        args.namespace
            .clone()
            .unwrap_or_else(|| target.default_namespace.clone())
    });
    // Whether the cluster runs gateways decides the default view.
    let gateway_pods = match (&kube, &namespace) {
        (Some(target), Some(namespace)) if args.gateway.is_none() && metrics.source.is_none() => {
            Some(kube_source::has_gateway_pods(target, namespace, &args.gateway_selector).await)
        }
        _ => None,
    };
    let source = metrics.source(args.gateway.is_some(), gateway_pods);
    if once.once.is_some() && source == Source::Both {
        anyhow::bail!(
            "--once reports one view, and both the gateway's and the pods' own metrics were asked for: \
             add --source gateway or --source metrics"
        );
    }

    let channels: GatewayChannels = Arc::new(Mutex::new(BTreeMap::new()));
    let gateway_source = match (&args.gateway, &kube) {
        (Some(url), _) => GatewaySource::Url(url.clone()),
        (None, Some(_)) => GatewaySource::KubePods,
        (None, None) => GatewaySource::Url(DEFAULT_GATEWAY.to_owned()),
    };
    let follows_gateway = source != Source::Metrics;
    let gateway_title = match &gateway_source {
        GatewaySource::Url(url) => url.clone(),
        GatewaySource::KubePods => format!("pods {} (port-forward :{})", args.gateway_selector, args.observe_port),
    };
    if follows_gateway && let GatewaySource::Url(url) = &gateway_source {
        let channel = observer_client::observer_channel_with(url, args.verify())?;
        let link = GatewayLink::new(channel, token.as_ref());
        channels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(url.clone(), link.clone());
        tokio::spawn(observer_client::follow(
            url.clone(),
            link,
            subscription,
            tx.clone(),
            cancel.clone(),
        ));
    }

    // The pods' own metrics: fixed URLs, or every watched pod through the API server.
    let mut pods_title = String::new();
    let mut proxy_targets = None;
    let mut url_targets = None;
    if source != Source::Gateway {
        let config = metrics.config();
        if !metrics.metrics_url.is_empty() {
            let targets = metrics.url_targets()?;
            pods_title = format!("{} URLs, every {:?}", targets.len(), config.interval);
            let (targets_tx, targets_rx) = watch::channel(targets);
            pod_source::start(targets_rx, None, config, tx.clone(), cancel.clone())?;
            url_targets = Some(targets_tx);
        } else if let (Some(target), Some(namespace)) = (&kube, &namespace) {
            let proxy = metrics.proxy_targets(namespace);
            let port = proxy
                .port
                .map_or_else(|| "port `metrics`".to_owned(), |p| format!(":{p}"));
            pods_title = format!("{} via pods/proxy {port}{}", args.selector, proxy.path);
            let (targets_tx, targets_rx) = watch::channel(Vec::new());
            pod_source::start(
                targets_rx,
                Some(target.config.clone()),
                config,
                tx.clone(),
                cancel.clone(),
            )?;
            proxy_targets = Some((proxy, targets_tx));
        } else {
            anyhow::bail!(
                "the pods' own metrics need a cluster to find the pods (no Kubernetes access) \
                 or their addresses: pass --metrics-url http://host:port/metrics,..."
            );
        }
    }

    if let (Some(target), Some(namespace)) = (kube, namespace) {
        tokio::spawn(kube_source::watch_pods_and_metrics(
            target.clone(),
            namespace.clone(),
            args.selector.clone(),
            tx.clone(),
            proxy_targets,
            cancel.clone(),
        ));
        if follows_gateway && matches!(gateway_source, GatewaySource::KubePods) {
            let gateways = GatewayPods {
                namespace,
                selector: args.gateway_selector.clone(),
                port: args.observe_port,
                subscription,
                token,
            };
            tokio::spawn(kube_source::follow_gateway_pods(
                target,
                gateways,
                tx.clone(),
                Arc::clone(&channels),
                cancel.clone(),
            ));
        }
    }
    let now = Instant::now();
    let mut gateway_app = App::new(gateway_title, now);
    if let GatewaySource::Url(url) = &gateway_source {
        gateway_app = gateway_app.expecting(url);
    }
    let pods_app = App::new(pods_title, now).with_pod_metrics();

    if let Some(duration) = once.once {
        let result = if source == Source::Metrics {
            let mut app = pods_app.counting_from_now().over_everything_counted();
            once::observe_pod_metrics(&mut app, &mut rx, duration, metrics.scrape_interval)
                .await
                .and_then(|()| once::print_report(&app, duration, once.format(), &once.fail_on))
        } else {
            let mut app = gateway_app.counting_from_now().over_everything_counted();
            once::observe_for(&mut app, &mut rx, duration).await?;
            let followed = channels.lock().unwrap_or_else(|p| p.into_inner()).clone();
            once::settle(&mut app, &mut rx, followed, subscription).await;
            once::print_report(&app, duration, once.format(), &once.fail_on)
        };
        cancel.cancel();
        drop(url_targets);
        return result;
    }

    let rest = match &args.load_url {
        Some(url) => Some(observer_client::rest_client(url.clone(), args.verify())?),
        None => None,
    };
    let load = rest.map(|rest| {
        let state = LoadState {
            running: false,
            rate: args.load_rate.unwrap_or(DEFAULT_LOAD_RATE),
        };
        let (control, control_rx) = watch::channel(state);
        tokio::spawn(load::run(rest, control_rx, tx.clone(), cancel.clone()));
        (state, control)
    });
    let (mut gateway_app, mut pods_app) = (gateway_app, pods_app);
    if let Some((state, _)) = load {
        match source {
            Source::Metrics => pods_app = pods_app.with_load(state),
            Source::Gateway | Source::Both => gateway_app = gateway_app.with_load(state),
        }
    }
    let views = match source {
        Source::Gateway => Views::single(gateway_app),
        Source::Metrics => Views::single(pods_app),
        Source::Both => Views::paired(gateway_app, pods_app),
    };
    let load = load.map(|(_, control)| control);
    let controls = Controls {
        gateways: channels,
        load,
        demo: None,
        events: tx,
    };
    let result = terminal::dashboard(views, rx, controls).await;
    cancel.cancel();
    drop(url_targets);
    result
}
