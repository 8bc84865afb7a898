//! The verdict line: what is wrong (or right) right now, in words, with
//! what to do. One pure function of the state, so every case is tested
//! without a terminal and the dashboard and `--once` say the same thing.

use std::time::{Duration, Instant};

use super::app::App;
use super::gateways::{Connection, GatewayView};
use super::stats::{PodStats, Stats};
use crate::common::Mode;
use crate::common::grpc_code::grpc_code_name;

/// How long a gateway restart stays the headline.
pub const RESTART_NOTICE: Duration = Duration::from_secs(60);
/// One pod with at least this share of the window's requests is "stuck".
const STUCK_SHARE: f64 = 0.9;
/// Fewer requests than this in the window say nothing about the spread.
const MIN_REQUESTS: u64 = 10;
/// Jain's index from which the spread counts as even.
const EVEN_FAIRNESS: f64 = 0.9;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Good,
    Neutral,
    Warning,
    Bad,
}

/// Which state the verdict names, for scripts (`--fail-on`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Waiting,
    Refused,
    Unreachable,
    Restarted,
    Failing,
    Mixed,
    Stuck,
    Uneven,
    /// Uneven because least-loaded favours faster pods: not `--fail-on stuck`.
    Steered,
    Skipping,
    PartlyDown,
    Even,
    Quiet,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnosis {
    pub verdict: Verdict,
    pub severity: Severity,
    pub text: String,
}

impl Diagnosis {
    fn new(verdict: Verdict, severity: Severity, text: impl Into<String>) -> Self {
        Diagnosis {
            verdict,
            severity,
            text: text.into(),
        }
    }
}

/// The state of `app` at `now`, most urgent first.
pub fn diagnose(app: &App, now: Instant) -> Diagnosis {
    let (stats, at) = app.view(now);
    let views = app.gateways();
    let down: Vec<(&String, Duration)> = views
        .iter()
        .filter_map(|(name, view)| down_for(view, now).map(|d| (name, d)))
        .collect();
    if !views.is_empty() && down.len() == views.len() {
        // Only the user can fix a refusal: it comes before "unreachable".
        if let Some((_, refusal)) = app.refused().next() {
            return Diagnosis::new(Verdict::Refused, Severity::Bad, refusal.verdict());
        }
        let longest = down.iter().map(|(_, d)| *d).max().unwrap_or_default();
        let who = if views.len() == 1 {
            "gateway".to_owned()
        } else {
            format!("all {} gateways", views.len())
        };
        let shown = if app.synced() {
            "last known data shown"
        } else {
            "nothing received yet"
        };
        return Diagnosis::new(
            Verdict::Unreachable,
            Severity::Bad,
            format!("{who} unreachable for {} — {shown}", seconds(longest)),
        );
    }
    if !app.synced() {
        return Diagnosis::new(
            Verdict::Waiting,
            Severity::Neutral,
            "waiting for the gateway's first answer",
        );
    }
    let restarted = views
        .iter()
        .filter_map(|(name, view)| {
            view.restarted_at
                .map(|t| (name, view, now.saturating_duration_since(t)))
        })
        .filter(|(_, _, ago)| *ago < RESTART_NOTICE)
        .min_by_key(|(_, _, ago)| *ago);
    if let Some((name, view, ago)) = restarted
        && view.mode == Some(Mode::Sticky)
    {
        let who = if views.len() == 1 { "gateway" } else { name.as_str() };
        return Diagnosis::new(
            Verdict::Restarted,
            Severity::Bad,
            format!(
                "{who} restarted in sticky mode {} ago — press m to balance again",
                seconds(ago)
            ),
        );
    }
    let window = stats.time_window().phrase(app.observed_for(at));
    if let Some(failing) = failing(app, stats, at, &window) {
        return failing;
    }
    if app.mixed_modes() {
        return Diagnosis::new(
            Verdict::Mixed,
            Severity::Warning,
            "MIXED: the gateways disagree on the mode — press m to switch them all",
        );
    }
    let spread = spread(app.mode(), stats, at, &window);
    if let Some(problem) = spread.clone().filter(|d| d.severity != Severity::Good) {
        return problem;
    }
    if let Some(skipping) = skipping(stats) {
        return skipping;
    }
    if let Some(even) = spread {
        return even;
    }
    if let Some((name, ago)) = down.first() {
        let text = match views.get(*name).map(|view| &view.connection) {
            Some(Connection::Refused { refusal, .. }) => format!("{name} {refusal}"),
            _ => format!("{name} unreachable for {} — its share is stale", seconds(*ago)),
        };
        return Diagnosis::new(Verdict::PartlyDown, Severity::Warning, text);
    }
    if let Some((_, view, ago)) = restarted {
        let mode = view.mode.map_or("unknown", Mode::as_str);
        return Diagnosis::new(
            Verdict::Quiet,
            Severity::Neutral,
            format!("gateway restarted {} ago, now {mode}", seconds(ago)),
        );
    }
    let served = stats.window(at).requests;
    let live = stats.live_pods().count();
    match (served, live) {
        (0, _) => Diagnosis::new(Verdict::Quiet, Severity::Neutral, format!("no requests {window}")),
        (_, 0 | 1) => Diagnosis::new(Verdict::Quiet, Severity::Neutral, "one pod serving: nothing to balance"),
        _ => Diagnosis::new(
            Verdict::Quiet,
            Severity::Neutral,
            format!("{served} requests {window}: too few to judge the spread"),
        ),
    }
}

