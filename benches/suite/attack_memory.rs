//! `--attack-memory`: does the gateway's memory come back after an attack?
//! A release gateway over the suite's greet-servers is warmed with normal
//! calls, then attacked with the two attacks that grow it most (held
//! streams: 100 connections × 200 calls, each with 10 body bytes and no end,
//! held 10 s, then closed; the zero-window stall: 24 calls echoing 1 MiB,
//! until the gateway resets them); its RSS is read warm, at its peak, and
//! 10, 30 and 60 s after the attack ended; each greet-server's too, at the
//! same moments. Then the CPU each variant spends per call, from alternating
//! h2load runs of the same workload.
//!
//! `--memory-only` skips the CPU runs, `--cpu-only` the memory;
//! `--server-cpu` measures only the greet-servers' CPU per call.
//!
//! The variants: the gateway as built, plus those in `GREET_ATTACK_VARIANTS`,
//! one per line, `label=binary[,KEY=VALUE…]` (`-` for the binary as built;
//! KEY=VALUE set in its environment, e.g. `MIMALLOC_PURGE_DELAY=0` or an
//! `LD_PRELOAD`), so another allocator's build is measured the same way.
//! `GREET_SERVER_VARIANTS`, in the same form, does so for greet-server: the
//! three pods of a run are three variants, rotated from run to run
//! (`--server-rounds N` runs, by default one per server variant), so each
//! is measured under the same attack as the others, in every position.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};
use greet_demo::rest_client::RestClient;
use greet_tests::h2_attacks::{self, Held};
use tokio::time::Instant;

use super::loadgen;
use super::procs::{Child, Servers, cpu_time, free_port, rss_kib, start_servers, start_servers_as};

/// A gateway build and the environment it runs with.
#[derive(Clone, Debug)]
pub(crate) struct Variant {
    pub label: String,
    pub binary: PathBuf,
    pub env: Vec<(String, String)>,
}

/// The gateway as built, then `GREET_ATTACK_VARIANTS`'s.
pub(crate) fn variants() -> anyhow::Result<Vec<Variant>> {
    parse_variants("GREET_ATTACK_VARIANTS", super::procs::binary("greet-gateway"))
}

/// greet-server as built, then `GREET_SERVER_VARIANTS`'s.
fn server_variants() -> anyhow::Result<Vec<Variant>> {
    parse_variants("GREET_SERVER_VARIANTS", super::procs::binary("greet-server"))
}

/// `built` as built, then a variant per line of `var`.
fn parse_variants(var: &str, built: PathBuf) -> anyhow::Result<Vec<Variant>> {
    let mut all = vec![Variant {
        label: "as built".into(),
        binary: built.clone(),
        env: Vec::new(),
    }];
    for line in std::env::var(var).unwrap_or_default().lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let (label, rest) = line
            .split_once('=')
            .with_context(|| format!("{var} line {line:?} is not label=binary[,KEY=VALUE…]"))?;
        let mut parts = rest.split(',');
        let binary = match parts.next().unwrap_or("-") {
            "-" => built.clone(),
            path => PathBuf::from(path),
        };
        let env = parts
            .map(|kv| kv.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
            .collect::<Option<Vec<_>>>()
            .with_context(|| format!("{var} line {line:?}: an option is not KEY=VALUE"))?;
        all.push(Variant {
            label: label.to_owned(),
            binary,
            env,
        });
    }
    Ok(all)
}

/// A gateway process, balanced over `servers`; killed on drop.
pub(crate) struct AttackedGateway {
    pub child: Child,
    pub grpc: SocketAddr,
}

