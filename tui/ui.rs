//! Rendering: a pure function of the [`App`] state and the time.

use std::time::Instant;

use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Row, Sparkline, Table, Wrap};

use super::state::keys;
use super::state::stats::{HIGHLIGHT_FOR, RATE_WINDOW, SPARK_SECONDS};
use super::state::{App, Connection, KubeStatus, PodStats, Stats, TailEntry, WatchState};
use crate::common::Mode;

/// Smallest terminal the dashboard draws in.
pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 15;
/// At this width and above the pods table adds IP and last-hit columns.
const WIDE: u16 = 100;
/// Width of the pods table's NODE column.
const NODE_WIDTH: u16 = 12;

/// Colours, or none when `NO_COLOR` is set.
#[derive(Clone, Copy, Debug)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    /// Honours `NO_COLOR` (any non-empty value), per no-color.org.
    pub fn from_env() -> Self {
        Theme {
            color: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        }
    }

    fn fg(self, color: Color) -> Style {
        if self.color {
            Style::new().fg(color)
        } else {
            Style::new()
        }
    }

    fn badge(self, mode: Option<Mode>) -> Style {
        let style = Style::new().add_modifier(Modifier::BOLD);
        match (self.color, mode) {
            (false, _) => style.add_modifier(Modifier::REVERSED),
            (true, Some(Mode::Sticky)) => style.fg(Color::Black).bg(Color::Yellow),
            (true, Some(Mode::Balanced)) => style.fg(Color::Black).bg(Color::Green),
            (true, None) => style.fg(Color::Black).bg(Color::Gray),
        }
    }

    fn bad(self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }

    fn good(self) -> Style {
        self.fg(Color::Green)
    }

    fn dim(self) -> Style {
        if self.color {
            Style::new().fg(Color::DarkGray)
        } else {
            Style::new().add_modifier(Modifier::DIM)
        }
    }

    fn changed(self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }

    fn title(self) -> Style {
        Style::new().add_modifier(Modifier::BOLD)
    }
}

/// Draws the whole screen.
pub fn render(app: &App, frame: &mut Frame, now: Instant, theme: Theme) {
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        render_too_small(frame, area);
        return;
    }
    let (stats, at) = app.view(now);
    let pods = stats.pods.len() as u16;
    // A forbidden watch gets a second line: the missing rule must be readable.
    let header = match app.kube().map(|k| &k.watch) {
        None => 4,
        Some(WatchState::Forbidden(_)) => 6,
        Some(_) => 5,
    };
    let footer = 1;
    // Many pods must not push the other panels off: past half the body the
    // table shows the busiest pods (and the share bars a quarter).
    let body = area.height.saturating_sub(header + footer);
    let table = (pods.max(1) + 3).min((body / 2).max(6));
    let share = (pods.max(1) + 2).min((body / 4).max(5));
    let spark = 4;
    let remain = area.height.saturating_sub(header + footer + table);
    // Drop panels from the bottom of the priority list when space runs out.
    let (share, spark) = if remain >= share + spark + 3 {
        (share, spark)
    } else if remain >= spark + 3 {
        (0, spark)
    } else {
        (0, 0)
    };
    let [header_area, table_area, share_area, spark_area, tail_area, footer_area] = Layout::vertical([
        Constraint::Length(header),
        Constraint::Length(table.min(area.height.saturating_sub(header + footer))),
        Constraint::Length(share),
        Constraint::Length(spark),
        Constraint::Fill(1),
        Constraint::Length(footer),
    ])
    .areas(area);

    render_header(app, stats, at, frame, header_area, theme);
    render_pods(app, stats, at, frame, table_area, theme);
    if share > 0 {
        render_shares(stats, frame, share_area, theme);
    }
    if spark > 0 {
        render_spark(app, stats, at, frame, spark_area, theme);
    }
    if tail_area.height >= 3 {
        render_tail(stats, at, frame, tail_area, theme);
    }
    render_footer(app, frame, footer_area, theme);
    if app.show_help() {
        render_help(app, frame, area, theme);
    }
}

fn render_too_small(frame: &mut Frame, area: Rect) {
    let text = format!(
        "Terminal too small ({}x{}): greet-top needs at least {MIN_WIDTH}x{MIN_HEIGHT}. Enlarge it, or press q to quit.",
        area.width, area.height
    );
    frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), area);
}

