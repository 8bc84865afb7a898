//! The header: what is watched, the gateways' connection, the mode badge,
//! totals and fairness, and the kube line.

use std::time::Instant;

use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::Color;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use super::format::fit_left;
use super::theme::Theme;
use super::wrap::{ellipsis, wrap, wrap_within};
use crate::state::{App, Connection, Diagnosis, KubeStatus, Severity, Stats, WatchState};

/// Most lines the verdict takes: a cause and what to do are read whole,
/// not cut at the edge, but the panels below keep their room.
const VERDICT_LINES: usize = 3;

/// The verdict's lines in a header `width` columns wide: one line, its
/// names shortened and clauses dropped to fit; when even the shortest
/// does not fit (a long cause), the fullest that wraps into two, then three.
pub(super) fn verdict_lines(verdict: &Diagnosis, width: u16) -> Vec<String> {
    let width = usize::from(width.saturating_sub(2));
    (1..=VERDICT_LINES)
        .map(|rows| wrap(&verdict.for_screen(width * rows), width))
        .enumerate()
        .find(|(i, lines)| lines.len() <= i + 1)
        .map(|(_, lines)| lines)
        .unwrap_or_else(|| wrap_within(&verdict.for_screen(width), width, VERDICT_LINES))
}

/// Most lines the kube line takes: an RBAC rule or a watch's error must be
/// readable.
const KUBE_LINES: usize = 3;

/// Rows the header takes in a terminal `width` columns wide: borders, the
/// status lines (a long verdict with its lines) and the kube line, wrapped.
pub(super) fn height(app: &App, verdict_lines: usize, width: u16, at: Instant) -> u16 {
    let kube = app
        .kube()
        .map_or(0, |kube| kube_lines(kube, width, Theme { color: false }).len());
    let discovery = usize::from(app.discovery_stale(at).is_some());
    (4 + verdict_lines.max(1) + discovery + kube) as u16
}

/// `discovery stale 8 s — last error …` while a gateway's discovery fails,
/// fitted to `width` (the error gives way); `None` while it works.
fn discovery_line(app: &App, at: Instant, width: usize) -> Option<String> {
    let (age, error) = app.discovery_stale(at)?;
    let line = format!("discovery stale {} s — last error {error}", age.as_secs());
    Some(ellipsis(&line, width.max(1)))
}

pub(super) struct Verdict<'a> {
    pub lines: &'a [String],
    pub severity: Severity,
}

