//! Figures (medians of runs), targets (ratios with PASS/MISS), the printed
//! table and bench/results.md with the machine and tool versions.

use std::fmt::Write as _;
use std::process::Command;

/// One measured quantity: every run's value; the median is the figure.
pub struct Figure {
    pub name: String,
    pub unit: &'static str,
    pub runs: Vec<f64>,
}

impl Figure {
    pub fn median(&self) -> f64 {
        median(&self.runs)
    }
}

pub(crate) fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// A target the suite checks: a measured ratio (or count) and whether it is met.
pub struct Target {
    pub name: &'static str,
    pub goal: &'static str,
    pub measured: String,
    pub pass: bool,
}

/// A target judged on a ratio taken in each run (both sides measured in
/// the same run): the median of the runs' ratios is judged, their spread shown.
pub struct PairedTarget {
    pub name: &'static str,
    pub goal: &'static str,
    /// The gateway's log level the ratio is taken at.
    pub level: &'static str,
    pub ratios: Vec<f64>,
    pub pass: bool,
}

impl PairedTarget {
    /// Met when the median ratio is within [min, max].
    pub fn new(
        name: &'static str,
        goal: &'static str,
        level: &'static str,
        ratios: Vec<f64>,
        min: f64,
        max: f64,
    ) -> PairedTarget {
        let m = median(&ratios);
        PairedTarget {
            name,
            goal,
            level,
            pass: m.is_finite() && m >= min && m <= max,
            ratios,
        }
    }
}

#[derive(Default)]
pub struct Results {
    pub figures: Vec<Figure>,
    pub targets: Vec<Target>,
    /// The gateway beside HAProxy and its own paths, at both log levels.
    pub paired: Vec<PairedTarget>,
    /// /proc/loadavg at named moments: the machine is shared.
    pub load: Vec<(String, String)>,
    /// Measurements that could not produce their number.
    pub failures: Vec<String>,
}

impl Results {
    pub fn figure(&mut self, name: impl Into<String>, unit: &'static str, runs: Vec<f64>) -> f64 {
        let figure = Figure {
            name: name.into(),
            unit,
            runs,
        };
        let median = figure.median();
        self.figures.push(figure);
        median
    }

    /// A figure of one field of each run.
    pub fn figure_of<T>(
        &mut self,
        name: impl Into<String>,
        unit: &'static str,
        runs: &[T],
        value: impl Fn(&T) -> f64,
    ) -> f64 {
        self.figure(name, unit, runs.iter().map(value).collect())
    }

    /// A target met when `ratio` is within [min, max].
    pub fn ratio_target(&mut self, name: &'static str, goal: &'static str, ratio: f64, min: f64, max: f64) {
        self.targets.push(Target {
            name,
            goal,
            measured: format!("{ratio:.3}"),
            pass: ratio.is_finite() && ratio >= min && ratio <= max,
        });
    }

    /// Notes the load average (1, 5 and 15 min) now, as `when`.
    pub fn sample_load(&mut self, when: impl Into<String>) {
        let load = std::fs::read_to_string("/proc/loadavg").map_or_else(
            |e| format!("unreadable: {e}"),
            |s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
        );
        self.load.push((when.into(), load));
    }