fn connection_span(app: &App, now: Instant, theme: Theme) -> Span<'static> {
    let describe = |connection: &Connection| match connection {
        Connection::Connecting => Span::styled("◌ connecting…", theme.dim()),
        Connection::Connected { .. } => Span::styled("● connected", theme.good()),
        Connection::Reconnecting { retry_at, error } => {
            let secs = retry_at.saturating_duration_since(now).as_secs_f64().ceil();
            Span::styled(format!("○ reconnecting in {secs:.0}s: {error}"), theme.bad())
        }
    };
    let mut gateways = app.gateways().iter();
    match (gateways.next(), gateways.next()) {
        (None, _) => Span::styled("◌ no gateway found yet", theme.dim()),
        (Some((_, only)), None) => describe(&only.connection),
        _ => {
            let total = app.gateways().len();
            let up = app
                .gateways()
                .values()
                .filter(|g| matches!(g.connection, Connection::Connected { .. }))
                .count();
            let down = app
                .gateways()
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

fn kube_line(kube: &KubeStatus, theme: Theme) -> Line<'static> {
    let (state, style) = match &kube.watch {
        WatchState::Starting => ("listing pods…".to_owned(), theme.dim()),
        WatchState::Synced => ("pods synced".to_owned(), theme.good()),
        WatchState::Retrying(error) => (format!("pod watch retrying: {error}"), theme.bad()),
        WatchState::Forbidden(rule) => (format!("forbidden: {rule}"), theme.bad()),
    };
    Line::from(vec![
        Span::styled("kube ", theme.dim()),
        Span::raw(format!("{}/{}  ", kube.context, kube.namespace)),
        Span::styled(state, style),
    ])
}

fn render_header(app: &App, stats: &Stats, at: Instant, frame: &mut Frame, area: Rect, theme: Theme) {
    let mode = match app.mode() {
        Some(m) => format!(" {} ", m.as_str().to_uppercase()),
        None if app.mixed_modes() => " MIXED ".to_owned(),
        None => " ? ".to_owned(),
    };
    let mut first = vec![Span::styled("gateway ", theme.dim()), Span::raw(app.title().to_owned())];
    if let Some(load) = app.load() {
        let state = if load.running { "on" } else { "off" };
        first.push(Span::styled(format!("  load {state} {}/s", load.rate), theme.dim()));
    }
    if app.frozen() {
        first.push(Span::raw("  "));
        first.push(Span::styled(" FROZEN ", theme.badge(None)));
    }
    first.push(Span::raw("  "));
    // Last: a long error may be cut at the edge.
    first.push(connection_span(app, at, theme));
    let rps = stats.rps(at, app.observed_for(at));
    let mut second = vec![
        Span::styled("mode ", theme.dim()),
        Span::styled(mode, theme.badge(app.mode())),
        Span::raw(format!("  {} req  {rps:.1}/s", stats.total())),
    ];
    let errors = stats.errors();
    if errors > 0 {
        second.push(Span::styled(format!("  {errors} errors"), theme.bad()));
    }
    second.push(Span::raw("  "));
    second.extend(fairness_spans(stats, at, theme));
    let block = Block::new()
        .borders(Borders::ALL)
        .title(Span::styled(" greet-top ", theme.title()))
        .title_alignment(Alignment::Left);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [status, kube] = Layout::vertical([Constraint::Length(2), Constraint::Fill(1)]).areas(inner);
    // Status lines are cut at the edge; the kube line wraps (an RBAC rule must be readable).
    frame.render_widget(Paragraph::new(vec![Line::from(first), Line::from(second)]), status);
    if let Some(kube_status) = app.kube() {
        frame.render_widget(
            Paragraph::new(kube_line(kube_status, theme)).wrap(Wrap { trim: false }),
            kube,
        );
    }
}

/// "fairness 0.33 STUCK ON ONE POD" when one pod takes ≥ 90 % of the window.
fn fairness_spans(stats: &Stats, at: Instant, theme: Theme) -> Vec<Span<'static>> {
    let Some(index) = stats.fairness(at) else {
        return vec![Span::styled("fairness –", theme.dim())];
    };
    let window: Vec<usize> = stats.live_pods().map(|p| p.in_window(at)).collect();
    let total: usize = window.iter().sum();
    let top = window.iter().copied().max().unwrap_or(0);
    let mut spans = vec![Span::raw(format!("fairness {index:.2}"))];
    if total >= 10 && top * 10 >= total * 9 {
        spans.push(Span::raw(" "));
        spans.push(Span::styled("STUCK ON ONE POD", theme.bad()));
    } else if index >= 0.95 {
        spans.push(Span::styled(" even", theme.good()));
    }
    spans
}

