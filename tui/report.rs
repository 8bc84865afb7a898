//! `--once`: per-pod statistics as a table or JSON, for scripts and tests.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use super::state::stats::{PodState, methods};
use super::state::{App, Verdict, diagnose};
use greet_proto::Mode;
use greet_proto::grpc_code::grpc_code_name;

mod fail_on;
use self::fail_on::is_client_error_named;
pub(crate) use self::fail_on::{FailOn, FailOnMatched};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
    Markdown,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Report {
    /// When the report was made, RFC 3339 (UTC).
    pub at: String,
    /// The gateways followed, by name.
    pub gateways: Vec<String>,
    pub mode: Option<Mode>,
    /// The number of a mode this version does not know (then `mode` is null).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unknown_mode: Option<i32>,
    /// The window every figure is over: the whole observation, e.g. "over
    /// the last 5 s".
    pub window: String,
    /// The verdict's word: EVEN, STUCK, UNEVEN, UNEVEN_ON_PURPOSE, FAILING,
    /// SKIPPING, PARTLY_DOWN, ... (see [`Verdict::label`]).
    pub state: &'static str,
    /// The verdict line, over the same window, without the dashboard's key hints.
    pub diagnosis: String,
    #[serde(skip)]
    pub verdict: Verdict,
    /// Jain's index over the live pods' requests in the same window.
    pub fairness: Option<f64>,
    pub total: u64,
    /// Failed requests, unattributed ones included.
    pub errors: u64,
    /// Of `errors`, those a client earns by itself (UNIMPLEMENTED,
    /// INVALID_ARGUMENT, ...): not a pod failing, so not `--fail-on errors`.
    /// A pod's failures with no code yet are split like its coded ones.
    pub client_errors: u64,
    /// Failed requests that named no pod (e.g. the Service was unreachable);
    /// part of `total`, in no pod's hits.
    pub unattributed: u64,
    /// The gateways that refused greet-top (a missing or wrong token), and why.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub refused: BTreeMap<String, String>,
    pub pods: Vec<PodReport>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct PodReport {
    /// What the row is: "pod" (a greet-server), or "service" (the address
    /// sticky mode dials, which balances connections, not requests).
    pub kind: &'static str,
    pub name: String,
    pub ip: String,
    /// Ready for requests: listed ready, not skipped nor down, and neither failing nor hung.
    pub ready: bool,
    /// What the dashboard's READY column says: yes, failing, errors,
    /// hung?, skip, down, gone, service, no, ... (the model's one rule).
    pub readiness: &'static str,
    /// Listed once by the pod source, no longer.
    pub gone: bool,
    /// Why a gateway's balancer skips it (then `ready` is false).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// Why a gateway's health check of it fails (then `ready` is false).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub down: Option<String>,
    pub hits: u64,
    pub errors: u64,
    /// Successful share of its hits, 0..=1; `null` when it had none.
    pub success_rate: Option<f64>,
    /// Failed requests by gRPC code name, as far as known (see docs/dashboard.md).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub errors_by_code: BTreeMap<&'static str, u64>,
    /// Share of all requests, 0..=1.
    pub share: f64,
    /// Requests per second over the observed duration.
    pub rps: f64,
    /// `null` when the pod answered nothing.
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// From the Kubernetes pod watch, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restarts: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Read from the pod's own metrics: where, and which family
    /// (`grpc_server`, `otel rpc (ms)`, `otel rpc (s)`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    /// Hits and errors by method ("POST /greet" for REST), when any call
    /// came through the gateway's gRPC ingress.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub methods: BTreeMap<String, MethodReport>,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct MethodReport {
    pub hits: u64,
    pub errors: u64,
}

/// The report of what `app` counted over `observed`.
#[cfg(test)]
pub(crate) fn build(app: &App, observed: Duration) -> Report {
    build_at(app, observed, Instant::now(), SystemTime::now())
}

/// The report of what `app` counted over `observed`, made at `now` (on the
/// model's clock) and `wall` (what it says in `at`): a replay's are the
/// recorded ones.
pub(crate) fn build_at(app: &App, observed: Duration, now: Instant, wall: SystemTime) -> Report {
    let (stats, at) = app.view(now);
    let diagnosis = diagnose(app, now);
    // The report is over the whole observation (the app counts since its
    // start, its window "since the reset"): say it in the report's words.
    let window = format!("over the last {} s", observed.as_secs().max(1));
    let diagnosis_text = diagnosis.for_report().replace("since the reset", &window);
    let seconds = observed.as_secs_f64().max(1e-3);
    let total = stats.total();
    // REST-only traffic (no method) reports as it always did.
    let by_method = stats.pods.values().any(|pod| pod.methods.keys().any(|m| !m.is_empty()));
    let pods = stats
        .pods
        .values()
        .map(|pod| PodReport {
            kind: pod.kind.as_str(),
            name: pod.name.clone(),
            ip: pod.ip.clone(),
            ready: matches!(pod.state(at), PodState::Ready | PodState::Unlisted),
            readiness: pod.state(at).word(),
            gone: pod.gone,
            skipped: pod.skipped.clone(),
            down: pod.down.clone(),
            hits: pod.hits(),
            errors: pod.errors(),
            success_rate: pod.success_rate(),
            errors_by_code: pod
                .error_codes
                .iter()
                .map(|(code, n)| (grpc_code_name(*code), *n))
                .collect(),
            share: if total == 0 {
                0.0
            } else {
                pod.hits() as f64 / total as f64
            },
            rps: pod.hits() as f64 / seconds,
            p50_ms: pod.latency_since_reset_ms(50.0).map(to_microseconds),
            p99_ms: pod.latency_since_reset_ms(99.0).map(to_microseconds),
            phase: pod.info.as_ref().and_then(|i| i.phase.clone()),
            restarts: pod.info.as_ref().filter(|i| i.phase.is_some()).map(|i| i.restarts),
            node: pod.info.as_ref().and_then(|i| i.node.clone()),
            url: app
                .pod_metrics()
                .then(|| pod.endpoint.clone())
                .filter(|u| !u.is_empty()),
            family: pod.metrics_family.clone(),
            methods: pod
                .methods
                .iter()
                .filter(|_| by_method)
                .map(|(method, n)| {
                    let counts = MethodReport {
                        hits: n.requests,
                        errors: n.errors,
                    };
                    (methods::shown(method).to_owned(), counts)
                })
                .collect(),
        })
        .collect::<Vec<PodReport>>();
    let client_errors = client_errors(&pods);
    Report {
        at: humantime::format_rfc3339_seconds(wall).to_string(),
        gateways: app.gateways().keys().cloned().collect(),
        mode: app.mode(),
        unknown_mode: app.unknown_mode(),
        window,
        state: diagnosis.verdict.label(),
        diagnosis: diagnosis_text,
        verdict: diagnosis.verdict,
        fairness: stats.fairness(at),
        total,
        errors: stats.errors(),
        client_errors,
        unattributed: stats.unattributed(),
        refused: app
            .refused()
            .map(|(gateway, refusal)| (gateway.clone(), refusal.to_string()))
            .collect(),
        pods,
    }
}

impl Report {
    /// The mode as the text formats name it: a newer gateway's by its number.
    fn mode_label(&self) -> String {
        match (self.mode, self.unknown_mode) {
            (Some(mode), _) => mode.as_str().to_owned(),
            (None, Some(number)) => format!("mode {number}"),
            (None, None) => "unknown".to_owned(),
        }
    }

    pub fn to_json(&self) -> String {
        // Serializing plain numbers and strings cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// For pasting into an incident channel: a summary line, the verdict
    /// quoted, then a Markdown table.
    pub fn to_markdown(&self, observed: Duration) -> String {
        let mode = self.mode_label();
        let fairness = self.fairness.map_or_else(|| "–".to_owned(), |f| format!("{f:.2}"));
        let gateways: Vec<String> = self.gateways.iter().map(|g| format!("`{}`", cell(g))).collect();
        let mut out = format!(
            "**greet-top** · mode **{mode}** · {} requests, {} failed · observed {:.1} s · fairness {fairness} {} · {} · {}\n\n> {}\n\n",
            self.total,
            self.errors,
            observed.as_secs_f64(),
            self.window,
            self.at,
            gateways.join(", "),
            cell(&self.diagnosis)
        );
        out.push_str("| pod | IP | ready | hits | errors | share | rps | p50 ms | p99 ms |\n");
        out.push_str("|---|---|---|---:|---:|---:|---:|---:|---:|\n");
        for pod in &self.pods {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {:.1}% | {:.1} | {} | {} |",
                cell(&pod.name),
                cell(&pod.ip),
                pod.ready_word(),
                pod.hits,
                pod.errors,
                pod.share * 100.0,
                pod.rps,
                ms(pod.p50_ms),
                ms(pod.p99_ms)
            );
        }
        out
    }

    pub fn to_table(&self, observed: Duration) -> String {
        let mode = self.mode_label();
        let fairness = self.fairness.map_or_else(|| "–".to_owned(), |f| format!("{f:.2}"));
        let mut out = format!(
            "mode: {mode}   total: {}   observed: {:.1}s   fairness: {fairness} {}   at: {}   gateway: {}\n{}\n",
            self.total,
            observed.as_secs_f64(),
            self.window,
            self.at,
            self.gateways.join(", "),
            self.diagnosis
        );
        if self.unattributed > 0 {
            let _ = writeln!(out, "failed requests naming no pod: {}", self.unattributed);
        }
        for (gateway, refusal) in &self.refused {
            let _ = writeln!(out, "{gateway} {refusal}");
        }
        let width = self
            .pods
            .iter()
            .map(|p| p.name.chars().count())
            .max()
            .unwrap_or(3)
            .max(3);
        let _ = writeln!(
            out,
            "{:<width$}  {:<15}  {:<5}  {:>7}  {:>6}  {:>6}  {:>7}  {:>7}  {:>7}",
            "POD", "IP", "READY", "HITS", "ERR", "SHARE", "RPS", "P50 ms", "P99 ms"
        );
        for pod in &self.pods {
            let ready = pod.ready_word();
            let _ = writeln!(
                out,
                "{:<width$}  {:<15}  {:<5}  {:>7}  {:>6}  {:>5.1}%  {:>7.1}  {:>7}  {:>7}",
                pod.name,
                pod.ip,
                ready,
                pod.hits,
                pod.errors,
                pod.share * 100.0,
                pod.rps,
                ms(pod.p50_ms),
                ms(pod.p99_ms)
            );
        }
        self.methods_table(&mut out);
        out
    }

    /// Per-pod hits by method, method by method, when any came through the
    /// gRPC ingress.
    fn methods_table(&self, out: &mut String) {
        let mut rows: Vec<(&str, &str, &MethodReport)> = self
            .pods
            .iter()
            .flat_map(|pod| pod.methods.iter().map(|(m, n)| (m.as_str(), pod.name.as_str(), n)))
            .collect();
        if rows.is_empty() {
            return;
        }
        rows.sort_by_key(|(method, pod, _)| (*method, *pod));
        let method_width = rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(6).max(6);
        let pod_width = rows.iter().map(|r| r.1.chars().count()).max().unwrap_or(3).max(3);
        let _ = writeln!(
            out,
            "\n{:<method_width$}  {:<pod_width$}  {:>7}  {:>6}",
            "METHOD", "POD", "HITS", "ERR"
        );
        for (method, pod, n) in rows {
            let _ = writeln!(
                out,
                "{method:<method_width$}  {pod:<pod_width$}  {:>7}  {:>6}",
                n.hits, n.errors
            );
        }
    }
}

impl PodReport {
    fn ready_word(&self) -> &'static str {
        self.readiness
    }
}

/// The pods' failures a client earned by itself. A pod's failures that
/// carry no code (counted between the first snapshot and the first summary)
/// are split as its coded ones are.
fn client_errors(pods: &[PodReport]) -> u64 {
    pods.iter()
        .map(|pod| {
            let coded: u64 = pod.errors_by_code.values().sum();
            let client: u64 = pod
                .errors_by_code
                .iter()
                .filter(|(code, _)| is_client_error_named(code))
                .map(|(_, n)| n)
                .sum();
            let uncoded = pod.errors.saturating_sub(coded);
            let share = if coded == 0 {
                0
            } else {
                (uncoded as f64 * client as f64 / coded as f64).round() as u64
            };
            client + share
        })
        .sum()
}

/// Milliseconds rounded to the microsecond: the histogram's interpolation
/// gives more digits than it knows.
fn to_microseconds(ms: f64) -> f64 {
    (ms * 1000.0).round() / 1000.0
}

/// Milliseconds to two decimals, "-" for none.
fn ms(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.2}"))
}

/// Text for a Markdown table cell: a `|` would end the cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

#[cfg(test)]
mod tests;
