//! The soak, for leaks and failed requests under churn: `bench/soak
//! [--seconds 60] [--rate 300]` (`cargo bench --bench suite -- --soak ...`). The real binaries on loopback for a
//! bounded time: a steady paced load through the gateway while its mode flips
//! every 3 s and a greet-server is restarted every 2 s (a SIGTERM drain, as in
//! a rolling restart, and a SIGKILL crash, in turn), with 10 Observer
//! subscribers reading all along. It fails on a failed request in balanced
//! mode, on counts that disagree, and on gateway RSS that grows past a bound.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, bail};
use greet_demo::rest_client::RestClient;
use greet_demo::service_proxy;
use greet_proto::Mode;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::loadgen;
use super::procs::{self, Servers, Signal, rss_kib};
use super::soak_report::{Report, Rss};
use super::subscribers::{self, Kind, Watcher};

pub(crate) const FLIP_EVERY: Duration = Duration::from_secs(3);
pub(crate) const RESTART_EVERY: Duration = Duration::from_secs(2);
pub(crate) const AGGREGATED: usize = 7;
pub(crate) const RAW: usize = 3;

/// How long and how hard.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Options {
    pub seconds: u64,
    pub rate: u32,
}

impl Options {
    /// `--seconds N` and `--rate N`; other arguments (Cargo's `--bench`, `--soak`) are not ours.
    pub(crate) fn from_args(args: &[String]) -> anyhow::Result<Options> {
        let mut options = Options { seconds: 60, rate: 300 };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let mut value = || args.next().with_context(|| format!("{arg} needs a number"));
            match arg.as_str() {
                "--seconds" => options.seconds = value()?.parse().context("--seconds")?,
                "--rate" => options.rate = value()?.parse().context("--rate")?,
                _ => {}
            }
        }
        if !(4..=3600).contains(&options.seconds) || !(1..=5000).contains(&options.rate) {
            bail!("--seconds must be 4..=3600 and --rate 1..=5000");
        }
        Ok(options)
    }

    /// RSS is first read after this much load: a fresh process grows while
    /// it warms up (buffers, allocator arenas), which is not a leak.
    pub(crate) fn warm_up(&self) -> Duration {
        Duration::from_secs((self.seconds / 6).clamp(2, 10))
    }
}

/// Runs the soak; its exit status: 0, 1 when a check failed, 2 on bad arguments.
pub(crate) async fn main(args: &[String]) -> i32 {
    let options = match Options::from_args(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("bench/soak: {e:#}; usage: bench/soak [--seconds 60] [--rate 300] [--debug]");
            return 2;
        }
    };
    let report = match run(options).await {
        Ok(report) => report,
        Err(e) => {
            eprintln!("soak FAILED to run: {e:#}");
            return 1;
        }
    };
    let text = report.markdown(&super::results::environment());
    println!("\n{text}");
    // The debug build's figures (CI's short form) are not the ones to keep.
    if !cfg!(debug_assertions) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/soak-results.md");
        match std::fs::write(&path, &text) {
            Ok(()) => println!("written to {}", path.display()),
            Err(e) => {
                eprintln!("writing {}: {e}", path.display());
                return 1;
            }
        }
    }
    i32::from(!report.problems().is_empty())
}

pub(crate) async fn run(options: Options) -> anyhow::Result<Report> {
    let mut servers = procs::start_servers(3, 81).await?;
    // A Service that balances connections like kube-proxy: sticky mode's target.
    let (backends, backends_rx) = watch::channel(servers.addrs.clone());
    let service = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let service_addr = service.local_addr()?;
    let proxy_stop = CancellationToken::new();
    tokio::spawn(service_proxy::run(service, backends_rx, proxy_stop.clone()));
    let _proxy = proxy_stop.drop_guard();
    let gateway = procs::start_gateway_via(&servers, Mode::Balanced, service_addr).await?;
    let mut watchers = Vec::new();
    for kind in [[Kind::Aggregated; AGGREGATED].as_slice(), &[Kind::Raw; RAW]].concat() {
        watchers.push(subscribers::watcher(&gateway.observe_url, kind).await?);
    }

    let stop = CancellationToken::new();
    let _stop_on_exit = stop.clone().drop_guard();
    let (counts, workers) = loadgen::paced(&gateway.rest, options.rate, &stop);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(options.seconds);
    let pid = gateway.child.pid();
    let (restarts, flips, rss) = tokio::join!(
        restart_servers(&mut servers, &backends, deadline),
        flip_modes(&gateway.rest, deadline),
        sample_rss(pid, started + options.warm_up(), deadline),
    );
    stop.cancel();
    for worker in workers {
        worker.await?;
    }
    let elapsed = started.elapsed();
    let sent = counts.sent.load(Ordering::Relaxed);
    until_raw_subscribers_have(&watchers, sent).await;
    Ok(Report {
        options,
        elapsed,
        sent,
        succeeded: counts.succeeded.load(Ordering::Relaxed),
        failed: counts.failed.load(Ordering::Relaxed),
        restarts: restarts?,
        flips: flips?,
        rss: rss?,
        subscribers: watchers
            .iter()
            .map(|w| (w.kind, w.seen.lock().unwrap().clone()))
            .collect(),
    })
}

