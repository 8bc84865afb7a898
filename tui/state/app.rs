//! The whole dashboard state and its pure transitions: [`App::update`] folds
//! events in, [`App::on_key`] turns keys into state changes and [`Action`](crate::state::Action)s,
//! [`App::tick`] ages it once a frame. No I/O here, and time is always passed
//! in, so everything is tested without a terminal.

use std::time::{Duration, Instant};

use super::filter::Filter;
use super::gateways::{Connection, Gateways, Notice, PodSourceKind};
use super::messages::{AppEvent, GatewayEvent, KubeStatus, LoadState};
use super::order::{self, SortKey};
use super::stats::{Clock, Mark, PodStats, Serving, Stats};
use greet_proto::Mode;

/// How long a status message stays in the footer.
pub(crate) const MESSAGE_FOR: Duration = Duration::from_secs(6);
/// How long a kill waits for its confirming second press.
pub(crate) const CONFIRM_FOR: Duration = Duration::from_secs(5);

/// Load rates `+` and `-` step through.
pub(crate) const RATE_STEPS: [u32; 12] = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000];

/// A line in the footer: the result of an action, or news.
#[derive(Clone, Debug)]
pub struct Message {
    pub text: String,
    pub error: bool,
    pub at: Instant,
}

/// The whole dashboard state.
#[derive(Clone, Debug)]
pub struct App {
    /// What is watched, as shown: the gateway URL, or the cluster.
    title: String,
    /// Time zero for per-second counts.
    origin: Instant,
    gateways: Gateways,
    stats: Stats,
    /// Set while the view is frozen: what is shown, and when it was frozen.
    frozen: Option<(Box<Stats>, Instant)>,
    kube: Option<KubeStatus>,
    /// `None` when there is no load generator to control.
    load: Option<LoadState>,
    /// The demo pods' max connection age, while one is set.
    connection_age: Option<Duration>,
    demo: bool,
    /// Fed by the pods' own metrics, not a gateway: nothing here switches
    /// how the traffic is routed.
    pod_metrics: bool,
    /// Shown beside a second view (views.rs): the view key works.
    views: bool,
    show_help: bool,
    /// `M` pressed: the next key picks a mode, or cancels.
    mode_menu: bool,
    /// First pod row shown when the pods do not all fit (↑/↓, PgUp/PgDn, Home).
    scroll: usize,
    /// The rows' sort key and their order as last shown (order.rs).
    sort: SortKey,
    order: Vec<String>,
    /// A kill asked for once: the pod and when, until confirmed.
    pending_kill: Option<(String, Instant)>,
    /// `/`: the rows shown.
    filter: Filter,
    /// The last mode the gateways agreed on: several replicas switch one at
    /// a time, and sticky, mixed, balanced is one switch to balanced.
    agreed_mode: Option<Mode>,
    message: Option<Message>,
}

impl App {
    pub fn new(title: impl Into<String>, now: Instant) -> Self {
        App {
            title: title.into(),
            origin: now,
            gateways: Gateways::default(),
            stats: Stats::default(),
            frozen: None,
            kube: None,
            load: None,
            connection_age: None,
            demo: false,
            pod_metrics: false,
            views: false,
            show_help: false,
            mode_menu: false,
            scroll: 0,
            sort: SortKey::default(),
            order: Vec::new(),
            pending_kill: None,
            filter: Filter::default(),
            agreed_mode: None,
            message: None,
        }
    }

    /// Expects the gateway called `gateway` (shown as connecting until it answers).
    pub fn expecting(mut self, gateway: &str) -> Self {
        self.gateways.view_mut(gateway);
        self
    }

    /// Count only what happens after each gateway's first snapshot (its
    /// earlier totals are not shown).
    pub fn counting_from_now(mut self) -> Self {
        self.gateways.count_from_first_snapshot();
        self
    }

    /// The embedded demo: the keys that add and kill pods work.
    pub fn with_demo(mut self) -> Self {
        self.demo = true;
        self
    }

    /// Fed by the pods' own metrics (pod_metrics_feed.rs) instead of a
    /// gateway's Observer: the verdict's advice is for clients we do not
    /// control.
    pub fn with_pod_metrics(mut self) -> Self {
        self.pod_metrics = true;
        self
    }

    /// One of two views (views.rs): `v` switches between them.
    pub(crate) fn with_views(mut self) -> Self {
        self.views = true;
        self
    }

    /// There is a load generator to control, in this state.
    pub fn with_load(mut self, load: LoadState) -> Self {
        self.load = Some(load);
        self
    }

    fn notify(&mut self, text: impl Into<String>, error: bool, now: Instant) {
        self.message = Some(Message {
            text: text.into(),
            error,
            at: now,
        });
    }

    fn notice(&mut self, notice: Option<Notice>, now: Instant) {
        if let Some(Notice { text, error }) = notice {
            self.notify(text, error, now);
        }
    }

