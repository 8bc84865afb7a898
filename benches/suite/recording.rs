//! Item 10: recording (`greet-top --record`). greet-top's CPU with and
//! without `--record` at 1,000 req/s through the gateway (the runs
//! alternate, so a busy machine weighs on both sides alike; each run's
//! ratio is kept, their spread shown), the bytes an hour of recording
//! takes of 10 pods at 1,000 req/s on the summaries stream and on raw
//! events, and seeks in a synthetic 1-hour recording (the replay opens it
//! once, then each seek starts from the nearest keyframe).
//! `cargo bench --bench suite -- --recording` runs this item alone and
//! writes bench/recording-results.md.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use greet_proto::Mode;
use tokio_util::sync::CancellationToken;

use super::greet_top_cpu::start_dashboard;
use super::procs::{Servers, cpu_time, start_gateway, start_servers};
use super::results::{self, Results, median};
use super::{Scale, failed, loadgen};

/// The workload of the targets: 10 pods at 1,000 req/s.
const PODS: u8 = 10;
const RATE: u32 = 1000;

/// One dashboard run: CPU in ms per second of wall time, the file's bytes
/// per second (0 without --record), the rate reached.
struct Run {
    cpu: f64,
    bytes_per_second: f64,
    rate: f64,
}

/// How greet-top runs in one measurement.
#[derive(Clone, Copy, PartialEq)]
enum Recording {
    Off,
    Summaries,
    RawEvents,
}

async fn run_dashboard(servers: &Servers, recording: Recording, duration: Duration, dir: &Path) -> anyhow::Result<Run> {
    let gateway = start_gateway(servers, Mode::Balanced).await?;
    let file = dir.join("bench.grt");
    let _ = std::fs::remove_file(&file);
    let dashboard = start_dashboard(|command| {
        command.args(["--gateway", &gateway.observe_url, "--no-kube"]);
        if recording != Recording::Off {
            command.args(["--record", file.to_str().unwrap_or_default()]);
        }
        if recording == Recording::RawEvents {
            command.arg("--raw-events");
        }
    })?;
    let pid = dashboard.child.process_id().context("greet-top has no pid")?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let stop = CancellationToken::new();
    let _stop_on_exit = stop.clone().drop_guard();
    let (counts, _workers) = loadgen::paced(&gateway.rest, RATE, &stop);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let size = || std::fs::metadata(&file).map_or(0, |m| m.len());
    let (cpu_before, sent_before, size_before, started) = (
        cpu_time(pid)?,
        counts.succeeded.load(Ordering::Relaxed),
        size(),
        Instant::now(),
    );
    tokio::time::sleep(duration).await;
    let wall = started.elapsed().as_secs_f64();
    let run = Run {
        cpu: (cpu_time(pid)? - cpu_before).as_secs_f64() * 1e3 / wall,
        bytes_per_second: size().saturating_sub(size_before) as f64 / wall,
        rate: (counts.succeeded.load(Ordering::Relaxed) - sent_before) as f64 / wall,
    };
    stop.cancel();
    drop(dashboard);
    // A live recording to feed `--refeed` under callgrind.
    if recording == Recording::Summaries
        && let Some(keep) = std::env::var_os("GREET_BENCH_KEEP_RECORDING")
    {
        std::fs::copy(&file, &keep).with_context(|| format!("keeping the recording as {keep:?}"))?;
    }
    // A greet-top that did not start (a stale build that lacks --record, a
    // refused flag) measures as zero: a figure that passes every target.
    anyhow::ensure!(
        run.cpu > 0.0,
        "greet-top used no CPU: it is not running (is target/release/greet-top current? bench/run builds it)"
    );
    anyhow::ensure!(
        recording == Recording::Off || run.bytes_per_second > 0.0,
        "greet-top wrote nothing to {} with --record",
        file.display()
    );
    Ok(run)
}

/// Items 10a-10c, into `results`.
pub(crate) async fn measure(scale: &Scale, results: &mut Results, dir: &Path) {
    if let Err(e) = cpu_and_size(scale, results, dir).await {
        failed(results, "10a. greet-top CPU with --record", e);
    }
    if let Err(e) = seeks(scale, results, dir) {
        failed(results, "10c. seeks in a 1-hour recording", e);
    }
}

async fn cpu_and_size(scale: &Scale, results: &mut Results, dir: &Path) -> anyhow::Result<()> {
    let servers = start_servers(PODS, 101).await?;
    let duration = scale.greet_top_time;
    let (mut off, mut on, mut raw) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..scale.runs {
        eprintln!("recording run {}: without and with --record, alternating", run + 1);
        // Alternate which goes first.
        let order = if run % 2 == 0 {
            [Recording::Off, Recording::Summaries]
        } else {
            [Recording::Summaries, Recording::Off]
        };
        for recording in order {
            let measured = run_dashboard(&servers, recording, duration, dir).await?;
            match recording {
                Recording::Off => off.push(measured),
                _ => on.push(measured),
            }
        }
        raw.push(run_dashboard(&servers, Recording::RawEvents, duration, dir).await?);
    }
    let per_hour = |run: &Run| run.bytes_per_second * 3600.0 / 1e6;
    results.figure_of("10a. greet-top CPU at 1,000 req/s, 10 pods", "ms/s", &off, |r| r.cpu);
    results.figure_of("10a. greet-top CPU, same, with --record", "ms/s", &on, |r| r.cpu);
    results.figure_of("10a. paced rate reached (with --record)", "req/s", &on, |r| r.rate);
    let ratios: Vec<f64> = off.iter().zip(&on).map(|(off, on)| on.cpu / off.cpu).collect();
    let ratio = results.figure("10a. CPU with / without --record, per run", "x", ratios.clone());
    let (min, max) = spread(&ratios);
    eprintln!("recording: CPU ratio {ratio:.3} (runs {min:.3}-{max:.3})");
    results.ratio_target("greet-top CPU with --record / without", "<= 1.10", ratio, 0.0, 1.10);
    let summaries = results.figure_of("10b. recording size, summaries stream", "MB/h", &on, per_hour);
    results.figure_of("10b. recording size, raw events (--raw-events)", "MB/h", &raw, per_hour);
    results.figure_of("10b. greet-top CPU with --record --raw-events", "ms/s", &raw, |r| r.cpu);
    results.ratio_target("recording size, summaries, MB per hour", "<= 20", summaries, 0.0, 20.0);
    Ok(())
}

