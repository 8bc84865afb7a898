//! Hits by method and pod since the reset, once any call came through the
//! gateway's gRPC ingress (REST's requests as `POST /greet`): per-pod hits
//! read per method. It takes the top of the recent requests' space.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use super::format::fit_left;
use super::theme::Theme;
use crate::tui::state::Stats;
use crate::tui::state::stats::Tally;
use crate::tui::state::stats::methods::shown;

/// One row: method (as shown), pod, its hits and errors; by method, then pod.
fn rows(stats: &Stats) -> Vec<(&str, &str, Tally)> {
    let mut rows: Vec<(&str, &str, Tally)> = stats
        .pods
        .values()
        .flat_map(|pod| {
            pod.methods
                .iter()
                .map(move |(method, tally)| (shown(method), pod.name.as_str(), *tally))
        })
        .collect();
    rows.sort_by_key(|(method, pod, _)| (*method, *pod));
    rows
}

/// The rows of the panel when it is shown: some pod had an ingress call.
pub(super) fn height(stats: &Stats) -> u16 {
    let ingress = stats.pods.values().any(|pod| pod.methods.keys().any(|m| !m.is_empty()));
    if !ingress {
        return 0;
    }
    // Two borders and the column titles.
    u16::try_from(rows(stats).len()).unwrap_or(u16::MAX).saturating_add(3)
}

pub(super) fn render(stats: &Stats, frame: &mut Frame, area: Rect, theme: Theme) {
    let rows = rows(stats);
    let inner = usize::from(area.width.saturating_sub(2));
    let numbers = 2 + 7 + 2 + 6;
    let longest = |texts: &mut dyn Iterator<Item = &str>| texts.map(|t| t.chars().count()).max().unwrap_or(0);
    let method_width = longest(&mut rows.iter().map(|r| r.0)).max(6);
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
    lines.extend(rows.iter().map(|(method, pod, tally)| {
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
    let block = Block::new()
        .borders(Borders::ALL)
        .title(Span::styled(" Hits by method and pod, since the reset ", theme.title()));
    frame.render_widget(Paragraph::new(lines).block(block), area);
}
