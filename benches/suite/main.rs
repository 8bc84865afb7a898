//! The benchmark suite: `bench/run` (or `cargo bench --bench
//! suite`, `--smoke` for the short form). Every figure of one invocation
//! side by side, each the median of RUNS runs, so that ratios hold on a
//! noisy machine. Servers and the gateway are separate processes (the
//! binaries of the same profile as this suite), so each one's CPU is its own.
//! `--soak` runs the soak instead (soak.rs, `bench/soak`).

mod attack_memory;
mod attacks;
mod direct_grpc;
mod envoy;
mod gateway_cpu;
mod greet_top_cpu;
mod haproxy;
mod loadgen;
mod measure;
mod nginx;
mod peers;
mod pod_metrics;
mod procs;
mod rebalance;
mod recording;
mod rest;
mod results;
mod rss;
mod soak;
mod soak_report;
mod subscribers;
mod throughput;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use results::Results;

/// How much of everything one invocation does.
pub struct Scale {
    smoke: bool,
    runs: usize,
    h2load_requests: usize,
    wrk_time: Duration,
    cpu_time: Duration,
    greet_top_time: Duration,
    rebalance_reps: usize,
    rss_first: usize,
    rss_total: usize,
    rss_runs: usize,
    /// Item 9a: pods greet-top scrapes through the pod proxy, and for how long.
    metrics_pods: usize,
    metrics_time: Duration,
    /// Item 9b: back-to-back scrapes that give one scrape's CPU.
    metrics_idle_scrapes: usize,
}

impl Scale {
    fn full() -> Scale {
        Scale {
            smoke: false,
            runs: 3,
            h2load_requests: 200_000,
            wrk_time: Duration::from_secs(5),
            cpu_time: Duration::from_secs(4),
            greet_top_time: Duration::from_secs(8),
            rebalance_reps: 10,
            rss_first: 100_000,
            rss_total: 1_000_000,
            rss_runs: 3,
            metrics_pods: 200,
            metrics_time: Duration::from_secs(10),
            metrics_idle_scrapes: 2000,
        }
    }

    /// Same code path, tiny counts, one run each: it proves every
    /// measurement still produces its number.
    fn smoke() -> Scale {
        Scale {
            smoke: true,
            runs: 1,
            h2load_requests: 2_000,
            wrk_time: Duration::from_secs(1),
            cpu_time: Duration::from_secs(1),
            greet_top_time: Duration::from_secs(2),
            rebalance_reps: 2,
            rss_first: 1_000,
            rss_total: 10_000,
            rss_runs: 1,
            metrics_pods: 10,
            metrics_time: Duration::from_secs(2),
            metrics_idle_scrapes: 10,
        }
    }

    fn describe(&self) -> String {
        format!(
            "{} runs; h2load {} requests; wrk {:?}; gateway CPU {:?} per row; greet-top {:?} per phase; rebalance {} changes; RSS after {} and {} requests, {} runs; {} pods' metrics for {:?}; {} idle scrapes",
            self.runs,
            self.h2load_requests,
            self.wrk_time,
            self.cpu_time,
            self.greet_top_time,
            self.rebalance_reps,
            self.rss_first,
            self.rss_total,
            self.rss_runs,
            self.metrics_pods,
            self.metrics_time,
            self.metrics_idle_scrapes
        )
    }
}

/// The suite's temp dir (the peers' configs and logs, the gateways' logs,
/// request body, wrk script), removed at exit.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Records a measurement that could not produce its number.
pub fn failed(results: &mut Results, what: &str, error: anyhow::Error) {
    eprintln!("FAILED {what}: {error:#}");
    results.failures.push(format!("{what}: {error:#}"));
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--soak") {
        std::process::exit(soak::main(&args).await);
    }
    if args.iter().any(|a| a == "--attacks") {
        std::process::exit(attacks::main(&args).await);
    }
    if args.iter().any(|a| a == "--attack-memory") {
        std::process::exit(attack_memory::main(&args).await);
    }
    if args.iter().any(|a| a == "--recording") {
        std::process::exit(recording::main(&args).await);
    }
    let scale = if std::env::args().any(|a| a == "--smoke") {
        Scale::smoke()
    } else {
        Scale::full()
    };
    // Items 1, 2 and 3 only (direct, nginx, the ingress, REST), printed: the
    // results file keeps the last whole run.
    let throughput_only = args.iter().any(|a| a == "--throughput");
    // Item 9 only (the pods' own metrics), printed.
    let pod_metrics_only = args.iter().any(|a| a == "--pod-metrics");
    let started = Instant::now();
    let mut results = Results::default();
    results.sample_load("at the start");
    if let Err(e) = measure_all(&scale, &mut results, throughput_only, pod_metrics_only).await {
        failed(&mut results, "setup", e);
    }
    results.sample_load("at the end");
    let env = results::environment();
    let table = results.table();
    println!(
        "\n{env}- counts: {}\n- took {:.0?}\n\n{table}",
        scale.describe(),
        started.elapsed()
    );
    if !scale.smoke && !throughput_only && !pod_metrics_only {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/results.md");
        match results::write_file(&path, &env, &table, &scale.describe()) {
            Ok(()) => println!("written to {}", path.display()),
            Err(e) => failed(&mut results, "writing bench/results.md", e),
        }
    }
    if !results.failures.is_empty() {
        std::process::exit(1);
    }
}

async fn measure_all(
    scale: &Scale,
    results: &mut Results,
    throughput_only: bool,
    pod_metrics_only: bool,
) -> anyhow::Result<()> {
    let dir = TempDir(std::env::temp_dir().join(format!("greet-top-bench-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0)?;
    let body = dir.0.join("greet.grpc");
    std::fs::write(&body, loadgen::grpc_request_body())?;
    let script = loadgen::write_wrk_script(&dir.0)?;
    if pod_metrics_only {
        pod_metrics::measure(scale, results, &dir.0, &body).await;
        return Ok(());
    }
    let servers = procs::start_servers(3, 71).await?;
    eprintln!("suite: {}", scale.describe());

    throughput::measure(scale, results, &servers, &dir.0, &body, &script).await;
    if throughput_only {
        return Ok(());
    }
    measure::gateway_cpu(scale, results, &servers, &script).await;
    measure::greet_top_cpu(scale, results, &servers, &script).await;
    measure::rebalance(scale, results).await;
    measure::rss_and_totals(scale, results, &servers).await;
    pod_metrics::measure(scale, results, &dir.0, &body).await;
    recording::measure(scale, results, &dir.0).await;
    Ok(())
}
