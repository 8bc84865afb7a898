//! The most recent requests, newest first.

use std::time::Instant;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

use super::theme::Theme;
use crate::state::{Stats, TailEntry};
use greet_proto::Mode;
use greet_proto::grpc_code::grpc_code_name;

pub(super) fn render(stats: &Stats, at: Instant, frame: &mut Frame, area: Rect, theme: Theme) {
    let rows = area.height.saturating_sub(2) as usize;
    let lines: Vec<Line> = stats.tail.iter().take(rows).map(|e| tail_line(e, at, theme)).collect();
    let block = Block::new()
        .borders(Borders::ALL)
        .title(Span::styled(title(stats), theme.title()));
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }).block(block), area);
}

fn title(stats: &Stats) -> &'static str {
    if stats.tail_sampled {
        " Recent requests, a sample, newest first "
    } else {
        " Recent requests, newest first "
    }
}

fn tail_line(entry: &TailEntry, at: Instant, theme: Theme) -> Line<'static> {
    let age = format!("{:>6.1}s ago", at.saturating_duration_since(entry.at).as_secs_f64());
    let mode = entry.mode.map_or("?", |m| match m {
        Mode::Sticky => "S",
        Mode::Balanced => "B",
        Mode::LeastLoaded => "L",
        Mode::Dns => "D",
    });
    let latency = format!("{:>8.2} ms", entry.latency_us as f64 / 1000.0);
    let (status, style) = if entry.grpc_code == 0 {
        ("OK".to_owned(), theme.good())
    } else {
        (
            format!("{} {}", grpc_code_name(entry.grpc_code), entry.error),
            theme.bad(),
        )
    };
    let pod = if entry.pod.is_empty() {
        "(no pod)".to_owned()
    } else {
        entry.pod.clone()
    };
    Line::from(vec![
        Span::styled(age, theme.dim()),
        Span::raw(format!(" {mode} ")),
        Span::raw(pod),
        Span::raw(latency),
        Span::raw(" "),
        Span::styled(status, style),
    ])
}
