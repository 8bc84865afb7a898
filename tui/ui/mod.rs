//! Rendering: a pure function of the [`App`] state and the time. One file
//! per panel; this one lays them out.

mod columns;
mod footer;
mod format;
mod header;
mod help;
mod methods;
mod pods;
mod scrapes;
mod shares;
mod spark;
mod tail;
mod theme;
mod wrap;

use std::time::Instant;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::widgets::{Paragraph, Wrap};

pub use self::format::{age, fit_left};
pub use self::theme::Theme;
use crate::state::{App, Views, beside, diagnose};
pub use greet_proto::grpc_code::grpc_code_name;

/// Smallest terminal the dashboard draws in.
pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 15;

/// Draws the whole screen of one view.
pub fn render(app: &App, frame: &mut Frame, now: Instant, theme: Theme) {
    render_beside(app, None, frame, now, theme, &Chrome::default());
}

/// What the screen shows besides the model: a badge at the header's right
/// (`REC <path> <size>`, `REPLAY 14:03:07 …`) and, in a replay, its own
/// footer line, its keys and its help.
#[derive(Clone, Debug, Default)]
pub struct Chrome {
    pub badge: Option<String>,
    /// A line in place of the footer's (text, an error).
    pub footer: Option<(String, bool)>,
    /// The replay's keys in the footer and the help.
    pub replay: bool,
    /// The help, whatever the model says.
    pub help: bool,
}

/// Draws the view shown: one source, or the gateway's with the pods' own
/// metrics beside it (a comparison line over the table, each pod's own
/// rate in SELF/s).
pub fn render_views(views: &Views, frame: &mut Frame, now: Instant, theme: Theme) {
    render_views_with(views, frame, now, theme, &Chrome::default());
}

/// [`render_views`] with a recording's or a replay's [`Chrome`].
pub fn render_views_with(views: &Views, frame: &mut Frame, now: Instant, theme: Theme, chrome: &Chrome) {
    let (app, beside) = views.drawn();
    render_beside(app, beside, frame, now, theme, chrome);
}

fn render_beside(app: &App, beside: Option<&App>, frame: &mut Frame, now: Instant, theme: Theme, chrome: &Chrome) {
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        render_too_small(frame, area);
        return;
    }
    let (stats, at) = app.view(now);
    let pods = stats.pods.len() as u16;
    let verdict = diagnose(app, at);
    let verdict_lines = header::verdict_lines(&verdict, area.width);
    let header = header::height(app, verdict_lines.len(), area.width, at);
    let footer_lines = match &chrome.footer {
        Some((text, _)) => wrap::wrap_ends(text, usize::from(area.width), 2),
        None => footer::lines(app, area.width),
    };
    let footer = footer_lines.len().max(1) as u16;
    // Many pods must not push the other panels off: past half the body the
    // table shows the busiest pods (and the share bars a quarter).
    let body = area.height.saturating_sub(header + footer);
    // Beside the pods' own metrics: the line comparing the two views, over the table.
    let own_rates = beside.map(|pods| beside::own_rates(pods, at));
    let comparison = beside.zip(own_rates.as_ref()).map(|(pods, served)| {
        let (text, differs) = beside::comparison(app, pods, served, at);
        (wrap::wrap_within(&text, usize::from(area.width), 2), differs)
    });
    let compared = comparison.as_ref().map_or(0, |(lines, _)| lines.len() as u16);
    let table = (pods.max(1) + 3).min((body / 2).max(6)) + compared;
    let share = (pods.max(1) + 2).min((body / 4).max(5));
    let spark = 5;
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

    let shown_verdict = header::Verdict {
        lines: &verdict_lines,
        severity: verdict.severity,
    };
    header::render(app, stats, at, shown_verdict, frame, header_area, theme);
    if let Some(badge) = &chrome.badge {
        header::badge(badge, frame, header_area, theme);
    }
    let (table_area, own_rates) = match (own_rates, comparison) {
        (Some(served), Some((lines, differs))) if table_area.height > compared + 3 => {
            let [line, table] = Layout::vertical([Constraint::Length(compared), Constraint::Fill(1)]).areas(table_area);
            let style = if differs { theme.bad() } else { theme.dim() };
            let lines: Vec<ratatui::text::Line> = lines.into_iter().map(ratatui::text::Line::from).collect();
            frame.render_widget(Paragraph::new(lines).style(style), line);
            (table, Some(served))
        }
        _ => (table_area, None),
    };
    pods::render(app, stats, at, own_rates, frame, table_area, theme);
    if share > 0 {
        shares::render(app, stats, at, frame, share_area, theme);
    }
    if spark > 0 {
        spark::render(app, stats, at, frame, spark_area, theme);
    }
    // Calls through the gateway's gRPC ingress: their methods above the tail.
    // In the pods' own view, failing scrapes come first: the panel below
    // is the only place their causes show whole.
    let keep = if app.pod_metrics() {
        scrapes::height(stats, tail_area.width)
    } else {
        0
    };
    let room = tail_area.height.saturating_sub(keep);
    let methods = Some(methods::height(app, stats, at).min(room)).filter(|h| *h >= 4);
    let methods = methods.unwrap_or(0);
    let [methods_area, tail_area] =
        Layout::vertical([Constraint::Length(methods), Constraint::Fill(1)]).areas(tail_area);
    if methods > 0 {
        methods::render(app, stats, at, frame, methods_area, theme);
    }
    if tail_area.height >= 3 {
        if app.pod_metrics() {
            scrapes::render(app, stats, at, frame, tail_area, theme);
        } else {
            tail::render(stats, at, frame, tail_area, theme);
        }
    }
    if app.disconnected() {
        // Nothing below the header is live: say so by dimming it all.
        let body = Rect {
            height: tail_area.bottom().saturating_sub(table_area.y),
            ..table_area
        };
        frame
            .buffer_mut()
            .set_style(body, Style::new().add_modifier(Modifier::DIM));
    }
    footer::render(app, footer_lines, chrome, frame, footer_area, theme);
    if app.show_help() || chrome.help {
        help::render(app, chrome.replay, frame, area, theme);
    }
}

fn render_too_small(frame: &mut Frame, area: Rect) {
    let text = format!(
        "Terminal too small ({}x{}): greet-top needs at least {MIN_WIDTH}x{MIN_HEIGHT}. Enlarge it, or press q to quit.",
        area.width, area.height
    );
    frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), area);
}