pub(crate) async fn start_gateway(variant: &Variant, servers: &[SocketAddr]) -> anyhow::Result<AttackedGateway> {
    let port = || free_port(Ipv4Addr::LOCALHOST).map(|p| p.to_string());
    let (rest, observe, grpc) = (port()?, port()?, port()?);
    let endpoints: Vec<String> = servers.iter().map(ToString::to_string).collect();
    let mut command = Command::new(&variant.binary);
    command
        .args(["--bind", "127.0.0.1", "--discovery", "static", "--mode", "balanced"])
        .args(["--port", &rest, "--observe-port", &observe, "--grpc-port", &grpc])
        .args(["--grpc-server-host", &servers[0].ip().to_string()])
        .args(["--grpc-server-port", &servers[0].port().to_string()])
        .args(["--endpoints", &endpoints.join(",")])
        .env("RUST_LOG", "error")
        .envs(variant.env.iter().map(|(k, v)| (k, v)));
    let child = Child::spawn("greet-gateway", &mut command)?;
    let rest = RestClient::new(format!("http://127.0.0.1:{rest}"));
    let started = Instant::now();
    while !rest.greet("Warm", "Up").await.is_ok_and(|r| r.status == 200) {
        if started.elapsed() > Duration::from_secs(10) {
            bail!("{} did not answer POST /greet within 10 s", variant.binary.display());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(AttackedGateway {
        child,
        grpc: SocketAddr::from((Ipv4Addr::LOCALHOST, grpc.parse::<u16>()?)),
    })
}

/// The highest RSS of `pid` (KiB) while it runs, sampled every 50 ms.
pub(crate) struct PeakRss {
    peak: std::sync::Arc<std::sync::atomic::AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl PeakRss {
    pub(crate) fn start(pid: u32) -> PeakRss {
        let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(rss_kib(pid).unwrap_or(0)));
        let seen = std::sync::Arc::clone(&peak);
        let task = tokio::spawn(async move {
            while let Ok(now) = rss_kib(pid) {
                seen.fetch_max(now, std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        PeakRss { peak, task }
    }

    pub(crate) fn stop(self) -> u64 {
        self.task.abort();
        self.peak.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// One variant's memory: warm, peak, 10/30/60 s after the attack (MB).
struct MemoryRow {
    label: String,
    warm: f64,
    peak: f64,
    after: [f64; 3],
}

const AFTER: [u64; 3] = [10, 30, 60];

fn mb(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Held streams then the zero-window stall on `addr`; returns when every
/// attacking connection is closed.
pub(crate) async fn grow(addr: SocketAddr) -> anyhow::Result<()> {
    let mut held = Held::open(addr, 100, 200, 10).await?;
    tokio::time::sleep(Duration::from_secs(10)).await;
    held.update();
    eprintln!(
        "  held streams: {} of 20,000 refused or reset; first answer: {:?}",
        held.resets,
        held.first.as_ref().map(ToString::to_string)
    );
    drop(held);
    let answer = h2_attacks::zero_window(addr, 24, 1024 * 1024, Duration::from_secs(20)).await?;
    eprintln!("  zero window: {answer}");
    Ok(())
}

/// One run: fresh greet-servers (pod `i` runs `pods[i]`) behind a fresh
/// gateway, attacked; the gateway's row, then each pod's.
async fn memory(variant: &Variant, pods: &[&Variant], body: &Path) -> anyhow::Result<(MemoryRow, Vec<MemoryRow>)> {
    let n = u8::try_from(pods.len())?;
    let servers = start_servers_as(n, 71, |i| (pods[i].binary.clone(), pods[i].env.clone())).await?;
    let gateway = start_gateway(variant, &servers.addrs).await?;
    let mut pids = vec![gateway.child.pid()];
    pids.extend(servers.pids());
    // Warm: every pod's connection made, the buffers of normal load allocated.
    loadgen::h2load(&gateway.grpc.to_string(), 20_000, body).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let warm = pids
        .iter()
        .map(|pid| rss_kib(*pid))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let peaks: Vec<PeakRss> = pids.iter().map(|pid| PeakRss::start(*pid)).collect();
    grow(gateway.grpc).await?;
    let ended = Instant::now();
    let peaks: Vec<u64> = peaks.into_iter().map(PeakRss::stop).collect();
    let mut after = vec![[0.0; 3]; pids.len()];
    for (k, secs) in AFTER.iter().enumerate() {
        tokio::time::sleep_until(ended + Duration::from_secs(*secs)).await;
        for (pid, row) in pids.iter().zip(&mut after) {
            row[k] = mb(rss_kib(*pid)?);
        }
    }
    let labels = std::iter::once(variant).chain(pods.iter().copied());
    let mut rows = labels
        .zip(warm)
        .zip(peaks)
        .zip(after)
        .map(|(((v, warm), peak), after)| MemoryRow {
            label: v.label.clone(),
            warm: mb(warm),
            peak: mb(peak),
            after,
        });
    let gateway_row = rows.next().context("no gateway row")?;
    Ok((gateway_row, rows.collect()))
}

/// The pods' variants in run `run`: pod `i` runs variant `(run + i) % k`,
/// so that over `k` runs each variant takes every position.
fn pods_of_run(servers: &[Variant], run: usize) -> Vec<&Variant> {
    (0..3).map(|i| &servers[(run + i) % servers.len()]).collect()
}

/// Per server variant, every run's 60 s ÷ warm: the median, the spread and
/// the verdict against 2×.
fn server_summary(servers: &[Variant], rows: &[(usize, usize, MemoryRow)]) -> String {
    let mut out = String::from(
        "\n| greet-server (release) | pods measured | 60 s ÷ warm, median | spread (min–max) | within 2× |\n|---|---|---|---|---|\n",
    );
    for variant in servers {
        let mut ratios: Vec<f64> = rows
            .iter()
            .filter(|(_, _, row)| row.label == variant.label)
            .map(|(_, _, row)| row.after[2] / row.warm)
            .collect();
        if ratios.is_empty() {
            continue;
        }
        ratios.sort_by(f64::total_cmp);
        let worst = ratios[ratios.len() - 1];
        out += &format!(
            "| {} | {} | {:.1}× | {:.1}–{:.1}× | {} |\n",
            variant.label,
            ratios.len(),
            ratios[ratios.len() / 2],
            ratios[0],
            worst,
            if worst <= 2.0 { "yes" } else { "no" }
        );
    }
    out
}

/// greet-server CPU µs per call, h2load straight at each variant's server,
/// the variants alternating, `rounds` runs of `requests` calls each.
async fn server_cpu(servers: &[Variant], body: &Path, rounds: usize, requests: usize) -> anyhow::Result<String> {
    let n = u8::try_from(servers.len())?;
    let pods = start_servers_as(n, 81, |i| (servers[i].binary.clone(), servers[i].env.clone())).await?;
    let targets: Vec<_> = pods.addrs.iter().copied().zip(pods.pids()).collect();
    let runs = alternating_cpu(&targets, body, rounds, requests).await?;
    let heading = format!(
        "| greet-server (release) | CPU µs per call, median of {rounds} alternating h2load runs ({requests} calls, -c16 -m10, no gateway) | spread (min–max) |"
    );
    Ok(cpu_table(&heading, servers, runs, 2))
}

/// CPU µs per call of each target (an address and the process serving it),
/// after a warm-up: `rounds` h2load runs of `requests` calls each, the
/// targets alternating; every run's figure, per target.
async fn alternating_cpu(
    targets: &[(SocketAddr, u32)],
    body: &Path,
    rounds: usize,
    requests: usize,
) -> anyhow::Result<Vec<Vec<f64>>> {
    for (addr, _) in targets {
        loadgen::h2load(&addr.to_string(), requests / 10, body).await?;
    }
    let mut runs = vec![Vec::new(); targets.len()];
    for _ in 0..rounds {
        for ((addr, pid), runs) in targets.iter().zip(&mut runs) {
            let before = cpu_time(*pid)?;
            loadgen::h2load(&addr.to_string(), requests, body).await?;
            let used = cpu_time(*pid)? - before;
            runs.push(used.as_secs_f64() * 1e6 / requests as f64);
        }
    }
    Ok(runs)
}

/// A table of each variant's median and spread of `runs`, under `heading`.
fn cpu_table(heading: &str, variants: &[Variant], runs: Vec<Vec<f64>>, decimals: usize) -> String {
    let mut out = format!("{heading}\n|---|---|---|\n");
    for (variant, mut runs) in variants.iter().zip(runs) {
        runs.sort_by(f64::total_cmp);
        out += &format!(
            "| {} | {:.decimals$} | {:.decimals$}–{:.decimals$} |\n",
            variant.label,
            runs[runs.len() / 2],
            runs[0],
            runs[runs.len() - 1]
        );
    }
    out
}

/// Gateway CPU µs per call over `rounds` alternating h2load runs of
/// `requests` calls each, per variant: every run's figure.
async fn cpu(
    variants: &[Variant],
    servers: &Servers,
    body: &Path,
    rounds: usize,
    requests: usize,
) -> anyhow::Result<Vec<Vec<f64>>> {
    let mut gateways = Vec::new();
    for variant in variants {
        gateways.push(start_gateway(variant, &servers.addrs).await?);
    }
    let targets: Vec<_> = gateways.iter().map(|g| (g.grpc, g.child.pid())).collect();
    alternating_cpu(&targets, body, rounds, requests).await
}

/// The item: memory per variant, then CPU per call; printed as tables.
pub(crate) async fn main(args: &[String]) -> i32 {
    let smoke = args.iter().any(|a| a == "--smoke");
    let only = |flag: &str| args.iter().any(|a| a == flag);
    let server_rounds = args
        .iter()
        .position(|a| a == "--server-rounds")
        .and_then(|i| args.get(i + 1)?.parse::<usize>().ok());
    let result = if only("--server-cpu") {
        run_server_cpu(smoke).await
    } else {
        run(smoke, only("--memory-only"), only("--cpu-only"), server_rounds).await
    };
    match result {
        Ok(tables) => {
            println!("{tables}");
            0
        }
        Err(e) => {
            eprintln!("FAILED attack memory: {e:#}");
            1
        }
    }
}

fn request_body() -> anyhow::Result<(PathBuf, PathBuf)> {
    let dir = std::env::temp_dir().join(format!("greet-top-attack-memory-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let body = dir.join("greet.grpc");
    std::fs::write(&body, loadgen::grpc_request_body())?;
    Ok((dir, body))
}

async fn run_server_cpu(smoke: bool) -> anyhow::Result<String> {
    let (dir, body) = request_body()?;
    let (rounds, requests) = if smoke { (1, 2_000) } else { (7, 100_000) };
    let out = server_cpu(&server_variants()?, &body, rounds, requests).await?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(out)
}

async fn run(smoke: bool, memory_only: bool, cpu_only: bool, server_rounds: Option<usize>) -> anyhow::Result<String> {
    let variants = variants()?;
    let servers_variants = server_variants()?;
    let (dir, body) = request_body()?;
    let mut out = String::from(
        "| gateway (release) | warm RSS | peak | 10 s after | 30 s after | 60 s after | 60 s ÷ warm |\n|---|---|---|---|---|---|---|\n",
    );
    let runs = if cpu_only {
        0
    } else {
        variants.len().max(server_rounds.unwrap_or(servers_variants.len()))
    };
    let mut pod_rows = Vec::new();
    for run in 0..runs {
        let variant = &variants[run % variants.len()];
        let pods = pods_of_run(&servers_variants, run);
        eprintln!("attack memory, run {}: {}", run + 1, variant.label);
        let (row, pods) = memory(variant, &pods, &body).await?;
        let [a10, a30, a60] = row.after;
        let line = format!(
            "| {} | {:.0} MB | {:.0} MB | {a10:.0} MB | {a30:.0} MB | {a60:.0} MB | {:.1}× |\n",
            row.label,
            row.warm,
            row.peak,
            a60 / row.warm
        );
        eprint!("{line}");
        out += &line;
        pod_rows.extend(pods.into_iter().enumerate().map(|(pod, row)| (run, pod, row)));
    }
    if runs > 0 {
        out += "\n| greet-server (release) | run | pod | warm RSS | peak | 10 s after | 30 s after | 60 s after | 60 s ÷ warm |\n|---|---|---|---|---|---|---|---|---|\n";
        for (run, pod, row) in &pod_rows {
            let [a10, a30, a60] = row.after;
            out += &format!(
                "| {} | {} | {pod} | {:.1} MB | {:.0} MB | {a10:.1} MB | {a30:.1} MB | {a60:.1} MB | {:.1}× |\n",
                row.label,
                run + 1,
                row.warm,
                row.peak,
                a60 / row.warm
            );
        }
        out += &server_summary(&servers_variants, &pod_rows);
    }
    if memory_only {
        let _ = std::fs::remove_dir_all(&dir);
        return Ok(out);
    }
    let servers = start_servers(3, 71).await?;
    let (rounds, requests) = if smoke { (1, 2_000) } else { (5, 100_000) };
    let runs = cpu(&variants, &servers, &body, rounds, requests).await?;
    let heading = format!(
        "\n| gateway (release) | CPU µs per call, median of {rounds} alternating h2load runs ({requests} calls, -c16 -m10) | spread (min–max) |"
    );
    out += &cpu_table(&heading, &variants, runs, 1);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(out)
}
