//! The controls: carry out the dashboard's [`Action`]s (mode switch, load,
//! demo pods) without blocking the frame loop; each runs in its own task and
//! reports back through the event channel.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, watch};

use super::observer_client::{self, GatewayLink};
use super::state::{Action, AppEvent, LoadState};
use crate::demo_controller::DemoCommand;

/// The Observer channels (with the token) of the gateways being followed,
/// by name; shared with whatever discovers gateways (kube).
pub type GatewayChannels = Arc<Mutex<BTreeMap<String, GatewayLink>>>;

/// What carries out the actions, and where their results go.
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
            Action::Quit | Action::CycleView => {}
            Action::SetMode(mode) => {
                let gateways = self.gateways.lock().unwrap_or_else(|p| p.into_inner()).clone();
                for (name, link) in gateways {
                    let events = self.events.clone();
                    tokio::spawn(async move {
                        let _ = events.send(observer_client::set_mode(name, link, mode).await).await;
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
            Action::ToggleSlowPod => self.demo_command(DemoCommand::ToggleSlowPod),
            Action::ToggleConnectionAge => self.demo_command(DemoCommand::ToggleConnectionAge),
            Action::ToggleBypass => self.demo_command(DemoCommand::ToggleBypass),
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
