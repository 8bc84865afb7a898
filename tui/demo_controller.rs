//! The task that owns the running demo: adds and kills pods on the
//! dashboard's command and reports the pod list.

use std::net::SocketAddr;

use pod_metrics::{Target, Via};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::bypass_client::{self, BYPASS_RATE};
use crate::network_text;
use crate::state::{AppEvent, PodInfo};
use greet_demo::Demo;

/// Requests to the task that owns the demo.
#[derive(Debug)]
pub enum DemoCommand {
    AddPod,
    KillPod(String),
    /// One pod SLOW_POD_DELAY slower, or back.
    ToggleSlowPod,
    /// DEMO_CONNECTION_AGE on every pod, or none.
    ToggleConnectionAge,
    /// The client that calls the pods straight, on or off.
    ToggleBypass,
}

/// How much slower `d` makes a pod: least-loaded then steers around it.
pub const SLOW_POD_DELAY: std::time::Duration = std::time::Duration::from_millis(25);

/// The max connection age `g` sets on every pod: short, so a sticky
/// client's pod visibly rotates every 3 s (±10 %).
pub(crate) const DEMO_CONNECTION_AGE: std::time::Duration = std::time::Duration::from_secs(3);

/// Owns the demo: adds and kills pods on command and reports the pod list.
pub(crate) async fn run(
    mut demo: Demo,
    mut commands: mpsc::Receiver<DemoCommand>,
    events: mpsc::Sender<AppEvent>,
    metrics: watch::Sender<Vec<Target>>,
    cancel: CancellationToken,
) {
    let pod_list = |demo: &Demo| {
        AppEvent::Pods(
            demo.pods()
                .map(|(name, addr)| PodInfo {
                    name: name.to_owned(),
                    ip: addr.ip().to_string(),
                    ready: true,
                    ..PodInfo::default()
                })
                .collect(),
        )
    };
    // What the pods' own metrics view scrapes, and where the bypassing client calls.
    let (pod_addrs, pod_addrs_rx) = watch::channel(Vec::<SocketAddr>::new());
    let publish = |demo: &Demo| {
        metrics.send_replace(metrics_targets(demo));
        pod_addrs.send_replace(demo.pods().map(|(_, addr)| addr).collect());
    };
    publish(&demo);
    let mut bypass: Option<CancellationToken> = None;
    let _ = events.send(pod_list(&demo)).await;
    loop {
        let command = tokio::select! {
            () = cancel.cancelled() => break,
            command = commands.recv() => match command {
                Some(command) => command,
                None => break,
            },
        };
        let notice = match command {
            DemoCommand::AddPod => match demo.add_pod().await {
                Ok(name) => AppEvent::Notice {
                    text: format!("added pod {name}"),
                    error: false,
                },
                Err(err) => AppEvent::Notice {
                    text: network_text::error(&format!("could not add a pod: {err:#}")),
                    error: true,
                },
            },
            DemoCommand::KillPod(name) => match demo.kill_pod(&name).await {
                Ok(()) => AppEvent::Notice {
                    text: format!("killed pod {name}"),
                    error: false,
                },
                Err(err) => AppEvent::Notice {
                    text: network_text::error(&format!("could not kill {name}: {err:#}")),
                    error: true,
                },
            },
            DemoCommand::ToggleSlowPod => match demo.toggle_slow_pod(SLOW_POD_DELAY) {
                Some((name, slow)) => AppEvent::Notice {
                    text: if slow {
                        format!("pod {name} now answers {} ms slower", SLOW_POD_DELAY.as_millis())
                    } else {
                        format!("pod {name} is back to normal speed")
                    },
                    error: false,
                },
                None => AppEvent::Notice {
                    text: "no pod to slow down".into(),
                    error: true,
                },
            },
            DemoCommand::ToggleBypass => match bypass.take() {
                Some(stop) => {
                    stop.cancel();
                    AppEvent::Notice {
                        text: "the direct client stopped: every call goes through the gateway".into(),
                        error: false,
                    }
                }
                None => {
                    let stop = cancel.child_token();
                    tokio::spawn(bypass_client::run(pod_addrs_rx.clone(), stop.clone()));
                    bypass = Some(stop);
                    AppEvent::Notice {
                        text: format!(
                            "a client now calls the pods straight, {BYPASS_RATE} req/s, bypassing the gateway"
                        ),
                        error: false,
                    }
                }
            },
            DemoCommand::ToggleConnectionAge => {
                let age = match demo.max_connection_age() {
                    Some(_) => None,
                    None => Some(DEMO_CONNECTION_AGE),
                };
                demo.set_max_connection_age(age);
                let _ = events.send(AppEvent::ConnectionAge(age)).await;
                AppEvent::Notice {
                    text: match age {
                        Some(age) => format!(
                            "every pod now sends GOAWAY to connections older than {} s (±10 %)",
                            age.as_secs()
                        ),
                        None => "max connection age off: connections stay where they are".into(),
                    },
                    error: false,
                }
            }
        };
        publish(&demo);
        let _ = events.send(pod_list(&demo)).await;
        let _ = events.send(notice).await;
    }
    demo.shutdown().await;
}

/// The demo pods' metrics endpoints, scraped directly (they are on loopback).
fn metrics_targets(demo: &Demo) -> Vec<Target> {
    demo.metrics_addrs()
        .map(|(name, addr)| Target {
            pod: name.to_owned(),
            ip: addr.ip().to_string(),
            via: Via::Url(format!("http://{addr}/metrics")),
        })
        .collect()
}
