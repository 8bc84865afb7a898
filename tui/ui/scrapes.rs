//! In the pods' own metrics view, where the gateway's view shows recent
//! requests: each pod's scrape, and for those that fail, why, cause first
//! (a stale pod with the age of its numbers, a pod with no gRPC metrics).

use std::time::Instant;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

use super::theme::Theme;
use super::wrap::wrap;
use crate::state::{App, Stats};

/// The rows the panel needs to show every failing pod's cause whole (at
/// most 8), borders included; 0 when none fails.
pub(super) fn height(stats: &Stats, width: u16) -> u16 {
    let inner = usize::from(width.saturating_sub(2)).max(1);
    let rows: usize = stats
        .pods
        .values()
        .filter(|p| !p.gone)
        .filter_map(|p| {
            p.down
                .as_ref()
                .map(|cause| wrap(&format!("{}  {cause}", p.name), inner).len())
        })
        .sum();
    if rows == 0 { 0 } else { rows.min(8) as u16 + 2 }
}

pub(super) fn render(app: &App, stats: &Stats, at: Instant, frame: &mut Frame, area: Rect, theme: Theme) {
    let failing: Vec<_> = app.rows(stats).filter(|p| !p.gone && p.down.is_some()).collect();
    let read = stats.pods.values().filter(|p| !p.gone && p.down.is_none()).count();
    let title = format!(" Scrapes: {read} pods read, {} failing ", failing.len());
    let mut lines: Vec<Line> = failing
        .iter()
        .map(|pod| {
            Line::from(vec![
                Span::styled(pod.name.clone(), theme.bad()),
                Span::raw("  "),
                Span::raw(pod.down.clone().unwrap_or_default()),
            ])
        })
        .collect();
    if lines.is_empty() {
        let newest = stats.pods.values().filter_map(|p| p.last_hit).max();
        let text = match newest {
            Some(last) => format!(
                "every pod's metrics read; the latest counts came {:.1} s ago",
                at.saturating_duration_since(last).as_secs_f64()
            ),
            None => "every pod's metrics read; no calls counted yet".to_owned(),
        };
        lines.push(Line::styled(text, theme.dim()));
    }
    let block = Block::new()
        .borders(Borders::ALL)
        .title(Span::styled(title, theme.title()));
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }).block(block), area);
}
