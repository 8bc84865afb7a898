//! Item 9: the pods' own metrics. (a) greet-top's CPU while it scrapes every
//! pod every 1 s through the API server's pods/proxy (the fake API server,
//! tests/fake-kube), the real binary drawing into a 100x30 pseudo-terminal,
//! and the load that puts on the API server; (b) a greet-server process's CPU
//! per request with its /metrics scraped every 1 s against none.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use fake_kube::{FakeKube, PodProxyStats, pod};
use greet_demo::{LocalPod, PodOptions};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio_util::sync::CancellationToken;

use super::greet_top_cpu::{self, Dashboard};
use super::procs::{Child, binary, cpu_time, free_port, wait_listening};
use super::results::{Results, Target};
use super::{Scale, failed};

const NS: &str = "default";
/// The pods' metrics port as greet-top is told it (`--metrics-port`); the
/// fake API server maps it to each pod's real listener.
const METRICS_PORT: u16 = 9090;
const SCRAPE_INTERVAL: Duration = Duration::from_secs(1);

/// Both parts, each its own figures; a part that cannot measure fails alone.
pub(crate) async fn measure(scale: &Scale, results: &mut Results, dir: &Path, body: &Path) {
    eprintln!("pods' own metrics: {} pods via the pod proxy", scale.metrics_pods);
    if let Err(e) = through_the_api_server(scale, results, dir).await {
        failed(results, "9a. greet-top scraping pods via the API server", e);
    }
    eprintln!("pods' own metrics: greet-server CPU with and without a scrape");
    if let Err(e) = scraped_server(scale, results, body).await {
        failed(results, "9b. greet-server CPU per request, scraped", e);
    }
}

/// One 9a run: greet-top's CPU and what the pod proxy passed, per second.
struct ProxyRun {
    cpu_percent: f64,
    requests: f64,
    forwarded: f64,
    bytes: f64,
}

/// 9a. In-process pods (a greet-server and its metrics listener each, idle
/// tasks in this process), all applied to one fake API server; a fresh
/// greet-top per run.
async fn through_the_api_server(scale: &Scale, results: &mut Results, dir: &Path) -> anyhow::Result<()> {
    let n = scale.metrics_pods;
    let kube = FakeKube::start().await;
    let options = PodOptions {
        metrics: true,
        ..PodOptions::default()
    };
    let mut pods = Vec::with_capacity(n);
    for i in 0..n {
        let name = format!("greetserver-bench-{i:03}");
        let local = LocalPod::start(&name, "127.0.0.1:0".parse()?, options).await?;
        let metrics = local
            .metrics_addr
            .context("a pod started with metrics has no metrics address")?;
        // Pod IPs of a cluster's own: the proxy, not greet-top, dials the pods.
        let ip = format!("10.1.{}.{}", i / 250, i % 250 + 1);
        kube.apply_pod(pod(NS, &name, &[("run", "greetserver")], &ip, true));
        kube.proxy_to(NS, &name, METRICS_PORT, metrics);
        pods.push(local);
    }
    let kubeconfig = kube.write_kubeconfig(dir, NS);
    let mut runs = Vec::new();
    for run in 0..scale.runs {
        eprintln!("pods' own metrics via the pod proxy, run {}", run + 1);
        runs.push(proxy_run(&kube, &kubeconfig, n, scale.metrics_time).await?);
    }
    let cpu = results.figure_of(
        format!("9a. greet-top CPU, {n} pods' metrics via the API server pod proxy every 1 s"),
        "% of a core",
        &runs,
        |r| r.cpu_percent,
    );
    results.figure_of("9a. API server pods/proxy requests", "req/s", &runs, |r| r.requests);
    results.figure_of("9a. scrapes answered (forwarded)", "/s", &runs, |r| r.forwarded);
    results.figure_of("9a. API server pods/proxy response bytes", "KiB/s", &runs, |r| {
        r.bytes / 1024.0
    });
    results.figure_of("9a. response bytes per scrape", "B", &runs, |r| r.bytes / r.forwarded);
    results.targets.push(Target {
        name: "greet-top CPU scraping every pod every 1 s via the pod proxy",
        goal: "<= 5 % of a core",
        measured: format!("{cpu:.2} % ({n} pods)"),
        pass: cpu <= 5.0,
    });
    drop(pods);
    Ok(())
}

