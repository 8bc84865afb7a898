//! `greet-top` without a subcommand: find the sources (a gateway's Observer,
//! the cluster's pods, the pods' own metrics), wire them to the dashboard
//! or to a `--once` report.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::pod_source::{self, MetricsArgs, Source};
use super::{AttachArgs, DEFAULT_GATEWAY, DEFAULT_LOAD_RATE, OnceArgs, RecordArgs};
use crate::controls::{Controls, GatewayChannels};
use crate::kube_source::{self, GatewayPods};
use crate::observer_client::{self, GatewayLink, Subscription};
use crate::once::OnceApp;
use crate::record::{AppSpec, ViewsSpec};
use crate::state::{AppEvent, LoadState};
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
    record: RecordArgs,
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
    let kube_name = kube.as_ref().map(|target| {
        let namespace = args.namespace.as_deref().unwrap_or(&target.default_namespace);
        format!("kube {}/{namespace}", target.context)
    });
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
    // What was followed, for a recording's header.
    let mut sources = Vec::new();
    if follows_gateway {
        sources.push(format!("gateway {gateway_title}"));
    }
    if let Some(kube) = &kube_name {
        sources.push(kube.clone());
    }
    if source != Source::Gateway {
        sources.push(format!("pods' own metrics {pods_title}"));
        sources.extend(metrics.metrics_url.iter().cloned());
    }
    let mut gateway_view = AppSpec::new(gateway_title);
    if let GatewaySource::Url(url) = &gateway_source {
        gateway_view.expecting = Some(url.clone());
    }
    let pods_view = AppSpec {
        pod_metrics: true,
        ..AppSpec::new(pods_title)
    };
    // One instant for every view: a recording's offset 0.
    let now = Instant::now();

    if let Some(duration) = once.once {
        let mut view = if source == Source::Metrics {
            pods_view
        } else {
            gateway_view
        };
        view.once = true;
        let views = ViewsSpec::Single(view);
        let recorder = record.start(sources, &views, now)?;
        let mut app = OnceApp::new(views.main().build(now), recorder);
        let result = if source == Source::Metrics {
            match once::observe_pod_metrics(&mut app, &mut rx, duration, metrics.scrape_interval).await {
                Ok(()) => once::print_report(&mut app, duration, once.format(), &once.fail_on),
                Err(err) => Err(err),
            }
        } else {
            once::observe_for(&mut app, &mut rx, duration).await?;
            let followed = channels.lock().unwrap_or_else(|p| p.into_inner()).clone();
            once::settle(&mut app, &mut rx, followed, subscription).await;
            once::print_report(&mut app, duration, once.format(), &once.fail_on)
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
    let (mut gateway_view, mut pods_view) = (gateway_view, pods_view);
    if let Some((state, _)) = load {
        match source {
            Source::Metrics => pods_view.load = Some(state),
            Source::Gateway | Source::Both => gateway_view.load = Some(state),
        }
    }
    let views = match source {
        Source::Gateway => ViewsSpec::Single(gateway_view),
        Source::Metrics => ViewsSpec::Single(pods_view),
        Source::Both => ViewsSpec::Paired(gateway_view, pods_view),
    };
    let recorder = record.start(sources, &views, now)?;
    let load = load.map(|(_, control)| control);
    let controls = Controls {
        gateways: channels,
        load,
        demo: None,
        events: tx,
    };
    let result = terminal::dashboard(views.build(now), rx, controls, recorder).await;
    cancel.cancel();
    drop(url_targets);
    result
}
