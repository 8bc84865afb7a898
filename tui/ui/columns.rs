//! The pods table's columns, in one table: each column's title, width,
//! alignment, from which terminal width (and with what data) it is shown,
//! and how its cell is made. The width arithmetic, the header and the rows
//! are all derived from it, so adding a column is one entry.

use std::time::{Duration, Instant};

use ratatui::layout::Alignment;
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::Cell;

use super::format::{age, ago, fit_left, ms, success_percent};
use super::theme::Theme;
use crate::state::stats::{HIGHLIGHT_FOR, PodState};
use crate::state::{PodStats, Stats};

/// Below this width the pods table leaves out SHARE (the share bars show
/// it) and P50, so that a pod's name keeps room beside ERR and OK%.
pub(super) const NARROW: u16 = 80;
/// At this width and above the pods table adds IP and last-hit columns
/// (and, with kube, restarts and age).
pub(super) const WIDE: u16 = 100;
/// From this width kube pods also show their node.
pub(super) const WITH_NODE: u16 = 140;
/// From this width the gateways' gauges (in flight, connections) have
/// columns; narrower, a hung pod still says so in READY.
pub(super) const WITH_GAUGES: u16 = 120;
/// Width of the NODE column.
const NODE_WIDTH: u16 = 12;

/// What a column needs beyond terminal width.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Needs {
    Nothing,
    /// Pods from a Kubernetes watch (restarts, age, node).
    Kube,
    /// Some pod has errors.
    Errors,
    /// The pods' own metrics beside the gateway's view.
    Beside,
    /// Pods read from their own metrics (which family each has).
    Family,
    /// A gateway's gauges (in flight, connections): not in the pods' own metrics.
    Gauges,
}

/// What the rows have, for the columns that need it.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Present {
    pub kube: bool,
    pub errors: bool,
    pub beside: bool,
    pub family: bool,
}

/// What a row's cells are made from, besides the pod.
pub(super) struct RowContext {
    pub at: Instant,
    /// The rate's denominator: the time the window covers.
    pub observed: Duration,
    /// The requests in the window of the pods that share the traffic
    /// ([`Stats::shared_requests`]), summed once a frame.
    pub shared: u64,
    /// What the POD column has left after the fixed columns.
    pub name_width: usize,
    pub theme: Theme,
    /// Each pod's own rate, by name, when the pods' metrics are beside.
    pub own_rates: std::collections::BTreeMap<String, f64>,
}

/// One column of the pods table.
pub(super) struct Column {
    pub title: &'static str,
    /// `None`: takes the width the others leave (the pod name).
    pub width: Option<u16>,
    pub align: Alignment,
    /// Shown from this terminal width up (columns drop out below it).
    pub min_width: u16,
    pub needs: Needs,
    /// The cell's text and style.
    pub cell: fn(&PodStats, &RowContext) -> (String, Style),
}

