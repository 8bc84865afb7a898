//! `--once`: per-pod statistics as a table or JSON, for scripts and tests.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use super::state::{App, Verdict, diagnose};
use crate::common::Mode;
use crate::common::grpc_code::grpc_code_name;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
    Markdown,
}

/// What `--fail-on` can fail on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    /// One pod takes (nearly) every request, or the spread is uneven.
    Stuck,
    /// Any request failed.
    Errors,
    /// A gateway's balancer skips a pod.
    Skipped,
}

impl FailOn {
    pub fn holds(self, report: &Report) -> bool {
        match self {
            FailOn::Stuck => matches!(report.verdict, Verdict::Stuck | Verdict::Uneven),
            FailOn::Errors => report.errors > 0,
            FailOn::Skipped => report.pods.iter().any(|p| p.skipped.is_some()),
        }
    }
}

/// A `--fail-on` condition held: greet-top exits 3.
#[derive(Debug, thiserror::Error)]
#[error("--fail-on {}: {verdict}", format!("{condition:?}").to_lowercase())]
pub struct FailOnMatched {
    pub condition: FailOn,
    pub verdict: String,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Report {
    /// When the report was made, RFC 3339 (UTC).
    pub at: String,
    /// The gateways followed, by name.
    pub gateways: Vec<String>,
    pub mode: Option<Mode>,
    /// The window the verdict and fairness are over, e.g. "over the last 10 s".
    pub window: String,
    /// The verdict line, as the dashboard shows it (over the last 10 s at most).
    pub diagnosis: String,
    #[serde(skip)]
    pub verdict: Verdict,
    /// Jain's index over the live pods' requests in the same window.
    pub fairness: Option<f64>,
    pub total: u64,
    /// Failed requests, unattributed ones included.
    pub errors: u64,
    /// Failed requests that named no pod (e.g. the Service was unreachable);
    /// part of `total`, in no pod's hits.
    pub unattributed: u64,
    pub pods: Vec<PodReport>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct PodReport {
    pub name: String,
    pub ip: String,
    pub ready: bool,
    /// Listed once by the pod source, no longer.
    pub gone: bool,
    /// Why a gateway's balancer skips it (then `ready` is false).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    pub hits: u64,
    pub errors: u64,
    /// Successful share of its hits, 0..=1; `null` when it had none.
    pub success_rate: Option<f64>,
    /// Failed requests by gRPC code name, as far as known (see README).
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
}

/// The report of what `app` counted over `observed`.
pub fn build(app: &App, observed: Duration) -> Report {
    let now = Instant::now();
    let (stats, at) = app.view(now);
    let diagnosis = diagnose(app, now);
    let seconds = observed.as_secs_f64().max(1e-3);
    let total = stats.total();
    let pods = stats
        .pods
        .values()
        .map(|pod| PodReport {
            name: pod.name.clone(),
            ip: pod.ip.clone(),
            ready: !pod.gone && pod.ready.unwrap_or(true) && pod.skipped.is_none(),
            gone: pod.gone,
            skipped: pod.skipped.clone(),
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
        })
        .collect();
    Report {
        at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        gateways: app.gateways().keys().cloned().collect(),
        mode: app.mode(),
        window: stats.time_window().phrase(app.observed_for(at)),
        diagnosis: diagnosis.text,
        verdict: diagnosis.verdict,
        fairness: stats.fairness(at),
        total,
        errors: stats.errors(),
        unattributed: stats.unattributed(),
        pods,
    }
}

impl Report {
    pub fn to_json(&self) -> String {
        // Serializing plain numbers and strings cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// For pasting into an incident channel: a summary line, the verdict
    /// quoted, then a Markdown table.
    pub fn to_markdown(&self, observed: Duration) -> String {
        let mode = self.mode.map_or("unknown", Mode::as_str);
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
        let mode = self.mode.map_or("unknown", Mode::as_str);
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
        out
    }
}

impl PodReport {
    fn ready_word(&self) -> &'static str {
        if self.gone {
            "gone"
        } else if self.skipped.is_some() {
            "skip"
        } else if self.ready {
            "yes"
        } else {
            "no"
        }
    }
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
mod tests {
    use super::*;

    fn pod(name: &str, ip: &str, hits: u64, share: f64, p50_ms: Option<f64>) -> PodReport {
        PodReport {
            name: name.into(),
            ip: ip.into(),
            ready: true,
            gone: false,
            skipped: None,
            hits,
            errors: 0,
            success_rate: (hits > 0).then_some(1.0),
            errors_by_code: BTreeMap::new(),
            share,
            rps: hits as f64 / 5.0,
            p50_ms,
            p99_ms: p50_ms.map(|p| p * 2.0),
            phase: None,
            restarts: None,
            node: None,
        }
    }

    fn report() -> Report {
        let mut gone = pod("greetserver-demo-c", "127.0.0.13", 0, 0.0, None);
        gone.gone = true;
        let mut failing = pod("greetserver-demo-b", "127.0.0.12", 83, 83.0 / 252.0, Some(0.415));
        failing.errors = 5;
        failing.ready = false;
        failing.skipped = Some("connection refused".into());
        failing.success_rate = Some(0.9375);
        failing.errors_by_code = [("UNAVAILABLE", 5)].into();
        Report {
            at: "2026-11-28T12:00:00Z".into(),
            gateways: vec!["http://127.0.0.1:9092".into()],
            window: "over the last 5 s".into(),
            diagnosis: "EVEN: 2 pods, fairness 0.90 over the last 5 s".into(),
            verdict: Verdict::Even,
            errors: 5,
            fairness: Some(0.9),
            mode: Some(Mode::Balanced),
            total: 252,
            unattributed: 1,
            pods: vec![
                pod("greetserver-demo-a", "127.0.0.11", 168, 2.0 / 3.0, Some(0.43)),
                failing,
                gone,
            ],
        }
    }

    #[test]
    fn the_table_has_a_row_per_pod() {
        assert_eq!(
            report().to_table(Duration::from_secs(5)),
            "mode: balanced   total: 252   observed: 5.0s   fairness: 0.90 over the last 5 s   at: 2026-11-28T12:00:00Z   gateway: http://127.0.0.1:9092\n\
             EVEN: 2 pods, fairness 0.90 over the last 5 s\n\
             failed requests naming no pod: 1\n\
             POD                 IP               READY     HITS     ERR   SHARE      RPS   P50 ms   P99 ms\n\
             greetserver-demo-a  127.0.0.11       yes        168       0   66.7%     33.6     0.43     0.86\n\
             greetserver-demo-b  127.0.0.12       skip        83       5   32.9%     16.6     0.41     0.83\n\
             greetserver-demo-c  127.0.0.13       gone         0       0    0.0%      0.0        -        -\n"
        );
    }

    #[test]
    fn markdown_pastes_as_a_table_with_the_verdict_quoted() {
        let mut report = report();
        report.pods[0].name = "evil|pod".into();
        assert_eq!(
            report.to_markdown(Duration::from_secs(5)),
            "**greet-top** · mode **balanced** · 252 requests, 5 failed · observed 5.0 s · fairness 0.90 over the last 5 s · \
             2026-11-28T12:00:00Z · `http://127.0.0.1:9092`\n\n\
             > EVEN: 2 pods, fairness 0.90 over the last 5 s\n\n\
             | pod | IP | ready | hits | errors | share | rps | p50 ms | p99 ms |\n\
             |---|---|---|---:|---:|---:|---:|---:|---:|\n\
             | evil\\|pod | 127.0.0.11 | yes | 168 | 0 | 66.7% | 33.6 | 0.43 | 0.86 |\n\
             | greetserver-demo-b | 127.0.0.12 | skip | 83 | 5 | 32.9% | 16.6 | 0.41 | 0.83 |\n\
             | greetserver-demo-c | 127.0.0.13 | gone | 0 | 0 | 0.0% | 0.0 | - | - |\n"
        );
    }

    #[test]
    fn fail_on_conditions_read_the_report() {
        let mut report = report();
        assert!(FailOn::Errors.holds(&report) && FailOn::Skipped.holds(&report));
        assert!(!FailOn::Stuck.holds(&report));
        report.verdict = Verdict::Stuck;
        assert!(FailOn::Stuck.holds(&report));
        report.verdict = Verdict::Uneven;
        assert!(FailOn::Stuck.holds(&report));
        report.errors = 0;
        report.pods.iter_mut().for_each(|p| p.skipped = None);
        assert!(!FailOn::Errors.holds(&report) && !FailOn::Skipped.holds(&report));
        let matched = FailOnMatched {
            condition: FailOn::Stuck,
            verdict: "STUCK — press m to balance: 100 % on p2".into(),
        };
        assert_eq!(
            matched.to_string(),
            "--fail-on stuck: STUCK — press m to balance: 100 % on p2"
        );
    }

    #[test]
    fn json_has_null_latencies_for_silent_pods_and_no_kube_fields_without_kube() {
        let json: serde_json::Value = serde_json::from_str(&report().to_json()).unwrap();
        assert_eq!(json["mode"], "balanced");
        assert_eq!(json["diagnosis"], "EVEN: 2 pods, fairness 0.90 over the last 5 s");
        assert_eq!(
            (json["fairness"].as_f64(), json["at"].as_str()),
            (Some(0.9), Some("2026-11-28T12:00:00Z"))
        );
        assert_eq!(json["gateways"][0], "http://127.0.0.1:9092");
        assert_eq!(json["unattributed"], 1);
        assert_eq!(json["pods"].as_array().map(Vec::len), Some(3));
        assert_eq!(json["pods"][0]["hits"], 168);
        assert!(json["pods"][2]["p50_ms"].is_null());
        assert!(json["pods"][2].get("p50_ms").is_some(), "present, as null");
        assert!(json["pods"][0].get("phase").is_none());
        assert_eq!(
            (
                json["pods"][1]["errors"].as_u64(),
                json["pods"][1]["success_rate"].as_f64()
            ),
            (Some(5), Some(0.9375))
        );
        assert!(json["pods"][2]["success_rate"].is_null(), "no hits, no rate");
        assert_eq!(json["pods"][1]["skipped"], "connection refused");
        assert_eq!(json["pods"][1]["errors_by_code"]["UNAVAILABLE"], 5);
        assert!(json["pods"][0].get("errors_by_code").is_none(), "only with errors");
        assert!(json["pods"][0].get("skipped").is_none(), "only when skipped");
    }
}
