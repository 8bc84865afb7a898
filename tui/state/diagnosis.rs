//! The verdict line: what is wrong (or right) right now, in words, with
//! what to do. One pure function of the state, so every case is tested
//! without a terminal and the dashboard and `--once` say the same thing.

use std::time::{Duration, Instant};

use self::failing::{Failures, count, stopped, stopped_note};
use self::span::Span;
use self::spread::spread;
use self::words::{Render, Words, shared_prefix};
use super::app::App;
use super::gateways::Connection;
use super::stats::Stats;
use greet_proto::Mode;

mod down;
mod failing;
mod span;
mod spread;
mod unreachable;
mod words;

/// How long a gateway restart stays the headline.
pub(crate) const RESTART_NOTICE: Duration = Duration::from_secs(60);
/// Fewer requests than this in the span say nothing about the spread.
const MIN_REQUESTS: u64 = 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Severity {
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
    /// The pods failed requests (the callers' errors do not count).
    Failing,
    /// A pod holds requests it does not answer (stopped, deadlocked).
    Hung,
    Mixed,
    Stuck,
    Uneven,
    /// Uneven because least-loaded favours faster pods: not `--fail-on stuck`.
    Steered,
    Skipping,
    /// One pod's p99 is far above the others'.
    Slow,
    /// Requests failed as the callers' mistakes (UNIMPLEMENTED, ...): the
    /// pods are fine; not `--fail-on errors`.
    ClientErrors,
    PartlyDown,
    Even,
    Quiet,
}

impl Verdict {
    /// The state's name for scripts (`--once` JSON): "EVEN", "STUCK", ...
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Waiting => "WAITING",
            Verdict::Refused => "REFUSED",
            Verdict::Unreachable => "UNREACHABLE",
            Verdict::Restarted => "RESTARTED",
            Verdict::Failing => "FAILING",
            Verdict::Hung => "HUNG",
            Verdict::Mixed => "MIXED",
            Verdict::Stuck => "STUCK",
            Verdict::Uneven => "UNEVEN",
            Verdict::Steered => "UNEVEN_ON_PURPOSE",
            Verdict::Skipping => "SKIPPING",
            Verdict::Slow => "SLOW",
            Verdict::ClientErrors => "CLIENT_ERRORS",
            Verdict::PartlyDown => "PARTLY_DOWN",
            Verdict::Even => "EVEN",
            Verdict::Quiet => "QUIET",
        }
    }
}

/// What the verdict judged: its requests, and their failures split into
/// the pods' and the callers'. `--fail-on errors` is about `pod_failures`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Judged {
    /// Requests in the span judged (the window, or since a mode switch in it).
    pub requests: u64,
    /// Failed requests the pods are to blame for: all but the callers'.
    pub pod_failures: u64,
    /// Failed requests that were the callers' doing
    /// ([`greet_proto::grpc_code::is_client_error`]).
    pub client_errors: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Diagnosis {
    pub verdict: Verdict,
    pub severity: Severity,
    /// The whole line: whole pod names, the window and the key hints.
    pub text: String,
    pub judged: Judged,
    words: Words,
    /// The prefix the pods' names share, left out when room is short.
    shared: String,
}

impl Diagnosis {
    fn new(verdict: Verdict, severity: Severity, words: impl Into<Words>) -> Self {
        Diagnosis {
            verdict,
            severity,
            text: String::new(),
            judged: Judged::default(),
            words: words.into(),
            shared: String::new(),
        }
    }

    fn with(mut self, more: Words) -> Self {
        self.words = self.words.then(more);
        self
    }

    /// The line for a report (`--once`): whole names, the window, no keys to press.
    pub(crate) fn for_report(&self) -> String {
        self.words.render(Render {
            shared: None,
            window: true,
            hints: false,
            rank: u8::MAX,
        })
    }

    /// The line for the dashboard, `width` characters at most where it
    /// can be: the header states the window, names lose the prefix the pods
    /// share, then clauses go, least important first. A name is never cut.
    pub(crate) fn for_screen(&self, width: usize) -> String {
        self.words.fit(width, &self.shared, false)
    }
}

impl From<&str> for Words {
    fn from(text: &str) -> Words {
        Words::new(text)
    }
}

impl From<String> for Words {
    fn from(text: String) -> Words {
        Words::new(text)
    }
}

/// The state of `app` at `now`, most urgent first.
pub(crate) fn diagnose(app: &App, now: Instant) -> Diagnosis {
    let (stats, at) = app.view(now);
    let span = Span::judged(app, stats, at);
    let failures = count(stats, &span);
    let mut diagnosis = judge(app, stats, &span, &failures, now);
    diagnosis.judged = failures.judged;
    diagnosis.shared = shared_prefix(stats.pods.values().map(|p| p.name.as_str()));
    diagnosis.text = diagnosis.words.render(Render {
        shared: None,
        window: true,
        hints: true,
        rank: u8::MAX,
    });
    diagnosis
}