pub(super) fn render(
    app: &App,
    stats: &Stats,
    at: Instant,
    verdict: Verdict,
    frame: &mut Frame,
    area: Rect,
    theme: Theme,
) {
    let mode = match app.mode() {
        Some(m) => format!(" {} ", m.as_str().to_uppercase()),
        None if app.mixed_modes() => " MIXED ".to_owned(),
        // A newer gateway's mode, by its number.
        None => app
            .unknown_mode()
            .map_or_else(|| " ? ".to_owned(), |n| format!(" MODE {n} ")),
    };
    let source = if app.pod_metrics() {
        "pods' own metrics "
    } else {
        "gateway "
    };
    let mut first = vec![Span::styled(source, theme.dim()), Span::raw(app.title().to_owned())];
    if let Some(load) = app.load() {
        let state = if load.running { "on" } else { "off" };
        first.push(Span::styled(format!("  load {state} {}/s", load.rate), theme.dim()));
    }
    if let Some(age) = app.connection_age() {
        let age = humantime::format_duration(age);
        first.push(Span::styled(format!("  max age {age}"), theme.dim()));
    }
    if app.frozen() {
        first.push(Span::raw("  "));
        first.push(Span::styled(" FROZEN ", theme.badge(None)));
    }
    first.push(Span::raw("  "));
    let width = usize::from(area.width.saturating_sub(2));
    // Last, shortened to what is left: the verdict says the cause whole.
    let used: usize = first.iter().map(Span::width).sum();
    let connection = connection_span(app, at, theme);
    let shown = ellipsis(&connection.content, width.saturating_sub(used).max(1));
    first.push(Span::styled(shown, connection.style));
    // Every figure here is over the screen's window, which the title names.
    let observed = app.observed_for(at);
    let window = stats.window(at);
    let rps = stats.rps(at, observed);
    // The pods' own metrics have no mode: no gateway routes their traffic.
    let mut second = if app.pod_metrics() {
        vec![
            Span::styled("served ", theme.dim()),
            Span::raw(format!("{} req  {rps:.1}/s", window.requests)),
        ]
    } else {
        vec![
            Span::styled("mode ", theme.dim()),
            Span::styled(mode, theme.badge(app.mode())),
            Span::raw(format!("  {} req  {rps:.1}/s", window.requests)),
        ]
    };
    if window.errors > 0 {
        let errors = if window.errors == 1 { "error" } else { "errors" };
        second.push(Span::styled(format!("  {} {errors}", window.errors), theme.bad()));
    }
    second.push(Span::raw("  "));
    second.push(match stats.fairness(at) {
        Some(index) => Span::raw(format!("fairness {index:.2}")),
        None => Span::styled("fairness –", theme.dim()),
    });
    // Only whole: a cut description reads wrong.
    if let Some(mode) = app.mode() {
        let describe = format!("  · {}", mode.describe());
        let used: usize = second.iter().map(Span::width).sum();
        if used + describe.chars().count() <= width {
            second.push(Span::styled(describe, theme.dim()));
        }
    }
    let style = match verdict.severity {
        Severity::Good => theme.good(),
        Severity::Neutral => theme.dim(),
        Severity::Warning => theme.fg(Color::Yellow),
        Severity::Bad => theme.bad(),
    };
    // Fitted to the width (names shortened and clauses dropped, never a
    // name cut), then wrapped.
    let verdict_rows = verdict.lines.len().max(1) as u16;
    let mut status_lines = vec![Line::from(first)];
    status_lines.extend(verdict.lines.iter().map(|l| Line::from(Span::styled(l.clone(), style))));
    status_lines.push(Line::from(second));
    let discovery = discovery_line(app, at, width);
    let discovery_rows = u16::from(discovery.is_some());
    if let Some(line) = discovery {
        status_lines.push(Line::from(Span::styled(line, theme.bad())));
    }
    let block = Block::new()
        .borders(Borders::ALL)
        .title(Line::from(vec![
            Span::styled(" greet-top ", theme.title()),
            // The window of every figure on the screen, stated once.
            Span::styled(format!("· {} ", stats.time_window().phrase(observed)), theme.title()),
        ]))
        .title_alignment(Alignment::Left);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [status, kube] = Layout::vertical([
        Constraint::Length(2 + verdict_rows + discovery_rows),
        Constraint::Fill(1),
    ])
    .areas(inner);
    // The kube line wraps (an RBAC rule must be readable).
    frame.render_widget(Paragraph::new(status_lines), status);
    if let Some(kube_status) = app.kube() {
        frame.render_widget(Paragraph::new(kube_lines(kube_status, area.width, theme)), kube);
    }
}

fn connection_span(app: &App, now: Instant, theme: Theme) -> Span<'static> {
    let describe = |connection: &Connection| match connection {
        Connection::Connecting => Span::styled("◌ connecting…", theme.dim()),
        Connection::Connected { .. } => Span::styled("● connected", theme.good()),
        Connection::Reconnecting { retry_at, error, .. } => {
            let secs = retry_at.saturating_duration_since(now).as_secs_f64().ceil();
            Span::styled(format!("○ reconnecting in {secs:.0}s: {error}"), theme.bad())
        }
        // No countdown: waiting does not help, the token must change.
        Connection::Refused { refusal, .. } => Span::styled(format!("✕ {refusal}"), theme.bad()),
    };
    let gateways = app.gateways();
    let mut each = gateways.iter();
    match (each.next(), each.next()) {
        (None, _) => Span::styled("◌ no gateway found yet", theme.dim()),
        (Some((_, only)), None) => describe(&only.connection),
        _ => {
            let total = gateways.len();
            let up = gateways
                .values()
                .filter(|g| matches!(g.connection, Connection::Connected { .. }))
                .count();
            let down = gateways
                .iter()
                .find(|(_, g)| !matches!(g.connection, Connection::Connected { .. }));
            match down {
                None => Span::styled(format!("● {up}/{total} gateways connected"), theme.good()),
                Some((name, gateway)) => {
                    let detail = describe(&gateway.connection).content.into_owned();
                    Span::styled(
                        format!("○ {up}/{total} gateways connected; {name}: {detail}"),
                        theme.bad(),
                    )
                }
            }
        }
    }
}

