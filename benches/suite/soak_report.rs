//! What a soak run measured, its checks, and bench/soak-results.md.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use super::soak::{AGGREGATED, FLIP_EVERY, Options, RAW, RESTART_EVERY};
use super::subscribers::{Kind, ModeCounts, Seen};

/// Flat: the gateway's RSS at the end at most this many times its RSS once warmed up.
pub(crate) const RSS_BOUND: f64 = 1.2;
/// The paced load must reach this share of the asked rate, or the soak did not soak.
const RATE_REACHED: f64 = 0.9;

/// The gateway's VmRSS in KiB.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rss {
    pub start_kib: u64,
    pub end_kib: u64,
    pub peak_kib: u64,
}

impl Rss {
    pub(crate) fn ratio(&self) -> f64 {
        self.end_kib as f64 / self.start_kib as f64
    }
}

pub(crate) struct Report {
    pub options: Options,
    pub elapsed: Duration,
    /// The clients' counts.
    pub sent: u64,
    pub succeeded: u64,
    pub failed: u64,
    /// Servers stopped by SIGTERM and by SIGKILL (each started again).
    pub restarts: (u32, u32),
    pub flips: u32,
    pub rss: Rss,
    pub subscribers: Vec<(Kind, Seen)>,
}

impl Report {
    fn raw(&self) -> impl Iterator<Item = &Seen> {
        self.subscribers
            .iter()
            .filter(|(k, _)| matches!(k, Kind::Raw))
            .map(|(_, s)| s)
    }

    /// Requests by the mode that served them, from the first raw subscriber's
    /// request events (the gateway's own account: each names its mode).
    fn by_mode(&self) -> BTreeMap<&'static str, ModeCounts> {
        self.raw().next().map(|s| s.by_mode.clone()).unwrap_or_default()
    }

    /// Every check that failed, in words; empty when the soak passed.
    pub(crate) fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let by_mode = self.by_mode();
        let balanced = by_mode.get("balanced").copied().unwrap_or_default();
        if balanced.failed > 0 {
            problems.push(format!(
                "{} of {} requests failed in balanced mode",
                balanced.failed, balanced.requests
            ));
        }
        let dropped: u64 = self.raw().map(|s| s.dropped).sum();
        let gateway = by_mode
            .values()
            .fold((0, 0), |(r, f), c| (r + c.requests, f + c.failed));
        if dropped == 0 && gateway != (self.sent, self.failed) {
            problems.push(format!(
                "the clients sent {} and saw {} fail, the gateway's request events say {} and {}",
                self.sent, self.failed, gateway.0, gateway.1
            ));
        }
        if dropped == 0 && self.raw().any(|s| s.by_mode != by_mode) {
            problems.push("the raw subscribers disagree on the requests by mode".into());
        }
        // NaN (no RSS read) is not flat either.
        let flat = self.rss.ratio() <= RSS_BOUND;
        if !flat {
            problems.push(format!(
                "gateway RSS grew {:.3}x (bound {RSS_BOUND}x)",
                self.rss.ratio()
            ));
        }
        let asked = f64::from(self.options.rate) * self.elapsed.as_secs_f64();
        if (self.sent as f64) < RATE_REACHED * asked {
            problems.push(format!(
                "sent {} requests, under 90 % of the {asked:.0} asked",
                self.sent
            ));
        }
        problems
    }

    pub(crate) fn markdown(&self, environment: &str) -> String {
        let Options { seconds, rate } = self.options;
        let mut out = String::from("# Soak results (`bench/soak`)\n\nWritten by the soak (benches/suite/soak.rs).\n\n");
        out.push_str(environment);
        let _ = writeln!(
            out,
            "- soak: {seconds} s at {rate} req/s from 8 paced clients (took {:.1} s); the mode flipped every {} s ({} flips, balanced first); a greet-server restarted every {} s, a SIGTERM drain and a SIGKILL crash in turn ({} and {}); {AGGREGATED} aggregated and {RAW} raw Observer subscribers\n",
            self.elapsed.as_secs_f64(),
            FLIP_EVERY.as_secs(),
            self.flips,
            RESTART_EVERY.as_secs(),
            self.restarts.0,
            self.restarts.1,
        );
        out.push_str("| requests | sent | succeeded | failed | retried |\n|---|---:|---:|---:|---:|\n");
        for (mode, c) in self.by_mode() {
            let _ = writeln!(
                out,
                "| {mode} (the gateway's events) | {} | {} | {} | {} |",
                c.requests,
                c.requests - c.failed,
                c.failed,
                c.retried
            );
        }
        let _ = writeln!(
            out,
            "| all (the clients) | {} | {} | {} | |\n",
            self.sent, self.succeeded, self.failed
        );
        let Rss {
            start_kib,
            end_kib,
            peak_kib,
        } = self.rss;
        let _ = writeln!(
            out,
            "Gateway VmRSS: {start_kib} KiB after {} s of load, {end_kib} KiB at the end, peak {peak_kib} KiB; end / start {:.3} (flat: at most {RSS_BOUND}).\n",
            self.options.warm_up().as_secs(),
            self.rss.ratio()
        );
        out.push_str("| subscribers | n | events (fewest–most) | dropped (Lagged) | longest delay |\n|---|---:|---:|---:|---:|\n");
        for (kind, what) in [
            (Kind::Aggregated, "aggregated (1-s summaries, 10/s sample)"),
            (Kind::Raw, "raw (every request)"),
        ] {
            let seen: Vec<&Seen> = self
                .subscribers
                .iter()
                .filter(|(k, _)| std::mem::discriminant(k) == std::mem::discriminant(&kind))
                .map(|(_, s)| s)
                .collect();
            let events = seen.iter().map(|s| s.events);
            let _ = writeln!(
                out,
                "| {what} | {} | {}–{} | {} | {:.1} ms |",
                seen.len(),
                events.clone().min().unwrap_or(0),
                events.max().unwrap_or(0),
                seen.iter().map(|s| s.dropped).sum::<u64>(),
                seen.iter().map(|s| s.max_delay_ms).fold(0.0, f64::max),
            );
        }
        let problems = self.problems();
        if problems.is_empty() {
            out.push_str("\nPASS: no request failed in balanced mode, the counts agree, RSS flat.\n");
        } else {
            out.push('\n');
            for problem in problems {
                let _ = writeln!(out, "FAIL: {problem}");
            }
        }
        out
    }
}