/// The pods table, left to right.
pub(super) const COLUMNS: &[Column] = &[
    column("POD", None, Alignment::Left, |pod, ctx| {
        (fit_left(&pod.name, ctx.name_width), Style::new())
    }),
    // An IPv6 address keeps its end, marked as cut.
    column("IP", Some(15), Alignment::Left, |pod, _| {
        (fit_left(&pod.ip, 15), Style::new())
    })
    .shown_from(WIDE),
    column("READY", Some(7), Alignment::Left, |pod, ctx| {
        (readiness(pod, ctx.at, ctx.theme).0.to_owned(), Style::new())
    }),
    // Every figure of a row covers the window in the panel's title.
    column("REQ", Some(7), Alignment::Right, requests),
    // Failures, at every width, as soon as any pod has had one since the
    // reset: a failing pod must never read as a busy healthy one.
    column("ERR", Some(6), Alignment::Right, |pod, ctx| {
        let errors = pod.errors_in_window(ctx.at);
        let style = if errors > 0 { ctx.theme.bad() } else { ctx.theme.dim() };
        (errors.to_string(), style)
    })
    .needs(Needs::Errors),
    column("OK%", Some(6), Alignment::Right, |pod, ctx| {
        let (requests, errors) = (pod.in_window(ctx.at), pod.errors_in_window(ctx.at));
        match success_percent(requests, errors) {
            Some(text) if errors > 0 => (text, ctx.theme.bad()),
            Some(text) => (text, Style::new()),
            None => ("–".to_owned(), ctx.theme.dim()),
        }
    })
    .needs(Needs::Errors),
    // Of the pods that share the traffic (gone ones and the Service do not).
    column("SHARE", Some(6), Alignment::Right, |pod, ctx| {
        match Stats::share_of(pod, ctx.shared, ctx.at) {
            Some(share) => (format!("{:.1}%", share * 100.0), Style::new()),
            None => ("–".to_owned(), ctx.theme.dim()),
        }
    })
    .shown_from(NARROW),
    column("RPS", Some(6), Alignment::Right, |pod, ctx| {
        let rps = pod.in_window(ctx.at) as f64 / ctx.observed.as_secs_f64();
        (format!("{rps:.1}"), Style::new())
    }),
    // What the pod itself says it served, beside what the gateway sent it.
    column("SELF/s", Some(6), Alignment::Right, |pod, ctx| {
        match ctx.own_rates.get(&pod.name) {
            Some(rps) => (format!("{rps:.1}"), Style::new()),
            None => ("–".to_owned(), ctx.theme.dim()),
        }
    })
    .needs(Needs::Beside),
    column("P50 ms", Some(7), Alignment::Right, |pod, _| {
        (ms(pod.latency_ms(50.0)), Style::new())
    })
    .shown_from(NARROW),
    column("P99 ms", Some(7), Alignment::Right, |pod, _| {
        (ms(pod.latency_ms(99.0)), Style::new())
    }),
    column("METRICS", Some(13), Alignment::Left, |pod, ctx| {
        match &pod.metrics_family {
            Some(family) => (fit_left(family, 13), Style::new()),
            None => ("none".to_owned(), ctx.theme.bad()),
        }
    })
    .shown_from(NARROW)
    .needs(Needs::Family),
    column("LAST", Some(6), Alignment::Right, |pod, ctx| {
        (ago(pod.last_hit, ctx.at), Style::new())
    })
    .shown_from(WIDE),
    // Requests the gateways wait on: a hung pod's climb here first.
    column("INFL", Some(4), Alignment::Right, |pod, ctx| {
        let style = if pod.hung() { ctx.theme.bad() } else { Style::new() };
        (pod.in_flight().to_string(), style)
    })
    .shown_from(WITH_GAUGES)
    .needs(Needs::Gauges),
    // HTTP/2 connections the gateways hold to it: the sticky one shows here.
    column("CONN", Some(4), Alignment::Right, |pod, _| {
        (pod.connections().to_string(), Style::new())
    })
    .shown_from(WITH_GAUGES)
    .needs(Needs::Gauges),
    column("RST", Some(4), Alignment::Right, |pod, _| {
        let restarts = pod
            .info
            .as_ref()
            .map_or_else(|| "–".to_owned(), |i| i.restarts.to_string());
        (restarts, Style::new())
    })
    .shown_from(WIDE)
    .needs(Needs::Kube),
    column("AGE", Some(5), Alignment::Right, |pod, ctx| {
        let created = pod.info.as_ref().and_then(|i| i.created);
        let text = created.map_or_else(|| "–".to_owned(), |c| age(ctx.at.saturating_duration_since(c)));
        (text, Style::new())
    })
    .shown_from(WIDE)
    .needs(Needs::Kube),
    column("NODE", Some(NODE_WIDTH), Alignment::Left, |pod, _| {
        let node = pod.info.as_ref().and_then(|i| i.node.as_deref()).unwrap_or("–");
        (fit_left(node, usize::from(NODE_WIDTH)), Style::new())
    })
    .shown_from(WITH_NODE)
    .needs(Needs::Kube),
];

const fn column(
    title: &'static str,
    width: Option<u16>,
    align: Alignment,
    cell: fn(&PodStats, &RowContext) -> (String, Style),
) -> Column {
    Column {
        title,
        width,
        align,
        min_width: 0,
        needs: Needs::Nothing,
        cell,
    }
}

impl Column {
    const fn shown_from(self, min_width: u16) -> Self {
        Column { min_width, ..self }
    }

    const fn needs(self, needs: Needs) -> Self {
        Column { needs, ..self }
    }

    /// Whether the column is shown at terminal width `width`, given what
    /// the rows have.
    pub(super) fn shown(&self, width: u16, present: Present) -> bool {
        width >= self.min_width
            && match self.needs {
                Needs::Nothing => true,
                Needs::Kube => present.kube,
                Needs::Errors => present.errors,
                Needs::Beside => present.beside,
                Needs::Family => present.family,
                Needs::Gauges => !present.family,
            }
    }

