//! The load tools, run as child processes and their output parsed: h2load
//! (HTTP/2, for raw gRPC) and wrk (HTTP/1.1, for the gateway's REST API);
//! and paced Rust clients for a steady rate. Every run that reports an error
//! fails, so a broken path never yields a number.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use prost::Message;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::procs::run_tool;
use greet_demo::rest_client::RestClient;
use greet_proto::greet::{Greeting, GreetingRequest};

/// What a paced load did so far: requests sent, answered 200, and the
/// others (any other status, or no answer).
#[derive(Default)]
pub(crate) struct PacedCounts {
    pub sent: AtomicU64,
    pub succeeded: AtomicU64,
    pub failed: AtomicU64,
}

/// POST /greet at `rate` per second from 8 paced workers until `stop`. Ticks
/// missed under load are caught up (Burst), so the average rate holds. Each
/// worker ends after the request it has in flight when `stop` comes.
pub(crate) fn paced(rest: &RestClient, rate: u32, stop: &CancellationToken) -> (Arc<PacedCounts>, Vec<JoinHandle<()>>) {
    const WORKERS: u32 = 8;
    let counts = Arc::new(PacedCounts::default());
    let workers = (0..WORKERS)
        .map(|_| {
            let (rest, stop, counts) = (rest.clone(), stop.clone(), Arc::clone(&counts));
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs_f64(f64::from(WORKERS) / f64::from(rate)));
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tick.tick() => {}
                    }
                    counts.sent.fetch_add(1, Ordering::Relaxed);
                    let outcome = if rest.greet("Hitesh", "Pattanayak").await.is_ok_and(|r| r.status == 200) {
                        &counts.succeeded
                    } else {
                        &counts.failed
                    };
                    outcome.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    (counts, workers)
}

/// The Greet RPC's path (package `greet`, service `GreetService`).
pub(crate) const GREET_PATH: &str = "/greet.GreetService/Greet";

/// One gRPC message as it travels in an HTTP/2 DATA frame: a zero
/// compression flag, the big-endian length, the protobuf.
pub(crate) fn grpc_request_body() -> Vec<u8> {
    let request = GreetingRequest {
        greeting: Some(Greeting {
            first_name: "Hitesh".into(),
            last_name: "Pattanayak".into(),
        }),
    };
    let message = request.encode_to_vec();
    let mut body = vec![0u8];
    body.extend_from_slice(&(message.len() as u32).to_be_bytes());
    body.extend_from_slice(&message);
    body
}