    pub fn table(&self) -> String {
        let mut out = String::new();
        if !self.load.is_empty() {
            out.push_str(
                "The machine is shared (other sessions' builds and tests may run beside the suite); its load average (1, 5, 15 min, /proc/loadavg) on 2 cores:\n\n",
            );
            for (when, load) in &self.load {
                let _ = writeln!(out, "- {when}: {load}");
            }
            out.push('\n');
        }
        out.push_str("| figure | median | unit | runs |\n|---|---:|---|---|\n");
        for f in &self.figures {
            let runs: Vec<String> = f.runs.iter().map(|v| format_value(*v)).collect();
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                f.name,
                format_value(f.median()),
                f.unit,
                runs.join(" ")
            );
        }
        out.push_str("\n| target | goal | measured | |\n|---|---|---:|---|\n");
        for t in &self.targets {
            let verdict = if t.pass { "PASS" } else { "MISS" };
            let _ = writeln!(out, "| {} | {} | {} | {verdict} |", t.name, t.goal, t.measured);
        }
        if !self.paired.is_empty() {
            out.push_str(
                "\n## Targets: the gateway beside HAProxy, at both log levels\n\nEach ratio is taken per run (both sides measured in the same run); the median of the runs' ratios is judged, the spread is their min–max.\n\n| target | goal | gateway log level | ratio | spread (min–max) | runs | |\n|---|---|---|---:|---|---|---|\n",
            );
            for t in &self.paired {
                let verdict = if t.pass { "met" } else { "missed" };
                let (min, max) = t.ratios.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), r| {
                    (lo.min(*r), hi.max(*r))
                });
                let runs: Vec<String> = t.ratios.iter().map(|r| format!("{r:.3}")).collect();
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {:.3} | {min:.3}–{max:.3} | {} | {verdict} |",
                    t.name,
                    t.goal,
                    t.level,
                    median(&t.ratios),
                    runs.join(" ")
                );
            }
        }
        for failure in &self.failures {
            let _ = writeln!(out, "\nFAILED: {failure}");
        }
        out
    }
}

fn format_value(v: f64) -> String {
    match v.abs() {
        a if a >= 1000.0 => format!("{v:.0}"),
        a if a >= 10.0 => format!("{v:.1}"),
        _ => format!("{v:.3}"),
    }
}

/// Date, machine and versions, so a results file says what it was measured on.
pub(crate) fn environment() -> String {
    let first_line = |program: &str, args: &[&str]| -> String {
        Command::new(program)
            .args(args)
            .output()
            .ok()
            .map(|o| {
                // nginx -v and wrk -v write to stderr.
                let text = [o.stdout, o.stderr].concat();
                String::from_utf8_lossy(&text)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_owned()
            })
            .unwrap_or_else(|| "not found".into())
    };
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let rows = [
        ("date", first_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"])),
        ("cores", cores.to_string()),
        ("CPU", cpu),
        ("kernel", first_line("uname", &["-r"])),
        ("rustc", first_line("rustc", &["--version"])),
        ("nginx", first_line("nginx", &["-v"])),
        ("h2load", first_line("h2load", &["--version"])),
        ("wrk", first_line("wrk", &["-v"])),
        ("haproxy", first_line("haproxy", &["-v"])),
        ("envoy", super::envoy::version()),
        ("git commit", first_line("git", &["rev-parse", "--short", "HEAD"])),
        (
            "profile",
            env!("CARGO_BIN_EXE_greet-gateway")
                .rsplit('/')
                .nth(1)
                .unwrap_or("")
                .to_owned(),
        ),
    ];
    rows.iter().map(|(k, v)| format!("- {k}: {v}\n")).collect()
}

/// Hand-written notes below this line in bench/results.md (profiles, the
/// before/after of a fix) survive the suite rewriting the file.
pub(crate) const NOTES_MARKER: &str = "<!-- Notes below this line are kept when the suite rewrites the file. -->";

pub(crate) fn write_file(path: &std::path::Path, env: &str, table: &str, scale: &str) -> anyhow::Result<()> {
    let notes = std::fs::read_to_string(path)
        .ok()
        .and_then(|old| old.find(NOTES_MARKER).map(|i| old[i..].to_owned()))
        .unwrap_or_else(|| format!("{NOTES_MARKER}\n"));
    let text = format!(
        "# Benchmark results (`bench/run`)\n\nWritten by the suite (benches/suite/); every figure is the median of the runs listed, all from one invocation.\n\n{env}- counts: {scale}\n\n{table}\n{notes}"
    );
    std::fs::write(path, text)?;
    Ok(())
}
