//! The pods' own metrics at greet-top's edge: each scrape round's
//! [`PodReading`]s become the events of one more source the model already
//! understands, so rates, shares, percentiles, the verdict and `--once`
//! work on them unchanged. The source is named [`POD_METRICS`]; the first
//! round is its snapshot (every pod's baseline), the later ones its
//! summaries.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pod_metrics::{PodReading, ScrapeStatus, Totals};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::state::stats::Tally;
use crate::state::stats::methods::ByMethod;
use crate::state::{AppEvent, GatewayEvent, POD_METRICS, PodInfo, PodTotals, Snapshot};

/// Longest the first snapshot waits for every pod's first answer: a pod
/// that keeps failing (refused, unreachable) is shown failing after it.
pub(crate) const SYNC_WAIT: Duration = Duration::from_secs(5);

/// Turns rounds into events; remembers what it last said of the pods.
#[derive(Debug)]
pub struct Feed {
    started_unix_us: i64,
    synced: bool,
    first_round: Option<Instant>,
    seq: u64,
    endpoints: Vec<PodInfo>,
}

impl Default for Feed {
    fn default() -> Self {
        Self::new()
    }
}

impl Feed {
    pub fn new() -> Self {
        let started_unix_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
        Feed {
            started_unix_us,
            synced: false,
            first_round: None,
            seq: 0,
            endpoints: Vec::new(),
        }
    }

    /// The events one round makes: a snapshot first, then a changed pod
    /// list (a pod added, gone, stale, back) and the cumulative totals.
    /// The snapshot waits until every pod has answered once, for at most
    /// `SYNC_WAIT` (5 s): counting starts from every pod's baseline at once,
    /// so no pod's first calls are lost in a baseline taken later.
    pub fn round(&mut self, readings: &[PodReading], now: Instant) -> Vec<GatewayEvent> {
        let first = *self.first_round.get_or_insert(now);
        let answered =
            |r: &PodReading| matches!(r.status, ScrapeStatus::Ok { .. } | ScrapeStatus::NoGrpcMetrics { .. });
        // No pods yet (the pod watch has not listed them) is no baseline either.
        let all_answered = !readings.is_empty() && readings.iter().all(answered);
        if !self.synced && !all_answered && now.saturating_duration_since(first) < SYNC_WAIT {
            return Vec::new();
        }
        let endpoints: Vec<PodInfo> = readings.iter().map(|r| pod_info(r, now)).collect();
        let totals: Vec<PodTotals> = readings.iter().filter_map(pod_totals).collect();
        if !self.synced {
            self.synced = true;
            self.endpoints.clone_from(&endpoints);
            return vec![GatewayEvent::Snapshot(Snapshot {
                mode: None,
                unknown_mode: None,
                last_seq: 0,
                endpoints,
                pods: totals,
                started_unix_us: self.started_unix_us,
                sticky_target: String::new(),
            })];
        }
        let mut events = Vec::with_capacity(2);
        if endpoints != self.endpoints {
            self.seq += 1;
            self.endpoints.clone_from(&endpoints);
            events.push(GatewayEvent::EndpointsChanged {
                seq: self.seq,
                endpoints,
            });
        }
        events.push(GatewayEvent::Summary(totals));
        events
    }
}

/// Forwards every round from the scraper to the dashboard as events of
/// [`POD_METRICS`], until `cancel` or either side ends.
pub(crate) async fn forward(
    mut rounds: mpsc::Receiver<Vec<PodReading>>,
    tx: mpsc::Sender<AppEvent>,
    cancel: CancellationToken,
) {
    let mut feed = Feed::new();
    let connected = AppEvent::Connected {
        gateway: POD_METRICS.to_owned(),
    };
    if tx.send(connected).await.is_err() {
        return;
    }
    loop {
        let readings = tokio::select! {
            () = cancel.cancelled() => return,
            round = rounds.recv() => match round {
                Some(readings) => readings,
                None => return,
            },
        };
        for event in feed.round(&readings, Instant::now()) {
            let event = AppEvent::Gateway {
                gateway: POD_METRICS.to_owned(),
                event,
            };
            if tx.send(event).await.is_err() {
                return;
            }
        }
    }
}

fn pod_info(reading: &PodReading, now: Instant) -> PodInfo {
    let down = match &reading.status {
        ScrapeStatus::Pending | ScrapeStatus::Ok { .. } => None,
        // Stale numbers are never shown as a healthy pod's: the row reads
        // down, with how long the numbers have been old.
        ScrapeStatus::Failing { cause, since, last_ok } => {
            let age = now.saturating_duration_since(last_ok.unwrap_or(*since)).as_secs();
            Some(format!("{cause}; no fresh numbers for {age} s"))
        }
        ScrapeStatus::NoGrpcMetrics { cause, .. } => Some(cause.clone()),
    };
    PodInfo {
        name: reading.pod.clone(),
        ip: reading.ip.clone(),
        endpoint: reading.url.clone(),
        ready: matches!(reading.status, ScrapeStatus::Ok { .. }),
        down,
        metrics_family: reading.family.map(|f| f.label().to_owned()),
        ..PodInfo::default()
    }
}

fn pod_totals(reading: &PodReading) -> Option<PodTotals> {
    let Totals {
        requests,
        errors,
        error_codes,
        methods,
        latency_buckets,
        in_flight: _,
    } = reading.totals.clone()?;
    let methods: ByMethod = methods
        .into_iter()
        .map(|(method, (requests, errors))| (method, Tally { requests, errors }))
        .collect();
    Some(PodTotals {
        name: reading.pod.clone(),
        ip: reading.ip.clone(),
        endpoint: reading.url.clone(),
        requests,
        errors,
        latency_buckets,
        error_codes,
        methods,
        // Connections and the age of the oldest call are the gateway's to
        // know; a count of calls in flight alone would read as a gateway's.
        gauges: None,
        carried_over: Tally::default(),
    })
}

#[cfg(test)]
mod tests;
