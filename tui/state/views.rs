//! Which source the screen shows. With a gateway and the pods' own metrics
//! both followed, each feeds an [`App`] of its own (the same requests must
//! not be counted twice), and `v` steps through the gateway's view, the
//! pods' view and both side by side: what the gateway sent each pod beside
//! what each pod says it served.

use std::time::Instant;

use crossterm::event::KeyEvent;

use super::keys::{self, Command};
use super::{Action, App, AppEvent};

/// The name the pods' metrics source goes by among the gateways; the space
/// keeps it apart from any gateway's (a URL or a pod name).
pub const POD_METRICS: &str = "pods' own metrics";

/// What the screen shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Shown {
    /// Both side by side: the gateway's rows with each pod's own rate.
    #[default]
    Both,
    Gateway,
    Pods,
}

impl Shown {
    fn next(self) -> Shown {
        match self {
            Shown::Both => Shown::Gateway,
            Shown::Gateway => Shown::Pods,
            Shown::Pods => Shown::Both,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Shown::Both => "the gateway's view beside the pods' own metrics",
            Shown::Gateway => "the gateway's view",
            Shown::Pods => "the pods' own metrics",
        }
    }
}

/// One view, or a gateway's and the pods' own side by side.
#[derive(Clone, Debug)]
pub struct Views {
    main: App,
    pods: Option<App>,
    shown: Shown,
}

impl Views {
    /// One source: a gateway's, or (with [`App::with_pod_metrics`]) the
    /// pods' own metrics alone.
    pub fn single(app: App) -> Self {
        Views {
            main: app,
            pods: None,
            shown: Shown::Gateway,
        }
    }

    /// A gateway's view and the pods' own, shown side by side first.
    pub fn paired(gateway: App, pods: App) -> Self {
        Views {
            main: gateway.with_views(),
            pods: Some(pods.with_pod_metrics().with_views()),
            shown: Shown::Both,
        }
    }

    /// The gateway's view (or the only one).
    pub fn main(&self) -> &App {
        &self.main
    }

    pub fn main_mut(&mut self) -> &mut App {
        &mut self.main
    }

    /// The pods' own view beside a gateway's, if there is one.
    pub fn pods(&self) -> Option<&App> {
        self.pods.as_ref()
    }

    pub fn shown(&self) -> Shown {
        self.shown
    }

    /// What to draw: the view shown, and beside it, when both are shown,
    /// the pods' own view.
    pub fn drawn(&self) -> (&App, Option<&App>) {
        match (self.shown, &self.pods) {
            (Shown::Pods, Some(pods)) => (pods, None),
            (Shown::Both, Some(pods)) => (&self.main, Some(pods)),
            _ => (&self.main, None),
        }
    }

    /// Folds one event into the view it belongs to: the pods' metrics into
    /// theirs, everything else into the gateway's.
    pub fn update(&mut self, event: AppEvent, now: Instant) {
        match (&mut self.pods, &event) {
            (Some(pods), AppEvent::Gateway { gateway, .. } | AppEvent::Connected { gateway })
                if gateway == POD_METRICS =>
            {
                pods.update(event, now);
            }
            _ => self.main.update(event, now),
        }
    }

    pub fn tick(&mut self, now: Instant) {
        self.main.tick(now);
        if let Some(pods) = &mut self.pods {
            pods.tick(now);
        }
    }

    /// A key: `v` steps the view; the gateway's view takes every other key
    /// (a mode switch acts on the gateways whatever is shown); and what
    /// only arranges the view (sort, window, filter, freeze, reset,
    /// scroll, help) applies to the pods' view too, so both stay alike.
    pub fn on_key(&mut self, key: KeyEvent, now: Instant) -> Option<Action> {
        let arranges = self.pods.as_ref().is_some_and(|pods| {
            pods.filtering() || keys::binding_for(key, pods.key_scope()).is_some_and(|b| arranges_the_view(b.command))
        });
        let action = match self.shown {
            // Shown alone, the pods' view scrolls and filters as the user sees it.
            Shown::Pods if arranges => {
                let action = self.pods.as_mut().and_then(|pods| pods.on_key(key, now));
                return action.filter(|a| *a == Action::Quit);
            }
            _ => self.main.on_key(key, now),
        };
        if arranges && let Some(pods) = &mut self.pods {
            pods.on_key(key, now);
        }
        match action {
            Some(Action::CycleView) => {
                self.shown = self.shown.next();
                None
            }
            other => other,
        }
    }
}

/// Keys that change only how the view looks, never what is counted or routed.
fn arranges_the_view(command: Command) -> bool {
    matches!(
        command,
        Command::Scroll(_)
            | Command::CycleSort
            | Command::CycleWindow
            | Command::Filter
            | Command::Freeze
            | Command::Reset
            | Command::ToggleHelp
            | Command::Escape
    )
}

#[cfg(test)]
mod tests;
