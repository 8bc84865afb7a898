//! `--once`: per-pod statistics as a table or JSON, for scripts and tests.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::state::App;
use crate::common::Mode;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Report {
    pub mode: Option<Mode>,
    pub total: u64,
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
    pub hits: u64,
    pub errors: u64,
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
    let (stats, _) = app.view(Instant::now());
    let seconds = observed.as_secs_f64().max(1e-3);
    let total = stats.total();
    let pods = stats
        .pods
        .values()
        .map(|pod| PodReport {
            name: pod.name.clone(),
            ip: pod.ip.clone(),
            ready: !pod.gone && pod.ready.unwrap_or(true),
            gone: pod.gone,
            hits: pod.hits(),
            errors: pod.errors(),
            share: if total == 0 {
                0.0
            } else {
                pod.hits() as f64 / total as f64
            },
            rps: pod.hits() as f64 / seconds,
            p50_ms: pod.latency_ms(50.0),
            p99_ms: pod.latency_ms(99.0),
            phase: pod.info.as_ref().and_then(|i| i.phase.clone()),
            restarts: pod.info.as_ref().filter(|i| i.phase.is_some()).map(|i| i.restarts),
            node: pod.info.as_ref().and_then(|i| i.node.clone()),
        })
        .collect();
    Report {
        mode: app.mode(),
        total,
        unattributed: stats.unattributed(),
        pods,
    }
}

impl Report {
    pub fn to_json(&self) -> String {
        // Serializing plain numbers and strings cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    pub fn to_table(&self, observed: Duration) -> String {
        let mode = self.mode.map_or("unknown", Mode::as_str);
        let mut out = format!(
            "mode: {mode}   total: {}   observed: {:.1}s\n",
            self.total,
            observed.as_secs_f64()
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
            "{:<width$}  {:<15}  {:<5}  {:>7}  {:>6}  {:>7}  {:>7}  {:>7}",
            "POD", "IP", "READY", "HITS", "SHARE", "RPS", "P50 ms", "P99 ms"
        );
        for pod in &self.pods {
            let ready = if pod.gone {
                "gone"
            } else if pod.ready {
                "yes"
            } else {
                "no"
            };
            let ms = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.2}"));
            let _ = writeln!(
                out,
                "{:<width$}  {:<15}  {:<5}  {:>7}  {:>5.1}%  {:>7.1}  {:>7}  {:>7}",
                pod.name,
                pod.ip,
                ready,
                pod.hits,
                pod.share * 100.0,
                pod.rps,
                ms(pod.p50_ms),
                ms(pod.p99_ms)
            );
        }
        out
    }
}