/// Every RESTART_EVERY, the next greet-server is stopped and started again on
/// its address, by SIGTERM and SIGKILL in turn. A drained one leaves the
/// Service first, as a terminating pod does; a crashed one after it died,
/// when the Service notices. Returns how many of each.
async fn restart_servers(
    servers: &mut Servers,
    backends: &watch::Sender<Vec<SocketAddr>>,
    deadline: Instant,
) -> anyhow::Result<(u32, u32)> {
    let (mut terms, mut kills) = (0, 0);
    for i in 0.. {
        if !sleep_before(RESTART_EVERY, deadline).await {
            break;
        }
        let k = i % servers.addrs.len();
        let addr = servers.addrs[k];
        let out_of_service = || backends.send_modify(|b| b.retain(|a| *a != addr));
        if i % 2 == 0 {
            out_of_service();
            servers.stop(k, Signal::Term).await?;
            terms += 1;
        } else {
            servers.stop(k, Signal::Kill).await?;
            out_of_service();
            kills += 1;
        }
        servers.start(k).await?;
        backends.send_modify(|b| b.push(addr));
    }
    Ok((terms, kills))
}

/// Every FLIP_EVERY, switches the gateway's mode with `PUT /mode`; returns how many times.
async fn flip_modes(rest: &RestClient, deadline: Instant) -> anyhow::Result<u32> {
    let (mut mode, mut flips) = (Mode::Balanced, 0);
    loop {
        if !sleep_before(FLIP_EVERY, deadline).await {
            return Ok(flips);
        }
        // Between the article's two, as the soak has always measured.
        mode = if mode == Mode::Sticky {
            Mode::Balanced
        } else {
            Mode::Sticky
        };
        let response = rest.set_mode(mode).await?;
        anyhow::ensure!(
            response.status == 200,
            "PUT /mode {mode}: {} {}",
            response.status,
            response.body
        );
        flips += 1;
    }
}

/// Sleeps `period`, or until `deadline` if that comes first: then false.
async fn sleep_before(period: Duration, deadline: Instant) -> bool {
    let wake = Instant::now() + period;
    tokio::time::sleep_until(wake.min(deadline)).await;
    wake < deadline
}

/// The gateway's VmRSS once warmed up, at the end, and the highest of the
/// samples taken every second in between.
async fn sample_rss(pid: u32, warm: Instant, deadline: Instant) -> anyhow::Result<Rss> {
    tokio::time::sleep_until(warm).await;
    let start_kib = rss_kib(pid)?;
    let mut peak_kib = start_kib;
    while Instant::now() + Duration::from_secs(1) < deadline {
        tokio::time::sleep(Duration::from_secs(1)).await;
        peak_kib = peak_kib.max(rss_kib(pid)?);
    }
    tokio::time::sleep_until(deadline).await;
    let end_kib = rss_kib(pid)?;
    Ok(Rss {
        start_kib,
        end_kib,
        peak_kib: peak_kib.max(end_kib),
    })
}

/// Request events travel a little behind the replies: waits (at most 5 s)
/// until every raw subscriber has as many as were sent, or was told it dropped some.
async fn until_raw_subscribers_have(watchers: &[Watcher], sent: u64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let behind = watchers.iter().filter(|w| matches!(w.kind, Kind::Raw)).any(|w| {
            let seen = w.seen.lock().unwrap();
            seen.by_mode.values().map(|c| c.requests).sum::<u64>() + seen.dropped < sent
        });
        if !behind {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