/// `text` cut to `width` characters from the left, so the distinguishing end
/// of a pod name (its random suffix) stays visible: "…7595ccbdd5-67bmd".
pub fn fit_left(text: &str, width: usize) -> String {
    let count = text.chars().count();
    if count <= width {
        return text.to_owned();
    }
    if width == 0 {
        return String::new();
    }
    let mut out = String::from("…");
    out.extend(text.chars().skip(count - (width - 1)));
    out
}

/// A pod age the way kubectl prints it: 45s, 12m, 3h, 2d.
pub fn age(age: std::time::Duration) -> String {
    let secs = age.as_secs();
    match secs {
        0..=119 => format!("{secs}s"),
        120..=7199 => format!("{}m", secs / 60),
        7200..=172_799 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86_400),
    }
}

fn ms(value: Option<f64>) -> String {
    value.map_or_else(|| "–".to_owned(), |v| format!("{v:.2}"))
}

fn ago(last: Option<Instant>, at: Instant) -> String {
    match last {
        None => "never".to_owned(),
        Some(t) => {
            let secs = at.saturating_duration_since(t).as_secs_f64();
            if secs < 60.0 {
                format!("{secs:.1}s")
            } else {
                format!("{:.0}m", secs / 60.0)
            }
        }
    }
}

fn share_of(pod: &PodStats, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        pod.hits() as f64 / total as f64
    }
}

/// The pods to draw in `rows` lines: all in name order when they fit, else
/// the busiest first.
/// The pods to draw in `rows` lines: all in name order when they fit, else
/// the busiest first, from `offset` (clamped so the last page is full).
fn shown_pods(stats: &Stats, rows: usize, offset: usize) -> (Vec<&PodStats>, usize) {
    let mut pods: Vec<&PodStats> = stats.pods.values().collect();
    if pods.len() <= rows {
        return (pods, 0);
    }
    pods.sort_by_key(|p| std::cmp::Reverse(p.hits()));
    let offset = offset.min(pods.len() - rows);
    (pods.into_iter().skip(offset).take(rows).collect(), offset)
}