    /// Folds one event into the state.
    pub fn update(&mut self, event: AppEvent, now: Instant) {
        if let AppEvent::Connected { gateway }
        | AppEvent::Disconnected { gateway, .. }
        | AppEvent::Refused { gateway, .. }
        | AppEvent::Gateway { gateway, .. }
        | AppEvent::ModeSet { gateway, .. } = &event
            && self.gateways.is_removed(gateway)
        {
            return;
        }
        let gone_before = self.gone_pods();
        // A request changes no skip, listing or connection: spare it the
        // sets. A pod source's first list takes over from the gateways'
        // lists: its pods did not change just then.
        let compare = match &event {
            AppEvent::Gateway {
                event: GatewayEvent::Request(_),
                ..
            } => false,
            AppEvent::Pods(_) => self.gateways.pod_source() == PodSourceKind::External,
            _ => true,
        };
        let serving_before = (self.synced() && compare).then(|| self.stats.serving());
        self.apply(event, now);
        self.mark_changes(gone_before, serving_before, now);
    }

    fn gone_pods(&self) -> usize {
        self.stats.pods.values().filter(|p| p.gone).count()
    }

    /// Marks on the chart what an event changed: pods gone, the mode; and
    /// for the verdict, the pods serving (from `serving_before`).
    fn mark_changes(&mut self, gone_before: usize, serving_before: Option<Serving>, now: Instant) {
        let second = self.second(now);
        if self.gone_pods() > gone_before {
            self.stats.mark(second, Mark::PodGone);
        }
        if let Some(before) = serving_before {
            let sticky = self.mode() == Some(Mode::Sticky);
            self.stats.note_serving(before, second, now, sticky);
        }
        if let Some(mode_now) = self.mode() {
            if self.agreed_mode.is_some_and(|before| before != mode_now) {
                self.stats.mark(second, Mark::Mode(mode_now));
            }
            self.agreed_mode = Some(mode_now);
        }
    }

    fn apply(&mut self, event: AppEvent, now: Instant) {
        match event {
            AppEvent::Connected { gateway } => {
                let view = self.gateways.view_mut(&gateway);
                let was_down = view.connection.down_since().is_some();
                view.connection = Connection::Connected { since: now };
                if was_down {
                    let second = self.second(now);
                    self.stats.mark(second, Mark::Reconnected);
                }
            }
            AppEvent::Disconnected {
                gateway,
                error,
                retry_in,
            } => self
                .gateways
                .went_down(&gateway, now, |down_since| Connection::Reconnecting {
                    retry_at: now + retry_in,
                    error,
                    down_since,
                }),
            AppEvent::Refused {
                gateway,
                refusal,
                retry_in,
            } => self
                .gateways
                .went_down(&gateway, now, |down_since| Connection::Refused {
                    refusal,
                    retry_at: now + retry_in,
                    down_since,
                }),
            AppEvent::Gateway { gateway, event } => {
                let clock = Clock {
                    now,
                    origin: self.origin,
                };
                let notice = self.gateways.apply(&gateway, event, &mut self.stats, clock);
                self.notice(notice, now);
            }
            AppEvent::GatewayRemoved { gateway } => self.gateways.remove(gateway, &mut self.stats),
            AppEvent::Pods(pods) => self.gateways.list_from_pod_source(pods, &mut self.stats),
            AppEvent::Kube(status) => self.kube = Some(status),
            AppEvent::ModeSet { gateway, result } => {
                let notice = self.gateways.answer_switch(gateway, result);
                self.notice(notice, now);
            }
            AppEvent::Load(state) => self.load = Some(state),
            AppEvent::ConnectionAge(age) => self.connection_age = age,
            AppEvent::Notice { text, error } => self.notify(text, error, now),
        }
    }

    /// Drops what slid out of the rate windows, refreshes cached percentiles
    /// and expires the footer message; call once per frame.
    pub fn tick(&mut self, now: Instant) {
        let second = self.second(now);
        self.stats.tick(now, second);
        self.reorder(now);
        if self
            .message
            .as_ref()
            .is_some_and(|m| now.saturating_duration_since(m.at) > MESSAGE_FOR)
        {
            self.message = None;
        }
    }

    /// Re-sorts the rows of the view shown (frozen or live).
    fn reorder(&mut self, now: Instant) {
        let (stats, at) = self.view(now);
        self.order = order::ordered(stats, at, self.sort, &self.order);
    }

    /// The pods the filter shows, in row order as of the last tick; pods
    /// that arrived since (none, when a tick precedes each frame) come last,
    /// by name.
    pub fn rows<'a>(&'a self, stats: &'a Stats) -> impl Iterator<Item = &'a PodStats> {
        let placed = self.order.iter().filter_map(|name| stats.pods.get(name));
        // The order holds only pods of the stats: as many means all of them.
        let all_placed = self.order.len() == stats.pods.len();
        let new = stats
            .pods
            .values()
            .filter(move |p| !all_placed && !self.order.contains(&p.name));
        placed.chain(new).filter(|p| self.filter.matches(&p.name))
    }

    pub fn filter(&self) -> &Filter {
        &self.filter
    }

    pub fn sort_key(&self) -> SortKey {
        self.sort
    }

    /// Counters restart at zero; gone pods are dropped.
    pub fn reset(&mut self, now: Instant) {
        self.stats.reset();
        self.origin = now;
        if self.frozen.is_some() {
            self.frozen = Some((Box::new(self.stats.clone()), now));
        }
    }
}

mod commands;
mod queries;

#[cfg(test)]
mod tests;