/// How long `view`'s gateway has been unreachable or refusing, if it is.
fn down_for(view: &GatewayView, now: Instant) -> Option<Duration> {
    let down_since = view.connection.down_since()?;
    Some(now.saturating_duration_since(down_since))
}

/// "FAILING: ..." when requests in the window failed.
fn failing(app: &App, stats: &Stats, at: Instant, window: &str) -> Option<Diagnosis> {
    let tally = stats.window(at);
    if tally.errors == 0 {
        return None;
    }
    let mut pods: Vec<(&PodStats, u64)> = stats
        .pods
        .values()
        .map(|p| (p, p.errors_in_window(at)))
        .filter(|(_, e)| *e > 0)
        .collect();
    pods.sort_by(|(a, ea), (b, eb)| eb.cmp(ea).then_with(|| a.name.cmp(&b.name)));
    let mut where_ = pods
        .iter()
        .take(2)
        .map(|(p, e)| match main_code(p) {
            Some(code) => format!("{} {e} {code}", p.name),
            None => format!("{} {e}", p.name),
        })
        .collect::<Vec<_>>();
    if pods.len() > 2 {
        where_.push(format!("{} more pods", pods.len() - 2));
    }
    let named: u64 = pods.iter().map(|(_, e)| e).sum();
    if tally.errors > named {
        where_.push(format!("{} naming no pod", tally.errors - named));
    }
    // The action first: a narrow terminal cuts the end of the line.
    let action = if app.mode() == Some(Mode::Sticky) && stats.live_pods().count() > 1 {
        " — press m to balance"
    } else {
        ""
    };
    let text = format!(
        "FAILING{action}: {} of {} requests failed {window} ({})",
        tally.errors,
        tally.requests,
        where_.join(", ")
    );
    Some(Diagnosis::new(Verdict::Failing, Severity::Bad, text))
}

/// The gRPC code most of the pod's failures had, by name.
fn main_code(pod: &PodStats) -> Option<&'static str> {
    let (code, _) = pod
        .error_codes
        .iter()
        .max_by_key(|(code, n)| (**n, std::cmp::Reverse(**code)))?;
    Some(grpc_code_name(*code))
}