fn render_pods(app: &App, stats: &Stats, at: Instant, frame: &mut Frame, area: Rect, theme: Theme) {
    let wide = area.width >= WIDE;
    // Inner width less the fixed columns and the gaps between columns.
    // Pods from Kubernetes add restarts and age (wide only).
    let kube = wide && app.kube().is_some();
    // The node, once there is room for it (kube, 120 columns or more).
    let node_column = kube && area.width >= 120;
    // An errors column only while some pod has errors.
    let errors_column = wide && stats.pods.values().any(|p| p.errors() > 0);
    // Fixed columns plus one-cell gaps: READY..P99 take 38 (+6 gaps); wide
    // adds IP 15 and LAST 6 (+2 gaps), kube RST 4 and AGE 5 (+2), errors 9 (+1).
    let fixed = 38
        + 6
        + if wide { 15 + 6 + 2 } else { 0 }
        + if kube { 4 + 5 + 2 } else { 0 }
        + if node_column { usize::from(NODE_WIDTH) + 1 } else { 0 }
        + if errors_column { 9 + 1 } else { 0 };
    let name_width = usize::from(area.width.saturating_sub(2)).saturating_sub(fixed);
    let observed = app
        .observed_for(at)
        .clamp(std::time::Duration::from_secs(1), RATE_WINDOW);
    let total = stats.total();
    let (shown, offset) = shown_pods(stats, usize::from(area.height.saturating_sub(3)), app.scroll());
    let rows = shown.iter().map(|pod| {
        let phase = pod.info.as_ref().and_then(|i| i.phase.as_deref());
        let (ready, row_style) = match (pod.gone, pod.ready, phase) {
            (true, _, _) => ("gone", theme.dim().add_modifier(Modifier::CROSSED_OUT)),
            (false, _, Some("Terminating")) => ("term", theme.dim()),
            (false, _, Some("Pending")) => ("pend", theme.bad()),
            (false, _, Some("Failed")) => ("fail", theme.bad()),
            (false, Some(true), _) => ("yes", Style::new()),
            (false, Some(false), _) => ("no", theme.bad()),
            (false, None, _) => ("?", Style::new()),
        };
        let hits_style = if pod
            .changed_at
            .is_some_and(|t| at.saturating_duration_since(t) < HIGHLIGHT_FOR)
        {
            theme.changed()
        } else if pod.hits() == 0 && !pod.gone {
            theme.dim()
        } else {
            Style::new()
        };
        let rps = pod.in_window(at) as f64 / observed.as_secs_f64();
        let mut cells = vec![Cell::from(fit_left(&pod.name, name_width))];
        if wide {
            cells.push(Cell::from(pod.ip.clone()));
        }
        cells.extend([
            Cell::from(ready),
            Cell::from(Line::from(pod.hits().to_string()).alignment(Alignment::Right)).style(hits_style),
            Cell::from(Line::from(format!("{:.1}%", share_of(pod, total) * 100.0)).alignment(Alignment::Right)),
            Cell::from(Line::from(format!("{rps:.1}")).alignment(Alignment::Right)),
            Cell::from(Line::from(ms(pod.latency_ms(50.0))).alignment(Alignment::Right)),
            Cell::from(Line::from(ms(pod.latency_ms(99.0))).alignment(Alignment::Right)),
        ]);
        if wide {
            cells.push(Cell::from(
                Line::from(ago(pod.last_hit, at)).alignment(Alignment::Right),
            ));
        }
        if kube {
            let (restarts, age) = match &pod.info {
                Some(info) => (
                    info.restarts.to_string(),
                    info.created
                        .map_or_else(|| "–".to_owned(), |c| age(at.saturating_duration_since(c))),
                ),
                None => ("–".to_owned(), "–".to_owned()),
            };
            cells.push(Cell::from(Line::from(restarts).alignment(Alignment::Right)));
            cells.push(Cell::from(Line::from(age).alignment(Alignment::Right)));
        }
        if node_column {
            let node = pod.info.as_ref().and_then(|i| i.node.as_deref()).unwrap_or("–");
            cells.push(Cell::from(fit_left(node, usize::from(NODE_WIDTH))));
        }
        if errors_column {
            let errors = pod.errors();
            let text = if errors > 0 {
                format!("{errors} err")
            } else {
                String::new()
            };
            cells.push(Cell::from(text).style(theme.bad()));
        }
        Row::new(cells).style(row_style)
    });
    let right = |label: &'static str| Cell::from(Line::from(label).alignment(Alignment::Right));
    let mut header = vec![Cell::from("POD")];
    let mut widths = vec![Constraint::Fill(1)];
    if wide {
        header.push(Cell::from("IP"));
        widths.push(Constraint::Length(15));
    }
    header.push(Cell::from("READY"));
    header.extend(["HITS", "SHARE", "RPS", "P50 ms", "P99 ms"].map(right));
    widths.extend([
        Constraint::Length(5),
        Constraint::Length(7),
        Constraint::Length(6),
        Constraint::Length(6),
        Constraint::Length(7),
        Constraint::Length(7),
    ]);
    if wide {
        header.push(right("LAST"));
        widths.push(Constraint::Length(6));
    }
    if kube {
        header.push(right("RST"));
        widths.push(Constraint::Length(4));
        header.push(right("AGE"));
        widths.push(Constraint::Length(5));
    }
    if node_column {
        header.push(Cell::from("NODE"));
        widths.push(Constraint::Length(NODE_WIDTH));
    }
    if errors_column {
        header.push(Cell::from("ERRORS"));
        widths.push(Constraint::Length(9));
    }
    let listed = stats.pods.values().filter(|p| !p.gone).count();
    let title = if shown.len() < stats.pods.len() {
        format!(
            " Pods ({listed}; busiest first, {}-{} of {}, ↑↓ to scroll) ",
            offset + 1,
            offset + shown.len(),
            stats.pods.len()
        )
    } else {
        format!(" Pods ({listed}) ")
    };
    let block = Block::new()
        .borders(Borders::ALL)
        .title(Span::styled(title, theme.title()));
    if stats.pods.is_empty() {
        let waiting = match app.kube() {
            Some(kube) => format!(
                "No pods yet: watching namespace {} (see the kube line above).",
                kube.namespace
            ),
            None => "No pods yet: waiting for the gateway's endpoint list.".to_owned(),
        };
        frame.render_widget(Paragraph::new(Span::styled(waiting, theme.dim())).block(block), area);
        return;
    }
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(theme.title()))
        .block(block);
    frame.render_widget(table, area);
}

fn render_shares(stats: &Stats, frame: &mut Frame, area: Rect, theme: Theme) {
    let inner_width = area.width.saturating_sub(2) as usize;
    let name_width = stats
        .pods
        .keys()
        .map(|n| n.chars().count())
        .max()
        .unwrap_or(0)
        .min(inner_width / 3);
    let bar_width = inner_width.saturating_sub(name_width + 9);
    let total = stats.total();
    let lines: Vec<Line> = shown_pods(stats, usize::from(area.height.saturating_sub(2)), 0)
        .0
        .into_iter()
        .map(|pod| {
            let share = share_of(pod, total);
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
    let block = Block::new()
        .borders(Borders::ALL)
        .title(Span::styled(" Share of requests ", theme.title()));
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }).block(block), area);
}

