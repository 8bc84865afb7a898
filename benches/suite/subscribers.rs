//! Observer.Watch subscribers in the bench process: ones that only read (for
//! the gateway's CPU cost) and ones that keep per-pod totals (for the exact
//! totals check), aggregated (summaries + a small sample) or raw (every request).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use greet_proto::Mode;
use greet_proto::observe::observer_client::ObserverClient;
use greet_proto::observe::{Event, WatchRequest, event};
use tokio::task::JoinHandle;
use tonic::Streaming;

#[derive(Clone, Copy, Debug)]
pub(crate) enum Kind {
    /// 1-s summaries and a 10/s sample, as a dashboard asks.
    Aggregated,
    /// Every request (an empty WatchRequest, as older clients send).
    Raw,
}

fn request(kind: Kind) -> WatchRequest {
    match kind {
        Kind::Aggregated => WatchRequest {
            summary_interval_ms: 1000,
            sample_per_second: 10,
        },
        Kind::Raw => WatchRequest::default(),
    }
}

/// Subscribes; returns the stream once its first event (the snapshot) is in.
async fn subscribe(observe: &str, kind: Kind) -> anyhow::Result<(Streaming<Event>, BTreeMap<String, u64>)> {
    let mut client = ObserverClient::connect(observe.to_owned()).await.context("Observer")?;
    let mut stream = client.watch(request(kind)).await.context("Watch")?.into_inner();
    match stream.message().await?.and_then(|e| e.kind) {
        Some(event::Kind::Snapshot(state)) => {
            let totals = state.pods.into_iter().map(|p| (p.pod_name, p.requests)).collect();
            Ok((stream, totals))
        }
        other => bail!("Watch began with {other:?}, not a snapshot"),
    }
}

/// Subscribers that read everything they are sent, as fast as they can.
pub(crate) struct Readers(Vec<JoinHandle<()>>);

impl Drop for Readers {
    fn drop(&mut self) {
        for reader in &self.0 {
            reader.abort();
        }
    }
}

pub(crate) async fn readers(observe: &str, kind: Kind, n: usize) -> anyhow::Result<Readers> {
    let mut handles = Vec::new();
    for _ in 0..n {
        let (mut stream, _) = subscribe(observe, kind).await?;
        handles.push(tokio::spawn(async move {
            while let Ok(Some(_)) = stream.message().await {}
        }));
    }
    Ok(Readers(handles))
}

/// A subscriber's per-pod request totals as it currently knows them.
pub(crate) struct Counter {
    pub kind: Kind,
    pub totals: Arc<Mutex<BTreeMap<String, u64>>>,
    _task: Readers,
}

/// Aggregated: the latest summary's per-pod requests (cumulative since the
/// gateway started). Raw: the snapshot plus one per request event; told it
/// lagged, it resubscribes and starts again from a new snapshot, as greet-top does.
pub(crate) async fn counter(observe: &str, kind: Kind) -> anyhow::Result<Counter> {
    let (mut stream, first) = subscribe(observe, kind).await?;
    let totals = Arc::new(Mutex::new(first));
    let (shared, observe) = (Arc::clone(&totals), observe.to_owned());
    let task = tokio::spawn(async move {
        loop {
            while let Ok(Some(event)) = stream.message().await {
                let mut totals = shared.lock().unwrap();
                match event.kind {
                    Some(event::Kind::Summary(summary)) => {
                        *totals = summary.pods.into_iter().map(|p| (p.pod_name, p.requests)).collect();
                    }
                    Some(event::Kind::Request(r)) if !r.pod_name.is_empty() => {
                        *totals.entry(r.pod_name).or_default() += 1;
                    }
                    Some(event::Kind::Lagged(_)) => break,
                    _ => {}
                }
            }
            match subscribe(&observe, kind).await {
                Ok((next, snapshot)) => {
                    stream = next;
                    *shared.lock().unwrap() = snapshot;
                }
                Err(_) => return,
            }
        }
    });
    Ok(Counter {
        kind,
        totals,
        _task: Readers(vec![task]),
    })
}

/// Waits (at most `within`) until every counter's totals equal `expected`;
/// returns the counters that never did, with what they had.
pub(crate) async fn until_equal(
    counters: &[Counter],
    expected: &BTreeMap<String, u64>,
    within: Duration,
) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let wrong: Vec<String> = counters
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                let mut totals = c.totals.lock().unwrap().clone();
                totals.retain(|_, v| *v > 0);
                (totals != *expected).then(|| format!("subscriber {i} ({:?}) has {totals:?}", c.kind))
            })
            .collect();
        if wrong.is_empty() || tokio::time::Instant::now() > deadline {
            return wrong;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What a soak subscriber saw while it read continuously.
#[derive(Clone, Debug, Default)]
pub(crate) struct Seen {
    pub events: u64,
    /// Events the gateway told it (Lagged) it dropped because it fell behind.
    pub dropped: u64,
    /// The longest time from an event (a request completing, a summary being
    /// built) to its arrival here, in ms.
    pub max_delay_ms: f64,
    /// Raw only: request events by the mode that served them.
    pub by_mode: BTreeMap<&'static str, ModeCounts>,
}

/// Requests a gateway served in one mode, as its request events tell.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ModeCounts {
    pub requests: u64,
    pub failed: u64,
    /// Requests that took more than one attempt.
    pub retried: u64,
}

/// A subscriber that reads everything, as a dashboard would, and keeps [`Seen`].
pub(crate) struct Watcher {
    pub kind: Kind,
    pub seen: Arc<Mutex<Seen>>,
    _task: Readers,
}

pub(crate) async fn watcher(observe: &str, kind: Kind) -> anyhow::Result<Watcher> {
    let (mut stream, _) = subscribe(observe, kind).await?;
    let seen = Arc::new(Mutex::new(Seen::default()));
    let shared = Arc::clone(&seen);
    let task = tokio::spawn(async move {
        while let Ok(Some(event)) = stream.message().await {
            let now_us = unix_micros_now();
            let mut seen = shared.lock().unwrap();
            seen.events += 1;
            let at_us = match event.kind {
                Some(event::Kind::Request(r)) => {
                    if matches!(kind, Kind::Raw) {
                        let mode = Mode::from_proto(r.mode).map_or("unknown", Mode::as_str);
                        let counts = seen.by_mode.entry(mode).or_default();
                        counts.requests += 1;
                        counts.failed += u64::from(r.grpc_code != 0);
                        counts.retried += u64::from(r.attempts > 1);
                    }
                    r.timestamp_unix_us
                }
                Some(event::Kind::Summary(s)) => s.timestamp_unix_us,
                Some(event::Kind::Lagged(l)) => {
                    seen.dropped += l.dropped;
                    now_us
                }
                _ => now_us,
            };
            seen.max_delay_ms = seen.max_delay_ms.max((now_us - at_us) as f64 / 1e3);
        }
    });
    Ok(Watcher {
        kind,
        seen,
        _task: Readers(vec![task]),
    })
}

fn unix_micros_now() -> i64 {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    since_epoch.map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}
