//! The scraper loop: one round every interval, each target in its own task
//! under the time limit, readings for every current target once the round
//! is done or its interval is over, whichever comes first — so one slow pod
//! never holds the others' readings back.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::{Id, JoinSet};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::counters::PodCounters;
use crate::fetch::{Fetch, url_of, where_of};
use crate::reading::{Family, PodReading, ScrapeConfig, ScrapeStatus, Target};
use crate::scrape::{Scraped, no_family_cause, scrape, shown_name};

/// Longest a failing pod goes unscraped.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// A target's identity across updates: its name and where it is read (its
/// IP may change without making it another pod).
type Key = (String, String);

struct Pod {
    target: Target,
    /// Tells a scrape of this pod from one of an earlier pod with the same
    /// key (removed and added again while a scrape was in flight).
    generation: u64,
    counters: PodCounters,
    family: Option<Family>,
    has_totals: bool,
    hint: Option<String>,
    status: ScrapeStatus,
    last_ok: Option<Instant>,
    /// Consecutive scrapes that failed or found no gRPC family.
    failures: u32,
    /// Rounds still to skip before the next try.
    skip: u32,
    in_flight: bool,
}

impl Pod {
    fn new(target: Target, generation: u64) -> Self {
        Pod {
            target,
            generation,
            counters: PodCounters::new(),
            family: None,
            has_totals: false,
            hint: None,
            status: ScrapeStatus::Pending,
            last_ok: None,
            failures: 0,
            skip: 0,
            in_flight: false,
        }
    }

    fn reading(&self) -> PodReading {
        PodReading {
            pod: shown_name(&self.target, self.hint.as_deref()),
            ip: greet_proto::sanitize::sanitize(&self.target.ip).into_owned(),
            url: url_of(&self.target),
            family: self.family,
            totals: self.has_totals.then(|| self.counters.totals().clone()),
            status: self.status.clone(),
        }
    }

    fn apply(&mut self, outcome: Result<Scraped, String>, max_skip: u32) {
        let now = Instant::now();
        match outcome {
            Ok(scraped) => {
                if scraped.read.pod_hint.is_some() {
                    self.hint = scraped.read.pod_hint.clone();
                }
                match &scraped.read.observed {
                    Some(observed) => {
                        self.counters.apply(observed);
                        self.family = Some(observed.family);
                        self.has_totals = true;
                        self.status = ScrapeStatus::Ok { at: now };
                        self.last_ok = Some(now);
                        self.failures = 0;
                        return;
                    }
                    None => {
                        self.status = ScrapeStatus::NoGrpcMetrics {
                            cause: no_family_cause(&self.target, &scraped),
                            at: now,
                        }
                    }
                }
            }
            Err(cause) => {
                let since = match &self.status {
                    ScrapeStatus::Failing { since, .. } => *since,
                    _ => now,
                };
                self.status = ScrapeStatus::Failing {
                    cause,
                    since,
                    last_ok: self.last_ok,
                };
            }
        }
        // Skip 1, 2, 4 … rounds after consecutive failures, up to MAX_BACKOFF.
        self.failures = self.failures.saturating_add(1);
        self.skip = 1u32.checked_shl(self.failures - 1).unwrap_or(u32::MAX).min(max_skip);
    }
}

