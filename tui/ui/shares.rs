//! The share-of-requests bars, one per pod.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Color;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

use super::format::fit_left;
use super::pods::shown_pods;
use super::theme::Theme;
use std::time::Instant;

use crate::state::{App, Stats};

pub(super) fn render(app: &App, stats: &Stats, at: Instant, frame: &mut Frame, area: Rect, theme: Theme) {
    let inner_width = area.width.saturating_sub(2) as usize;
    let name_width = stats
        .pods
        .keys()
        .map(|n| n.chars().count())
        .max()
        .unwrap_or(0)
        .min(inner_width / 3);
    let bar_width = inner_width.saturating_sub(name_width + 9);
    let shared = stats.shared_requests(at);
    let lines: Vec<Line> = shown_pods(app, stats, usize::from(area.height.saturating_sub(2)), 0)
        .0
        .into_iter()
        .map(|pod| {
            let share = Stats::share_of(pod, shared, at).unwrap_or(0.0);
            let filled = ((share * bar_width as f64).round() as usize).min(bar_width);
            let name = fit_left(&pod.name, name_width);
            let style = if pod.gone { theme.dim() } else { theme.fg(Color::Blue) };
            Line::from(vec![
                Span::raw(format!("{name:<name_width$} ")),
                Span::styled("█".repeat(filled), style),
                Span::styled("░".repeat(bar_width - filled), theme.dim()),
                Span::raw(format!(" {:>6.1}%", share * 100.0)),
            ])
        })
        .collect();
    let block = Block::new().borders(Borders::ALL).title(Span::styled(
        format!(
            " Share of requests {} ",
            stats.time_window().phrase(app.observed_for(at))
        ),
        theme.title(),
    ));
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }).block(block), area);
}
