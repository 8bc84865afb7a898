//! The counters: per-pod hits and errors (kept per gateway, so one gateway's
//! snapshot can replace its own share), rates over a sliding window,
//! latency percentiles, the per-second series and Jain's fairness index.

mod by_time;
mod counts;
mod identity;
pub(crate) mod methods;
mod pod;
mod readiness;
mod totals;
mod window;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

pub(crate) use self::by_time::{Change, Serving, ServingChange};
use self::counts::Counts;
pub(crate) use self::pod::Tally;
pub(crate) use self::pod::{PodKind, PodStats};
use self::pod::{in_window, prune_window, push_recent};
#[cfg(test)]
pub(crate) use self::readiness::HUNG_FLOOR;
pub(crate) use self::readiness::PodState;
#[cfg(test)]
pub(crate) use self::window::RATE_WINDOW;
pub(crate) use self::window::{Clock, KEPT, Window};
use super::messages::Request;
use greet_proto::Mode;

/// Seconds of history in the RPS sparkline.
pub(crate) const SPARK_SECONDS: usize = 60;
/// Recent requests kept for the event tail.
pub(crate) const TAIL_LEN: usize = 200;
/// The most pods greet-top keeps: a gateway that names a new pod in every
/// event (hostile, or broken) cannot grow it without bound. Past it, a new
/// pod's requests count as unattributed; as many as one message may carry.
pub(crate) const MAX_TRACKED_PODS: usize = crate::observer_client::MAX_PODS;
/// A value that changed this recently is highlighted.
pub(crate) const HIGHLIGHT_FOR: Duration = Duration::from_millis(1000);

/// Jain's fairness index of `counts`: 1.0 when even, 1/n when one takes all.
/// `None` with fewer than two values or nothing counted.
pub(crate) fn jain_index(counts: &[f64]) -> Option<f64> {
    let sum: f64 = counts.iter().sum();
    let squares: f64 = counts.iter().map(|c| c * c).sum();
    if counts.len() < 2 || squares == 0.0 {
        return None;
    }
    Some(sum * sum / (counts.len() as f64 * squares))
}

/// Something that changed the traffic, marked on the chart at its second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark {
    /// The mode the gateways switched to.
    Mode(Mode),
    /// A pod went away.
    PodGone,
    /// A gateway's stream came back.
    Reconnected,
}

/// One completed request, for the tail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TailEntry {
    pub at: Instant,
    pub pod: String,
    pub mode: Option<Mode>,
    pub latency_us: u64,
    pub grpc_code: i32,
    pub error: String,
}

/// Everything the counters show; cloned to freeze the view.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Keyed by pod name (or IP when the name is unknown).
    pub pods: BTreeMap<String, PodStats>,
    /// Pods `r` forgot (gone at the reset), with each gateway's counts as of
    /// then: a gateway keeps reporting a dead pod's lifetime totals, which
    /// must never count again. Not shown; one comes back when it is listed
    /// again or serves new requests.
    forgotten: BTreeMap<String, PodStats>,
    /// Requests per whole second since the app's origin, for the sparkline.
    per_second: VecDeque<(u64, u64)>,
    /// Failed requests per whole second, the same way, for the chart.
    errors_per_second: VecDeque<(u64, u64)>,
    /// Mode switches, pods gone and reconnects by second, for the chart.
    marks: VecDeque<(u64, Mark)>,
    pub tail: VecDeque<TailEntry>,
    /// The tail holds a sample (summaries count), not every request.
    pub tail_sampled: bool,
    /// Requests by when they were counted, for the last [`KEPT`].
    recent: VecDeque<(Instant, Tally)>,
    window: Window,
    /// When each gateway's last snapshot or summary arrived: the next
    /// summary counts what happened since.
    summary_at: BTreeMap<String, Instant>,
    /// Failed requests no pod can be named for (sticky to a dead Service,
    /// no endpoints), per gateway: counted in totals, never shown as a pod.
    unattributed: BTreeMap<String, Counts>,
    /// The gateways' sticky targets (`host:port`).
    sticky_targets: BTreeSet<String>,
    /// Failures by code and requests by method, by time (by_time.rs).
    details: by_time::Details,
}

/// The `SPARK_SECONDS` values of `per_second` up to `now_second`, oldest
/// first (seconds before the start count 0).
fn series(per_second: &VecDeque<(u64, u64)>, now_second: u64) -> Vec<u64> {
    (0..SPARK_SECONDS as u64)
        .rev()
        .map(|back| {
            now_second.checked_sub(back).map_or(0, |s| {
                per_second
                    .iter()
                    .find(|(second, _)| *second == s)
                    .map_or(0, |(_, n)| *n)
            })
        })
        .collect()
}

