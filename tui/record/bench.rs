//! For the benchmark suite (benches/suite/recording.rs): a synthetic
//! recording written with the real format, and seeks timed in it through
//! the real replay.

use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use super::format::{self, AppSpec, Entry, Header, ViewsSpec, What};
use super::replay::Replay;
use crate::state::{AppEvent, GatewayEvent, Gauges, PodTotals, Request, Snapshot};
use greet_proto::Mode;

/// Writes `length` of a gateway's summaries stream over `pods` pods at
/// `rate` requests per second (a summary every 250 ms with a few sampled
/// requests, and the frame loop's ticks) to `path`; its size in bytes.
pub fn write_synthetic(path: &Path, length: Duration, pods: usize, rate: u64) -> anyhow::Result<u64> {
    let start = Instant::now();
    let header = Header {
        greet_top: env!("CARGO_PKG_VERSION").to_owned(),
        sources: vec!["gateway http://127.0.0.1:9092 (synthetic)".to_owned()],
        started_unix_ms: super::unix_ms_now(),
        part: 0,
        views: ViewsSpec::Single(AppSpec {
            expecting: Some("gw".to_owned()),
            ..AppSpec::new("http://127.0.0.1:9092")
        }),
    };
    let mut out = BufWriter::new(File::create(path).with_context(|| format!("creating {}", path.display()))?);
    out.write_all(&format::preamble(&header)?)?;
    let names: Vec<String> = (0..pods).map(|i| format!("greetserver-{i:02}")).collect();
    // Blocks of 200 ms, as the writer gathers them.
    let mut pending = Vec::new();
    let mut deflater = format::Deflater::default();
    let mut block_ends = Duration::from_millis(200);
    let mut write = |at: Duration, what: What| -> anyhow::Result<()> {
        if at >= block_ends {
            out.write_all(&deflater.block_frame(&pending)?)?;
            pending.clear();
            block_ends = at + Duration::from_millis(200);
        }
        let entry = Entry {
            at_us: u64::try_from(at.as_micros())?,
            what,
        };
        pending.extend(format::entry_record(&entry, start)?);
        Ok(())
    };
    let gateway = |event| AppEvent::Gateway {
        gateway: "gw".to_owned(),
        event,
    };
    write(
        Duration::ZERO,
        What::Event(AppEvent::Connected {
            gateway: "gw".to_owned(),
        }),
    )?;
    let snapshot = Snapshot {
        mode: Some(Mode::Balanced),
        endpoints: names
            .iter()
            .enumerate()
            .map(|(i, name)| crate::state::PodInfo {
                name: name.clone(),
                ip: format!("10.0.0.{}", i + 1),
                ready: true,
                ..Default::default()
            })
            .collect(),
        ..Snapshot::default()
    };
    write(Duration::ZERO, What::Event(gateway(GatewayEvent::Snapshot(snapshot))))?;
    let buckets = greet_proto::latency_buckets::BUCKETS;
    let mut ms = 0u64;
    while Duration::from_millis(ms) <= length {
        let at = Duration::from_millis(ms);
        if ms > 0 && ms.is_multiple_of(250) {
            let each = rate * ms / 1000 / pods as u64;
            let totals = names
                .iter()
                .enumerate()
                .map(|(i, name)| {
                    let mut latency = vec![0; buckets];
                    latency[buckets / 3] = each;
                    PodTotals {
                        name: name.clone(),
                        ip: format!("10.0.0.{}", i + 1),
                        requests: each,
                        latency_buckets: Some(latency),
                        gauges: Some(Gauges {
                            in_flight: 1,
                            oldest_in_flight_us: 800,
                            connections: 1,
                        }),
                        ..PodTotals::default()
                    }
                })
                .collect();
            write(at, What::Event(gateway(GatewayEvent::Summary(totals))))?;
            for n in 0..4u64 {
                let i = ((ms / 250 + n) % pods as u64) as usize;
                let sample = Request {
                    seq: ms + n,
                    name: names[i].clone(),
                    ip: format!("10.0.0.{}", i + 1),
                    mode: Some(Mode::Balanced),
                    latency_us: 900 + n * 37,
                    ..Request::default()
                };
                write(at, What::Event(gateway(GatewayEvent::Sample(sample))))?;
            }
        }
        if ms.is_multiple_of(100) {
            write(at, What::Tick)?;
        }
        ms += 50;
    }
    write(length + Duration::from_secs(1), What::Tick)?;
    out.flush()?;
    Ok(std::fs::metadata(path)?.len())
}

/// How long opening `path` took (it reads the file through once), and
/// each seek to `targets`, in that order.
pub fn time_seeks(path: &Path, targets: &[Duration]) -> anyhow::Result<(Duration, Vec<Duration>)> {
    let opened = Instant::now();
    let mut replay = Replay::open(path).map_err(|err| anyhow::anyhow!("{err}"))?;
    let open = opened.elapsed();
    let seeks = targets
        .iter()
        .map(|target| {
            let started = Instant::now();
            replay.seek(*target);
            started.elapsed()
        })
        .collect();
    Ok((open, seeks))
}

/// The entries of the recording at `source` (up to any damage), fed again
/// to a `Recorder` writing `dest`, `times` times over
/// (each pass later by the source's length), as fast as it takes them; with
/// no `dest`, only read. Both runs under callgrind give what recording costs
/// per entry, without the noise of a live run. The bytes written and the
/// entries fed.
pub fn refeed(source: &Path, dest: Option<&Path>, times: u32) -> anyhow::Result<(u64, u64)> {
    let mut opened = super::reader::open(source).map_err(|err| anyhow::anyhow!("{err}"))?;
    let start = Instant::now();
    let mut entries = Vec::new();
    while let Ok(Some(entry)) = opened.frames.next_entry(start) {
        entries.push(entry);
    }
    let span = entries.last().map_or(Duration::ZERO, Entry::at) + Duration::from_millis(100);
    let Some(dest) = dest else {
        return Ok((0, 0));
    };
    let recorder = super::Recorder::create(dest, opened.header, u64::MAX, start)?;
    let mut fed = 0u64;
    for pass in 0..times {
        let base = start + span * pass;
        for entry in &entries {
            let now = base + entry.at();
            match &entry.what {
                What::Event(event) => recorder.event(event, now),
                What::Tick => recorder.tick(now),
                What::Key(key) => recorder.key(*key, now),
                What::Reported { observed } => recorder.reported(*observed, now),
            }
            fed += 1;
        }
    }
    let badge = recorder.badge();
    recorder.finish()?;
    anyhow::ensure!(!badge.contains("dropped"), "the recorder dropped frames: {badge}");
    Ok((std::fs::metadata(dest)?.len(), fed))
}
