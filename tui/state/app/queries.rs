//! What the screen and the reports read from the model: plain questions
//! about the state, no changes.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::{App, Message};
use crate::state::gateways::{Connection, GatewayView, PodSourceKind, Refusal};
use crate::state::keys;
use crate::state::messages::{KubeStatus, LoadState};
use crate::state::stats::Stats;
use greet_proto::Mode;

impl App {
    pub fn title(&self) -> &str {
        &self.title
    }

    /// Each gateway followed, by name.
    pub fn gateways(&self) -> &BTreeMap<String, GatewayView> {
        self.gateways.views()
    }

    /// The stalest failing discovery of the gateways followed at `now`: how
    /// long its endpoint set has gone unconfirmed, and its last error.
    pub fn discovery_stale(&self, now: Instant) -> Option<(Duration, &str)> {
        self.gateways()
            .values()
            .filter_map(|g| g.discovery.as_ref())
            .filter(|(status, _)| status.failing())
            .map(|(status, at)| {
                (
                    status.set_age + now.saturating_duration_since(*at),
                    status.last_error.as_str(),
                )
            })
            .max_by_key(|(age, _)| *age)
    }

    /// The live counters (see [`App::view`] for what to show).
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The view is frozen (counting goes on underneath).
    pub fn frozen(&self) -> bool {
        self.frozen.is_some()
    }

    pub fn pod_source(&self) -> PodSourceKind {
        self.gateways.pod_source()
    }

    pub fn kube(&self) -> Option<&KubeStatus> {
        self.kube.as_ref()
    }

    pub fn load(&self) -> Option<LoadState> {
        self.load
    }

    /// The demo pods' max connection age, while one is set (`g`).
    pub fn connection_age(&self) -> Option<Duration> {
        self.connection_age
    }

    /// Fed by the pods' own metrics rather than a gateway.
    pub fn pod_metrics(&self) -> bool {
        self.pod_metrics
    }

    /// The filter line is being typed: keys are its text.
    pub fn filtering(&self) -> bool {
        self.filter.editing()
    }

    /// The keys this screen has.
    pub fn key_scope(&self) -> keys::Scope {
        keys::Scope {
            demo: self.demo,
            views: self.views,
            // Beside a gateway's view, its keys act on the gateway.
            gateway: !self.pod_metrics || self.views,
            replay: false,
        }
    }

    pub fn demo(&self) -> bool {
        self.demo
    }

    pub fn show_help(&self) -> bool {
        self.show_help
    }

    pub fn scroll(&self) -> usize {
        self.scroll
    }

    pub fn message(&self) -> Option<&Message> {
        self.message.as_ref()
    }

    /// Events the gateways dropped for us because we fell behind.
    pub fn lagged(&self) -> u64 {
        self.gateways.lagged()
    }

    /// The stats to show: frozen ones while frozen, with their time.
    pub fn view(&self, now: Instant) -> (&Stats, Instant) {
        match &self.frozen {
            Some((stats, at)) => (stats, *at),
            None => (&self.stats, now),
        }
    }

    pub fn second(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.origin).as_secs()
    }

    /// How long counting has run, for rates at start-up.
    pub fn observed_for(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.origin)
    }

    /// Every followed gateway is down (unreachable or refusing): what is
    /// shown is the last known data.
    pub fn disconnected(&self) -> bool {
        let views = self.gateways.views();
        !views.is_empty() && views.values().all(|g| g.connection.down_since().is_some())
    }

    /// The gateways that refuse greet-top, and why.
    pub fn refused(&self) -> impl Iterator<Item = (&String, Refusal)> {
        self.gateways.views().iter().filter_map(|(name, g)| match g.connection {
            Connection::Refused { refusal, .. } => Some((name, refusal)),
            _ => None,
        })
    }

    /// Whether any gateway has sent its snapshot.
    pub fn synced(&self) -> bool {
        self.gateways.synced()
    }

    /// The mode all synced gateways agree on; `None` when unknown or mixed.
    pub fn mode(&self) -> Option<Mode> {
        self.gateways.mode()
    }

    /// The number of a mode this version does not know (a newer gateway's).
    pub fn unknown_mode(&self) -> Option<i32> {
        self.gateways.unknown_mode()
    }

    /// Synced gateways disagree on the mode.
    pub fn mixed_modes(&self) -> bool {
        self.gateways.mixed_modes()
    }
}
