//! Requests per second over the last minute, as a sparkline.

use std::time::Instant;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Color;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Sparkline};

use super::theme::Theme;
use crate::tui::state::stats::SPARK_SECONDS;
use crate::tui::state::{App, Stats};

pub(super) fn render(app: &App, stats: &Stats, at: Instant, frame: &mut Frame, area: Rect, theme: Theme) {
    // Up to the last whole second: the current one, still counting, would
    // always look like a drop.
    let series = stats.spark(app.second(at).saturating_sub(1));
    let block = Block::new().borders(Borders::ALL).title(Span::styled(
        format!(" Requests per second, last {SPARK_SECONDS} s "),
        theme.title(),
    ));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    // Numbers on the left, the newest second at the right edge.
    let [label_area, spark_area] =
        Layout::horizontal([Constraint::Fill(1), Constraint::Max(SPARK_SECONDS as u16)]).areas(inner);
    let shown = &series[series.len().saturating_sub(spark_area.width as usize)..];
    let peak = shown.iter().copied().max().unwrap_or(0);
    let last = series.last().copied().unwrap_or(0);
    let labels = vec![Line::raw(format!("last {last}/s")), Line::raw(format!("peak {peak}/s"))];
    frame.render_widget(Paragraph::new(labels).style(theme.dim()), label_area);
    frame.render_widget(
        Sparkline::default().data(shown).style(theme.fg(Color::Magenta)),
        spark_area,
    );
}
