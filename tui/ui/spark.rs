//! Requests per second over the last minute, as a sparkline, the failed
//! part of each second's bar drawn in the error style from the bottom up.

use std::time::Instant;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Color;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Sparkline};

use super::theme::Theme;
use crate::state::stats::Mark;
use crate::state::stats::SPARK_SECONDS;
use crate::state::{App, Stats};
use greet_proto::Mode;

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

/// Paints, in each second's column, the rows its failures reach from the
/// bottom (on the scale of the request bars) in the error style: a second
/// whose requests all failed is a wholly red bar.
fn paint_errors(frame: &mut Frame, area: Rect, errors: &[u64], max: u64, theme: Theme) {
    if max == 0 || area.height == 0 {
        return;
    }
    let rows = u64::from(area.height);
    let buffer = frame.buffer_mut();
    for (x, n) in (area.x..area.right()).zip(errors) {
        // Rounded up: one failure is never invisible.
        let reach = (n.min(&max) * rows).div_ceil(max);
        for row in 0..reach {
            let y = area.bottom() - 1 - row as u16;
            if let Some(cell) = buffer.cell_mut((x, y)) {
                cell.set_style(theme.bad());
            }
        }
    }
}

pub(super) fn render(app: &App, stats: &Stats, at: Instant, frame: &mut Frame, area: Rect, theme: Theme) {
    // Up to the last whole second: the current one, still counting, would
    // always look like a drop.
    let last_whole = app.second(at).saturating_sub(1);
    let series = stats.spark(last_whole);
    let errors = stats.spark_errors(last_whole);
    let marks = stats.spark_marks(last_whole);
    let failed = errors.iter().any(|n| *n > 0);
    let title = if failed {
        format!(" Requests and errors per second, last {SPARK_SECONDS} s ")
    } else {
        format!(" Requests per second, last {SPARK_SECONDS} s ")
    };
    let block = Block::new()
        .borders(Borders::ALL)
        .title(Span::styled(title, theme.title()));
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
    let last_errors = errors.last().copied().unwrap_or(0);
    let mut labels = vec![
        Line::raw(format!("last {last}/s")),
        Line::raw(format!("peak {peak}/s in {window} s")),
    ];
    // While the chart shows failures, their rate takes the legend's line:
    // the narrowest label column still holds it.
    let errors_label = Line::styled(format!("err {last_errors}/s"), theme.bad());
    // A row under the bars marks what changed the traffic, so the before
    // and after of a fix can be read off the chart.
    let (bars_area, marks_area) = if spark_area.height >= 3 {
        let [bars, marks] = Layout::vertical([Constraint::Fill(1), Constraint::Length(1)]).areas(spark_area);
        // The pods' own metrics have no mode to mark.
        let legend = if app.pod_metrics() {
            "x gone r back"
        } else {
            "B/S mode x gone r back"
        };
        labels.push(if failed { errors_label } else { Line::raw(legend) });
        (bars, Some(marks))
    } else {
        (spark_area, None)
    };
    frame.render_widget(Paragraph::new(labels).style(theme.dim()), label_area);
    let max = shown.iter().copied().max().unwrap_or(0);
    frame.render_widget(
        Sparkline::default()
            .data(shown)
            .max(max)
            .style(theme.fg(Color::Magenta)),
        bars_area,
    );
    paint_errors(frame, bars_area, &errors[skip..], max, theme);
    if let Some(area) = marks_area {
        let row: String = marks[skip..].iter().map(|m| mark_char(*m)).collect();
        frame.render_widget(Paragraph::new(Line::styled(row, theme.title())), area);
    }
}
