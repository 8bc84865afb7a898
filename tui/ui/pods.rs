//! The pods table: one row per pod, its columns from [`super::columns`].

use std::collections::BTreeMap;
use std::time::Instant;

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Row, Table};

use super::columns::{self, Present, RowContext};
use super::theme::Theme;
use super::wrap::{ellipsis, wrap_within};
use crate::state::{App, Connection, PodStats, Stats};

/// The pods to draw in `rows` lines, in the app's row order, from `offset`
/// (clamped so the last page is full), and how many the filter lets through.
pub(super) fn shown_pods<'a>(
    app: &'a App,
    stats: &'a Stats,
    rows: usize,
    offset: usize,
) -> (Vec<&'a PodStats>, usize, usize) {
    let pods: Vec<&PodStats> = app.rows(stats).collect();
    let matching = pods.len();
    let offset = offset.min(matching.saturating_sub(rows));
    (pods.into_iter().skip(offset).take(rows).collect(), offset, matching)
}

/// `own_rates`: each pod's own rate when the pods' metrics are beside.
pub(super) fn render(
    app: &App,
    stats: &Stats,
    at: Instant,
    own_rates: Option<BTreeMap<String, f64>>,
    frame: &mut Frame,
    area: Rect,
    theme: Theme,
) {
    // Once any pod failed since the reset, ERR and OK% stay (their values
    // are the window's): the columns do not come and go with it.
    let present = Present {
        kube: app.kube().is_some(),
        errors: stats.pods.values().any(|p| p.errors() > 0),
        beside: own_rates.is_some(),
        family: app.pod_metrics(),
    };
    let (shown_columns, room) = columns::layout(area.width, present);
    // Wide terminals: the POD column as wide as the longest name, no wider;
    // the numbers stay next to the names and the spare width goes to the end.
    let longest = stats.pods.keys().map(|n| n.chars().count()).max().unwrap_or(0);
    let name_width = room.min(longest.max("POD".len()));
    let window = stats.time_window();
    let ctx = RowContext {
        at,
        observed: window.covered(app.observed_for(at)),
        shared: stats.shared_requests(at),
        name_width,
        theme,
        own_rates: own_rates.unwrap_or_default(),
    };
    let (shown, offset, matching) = shown_pods(app, stats, usize::from(area.height.saturating_sub(3)), app.scroll());
    let rows = shown.iter().map(|pod| {
        let cells = shown_columns.iter().map(|c| c.cell(pod, &ctx));
        Row::new(cells).style(columns::readiness(pod, at, theme).1)
    });
    let header = Row::new(shown_columns.iter().map(|c| c.header())).style(theme.title());
    let widths = shown_columns.iter().map(|c| {
        c.width
            .map_or(Constraint::Length(name_width as u16), Constraint::Length)
    });
    let listed = match app.filter().text() {
        Some(text) => format!("{matching} of {} matching {text:?}", stats.pods.len()),
        None => stats.pods.values().filter(|p| !p.gone).count().to_string(),
    };
    // Every figure in the table covers this window.
    let over = window.phrase(app.observed_for(at));
    let by = app.sort_key().label();
    let title = if shown.len() < matching {
        format!(
            " Pods ({listed}; {}-{} of {matching}, ↑↓ to scroll) · by {by} · {over} ",
            offset + 1,
            offset + shown.len(),
        )
    } else {
        format!(" Pods ({listed}) · by {by} · {over} ")
    };
    let mut block = Block::new()
        .borders(Borders::ALL)
        .title(Span::styled(title, theme.title()));
    if let Some(note) = terminating_note(stats, usize::from(area.width.saturating_sub(4))) {
        block = block.title_bottom(Span::styled(note, theme.fg(ratatui::style::Color::Yellow)));
    }
    if stats.pods.is_empty() {
        // Why the gateway sends no list, when its link says.
        let cause = app.gateways().values().find_map(|g| match &g.connection {
            Connection::Reconnecting { error, .. } if !error.is_empty() => Some(error.as_str()),
            _ => None,
        });
        let waiting = match app.kube() {
            Some(kube) => format!(
                "No pods yet: watching namespace {} (see the kube line above).",
                kube.namespace
            ),
            None if app.refused().next().is_some() => "No pods: the gateway refuses greet-top (see above).".to_owned(),
            None => match cause {
                Some(cause) => format!("No pods: {cause}"),
                None => "No pods yet: waiting for the gateway's endpoint list.".to_owned(),
            },
        };
        let inner = block.inner(area);
        let lines = wrap_within(&waiting, usize::from(inner.width), usize::from(inner.height));
        let lines: Vec<_> = lines.into_iter().map(|l| Line::styled(l, theme.dim())).collect();
        frame.render_widget(Paragraph::new(lines).block(block), area);
        return;
    }
    frame.render_widget(Table::new(rows, widths).header(header).block(block), area);
}

/// " serving while terminating: p1, p2 — no pod is ready " when a gateway
/// routes to terminating pods (kube-proxy's fallback), fitted to `width`.
fn terminating_note(stats: &Stats, width: usize) -> Option<String> {
    let names: Vec<&str> = stats
        .pods
        .values()
        .filter(|p| !p.gone && p.serving_terminating)
        .map(|p| p.name.as_str())
        .collect();
    if names.is_empty() {
        return None;
    }
    let note = format!("serving while terminating: {} — no pod is ready", names.join(", "));
    Some(format!(" {} ", ellipsis(&note, width.saturating_sub(2).max(1))))
}
