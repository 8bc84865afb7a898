//! `greet-top demo`: everything on loopback, wired to the dashboard or `--once`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Args;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::{OnceArgs, RecordArgs};
use crate::controls::Controls;
use crate::demo_controller;
use crate::observer_client::{self, GatewayLink, Subscription};
use crate::once::OnceApp;
use crate::record::{AppSpec, ViewsSpec};
use crate::state::LoadState;
use crate::terminal::{self, EVENT_QUEUE};
use crate::{load, once};
use greet_demo::rest_client::RestClient;
use greet_demo::{Demo, DemoConfig};
use greet_proto::Mode;
use pod_metrics::ScrapeConfig;

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Number of greet-server pods.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=200))]
    pub pods: u16,
    /// Gateway mode at start.
    #[arg(long, value_enum, default_value_t = Mode::Sticky)]
    pub mode: Mode,
    /// Load generator rate, requests per second.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=5000))]
    pub rate: u32,
}

/// `greet-top demo`: the loopback cluster, its load and the dashboard (or `--once`).
pub(super) async fn run(
    args: DemoArgs,
    once: OnceArgs,
    subscription: Subscription,
    record: RecordArgs,
) -> anyhow::Result<()> {
    let cancel = CancellationToken::new();
    let demo = Demo::start(DemoConfig {
        pods: usize::from(args.pods),
        mode: args.mode,
        ..DemoConfig::default()
    })
    .await?;
    let observe_url = format!("http://{}", demo.gateway.observe_addr);
    let rest = RestClient::new(format!("http://{}", demo.gateway.rest_addr));
    let channel = observer_client::observer_channel(&observe_url)?;
    let (tx, mut rx) = mpsc::channel(EVENT_QUEUE);
    let name = "greetclient-demo".to_owned();
    tokio::spawn(observer_client::follow(
        name.clone(),
        channel.clone(),
        subscription,
        tx.clone(),
        cancel.clone(),
    ));

    let load_state = LoadState {
        running: true,
        rate: args.rate,
    };
    let (load_control, load_rx) = watch::channel(load_state);
    let (demo_tx, demo_rx) = mpsc::channel(8);
    // The pods' own metrics: the demo pods serve them, the dashboard scrapes them.
    let (targets, targets_rx) = watch::channel(Vec::new());
    let controller = tokio::spawn(demo_controller::run(demo, demo_rx, tx.clone(), targets, cancel.clone()));

    // One instant for every view: a recording's offset 0, so its replay
    // builds the same views on the same clock.
    let start = Instant::now();
    let gateway_view = AppSpec {
        expecting: Some(name.clone()),
        demo: true,
        load: Some(load_state),
        once: once.once.is_some(),
        ..AppSpec::new(format!("{observe_url} (demo)"))
    };
    let views = if once.once.is_some() {
        ViewsSpec::Single(gateway_view)
    } else {
        let pods = AppSpec {
            demo: true,
            ..AppSpec::new("of the demo pods (their /metrics, every 1s)")
        };
        ViewsSpec::Paired(gateway_view, pods)
    };
    let recorder = record.start(vec!["demo".to_owned(), observe_url.clone()], &views, start)?;

    let result = if let Some(duration) = once.once {
        let mut app = OnceApp::new(views.main().build(start), recorder);
        let start_load = || tokio::spawn(load::run(rest, load_rx, tx.clone(), cancel.clone()));
        let gateway = (name.clone(), GatewayLink::from(channel.clone()));
        match once::observe_demo(&mut app, &mut rx, duration, start_load, gateway, subscription).await {
            Ok(took) => once::print_report(&mut app, took, once.format(), &once.fail_on),
            Err(err) => Err(err),
        }
    } else {
        tokio::spawn(load::run(rest, load_rx, tx.clone(), cancel.clone()));
        super::pod_source::start(targets_rx, None, ScrapeConfig::default(), tx.clone(), cancel.clone())?;
        let controls = Controls {
            gateways: Arc::new(Mutex::new(BTreeMap::from([(name, GatewayLink::from(channel))]))),
            load: Some(load_control),
            demo: Some(demo_tx),
            events: tx,
        };
        terminal::dashboard(views.build(start), rx, controls, recorder).await
    };
    cancel.cancel();
    // The terminal is already restored; give the demo a moment to stop cleanly.
    let _ = tokio::time::timeout(Duration::from_secs(2), controller).await;
    result
}