/// Scrapes `targets` every `config.interval` until `cancel`, sending every
/// current target's reading once a round (in the targets' order).
///
/// Targets added are scraped from the next round; removed ones are
/// forgotten. A round's readings go out when all its scrapes are done, or at
/// the end of its interval with what is known then (a scrape still running
/// keeps its pod's previous reading until its time limit fails it).
///
/// Readings are sent with `try_send`: a full channel drops that round's
/// readings. Totals are cumulative, so the next round carries everything
/// the dropped one did, and a slow consumer never stretches the rounds or
/// the time limits. Returns when `cancel` fires or `tx` closes.
pub async fn run(
    mut targets: watch::Receiver<Vec<Target>>,
    fetch: Arc<dyn Fetch>,
    config: ScrapeConfig,
    tx: mpsc::Sender<Vec<PodReading>>,
    cancel: CancellationToken,
) {
    let interval = config.interval.max(Duration::from_millis(1));
    let max_skip = u32::try_from((MAX_BACKOFF.as_millis() / interval.as_millis()).max(1)).unwrap_or(u32::MAX);
    let config = Arc::new(config);
    let permits = Arc::new(Semaphore::new(config.concurrency.max(1)));
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);

    let mut order: Vec<Key> = Vec::new();
    let mut pods: HashMap<Key, Pod> = HashMap::new();
    let mut generation = 0u64;
    let mut tasks: JoinSet<Result<Scraped, String>> = JoinSet::new();
    let mut running: HashMap<Id, (Key, u64)> = HashMap::new();
    // This round's scrapes not done yet, and whether it has reported.
    let mut round_left = 0usize;
    let mut reported = true;

    loop {
        tokio::select! {
            biased;
            () = cancel.cancelled() => return,
            _ = ticker.tick() => {
                if !reported && !report(&tx, &order, &pods) {
                    return;
                }
                generation += 1;
                sync_targets(&targets.borrow_and_update(), &mut order, &mut pods, generation);
                round_left = 0;
                for key in &order {
                    let Some(pod) = pods.get_mut(key) else { continue };
                    if pod.in_flight {
                        continue;
                    }
                    if pod.skip > 0 {
                        pod.skip -= 1;
                        continue;
                    }
                    pod.in_flight = true;
                    round_left += 1;
                    let (fetch, config, permits, target) =
                        (Arc::clone(&fetch), Arc::clone(&config), Arc::clone(&permits), pod.target.clone());
                    let handle = tasks.spawn(async move {
                        let _permit = permits.acquire_owned().await.map_err(|_| "the scraper stopped".to_owned())?;
                        scrape(fetch.as_ref(), &target, &config).await
                    });
                    running.insert(handle.id(), (key.clone(), pod.generation));
                }
                reported = false;
                if round_left == 0 {
                    reported = true;
                    if !report(&tx, &order, &pods) {
                        return;
                    }
                }
            }
            Some(done) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                let (id, outcome) = match done {
                    Ok((id, outcome)) => (id, outcome),
                    Err(e) => (e.id(), Err("the scrape failed: an internal error".to_owned())),
                };
                let Some((key, pod_generation)) = running.remove(&id) else { continue };
                if let Some(pod) = pods.get_mut(&key).filter(|p| p.generation == pod_generation) {
                    pod.in_flight = false;
                    pod.apply(outcome, max_skip);
                }
                round_left = round_left.saturating_sub(1);
                if round_left == 0 && !reported {
                    reported = true;
                    if !report(&tx, &order, &pods) {
                        return;
                    }
                }
            }
        }
    }
}

/// Makes `pods` the current targets, in their order: known ones keep their
/// state (and take the new IP), new ones start pending, gone ones are dropped.
fn sync_targets(current: &[Target], order: &mut Vec<Key>, pods: &mut HashMap<Key, Pod>, generation: u64) {
    let mut kept: HashMap<Key, Pod> = HashMap::with_capacity(current.len());
    order.clear();
    for target in current {
        let key = (target.pod.clone(), where_of(target));
        if kept.contains_key(&key) {
            continue;
        }
        let pod = match pods.remove(&key) {
            Some(mut pod) => {
                pod.target = target.clone();
                pod
            }
            None => Pod::new(target.clone(), generation),
        };
        order.push(key.clone());
        kept.insert(key, pod);
    }
    *pods = kept;
}

/// Sends every current target's reading; `false` when no one listens.
fn report(tx: &mpsc::Sender<Vec<PodReading>>, order: &[Key], pods: &HashMap<Key, Pod>) -> bool {
    let readings: Vec<PodReading> = order.iter().filter_map(|k| pods.get(k)).map(Pod::reading).collect();
    match tx.try_send(readings) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Full(_)) => {
            tracing::debug!("pod readings dropped: the consumer is behind (the next round carries them)");
            true
        }
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    }
}