async fn proxy_run(kube: &FakeKube, kubeconfig: &Path, n: usize, time: Duration) -> anyhow::Result<ProxyRun> {
    let start = kube.pod_proxy_stats();
    let mut dashboard = start_dashboard(kubeconfig)?;
    let pid = dashboard.child.process_id().context("greet-top has no pid")?;
    // Measured from its first whole round on, once it has listed the pods.
    let deadline = Instant::now() + Duration::from_secs(30);
    while kube.pod_proxy_stats().forwarded < start.forwarded + n as u64 {
        if let Some(status) = dashboard.child.try_wait()? {
            bail!("greet-top exited before scraping every pod: {status}");
        }
        if Instant::now() > deadline {
            bail!(
                "greet-top did not scrape all {n} pods through the pod proxy within 30 s: {:?} since it started",
                since(kube.pod_proxy_stats(), start)
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (cpu_before, stats_before, started) = (cpu_time(pid)?, kube.pod_proxy_stats(), Instant::now());
    tokio::time::sleep(time).await;
    let (cpu, stats, wall) = (
        cpu_time(pid)? - cpu_before,
        since(kube.pod_proxy_stats(), stats_before),
        started.elapsed().as_secs_f64(),
    );
    if let Some(status) = dashboard.child.try_wait()? {
        bail!("greet-top exited while scraping: {status}");
    }
    // Every pod every second: at least the whole rounds the window holds,
    // and every request answered (a round may straddle either edge).
    let rounds = (time.as_secs_f64() / SCRAPE_INTERVAL.as_secs_f64()).floor() as u64;
    let n = n as u64;
    ensure!(
        stats.forwarded >= n * rounds.saturating_sub(1).max(1) && stats.requests <= stats.forwarded + n,
        "greet-top did not scrape all {n} pods every {SCRAPE_INTERVAL:?}: {stats:?} in {wall:.2} s"
    );
    Ok(ProxyRun {
        cpu_percent: cpu.as_secs_f64() * 100.0 / wall,
        requests: stats.requests as f64 / wall,
        forwarded: stats.forwarded as f64 / wall,
        bytes: stats.bytes as f64 / wall,
    })
}

fn since(now: PodProxyStats, then: PodProxyStats) -> PodProxyStats {
    PodProxyStats {
        requests: now.requests - then.requests,
        forwarded: now.forwarded - then.forwarded,
        bytes: now.bytes - then.bytes,
    }
}

/// greet-top reading the pods' metrics through the cluster, in the same
/// pseudo-terminal as item 5's.
fn start_dashboard(kubeconfig: &Path) -> anyhow::Result<Dashboard> {
    greet_top_cpu::start_dashboard(|command| {
        command.args(["--source", "metrics", "--metrics-port", &METRICS_PORT.to_string()]);
        command.args(["--scrape-interval", "1s"]);
        command.env("KUBECONFIG", kubeconfig);
        command.env_remove("KUBERNETES_SERVICE_HOST");
        // Loopback only, whatever proxy the environment names.
        for proxy in ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"] {
            command.env_remove(proxy);
        }
    })
}

/// 9b. One greet-server process with its metrics listener; h2load as in
/// item 1, with a GET /metrics every 1 s throughout and without, the order
/// alternating run by run.
async fn scraped_server(scale: &Scale, results: &mut Results, body: &Path) -> anyhow::Result<()> {
    let ip = Ipv4Addr::new(127, 0, 0, 91);
    let addr = SocketAddr::from((ip, free_port(ip)?));
    let metrics = SocketAddr::from((ip, free_port(ip)?));
    let server = Child::spawn(
        "greet-server (metrics)",
        Command::new(binary("greet-server"))
            .args(["--listen", &addr.to_string()])
            .args(["--metrics-port", &metrics.port().to_string()])
            .env("POD_NAME", "bench-metrics-pod")
            .env("RUST_LOG", "warn"),
    )?;
    wait_listening(addr, "greet-server").await?;
    wait_listening(metrics, "greet-server's metrics listener").await?;
    super::direct_grpc::check_grpc_ok(&addr.to_string(), 3).await?;
    let pid = server.pid();

    // What one scrape costs the server, idle: back to back, so nothing else
    // is in its CPU time.
    let scrapes = scale.metrics_idle_scrapes;
    let before = cpu_time(pid)?;
    let mut body_bytes = 0;
    for _ in 0..scrapes {
        body_bytes = scrape(metrics).await?;
    }
    let per_scrape_us = (cpu_time(pid)? - before).as_secs_f64() * 1e6 / scrapes as f64;

    let (mut plain, mut scraped, mut counts) = (vec![], vec![], vec![]);
    for run in 0..scale.runs {
        eprintln!("greet-server CPU with and without a scrape, run {}", run + 1);
        for with_scrape in [run % 2 == 1, run % 2 == 0] {
            if !with_scrape {
                let r = super::direct_grpc::run(addr, scale.h2load_requests, body, &[pid]).await?;
                plain.push(r.cpu_us);
                continue;
            }
            let scraper = Scraper::start(metrics);
            let r = super::direct_grpc::run(addr, scale.h2load_requests, body, &[pid]).await;
            let count = scraper.stop().await?;
            ensure!(count >= 1, "no /metrics scrape happened during the h2load run");
            scraped.push(r?.cpu_us);
            counts.push(count as f64);
        }
    }
    let none = results.figure("9b. greet-server CPU per request, no scrape", "µs", plain.clone());
    let with = results.figure(
        "9b. greet-server CPU per request, GET /metrics every 1 s",
        "µs",
        scraped.clone(),
    );
    results.figure("9b. scrapes during each scraped h2load run", "", counts);
    results.figure(
        format!("9b. greet-server CPU per /metrics scrape, idle ({scrapes} back to back)"),
        "µs",
        vec![per_scrape_us],
    );
    results.figure("9b. /metrics body", "B", vec![body_bytes as f64]);
    let spread: Vec<String> = scraped
        .iter()
        .zip(&plain)
        .map(|(s, p)| format!("{:.3}", s / p))
        .collect();
    let ratio = with / none;
    results.targets.push(Target {
        name: "greet-server CPU/request, /metrics scraped every 1 s vs none",
        goal: "<= 1.02",
        measured: format!("{ratio:.3} (runs {})", spread.join(" ")),
        pass: ratio.is_finite() && ratio <= 1.02,
    });
    drop(server);
    Ok(())
}

/// A GET /metrics every second until stopped; counts the scrapes answered.
struct Scraper {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<u64>>,
}

impl Scraper {
    fn start(metrics: SocketAddr) -> Scraper {
        let stop = CancellationToken::new();
        let token = stop.clone();
        let task = tokio::spawn(async move {
            let (mut tick, mut done) = (tokio::time::interval(SCRAPE_INTERVAL), 0);
            loop {
                tokio::select! {
                    _ = token.cancelled() => return Ok(done),
                    _ = tick.tick() => {
                        scrape(metrics).await?;
                        done += 1;
                    }
                }
            }
        });
        Scraper { stop, task }
    }

    async fn stop(self) -> anyhow::Result<u64> {
        self.stop.cancel();
        self.task.await.context("the scraper task")?
    }
}

/// One GET /metrics on a fresh connection, as the API server's proxy makes
/// it (hyper's HTTP/1.1 client, a dependency already); the body's length.
/// Fails unless it is a 200 with greet-server's counters in it.
async fn scrape(metrics: SocketAddr) -> anyhow::Result<usize> {
    let tcp = tokio::net::TcpStream::connect(metrics)
        .await
        .with_context(|| format!("connecting to {metrics}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
    let driver = tokio::spawn(connection);
    let request = http::Request::get("/metrics")
        .header(http::header::HOST, metrics.to_string())
        .header(http::header::CONNECTION, "close")
        .body(Empty::<bytes::Bytes>::new())?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    let _ = driver.await;
    ensure!(status == http::StatusCode::OK, "GET /metrics answered {status}");
    ensure!(
        body.windows(25).any(|w| w == b"grpc_server_handled_total"),
        "GET /metrics has no grpc_server_handled_total"
    );
    Ok(body.len())
}