fn spread(values: &[f64]) -> (f64, f64) {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (min, max)
}

fn seeks(scale: &Scale, results: &mut Results, dir: &Path) -> anyhow::Result<()> {
    let length = if scale.smoke {
        Duration::from_secs(120)
    } else {
        Duration::from_secs(3600)
    };
    let path = dir.join("synthetic.grt");
    eprintln!("recording: writing a synthetic {length:?} recording");
    let bytes = greet_top::recording_bench::write_synthetic(&path, length, usize::from(PODS), u64::from(RATE))?;
    results.figure(
        "10c. synthetic recording, summaries of 10 pods at 1,000 req/s",
        "MB/h",
        vec![bytes as f64 / 1e6 * 3600.0 / length.as_secs_f64()],
    );
    // Anywhere, forwards and back: each seek from where the last one left.
    let targets: Vec<Duration> = [0.999, 0.0, 0.5, 0.25, 0.75, 0.013, 0.987, 0.5001, 0.333, 0.666]
        .iter()
        .map(|f| length.mul_f64(*f))
        .collect();
    let mut opens = Vec::new();
    let mut worst = Vec::new();
    let mut medians = Vec::new();
    for _ in 0..scale.runs {
        let (open, times) = greet_top::recording_bench::time_seeks(&path, &targets)?;
        let ms: Vec<f64> = times.iter().map(|t| t.as_secs_f64() * 1e3).collect();
        opens.push(open.as_secs_f64());
        worst.push(spread(&ms).1);
        medians.push(median(&ms));
    }
    results.figure("10c. opening it (one read through, keyframes)", "s", opens);
    results.figure("10c. seek, median of 10 targets", "ms", medians);
    let slowest = results.figure("10c. seek, slowest of 10 targets", "ms", worst);
    results.ratio_target("seek anywhere in a 1-hour recording, ms", "<= 200", slowest, 0.0, 200.0);
    let _ = std::fs::remove_file(&path);
    Ok(())
}

/// `--recording`: this item alone; the full form writes bench/recording-results.md.
pub(crate) async fn main(args: &[String]) -> i32 {
    if let Some(at) = args.iter().position(|a| a == "--refeed") {
        return refeed(&args[at + 1..]);
    }
    let scale = if args.iter().any(|a| a == "--smoke") {
        Scale::smoke()
    } else {
        // greet-top's CPU is read in 10-ms ticks and costs about 11 ms a
        // second here: over the suite's 8-s phases one tick is 0.1 of the
        // ratio this item judges against 1.10, so its phases are longer.
        Scale {
            greet_top_time: Duration::from_secs(30),
            ..Scale::full()
        }
    };
    let dir = std::env::temp_dir().join(format!("greet-top-bench-recording-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("cannot create {}: {e}", dir.display());
        return 1;
    }
    let mut results = Results::default();
    results.sample_load("at the start");
    measure(&scale, &mut results, &dir).await;
    results.sample_load("at the end");
    let _ = std::fs::remove_dir_all(&dir);
    let env = results::environment();
    let table = results.table();
    println!("\n{env}\n{table}");
    if !scale.smoke {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/recording-results.md");
        let text = format!(
            "# Recording benchmark (`cargo bench --bench suite -- --recording`)\n\n\
             Written by benches/suite/recording.rs (item 10); every figure is the median of the runs \
             listed, all from one invocation. greet-top attached to a gateway over 10 greet-servers, \
             paced load at 1,000 req/s, {} runs of {:?} each, with and without --record alternating.\n\n\
             {env}\n{table}",
            scale.runs, scale.greet_top_time
        );
        if let Err(e) = std::fs::write(&path, text) {
            eprintln!("writing {}: {e}", path.display());
            return 1;
        }
        println!("written to {}", path.display());
    }
    i32::from(!results.failures.is_empty())
}

/// `--recording --refeed SOURCE [DEST] [TIMES]`: SOURCE's entries (a
/// recording of a live run) read, and with DEST written again through the
/// real recorder TIMES times over; under callgrind, the run without DEST
/// subtracted from the run with it is what recording those entries costs.
fn refeed(args: &[String]) -> i32 {
    let Some(source) = args.first() else {
        eprintln!("--refeed needs a recording to read: --refeed SOURCE [DEST] [TIMES]");
        return 2;
    };
    let dest = args.get(1).map(Path::new);
    let times = match args.get(2).map(|t| t.parse::<u32>()) {
        None => 1,
        Some(Ok(times)) => times,
        Some(Err(err)) => {
            eprintln!("--refeed: TIMES {:?} is not a count ({err})", args[2]);
            return 2;
        }
    };
    match greet_top::recording_bench::refeed(Path::new(source), dest, times) {
        Ok((bytes, entries)) => {
            println!("refed {entries} entries: {bytes} bytes");
            0
        }
        Err(err) => {
            eprintln!("--refeed: {err:#}");
            1
        }
    }
}
