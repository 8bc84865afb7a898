//! Requests by method and pod over the screen's window, once any call came
//! through the gateway's gRPC ingress (REST's requests as `POST /greet`):
//! per-pod hits read per method, busiest first, so what is cut is what
//! matters least (and says how much). It takes the top of the recent
//! requests' space.

use std::time::Instant;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use super::format::fit_left;
use super::theme::Theme;
use crate::state::stats::methods::shown;
use crate::state::stats::{Tally, Window};
use crate::state::{App, Stats};

/// One row: method (as shown), pod, its requests and errors in the window.
type Row<'s> = (String, &'s str, Tally);

/// The window's rows, most requests first (then by method and pod).
fn rows<'s>(app: &App, stats: &'s Stats, at: Instant) -> Vec<Row<'s>> {
    let mut rows: Vec<Row<'s>> = if stats.time_window() == Window::SinceReset {
        stats
            .pods
            .values()
            .flat_map(|pod| {
                pod.methods
                    .iter()
                    .map(move |(method, tally)| (shown(method).to_owned(), pod.name.as_str(), *tally))
            })
            .collect()
    } else {
        let origin = at.checked_sub(app.observed_for(at)).unwrap_or(at);
        let from = stats.window_start(at, origin);
        stats
            .methods_since(from, at)
            .into_iter()
            .flat_map(|(key, by)| {
                let pod = stats.pods.get_key_value(key).map_or(key, |(_, p)| p.name.as_str());
                by.into_iter()
                    .map(move |(method, tally)| (shown(&method).to_owned(), pod, tally))
            })
            .collect()
    };
    rows.retain(|(_, _, tally)| tally.requests > 0);
    rows.sort_by(|a, b| {
        b.2.requests
            .cmp(&a.2.requests)
            .then_with(|| (&a.0, a.1).cmp(&(&b.0, b.1)))
    });
    rows
}

/// The rows of the panel when it is shown: some pod had an ingress call
/// since the reset (then it stays, so the screen does not jump).
pub(super) fn height(app: &App, stats: &Stats, at: Instant) -> u16 {
    let ingress = stats.pods.values().any(|pod| pod.methods.keys().any(|m| !m.is_empty()));
    if !ingress {
        return 0;
    }
    // Two borders and the column titles; a line says when the window has none.
    let rows = rows(app, stats, at).len().max(1);
    u16::try_from(rows).unwrap_or(u16::MAX).saturating_add(3)
}

pub(super) fn render(app: &App, stats: &Stats, at: Instant, frame: &mut Frame, area: Rect, theme: Theme) {
    let rows = rows(app, stats, at);
    let inner = usize::from(area.width.saturating_sub(2));
    let numbers = 2 + 7 + 2 + 6;
    let longest = |texts: &mut dyn Iterator<Item = &str>| texts.map(|t| t.chars().count()).max().unwrap_or(0);
    let method_width = longest(&mut rows.iter().map(|r| r.0.as_str())).max(6);
    let pod_width = longest(&mut rows.iter().map(|r| r.1)).max(3);
    // Narrow: the method keeps its end (the method's name), the pod its suffix.
    let method_width = method_width.min(inner.saturating_sub(numbers + 2 + pod_width.min(inner / 3)));
    let pod_width = pod_width.min(inner.saturating_sub(numbers + 2 + method_width));
    let mut lines = vec![Line::from(Span::styled(
        format!(
            "{:<method_width$}  {:<pod_width$}  {:>7}  {:>6}",
            "METHOD", "POD", "HITS", "ERR"
        ),
        theme.dim(),
    ))];
    // Room for the rows under the titles; when they do not all fit, the
    // last line says what is left out.
    let room = usize::from(area.height.saturating_sub(3));
    let shown = if rows.len() > room {
        room.saturating_sub(1)
    } else {
        rows.len()
    };
    lines.extend(rows.iter().take(shown).map(|(method, pod, tally)| {
        let errors = if tally.errors > 0 { theme.bad() } else { theme.dim() };
        Line::from(vec![
            Span::raw(format!(
                "{:<method_width$}  {:<pod_width$}  {:>7}  ",
                fit_left(method, method_width),
                fit_left(pod, pod_width),
                tally.requests
            )),
            Span::styled(format!("{:>6}", tally.errors), errors),
        ])
    }));
    let hidden = &rows[shown..];
    if !hidden.is_empty() {
        let hits: u64 = hidden.iter().map(|(_, _, t)| t.requests).sum();
        let rows = if hidden.len() == 1 { "row" } else { "rows" };
        lines.push(Line::from(Span::styled(
            format!("+{} more {rows} ({hits} hits)", hidden.len()),
            theme.dim(),
        )));
    }
    if rows.is_empty() {
        lines.push(Line::from(Span::styled("no requests in the window", theme.dim())));
    }
    let block = Block::new()
        .borders(Borders::ALL)
        .title(Span::styled(" Hits by method and pod, busiest first ", theme.title()));
    frame.render_widget(Paragraph::new(lines).block(block), area);
}