/// Adds `n` to `second` of a per-second series, kept in order.
fn add_at(per_second: &mut VecDeque<(u64, u64)>, second: u64, n: u64) {
    if n == 0 {
        return;
    }
    match per_second.iter().rposition(|(s, _)| *s <= second) {
        Some(i) if per_second[i].0 == second => per_second[i].1 += n,
        Some(i) => per_second.insert(i + 1, (second, n)),
        None => per_second.push_front((second, n)),
    }
}

impl Stats {
    /// Requests counted since the last reset.
    pub fn total(&self) -> u64 {
        self.pods.values().map(PodStats::hits).sum::<u64>() + self.unattributed()
    }

    pub fn errors(&self) -> u64 {
        self.pods.values().map(PodStats::errors).sum::<u64>()
            + self.unattributed.values().map(Counts::errors).sum::<u64>()
    }

    /// Failed requests that named no pod.
    pub fn unattributed(&self) -> u64 {
        self.unattributed.values().map(Counts::hits).sum()
    }

    /// The window rates, shares, fairness and latency are over.
    pub fn time_window(&self) -> Window {
        self.window
    }

    pub(super) fn set_window(&mut self, window: Window) {
        self.window = window;
        for pod in self.pods.values_mut() {
            pod.set_window(window);
        }
    }

    /// Requests and failures in the window, unattributed ones included.
    pub fn window(&self, now: Instant) -> Tally {
        match self.window.span() {
            None => Tally {
                requests: self.total(),
                errors: self.errors(),
            },
            Some(span) => in_window(&self.recent, now, span),
        }
    }

    /// Requests per second over the window, after `observed_for` of counting.
    pub fn rps(&self, now: Instant, observed_for: Duration) -> f64 {
        self.window(now).requests as f64 / self.window.covered(observed_for).as_secs_f64()
    }

    /// Requests per second for the last `SPARK_SECONDS` seconds up to
    /// `now_second`, oldest first (seconds before the start count 0).
    pub fn spark(&self, now_second: u64) -> Vec<u64> {
        series(&self.per_second, now_second)
    }

    /// Failed requests per second, as [`Self::spark`].
    pub fn spark_errors(&self, now_second: u64) -> Vec<u64> {
        series(&self.errors_per_second, now_second)
    }

    /// The chart's marks for the `SPARK_SECONDS` seconds up to `now_second`,
    /// oldest first (`None` where nothing happened; a mode switch wins).
    pub fn spark_marks(&self, now_second: u64) -> Vec<Option<Mark>> {
        (0..SPARK_SECONDS as u64)
            .rev()
            .map(|back| {
                let second = now_second.checked_sub(back)?;
                let mut here = self.marks.iter().filter(|(s, _)| *s == second).map(|(_, m)| *m);
                let first = here.next()?;
                Some(here.fold(first, |kept, m| if matches!(m, Mark::Mode(_)) { m } else { kept }))
            })
            .collect()
    }

    pub(super) fn mark(&mut self, second: u64, mark: Mark) {
        self.marks.push_back((second, mark));
    }

    /// The pods that can take traffic: listed, not gone and not skipped by
    /// a balancer, or, when nothing lists pods, every pod that answered.
    pub fn live_pods(&self) -> impl Iterator<Item = &PodStats> {
        self.pods
            .values()
            .filter(|p| p.kind == PodKind::Pod && !p.gone && p.ready != Some(false) && p.skipped.is_none())
    }

    /// The pods the window's traffic is shared among, for SHARE and the
    /// verdict alike: every pod but the gone ones and the Service. (A gone
    /// pod keeps its row, but what it took before it went is no share of
    /// the traffic now.)
    pub fn sharing_pods(&self) -> impl Iterator<Item = &PodStats> {
        self.pods.values().filter(|p| p.kind == PodKind::Pod && !p.gone)
    }

    /// The requests in the window of the [`Self::sharing_pods`].
    pub fn shared_requests(&self, now: Instant) -> u64 {
        self.sharing_pods().map(|p| p.in_window(now)).sum()
    }

    /// `pod`'s share (0..=1) of the [`Self::shared_requests`]; `None` for a
    /// pod that takes no part (gone, the Service).
    pub fn share(&self, pod: &PodStats, now: Instant) -> Option<f64> {
        Self::share_of(pod, self.shared_requests(now), now)
    }

    /// [`Self::share`] with the shared requests already summed (a frame
    /// sums them once, not once per row).
    pub fn share_of(pod: &PodStats, shared: u64, now: Instant) -> Option<f64> {
        if pod.kind != PodKind::Pod || pod.gone {
            return None;
        }
        Some(if shared == 0 {
            0.0
        } else {
            pod.in_window(now) as f64 / shared as f64
        })
    }