/// The kube line, wrapped to the header's inner width: where it points,
/// then the watch's state in its colour.
fn kube_lines(kube: &KubeStatus, width: u16, theme: Theme) -> Vec<Line<'static>> {
    let (state, style) = match &kube.watch {
        WatchState::Starting => ("listing pods…".to_owned(), theme.dim()),
        WatchState::Synced => ("pods synced".to_owned(), theme.good()),
        WatchState::Retrying(error) => (format!("pod watch retrying: {error}"), theme.bad()),
        WatchState::Forbidden(rule) => (format!("forbidden: {rule}"), theme.bad()),
    };
    let label = "kube ";
    let target = format!("{}/{}  ", kube.context, kube.namespace);
    let text = format!("{label}{target}{state}");
    let width = usize::from(width.saturating_sub(2));
    let mut before = label.chars().count() + target.chars().count();
    // Each line's characters in the style of the part they come from.
    wrap_within(&text, width, KUBE_LINES)
        .into_iter()
        .map(|line| {
            let chars: Vec<char> = line.chars().collect();
            let head = before.min(chars.len());
            before = before.saturating_sub(chars.len() + 1);
            let (head, tail): (String, String) = (chars[..head].iter().collect(), chars[head..].iter().collect());
            let label_len = label.chars().count().min(head.chars().count());
            let (dim, plain): (String, String) = (
                head.chars().take(label_len).collect(),
                head.chars().skip(label_len).collect(),
            );
            Line::from(vec![
                Span::styled(dim, theme.dim()),
                Span::raw(plain),
                Span::styled(tail, style),
            ])
        })
        .collect()
}

/// A recording's or a replay's badge, at the right of the header's top
/// border; shortened (its middle gives way) to leave the title its room.
pub(super) fn badge(text: &str, frame: &mut Frame, area: Rect, theme: Theme) {
    let room = usize::from(area.width.saturating_sub(36)).max(1);
    let text = fit_badge(text, room);
    let width = (text.chars().count() + 2) as u16;
    if area.height == 0 || width + 2 > area.width {
        return;
    }
    let at = Rect {
        x: area.right() - width - 1,
        y: area.y,
        width,
        height: 1,
    };
    frame.render_widget(Paragraph::new(Span::styled(format!(" {text} "), theme.badge(None))), at);
}

/// `text` within `room` columns. Its longest word (a recording's path) gives
/// way first, from its start, so the file's name and the words around it
/// stay: `REC …/incident.grt 1.2 MB`.
fn fit_badge(text: &str, room: usize) -> String {
    let width = text.chars().count();
    if width <= room {
        return text.to_owned();
    }
    let excess = width - room;
    let longest = text
        .split(' ')
        .max_by_key(|word| word.chars().count())
        .unwrap_or_default();
    let kept = longest.chars().count().saturating_sub(excess);
    // A word cut to its ellipsis and one character says nothing.
    if kept >= 4 {
        return text.replacen(longest, &fit_left(longest, kept), 1);
    }
    super::wrap::wrap_ends(text, room, 1)
        .into_iter()
        .next()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::fit_badge;

    #[test]
    fn a_long_recording_path_gives_way_from_its_start() {
        let text = "REC /tmp/ci/clone/main/target/tmp/record-replay-sigkill-1234/killed.grt 0.1 MB";
        let fitted = fit_badge(text, 44);
        assert_eq!(fitted, "REC …d-replay-sigkill-1234/killed.grt 0.1 MB");
        assert_eq!(fitted.chars().count(), 44);
    }

    #[test]
    fn a_badge_that_fits_is_left_whole_and_one_without_room_is_cut() {
        assert_eq!(fit_badge("REPLAY 14:03:07 ×1", 44), "REPLAY 14:03:07 ×1");
        assert_eq!(fit_badge("REC a.grt 0.1 MB", 8), "REC…");
    }
}