/// `h2load -c16 -m10 -n N` of Greet calls against `authority`; returns req/s.
pub(crate) async fn h2load(authority: &str, requests: usize, body_file: &Path) -> anyhow::Result<H2load> {
    // Every request's duration, for percentiles h2load does not print.
    let log = body_file.with_extension("h2load.log");
    let args: Vec<String> = [
        "-c16",
        "-m10",
        "-n",
        &requests.to_string(),
        "-d",
        &body_file.display().to_string(),
        "--log-file",
        &log.display().to_string(),
        "-H",
        "content-type: application/grpc",
        "-H",
        "te: trailers",
        &format!("http://{authority}{GREET_PATH}"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let out = run_tool("h2load", &args).await?;
    let rate = parse_h2load(&out, requests).with_context(|| format!("h2load output:\n{out}"))?;
    let durations = std::fs::read_to_string(&log).context("reading h2load's --log-file")?;
    let (p50_ms, p99_ms) = percentiles(&durations).context("no request in h2load's --log-file")?;
    Ok(H2load { rate, p50_ms, p99_ms })
}

/// One h2load run: requests per second, and latency percentiles.
pub(crate) struct H2load {
    pub rate: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// p50 and p99 in ms (nearest rank) of h2load's --log-file: a line per
/// request, "start µs <tab> status <tab> duration µs".
fn percentiles(log: &str) -> Option<(f64, f64)> {
    let mut durations: Vec<u64> = log
        .lines()
        .filter_map(|line| line.split('\t').nth(2)?.trim().parse().ok())
        .collect();
    durations.sort_unstable();
    let rank = |p: f64| {
        let index = ((p / 100.0 * durations.len() as f64).ceil() as usize).clamp(1, durations.len()) - 1;
        durations[index] as f64 / 1000.0
    };
    (!durations.is_empty()).then(|| (rank(50.0), rank(99.0)))
}

/// Checks every request succeeded with HTTP 200 and returns the rate.
pub(crate) fn parse_h2load(out: &str, requests: usize) -> anyhow::Result<f64> {
    // "requests: 100 total, 100 started, 100 done, 100 succeeded, 0 failed, 0 errored, 0 timeout"
    let line = out
        .lines()
        .find(|l| l.starts_with("requests:"))
        .context("no requests line")?;
    let succeeded = number_before(line, " succeeded").context("no succeeded count")?;
    // "status codes: 100 2xx, 0 3xx, 0 4xx, 0 5xx"
    let codes = out
        .lines()
        .find(|l| l.starts_with("status codes:"))
        .context("no status codes")?;
    let ok = number_before(codes, " 2xx").context("no 2xx count")?;
    if succeeded as usize != requests || ok as usize != requests {
        bail!("h2load: {succeeded} succeeded, {ok} 2xx of {requests}");
    }
    // "finished in 1.53s, 65359.48 req/s, 7.85MB/s"
    let finished = out.lines().find(|l| l.starts_with("finished in")).context("no rate")?;
    number_before(finished, " req/s").context("no req/s")
}

/// The number just before `suffix` in `line`.
fn number_before(line: &str, suffix: &str) -> Option<f64> {
    let end = line.find(suffix)?;
    let start = line[..end].rfind([' ', ',']).map_or(0, |i| i + 1);
    line[start..end].trim().parse().ok()
}

/// What one wrk run measured.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WrkResult {
    pub requests: u64,
    pub rate: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// The Lua script that makes wrk send the article's POST /greet.
pub(crate) fn write_wrk_script(dir: &Path) -> anyhow::Result<std::path::PathBuf> {
    let path = dir.join("post_greet.lua");
    std::fs::write(
        &path,
        "wrk.method = \"POST\"\n\
         wrk.body = '{\"first_name\": \"Hitesh\", \"last_name\": \"Pattanayak\"}'\n\
         wrk.headers[\"Content-Type\"] = \"application/json\"\n",
    )?;
    Ok(path)
}

/// `wrk -c32 -t2 --latency` POST /greet at `rest_url` for `duration`.
pub(crate) async fn wrk(rest_url: &str, duration: Duration, script: &Path) -> anyhow::Result<WrkResult> {
    let args: Vec<String> = vec![
        "-c32".into(),
        "-t2".into(),
        "--latency".into(),
        // wrk takes whole seconds only.
        format!("-d{}s", duration.as_secs().max(1)),
        "-s".into(),
        script.display().to_string(),
        format!("{rest_url}/greet"),
    ];
    let out = run_tool("wrk", &args).await?;
    parse_wrk(&out).with_context(|| format!("wrk output:\n{out}"))
}

/// Fails on any non-2xx answer or socket error.
pub(crate) fn parse_wrk(out: &str) -> anyhow::Result<WrkResult> {
    if let Some(line) = out
        .lines()
        .find(|l| l.contains("Non-2xx") || l.contains("Socket errors"))
    {
        bail!("wrk: {}", line.trim());
    }
    // "  123456 requests in 5.00s, 20.00MB read"
    let requests = out
        .lines()
        .find(|l| l.contains(" requests in "))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .context("no request count")?;
    let rate = out
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .context("no Requests/sec")?;
    let percentile = |p: &str| -> anyhow::Result<f64> {
        let line = out
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with(p))
            .with_context(|| format!("no {p} latency"))?;
        duration_ms(line.split_whitespace().nth(1).context("latency format")?)
    };
    Ok(WrkResult {
        requests,
        rate,
        p50_ms: percentile("50%")?,
        p99_ms: percentile("99%")?,
    })
}

/// wrk's "812.00us", "1.23ms", "2.01s" in milliseconds.
fn duration_ms(text: &str) -> anyhow::Result<f64> {
    let (number, scale) = if let Some(v) = text.strip_suffix("us") {
        (v, 1e-3)
    } else if let Some(v) = text.strip_suffix("ms") {
        (v, 1.0)
    } else if let Some(v) = text.strip_suffix('s') {
        (v, 1e3)
    } else {
        bail!("latency {text:?}")
    };
    Ok(number.parse::<f64>()? * scale)
}