    /// The pods a gateway's balancer skips, and why.
    pub fn skipped_pods(&self) -> impl Iterator<Item = &PodStats> {
        self.pods.values().filter(|p| !p.gone && p.skipped.is_some())
    }

    /// Jain's index over the live pods' requests in the rate window.
    pub fn fairness(&self, now: Instant) -> Option<f64> {
        let counts: Vec<f64> = self.live_pods().map(|p| p.in_window(now) as f64).collect();
        jain_index(&counts)
    }

    /// The live pod with the most requests in the window (then most hits).
    pub fn busiest(&self, now: Instant) -> Option<&PodStats> {
        self.live_pods().max_by_key(|p| (p.in_window(now), p.hits()))
    }

    /// Counts one request `gateway` reported in its raw stream.
    /// Counts one request of the raw stream; `carried_over` when it was
    /// routed in a mode the gateway has since left (it began before the
    /// switch and ended after it).
    pub(super) fn record(&mut self, gateway: &str, request: Request, clock: Clock, carried_over: bool) {
        let failed = request.grpc_code != 0;
        let pod_key = match self.attribute(&request.name, &request.endpoint, &request.ip) {
            Some(key) => {
                self.pod_mut(&key, &request.endpoint, &request.ip).record(
                    gateway,
                    clock.now,
                    clock.second(),
                    request.latency_us,
                    request.grpc_code,
                );
                key
            }
            None => {
                self.unattributed.entry(gateway.to_owned()).or_default().add(failed);
                String::new()
            }
        };
        push_recent(&mut self.recent, clock.now, Tally::one(failed));
        self.details.failed(&pod_key, clock.now, request.grpc_code, 1);
        if carried_over {
            self.details.carried_over(&pod_key, clock.now, Tally::one(failed));
        }
        self.add_to_second(clock.second(), Tally::one(failed));
        self.push_tail(pod_key, request, clock.now);
    }

    /// A sampled request: shown in the tail, not counted (summaries count).
    pub(super) fn sample(&mut self, request: Request, now: Instant) {
        // A sample still joins a name to the address dialled (renaming a pod
        // known only by it), so that failures there land on the named row.
        let pod_key = self.attribute(&request.name, &request.endpoint, &request.ip);
        if let Some(key) = &pod_key
            && self.pods.contains_key(key)
        {
            self.pod_mut(key, &request.endpoint, &request.ip);
        }
        let pod_key = pod_key.unwrap_or_default();
        self.tail_sampled = true;
        self.push_tail(pod_key, request, now);
    }

    fn push_tail(&mut self, pod: String, request: Request, now: Instant) {
        if self.tail.len() == TAIL_LEN {
            self.tail.pop_back();
        }
        self.tail.push_front(TailEntry {
            at: now,
            pod,
            mode: request.mode,
            latency_us: request.latency_us,
            grpc_code: request.grpc_code,
            error: request.error,
        });
    }

    /// `tally` more requests (and failures) counted in `second`.
    pub(super) fn add_to_second(&mut self, second: u64, tally: Tally) {
        add_at(&mut self.per_second, second, tally.requests);
        add_at(&mut self.errors_per_second, second, tally.errors);
    }

    /// Drops what slid out of the rate windows and refreshes cached percentiles.
    pub(super) fn tick(&mut self, now: Instant, now_second: u64) {
        for pod in self.pods.values_mut() {
            pod.prune(now, now_second);
            pod.refresh_percentiles();
        }
        prune_window(&mut self.recent, now);
        self.details.prune(now);
        let first = now_second.saturating_sub(SPARK_SECONDS as u64);
        for series in [&mut self.per_second, &mut self.errors_per_second] {
            while series.front().is_some_and(|(s, _)| *s < first) {
                series.pop_front();
            }
        }
        while self.marks.front().is_some_and(|(s, _)| *s < first) {
            self.marks.pop_front();
        }
    }

    /// Counters restart at zero; gone pods are forgotten (not shown, and
    /// what the gateways counted for them before never counts again).
    pub(super) fn reset(&mut self) {
        for pod in self.pods.values_mut() {
            pod.reset();
        }
        let (gone, kept) = std::mem::take(&mut self.pods).into_iter().partition(|(_, p)| p.gone);
        self.pods = kept;
        self.forgotten.extend::<BTreeMap<String, PodStats>>(gone);
        // Bounded as the pods are (a flood of names, reset after reset).
        while self.forgotten.len() > MAX_TRACKED_PODS {
            self.forgotten.pop_first();
        }
        self.unattributed.values_mut().for_each(Counts::reset);
        self.per_second.clear();
        self.errors_per_second.clear();
        self.marks.clear();
        self.tail.clear();
        self.recent.clear();
        self.details.clear();
    }
}

#[cfg(test)]
mod tests;