/// "SKIPPING p3 (connection refused) ..." when a balancer routes around pods.
fn skipping(stats: &Stats) -> Option<Diagnosis> {
    let skipped: Vec<String> = stats
        .skipped_pods()
        .map(|p| format!("{} ({})", p.name, p.skipped.as_deref().unwrap_or_default()))
        .collect();
    if skipped.is_empty() {
        return None;
    }
    let serving = stats.live_pods().count();
    let pods = if serving == 1 { "pod" } else { "pods" };
    Some(Diagnosis::new(
        Verdict::Skipping,
        Severity::Warning,
        format!(
            "SKIPPING {}: the gateway routes around it; {serving} {pods} serving",
            skipped.join(", ")
        ),
    ))
}

/// STUCK, UNEVEN or EVEN: how the window's requests spread over the live pods.
fn spread(mode: Option<Mode>, stats: &Stats, at: Instant, window: &str) -> Option<Diagnosis> {
    let live: Vec<(&PodStats, u64)> = stats.live_pods().map(|p| (p, p.in_window(at))).collect();
    let total: u64 = live.iter().map(|(_, n)| n).sum();
    if live.len() < 2 || total < MIN_REQUESTS {
        return None;
    }
    let fairness = stats.fairness(at)?;
    let (top, top_n) = live
        .iter()
        .max_by(|(a, na), (b, nb)| na.cmp(nb).then_with(|| b.name.cmp(&a.name)))
        .copied()?;
    let share = 100.0 * top_n as f64 / total as f64;
    let idle: Vec<&str> = live
        .iter()
        .filter(|(_, n)| *n == 0)
        .map(|(p, _)| p.name.as_str())
        .collect();
    // Per request (balanced or least-loaded): named in the verdict.
    let balanced = mode.filter(|m| *m != Mode::Sticky);
    if share >= STUCK_SHARE * 100.0 {
        return Some(if let Some(mode) = balanced {
            Diagnosis::new(
                Verdict::Uneven,
                Severity::Bad,
                format!(
                    "UNEVEN while {mode}: {share:.0} % on {} {window}{}",
                    top.name,
                    none_for(&idle)
                ),
            )
        } else {
            Diagnosis::new(
                Verdict::Stuck,
                Severity::Bad,
                format!("STUCK — press m to balance: {share:.0} % on {} {window}", top.name),
            )
        });
    }
    if fairness < EVEN_FAIRNESS {
        // Least-loaded sends less to a slower pod on purpose: worth a look, no alarm.
        if balanced == Some(Mode::LeastLoaded) {
            let text = format!(
                "UNEVEN on purpose: least-loaded favours the faster pods; fairness {fairness:.2} {window}; {} takes {share:.0} %",
                top.name
            );
            return Some(Diagnosis::new(Verdict::Steered, Severity::Neutral, text));
        }
        // dns mode keeps to the last DNS answer: a new pod waits for the next resolve.
        if balanced == Some(Mode::Dns) {
            let text = format!(
                "UNEVEN on purpose: dns mode routes by the last DNS answer{}; fairness {fairness:.2} {window}",
                none_for(&idle)
            );
            return Some(Diagnosis::new(Verdict::Steered, Severity::Neutral, text));
        }
        let text = if balanced.is_some() {
            format!(
                "UNEVEN while balanced: fairness {fairness:.2} {window}; {} takes {share:.0} %{}",
                top.name,
                none_for(&idle)
            )
        } else {
            format!(
                "UNEVEN — press m to balance: fairness {fairness:.2} {window}; {} takes {share:.0} %",
                top.name
            )
        };
        return Some(Diagnosis::new(Verdict::Uneven, Severity::Warning, text));
    }
    Some(Diagnosis::new(
        Verdict::Even,
        Severity::Good,
        format!("EVEN: {} pods, fairness {fairness:.2} {window}", live.len()),
    ))
}

/// "; p1, p3 get none" for the live pods that got nothing.
fn none_for(idle: &[&str]) -> String {
    if idle.is_empty() {
        String::new()
    } else {
        format!("; {} get none", idle.join(", "))
    }
}

/// Whole seconds, as "12 s" ("<1 s" below one).
fn seconds(d: Duration) -> String {
    match d.as_secs() {
        0 => "<1 s".to_owned(),
        s => format!("{s} s"),
    }
}

#[cfg(test)]
mod tests;
