//! The benchmark suite of issue 8: `bench/run` (or `cargo bench --bench
//! suite`, `--smoke` for the short form). Every figure of one invocation
//! side by side, each the median of RUNS runs, so that ratios hold on a
//! noisy machine. Servers and the gateway are separate processes (the
//! binaries of the same profile as this suite), so each one's CPU is its own.

mod direct_grpc;
mod gateway_cpu;
mod greet_top_cpu;
mod loadgen;
mod nginx;
mod procs;
mod rebalance;
mod rest;
mod results;
mod rss;
mod subscribers;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use greet_top::common::Mode;
use results::Results;

/// How much of everything one invocation does.
struct Scale {
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
        }
    }

    fn describe(&self) -> String {
        format!(
            "{} runs; h2load {} requests; wrk {:?}; gateway CPU {:?} per row; greet-top {:?} per phase; rebalance {} changes; RSS after {} and {} requests, {} runs",
            self.runs,
            self.h2load_requests,
            self.wrk_time,
            self.cpu_time,
            self.greet_top_time,
            self.rebalance_reps,
            self.rss_first,
            self.rss_total,
            self.rss_runs
        )
    }
}

/// The suite's temp dir (nginx config and logs, request body, wrk script), removed at exit.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Records a measurement that could not produce its number.
fn failed(results: &mut Results, what: &str, error: anyhow::Error) {
    eprintln!("FAILED {what}: {error:#}");
    results.failures.push(format!("{what}: {error:#}"));
}

#[tokio::main]
async fn main() {
    let scale = if std::env::args().any(|a| a == "--smoke") {
        Scale::smoke()
    } else {
        Scale::full()
    };
    let started = Instant::now();
    let mut results = Results::default();
    if let Err(e) = measure_all(&scale, &mut results).await {
        failed(&mut results, "setup", e);
    }
    let env = results::environment();
    let table = results.table();
    println!(
        "\n{env}- counts: {}\n- took {:.0?}\n\n{table}",
        scale.describe(),
        started.elapsed()
    );
    if !scale.smoke {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/results.md");
        match results::write_file(&path, &env, &table, &scale.describe()) {
            Ok(()) => println!("written to {}", path.display()),
            Err(e) => failed(&mut results, "writing bench/results.md", e),
        }
    }
    if !results.failures.is_empty() {
        std::process::exit(1);
    }
}

