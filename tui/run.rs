//! The edges: the terminal loop, the controls that carry out [`Action`]s,
//! and the `--once` observer. Everything else in `tui` is pure.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use crossterm::event::{Event, EventStream};
use tokio::sync::{mpsc, watch};
use tokio_stream::StreamExt;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use super::demo::Demo;
use super::state::{Action, App, AppEvent, LoadState, PodInfo};
use super::ui::{self, Theme};
use super::{network_text, observer_client};

/// Frames per second of the dashboard.
const FRAME: Duration = Duration::from_millis(100);
/// Events queued for the UI before the network workers wait.
pub const EVENT_QUEUE: usize = 64 * 1024;

/// Requests to the task that owns the demo.
#[derive(Debug)]
pub enum DemoCommand {
    AddPod,
    KillPod(String),
}

/// The Observer channels of the gateways being followed, by name; shared
/// with whatever discovers gateways (kube).
pub type GatewayChannels = Arc<Mutex<BTreeMap<String, Channel>>>;

/// Carries out the dashboard's actions without blocking the frame loop:
/// each runs in its own task and reports back through the event channel.
#[derive(Clone)]
pub struct Controls {
    pub gateways: GatewayChannels,
    pub load: Option<watch::Sender<LoadState>>,
    pub demo: Option<mpsc::Sender<DemoCommand>>,
    pub events: mpsc::Sender<AppEvent>,
}

impl Controls {
    pub fn perform(&self, action: Action) {
        match action {
            Action::Quit => {}
            Action::SetMode(mode) => {
                let gateways = self.gateways.lock().unwrap_or_else(|p| p.into_inner()).clone();
                for (name, channel) in gateways {
                    let events = self.events.clone();
                    tokio::spawn(async move {
                        let _ = events.send(observer_client::set_mode(name, channel, mode).await).await;
                    });
                }
            }
            Action::SetLoad(state) => {
                if let Some(load) = &self.load {
                    load.send_replace(state);
                }
            }
            Action::AddPod => self.demo_command(DemoCommand::AddPod),
            Action::KillPod(name) => self.demo_command(DemoCommand::KillPod(name)),
        }
    }

    fn demo_command(&self, command: DemoCommand) {
        if let Some(demo) = &self.demo
            && demo.try_send(command).is_err()
        {
            let _ = self.events.try_send(AppEvent::Notice {
                text: "the demo is busy; try again".into(),
                error: true,
            });
        }
    }
}

/// Runs the dashboard until the user quits. The terminal is restored on
/// every exit path, panics included (`ratatui::init` installs the hook).
pub async fn dashboard(mut app: App, mut events: mpsc::Receiver<AppEvent>, controls: Controls) -> anyhow::Result<()> {
    use std::io::IsTerminal as _;
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        anyhow::bail!("the dashboard needs a terminal (stdin and stdout); for scripts use --once 10s --output json");
    }
    let theme = Theme::from_env();
    let mut terminal = ratatui::init();
    let result = frame_loop(&mut terminal, &mut app, &mut events, &controls, theme).await;
    ratatui::restore();
    result
}

async fn frame_loop(
    terminal: &mut ratatui::DefaultTerminal,
    app: &mut App,
    events: &mut mpsc::Receiver<AppEvent>,
    controls: &Controls,
    theme: Theme,
) -> anyhow::Result<()> {
    let mut keys = EventStream::new();
    let mut frame = tokio::time::interval(FRAME);
    frame.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = frame.tick() => {
                let now = Instant::now();
                // Drain what arrived since the last frame (bounded, so a flood
                // cannot starve the keyboard).
                for _ in 0..EVENT_QUEUE {
                    match events.try_recv() {
                        Ok(event) => app.update(event, now),
                        Err(_) => break,
                    }
                }
                app.tick(now);
                terminal.draw(|f| ui::render(app, f, now, theme)).context("drawing the dashboard")?;
            }
            input = keys.next() => match input {
                Some(Ok(Event::Key(key))) => {
                    let now = Instant::now();
                    match app.on_key(key, now) {
                        Some(Action::Quit) => return Ok(()),
                        Some(action) => controls.perform(action),
                        None => {}
                    }
                    terminal.draw(|f| ui::render(app, f, now, theme)).context("drawing the dashboard")?;
                }
                Some(Ok(Event::Resize(..))) => {
                    let now = Instant::now();
                    terminal.draw(|f| ui::render(app, f, now, theme)).context("drawing the dashboard")?;
                }
                Some(Ok(_)) => {}
                Some(Err(err)) => return Err(err).context("reading the keyboard"),
                None => return Ok(()),
            },
        }
    }
}

/// Folds events into `app` for `duration`, without a terminal. Fails if the
/// gateway never answered.
pub async fn observe_for(
    app: &mut App,
    events: &mut mpsc::Receiver<AppEvent>,
    duration: Duration,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + duration;
    let mut last_error = None;
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => break,
            event = events.recv() => match event {
                Some(event) => {
                    if let AppEvent::Disconnected { error, .. } = &event {
                        last_error = Some(error.clone());
                    }
                    app.update(event, Instant::now());
                }
                None => break,
            }
        }
    }
    if !app.synced() {
        anyhow::bail!(
            "could not reach the gateway's Observer at {} within {:?}: {}",
            app.title(),
            duration,
            last_error.unwrap_or_else(|| "no answer".into())
        );
    }
    Ok(())
}

/// Owns the demo: adds and kills pods on command and reports the pod list.
pub async fn demo_controller(
    mut demo: Demo,
    mut commands: mpsc::Receiver<DemoCommand>,
    events: mpsc::Sender<AppEvent>,
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
        };
        let _ = events.send(pod_list(&demo)).await;
        let _ = events.send(notice).await;
    }
    demo.shutdown().await;
}
