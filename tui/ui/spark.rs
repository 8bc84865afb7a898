//! Requests per second over the last minute, as a sparkline.

use std::time::Instant;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Color;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Sparkline};

use super::theme::Theme;
use crate::common::Mode;
use crate::tui::state::stats::Mark;
use crate::tui::state::stats::SPARK_SECONDS;
use crate::tui::state::{App, Stats};

fn mark_char(mark: Option<Mark>) -> char {
    match mark {
        None => ' ',
        Some(Mark::Mode(Mode::Balanced)) => 'B',
        Some(Mark::Mode(Mode::Sticky)) => 'S',
        Some(Mark::Mode(Mode::LeastLoaded)) => 'L',
        Some(Mark::Mode(Mode::Dns)) => 'D',
        Some(Mark::PodGone) => 'x',
        Some(Mark::Reconnected) => 'r',
    }
}

pub(super) fn render(app: &App, stats: &Stats, at: Instant, frame: &mut Frame, area: Rect, theme: Theme) {
    // Up to the last whole second: the current one, still counting, would
    // always look like a drop.
    let last_whole = app.second(at).saturating_sub(1);
    let series = stats.spark(last_whole);
    let marks = stats.spark_marks(last_whole);
    let block = Block::new().borders(Borders::ALL).title(Span::styled(
        format!(" Requests per second, last {SPARK_SECONDS} s "),
        theme.title(),
    ));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    // Numbers on the left, the newest second at the right edge.
    let [label_area, spark_area] =
        Layout::horizontal([Constraint::Fill(1), Constraint::Max(SPARK_SECONDS as u16)]).areas(inner);
    let skip = series.len().saturating_sub(spark_area.width as usize);
    let shown = &series[skip..];
    // The peak over the chosen window (w), at most the chart's minute.
    let window = stats
        .time_window()
        .covered(app.observed_for(at))
        .as_secs()
        .clamp(1, SPARK_SECONDS as u64) as usize;
    let peak = series.iter().rev().take(window).copied().max().unwrap_or(0);
    let last = series.last().copied().unwrap_or(0);
    let mut labels = vec![
        Line::raw(format!("last {last}/s")),
        Line::raw(format!("peak {peak}/s in {window} s")),
    ];
    // A row under the bars marks what changed the traffic, so the before
    // and after of a fix can be read off the chart.
    let (bars_area, marks_area) = if spark_area.height >= 3 {
        let [bars, marks] = Layout::vertical([Constraint::Fill(1), Constraint::Length(1)]).areas(spark_area);
        labels.push(Line::raw("B/S mode x gone r back"));
        (bars, Some(marks))
    } else {
        (spark_area, None)
    };
    frame.render_widget(Paragraph::new(labels).style(theme.dim()), label_area);
    frame.render_widget(
        Sparkline::default().data(shown).style(theme.fg(Color::Magenta)),
        bars_area,
    );
    if let Some(area) = marks_area {
        let row: String = marks[skip..].iter().map(|m| mark_char(*m)).collect();
        frame.render_widget(Paragraph::new(Line::styled(row, theme.title())), area);
    }
}