async fn measure_all(scale: &Scale, results: &mut Results) -> anyhow::Result<()> {
    let dir = TempDir(std::env::temp_dir().join(format!("greet-top-bench-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0)?;
    let body = dir.0.join("greet.grpc");
    std::fs::write(&body, loadgen::grpc_request_body())?;
    let script = loadgen::write_wrk_script(&dir.0)?;
    let servers = procs::start_servers(3, 71).await?;
    eprintln!("suite: {}", scale.describe());

    throughput(scale, results, &servers, &dir.0, &body, &script).await;
    gateway_cpu(scale, results, &servers, &script).await;
    greet_top_cpu(scale, results, &servers, &script).await;
    rebalance(scale, results).await;
    rss_and_totals(scale, results, &servers).await;
    Ok(())
}

/// Items 1-3, interleaved run by run so that their ratios compare like with like.
async fn throughput(
    scale: &Scale,
    results: &mut Results,
    servers: &procs::Servers,
    dir: &Path,
    body: &Path,
    script: &Path,
) {
    let setup = async {
        let direct = servers.addrs[0];
        direct_grpc::check_grpc_ok(&direct.to_string(), 3).await?;
        let nginx = nginx::start(dir, &servers.addrs).await?;
        let pods = direct_grpc::check_grpc_ok(&nginx.addr.to_string(), 6).await?;
        anyhow::ensure!(
            pods.iter().collect::<std::collections::BTreeSet<_>>().len() == 3,
            "nginx did not round-robin: {pods:?}"
        );
        let gateway = procs::start_gateway(servers, Mode::Balanced).await?;
        anyhow::Ok((direct, nginx, gateway))
    };
    let (direct, mut nginx, gateway) = match setup.await {
        Ok(s) => s,
        Err(e) => return failed(results, "throughput setup", e),
    };
    let (mut grpc, mut proxied, mut sticky, mut balanced) = (vec![], vec![], vec![], vec![]);
    for run in 0..scale.runs {
        eprintln!("throughput run {}", run + 1);
        let one = async {
            grpc.push(direct_grpc::run(direct, scale.h2load_requests, body).await?);
            proxied.push(direct_grpc::run(nginx.addr, scale.h2load_requests, body).await?);
            nginx.child.check_running()?;
            sticky.push(rest::run(&gateway, Mode::Sticky, scale.wrk_time, script).await?);
            balanced.push(rest::run(&gateway, Mode::Balanced, scale.wrk_time, script).await?);
            anyhow::Ok(())
        };
        if let Err(e) = one.await {
            return failed(results, "throughput", e);
        }
    }
    let grpc = results.figure("1. direct gRPC, h2load -c16 -m10, one greet-server", "req/s", grpc);
    results.figure("2. nginx grpc_pass round robin over 3 greet-servers", "req/s", proxied);
    let rate = |v: &[loadgen::WrkResult]| v.iter().map(|r| r.rate).collect::<Vec<_>>();
    let s = results.figure("3. gateway REST sticky, wrk -c32 -t2", "req/s", rate(&sticky));
    results.figure(
        "3. gateway REST sticky p50",
        "ms",
        sticky.iter().map(|r| r.p50_ms).collect(),
    );
    results.figure(
        "3. gateway REST sticky p99",
        "ms",
        sticky.iter().map(|r| r.p99_ms).collect(),
    );
    let b = results.figure("3. gateway REST balanced, wrk -c32 -t2", "req/s", rate(&balanced));
    results.figure(
        "3. gateway REST balanced p50",
        "ms",
        balanced.iter().map(|r| r.p50_ms).collect(),
    );
    results.figure(
        "3. gateway REST balanced p99",
        "ms",
        balanced.iter().map(|r| r.p99_ms).collect(),
    );
    results.ratio_target("balanced / sticky throughput", ">= 0.95", b / s, 0.95, f64::INFINITY);
    results.ratio_target(
        "gateway REST (balanced) / direct gRPC",
        ">= 0.5",
        b / grpc,
        0.5,
        f64::INFINITY,
    );
}

/// Item 4; rows interleaved within each run.
async fn gateway_cpu(scale: &Scale, results: &mut Results, servers: &procs::Servers, script: &Path) {
    let rows = gateway_cpu::ROWS;
    let (mut cpu, mut rate) = (vec![vec![]; rows.len()], vec![vec![]; rows.len()]);
    for run in 0..scale.runs {
        eprintln!("gateway CPU run {}", run + 1);
        for (i, row) in rows.iter().enumerate() {
            match gateway_cpu::run(servers, *row, scale.cpu_time, script).await {
                Ok((c, r)) => {
                    cpu[i].push(c);
                    rate[i].push(r);
                }
                Err(e) => return failed(results, &format!("gateway CPU, {}", row.label()), e),
            }
        }
    }
    let mut medians = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        medians.push(results.figure(
            format!("4. gateway CPU per request, {}", row.label()),
            "µs",
            cpu[i].clone(),
        ));
        results.figure(
            format!("4. gateway req/s (wrk), {}", row.label()),
            "req/s",
            rate[i].clone(),
        );
    }
    results.ratio_target(
        "10 aggregated subscribers: gateway CPU/request vs none",
        "<= 1.05",
        medians[2] / medians[0],
        0.0,
        1.05,
    );
}

/// Item 5.
async fn greet_top_cpu(scale: &Scale, results: &mut Results, servers: &procs::Servers, script: &Path) {
    let mut runs = Vec::new();
    for run in 0..scale.runs {
        eprintln!("greet-top CPU run {}", run + 1);
        match greet_top_cpu::run(servers, 1000, scale.greet_top_time, script).await {
            Ok(r) => runs.push(r),
            Err(e) => return failed(results, "greet-top CPU", e),
        }
    }
    let paced = results.figure(
        "5. greet-top CPU at ~1,000 req/s",
        "ms/s",
        runs.iter().map(|r| r.paced_cpu).collect(),
    );
    results.figure(
        "5. paced rate reached",
        "req/s",
        runs.iter().map(|r| r.paced_rate).collect(),
    );
    let max = results.figure(
        "5. greet-top CPU at full speed (wrk)",
        "ms/s",
        runs.iter().map(|r| r.max_cpu).collect(),
    );
    results.figure("5. full-speed rate", "req/s", runs.iter().map(|r| r.max_rate).collect());
    results.ratio_target(
        "greet-top CPU, full speed / 1,000 req/s",
        "<= 1.5",
        max / paced,
        0.0,
        1.5,
    );
}

/// Item 6.
async fn rebalance(scale: &Scale, results: &mut Results) {
    eprintln!("rebalance");
    let mut worst = 0f64;
    match rebalance::static_registry(scale.rebalance_reps).await {
        Ok(ms) => {
            worst = worst.max(results.figure(
                "6a. rebalance, LocalCluster registry: pod added to first request",
                "ms",
                ms,
            ))
        }
        Err(e) => failed(results, "rebalance (static)", e),
    }
    match rebalance::fake_api_server(scale.rebalance_reps).await {
        Ok(ms) => {
            worst = worst.max(results.figure(
                "6b. rebalance, EndpointSlice via fake API server to first request",
                "ms",
                ms,
            ))
        }
        Err(e) => failed(results, "rebalance (fake API server)", e),
    }
    results.targets.push(results::Target {
        name: "rebalance latency (median, worse of a and b)",
        goal: "< 100 ms",
        measured: format!("{worst:.1} ms"),
        pass: worst < 100.0,
    });
}

/// Items 7 and 8.
async fn rss_and_totals(scale: &Scale, results: &mut Results, servers: &procs::Servers) {
    let mut runs = Vec::new();
    for run in 0..scale.rss_runs {
        eprintln!("RSS and totals run {}", run + 1);
        match rss::run(servers, scale.rss_first, scale.rss_total).await {
            Ok(r) => runs.push(r),
            Err(e) => {
                results.targets.push(results::Target {
                    name: "exact totals, 10 aggregated + 1 raw subscriber",
                    goal: "equal",
                    measured: "differ or failed".into(),
                    pass: false,
                });
                return failed(results, "RSS and exact totals", e);
            }
        }
    }
    let first = results.figure(
        format!("7. gateway VmRSS after {} requests", scale.rss_first),
        "KiB",
        runs.iter().map(|r| r.rss_first_kib).collect(),
    );
    let total = results.figure(
        format!("7. gateway VmRSS after {} requests", scale.rss_total),
        "KiB",
        runs.iter().map(|r| r.rss_total_kib).collect(),
    );
    results.figure(
        "7. rate with 10 aggregated + 1 raw subscriber (Rust clients)",
        "req/s",
        runs.iter().map(|r| r.rate).collect(),
    );
    results.ratio_target(
        "gateway RSS, after 1 M / after 100 k",
        "0.9 ..= 1.1",
        total / first,
        0.9,
        1.1,
    );
    results.targets.push(results::Target {
        name: "exact totals, 10 aggregated + 1 raw subscriber",
        goal: "equal",
        measured: format!("equal in {} of {} runs", runs.len(), scale.rss_runs),
        pass: true,
    });
}