fn judge(app: &App, stats: &Stats, span: &Span, failures: &Failures, now: Instant) -> Diagnosis {
    let at = span.at;
    let views = app.gateways();
    let down = unreachable::down_gateways(views, now);
    if let Some(diagnosis) = unreachable::all_down(app, &down) {
        return diagnosis;
    }
    if !app.synced() {
        let waiting = if app.pod_metrics() {
            "waiting for the first scrape of the pods' metrics"
        } else {
            "waiting for the gateway's first answer"
        };
        return Diagnosis::new(Verdict::Waiting, Severity::Neutral, waiting);
    }
    let restarted = views
        .iter()
        .filter_map(|(name, view)| {
            view.restarted_at
                .map(|t| (name, view, now.saturating_duration_since(t)))
        })
        .filter(|(_, _, ago)| *ago < RESTART_NOTICE)
        .min_by_key(|(_, _, ago)| *ago);
    // A mode change since the restart is the user's answer to it: the
    // notice ends there.
    let restarted =
        restarted.filter(|(_, view, _)| view.restarted_at.is_none_or(|t| !stats.switched_after(app.second(t))));
    if failures.judged.pod_failures > 0 && !stopped(stats, span) {
        // The action first: a narrow terminal cuts the end of the line.
        let hint =
            (app.mode() == Some(Mode::Sticky) && stats.live_pods().count() > 1).then_some(" — press m to balance");
        return Diagnosis::new(Verdict::Failing, Severity::Bad, failures.failing(span, hint));
    }
    if let Some(hung) = hung(app, stats) {
        return hung;
    }
    if let Some((name, view, ago)) = restarted
        && view.mode == Some(Mode::Sticky)
    {
        let who = if views.len() == 1 { "gateway" } else { name.as_str() };
        let words = Words::new(format!("{who} restarted in sticky mode {} ago", seconds(ago)))
            .hint(" — press m to balance again");
        return Diagnosis::new(Verdict::Restarted, Severity::Bad, words);
    }
    // Failures earlier in the window, before a switch or since stopped.
    let window_failures = if span.whole {
        failures.clone()
    } else {
        count(stats, &span.window())
    };
    let stopped_note = span
        .carried_over_note()
        .or_else(|| stopped_note(stats, &window_failures, at))
        .unwrap_or_default();
    if app.mixed_modes() {
        let words = Words::new("MIXED: the gateways disagree on the mode").hint(" — press m to switch them all");
        return Diagnosis::new(Verdict::Mixed, Severity::Warning, words);
    }
    let notes = stopped_note.clone().then(failures.client_note());
    let advice = if app.pod_metrics() {
        spread::FIX_THE_CLIENTS
    } else {
        spread::PRESS_M
    };
    let spread = (!span.settling())
        .then(|| spread(app.mode(), stats, span, advice))
        .flatten();
    if let Some(problem) = spread.clone().filter(|d| d.severity != Severity::Good) {
        return problem.with_down(stats, at).with(notes);
    }
    if let Some(skipping) = skipping(stats) {
        return skipping.with_down(stats, at).with(notes);
    }
    if let Some(client) = failures.client_errors(span) {
        return Diagnosis::new(Verdict::ClientErrors, Severity::Warning, client)
            .with_down(stats, at)
            .with(stopped_note);
    }
    if let Some(even) = spread {
        return even.with_down(stats, at).with(stopped_note);
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
    let served = failures.judged.requests;
    let live = stats.live_pods().count();
    let quiet = match (served, live, &span.cut) {
        // Judging starts with the second after the change.
        (_, 2.., Some(cut)) if span.settling() => cut.happened().text(": too soon to judge the spread"),
        (0..MIN_REQUESTS, 2.., Some(cut)) => cut.happened().text(": too soon to judge the spread"),
        (0, _, _) => Words::new("no requests").then(span.words()),
        (_, 0 | 1, _) => Words::new("one pod serving: nothing to balance"),
        _ => Words::new(format!("{served} requests"))
            .then(span.words())
            .text(": too few to judge the spread"),
    };
    Diagnosis::new(Verdict::Quiet, Severity::Neutral, quiet)
        .with_down(stats, at)
        .with(stopped_note)
}

/// "HUNG? p2: 3 requests unanswered for 1.4 s (p99 1.5 ms)" while a pod
/// holds requests far longer than it usually takes: before any of them fails
/// (each waits out its time limit first), and before the gateway skips it.
fn hung(app: &App, stats: &Stats) -> Option<Diagnosis> {
    let pod = stats
        .pods
        .values()
        .filter(|p| !p.gone && p.hung())
        .max_by_key(|p| p.oldest_in_flight())?;
    let others = stats.live_pods().filter(|p| p.name != pod.name).count();
    let hint = (app.mode() == Some(Mode::Sticky) && others > 0).then_some(" — press m to balance");
    let mut words = Words::new("HUNG?");
    if let Some(hint) = hint {
        words = words.hint(hint);
    }
    let n = pod.in_flight();
    let waited = pod.oldest_in_flight().as_secs_f64();
    words = words.text(": ").name(&pod.name).text(format!(
        " {n} request{} unanswered for {waited:.1} s",
        if n == 1 { "" } else { "s" }
    ));
    if let Some(p99) = pod.latency_ms(99.0).or_else(|| pod.latency_since_reset_ms(99.0)) {
        words = words.clause(1, |w| w.text(format!(" (its p99 {p99:.1} ms)")));
    }
    Some(Diagnosis::new(Verdict::Hung, Severity::Bad, words))
}

/// "SKIPPING p3 (connection refused) ..." when a balancer routes around pods.
fn skipping(stats: &Stats) -> Option<Diagnosis> {
    let skipped: Vec<_> = stats.skipped_pods().collect();
    if skipped.is_empty() {
        return None;
    }
    let mut words = Words::new("SKIPPING ");
    for (i, pod) in skipped.iter().enumerate() {
        if i > 0 {
            words = words.text(", ");
        }
        let reason = pod.skipped.as_deref().unwrap_or_default();
        words = words.name(&pod.name).text(format!(" ({reason})"));
    }
    let serving = stats.live_pods().count();
    let pods = if serving == 1 { "pod" } else { "pods" };
    let words = words
        .text(": the gateway routes around it")
        .clause(1, |w| w.text(format!("; {serving} {pods} serving")));
    Some(Diagnosis::new(Verdict::Skipping, Severity::Warning, words))
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