    fn aligned(&self, text: String) -> Cell<'static> {
        match self.align {
            Alignment::Left => Cell::from(text),
            align => Cell::from(Line::from(text).alignment(align)),
        }
    }

    pub(super) fn header(&self) -> Cell<'static> {
        self.aligned(self.title.to_owned())
    }

    pub(super) fn cell(&self, pod: &PodStats, ctx: &RowContext) -> Cell<'static> {
        let (text, style) = (self.cell)(pod, ctx);
        self.aligned(text).style(style)
    }
}

/// The columns shown at `width`, and the width left for the pod name
/// (inner width less the fixed columns and the one-cell gaps after them).
pub(super) fn layout(width: u16, present: Present) -> (Vec<&'static Column>, usize) {
    let shown: Vec<&Column> = COLUMNS.iter().filter(|c| c.shown(width, present)).collect();
    let fixed: usize = shown.iter().filter_map(|c| c.width).map(|w| usize::from(w) + 1).sum();
    (shown, usize::from(width.saturating_sub(2)).saturating_sub(fixed))
}

/// The READY column's word for the pod at `at` and the style of its whole row.
pub(super) fn readiness(pod: &PodStats, at: Instant, theme: Theme) -> (&'static str, Style) {
    let state = pod.state(at);
    let style = match state {
        PodState::Gone => theme.dim().add_modifier(Modifier::CROSSED_OUT),
        PodState::Terminating | PodState::Service => theme.dim(),
        PodState::ServingTerminating => theme.fg(ratatui::style::Color::Yellow),
        state if state.bad() => theme.bad(),
        _ => Style::new(),
    };
    (state.word(), style)
}

/// Requests in the window, highlighted just after they change and dim while zero.
fn requests(pod: &PodStats, ctx: &RowContext) -> (String, Style) {
    let requests = pod.in_window(ctx.at);
    let style = if pod
        .changed_at
        .is_some_and(|t| ctx.at.saturating_duration_since(t) < HIGHLIGHT_FOR)
    {
        ctx.theme.changed()
    } else if requests == 0 && !pod.gone {
        ctx.theme.dim()
    } else {
        Style::new()
    };
    (requests.to_string(), style)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn titles(width: u16, kube: bool, errors: bool) -> (Vec<&'static str>, usize) {
        let present = Present {
            kube,
            errors,
            ..Present::default()
        };
        let (shown, name_width) = layout(width, present);
        (shown.iter().map(|c| c.title).collect(), name_width)
    }

    #[test]
    fn columns_drop_out_at_narrow_widths() {
        let narrow = ["POD", "READY", "REQ", "SHARE", "RPS", "P50 ms", "P99 ms"];
        // 78 inner columns less READY..P99 (40) and their gaps (6).
        assert_eq!(titles(80, true, false), (narrow.to_vec(), 78 - 46));
        // Errors add ERR and OK% (12 and 2 gaps).
        let failing = ["POD", "READY", "REQ", "ERR", "OK%", "SHARE", "RPS", "P50 ms", "P99 ms"];
        assert_eq!(titles(80, true, true), (failing.to_vec(), 78 - 60));
        // At the smallest width they stay; SHARE and P50 make room.
        let smallest = ["POD", "READY", "REQ", "ERR", "OK%", "RPS", "P99 ms"];
        assert_eq!(titles(60, false, true), (smallest.to_vec(), 58 - 45));
        assert_eq!(titles(60, false, false).0, ["POD", "READY", "REQ", "RPS", "P99 ms"]);
        assert_eq!(
            titles(100, false, false).0,
            ["POD", "IP", "READY", "REQ", "SHARE", "RPS", "P50 ms", "P99 ms", "LAST"]
        );
        // The gateways' gauges from 120 columns, kube's node from 140.
        assert_eq!(
            titles(120, true, true),
            (
                vec![
                    "POD", "IP", "READY", "REQ", "ERR", "OK%", "SHARE", "RPS", "P50 ms", "P99 ms", "LAST", "INFL",
                    "CONN", "RST", "AGE"
                ],
                118 - (46 + 14 + 23 + 10 + 11)
            )
        );
        let (all, name_width) = titles(140, true, true);
        assert_eq!(all.len(), COLUMNS.len() - 2, "all but SELF/s and METRICS");
        // Less ERR and OK% (+2 gaps), IP and LAST (+2), INFL and CONN (+2),
        // RST and AGE (+2), NODE (+1).
        assert_eq!(name_width, 138 - (46 + 14 + 23 + 10 + 11 + 13));
    }

    #[test]
    fn the_name_column_shrinks_to_nothing_not_below() {
        assert_eq!(layout(20, Present::default()).1, 0);
    }
}