fn render_spark(app: &App, stats: &Stats, at: Instant, frame: &mut Frame, area: Rect, theme: Theme) {
    let series = stats.spark(app.second(at));
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
    let last = series.iter().rev().nth(1).copied().unwrap_or(0);
    let labels = vec![Line::raw(format!("last {last}/s")), Line::raw(format!("peak {peak}/s"))];
    frame.render_widget(Paragraph::new(labels).style(theme.dim()), label_area);
    frame.render_widget(
        Sparkline::default().data(shown).style(theme.fg(Color::Magenta)),
        spark_area,
    );
}

fn tail_line(entry: &TailEntry, at: Instant, theme: Theme) -> Line<'static> {
    let age = format!("{:>6.1}s ago", at.saturating_duration_since(entry.at).as_secs_f64());
    let mode = entry.mode.map_or("?", |m| if m == Mode::Sticky { "S" } else { "B" });
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

/// The canonical name of a gRPC status code.
pub fn grpc_code_name(code: i32) -> &'static str {
    match code {
        0 => "OK",
        1 => "CANCELLED",
        2 => "UNKNOWN",
        3 => "INVALID_ARGUMENT",
        4 => "DEADLINE_EXCEEDED",
        5 => "NOT_FOUND",
        6 => "ALREADY_EXISTS",
        7 => "PERMISSION_DENIED",
        8 => "RESOURCE_EXHAUSTED",
        9 => "FAILED_PRECONDITION",
        10 => "ABORTED",
        11 => "OUT_OF_RANGE",
        12 => "UNIMPLEMENTED",
        13 => "INTERNAL",
        14 => "UNAVAILABLE",
        15 => "DATA_LOSS",
        16 => "UNAUTHENTICATED",
        _ => "UNKNOWN_CODE",
    }
}

fn render_tail(stats: &Stats, at: Instant, frame: &mut Frame, area: Rect, theme: Theme) {
    let rows = area.height.saturating_sub(2) as usize;
    let lines: Vec<Line> = stats.tail.iter().take(rows).map(|e| tail_line(e, at, theme)).collect();
    let block = Block::new()
        .borders(Borders::ALL)
        .title(Span::styled(" Recent requests, newest first ", theme.title()));
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }).block(block), area);
}

fn render_footer(app: &App, frame: &mut Frame, area: Rect, theme: Theme) {
    let line = match app.message() {
        Some(message) => Line::from(Span::styled(
            message.text.clone(),
            if message.error { theme.bad() } else { theme.good() },
        )),
        None => Line::from(Span::styled(keys::footer_hints(app.demo()), theme.dim())),
    };
    frame.render_widget(Paragraph::new(line), area);
}

fn render_help(app: &App, frame: &mut Frame, area: Rect, theme: Theme) {
    let mut lines: Vec<Line> = keys::help_lines(app.demo())
        .map(|(key, what)| {
            Line::from(vec![
                Span::styled(format!("{key:>15}  "), theme.title()),
                Span::raw(what),
            ])
        })
        .collect();
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        "STICKY: one HTTP/2 connection, so one pod gets every request.",
        theme.dim(),
    ));
    lines.push(Line::styled(
        "BALANCED: round robin per request over the ready pods.",
        theme.dim(),
    ));
    let width = 66.min(area.width);
    let height = (lines.len() as u16 + 2).min(area.height);
    let popup = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    };
    frame.render_widget(Clear, popup);
    let block = Block::new()
        .borders(Borders::ALL)
        .title(Span::styled(" Keys (? or Esc to close) ", theme.title()));
    frame.render_widget(Paragraph::new(lines).block(block), popup);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_left_keeps_the_end_of_long_names() {
        assert_eq!(fit_left("greetserver-abc-67bmd", 10), "…abc-67bmd");
        assert_eq!(fit_left("short", 10), "short");
        assert_eq!(fit_left("abc", 0), "");
    }

    #[test]
    fn ages_read_like_kubectl() {
        use std::time::Duration;
        assert_eq!(age(Duration::from_secs(45)), "45s");
        assert_eq!(age(Duration::from_secs(12 * 60)), "12m");
        assert_eq!(age(Duration::from_secs(3 * 3600)), "3h");
        assert_eq!(age(Duration::from_secs(2 * 86_400)), "2d");
    }

    #[test]
    fn grpc_codes_have_their_names() {
        assert_eq!(grpc_code_name(14), "UNAVAILABLE");
        assert_eq!(grpc_code_name(4), "DEADLINE_EXCEEDED");
        assert_eq!(grpc_code_name(99), "UNKNOWN_CODE");
    }
}
