//! One pod's counters: hits and errors per gateway, the requests in the rate
//! window for its rate, and its latency histograms for p50/p99 (over the
//! rate window on screen, since the last reset in `--once`).

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use super::counts::Counts;
use super::methods::ByMethod;
use super::{KEPT, Window};
use crate::state::messages::PodInfo;
use greet_proto::grpc_code::is_client_error;
use greet_proto::latency_buckets::{self, bucket_of, merge_into};

mod recent;
pub(in crate::state) use recent::{in_window, prune_window, push_recent};

/// Requests and how many of them failed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Tally {
    pub requests: u64,
    pub errors: u64,
}

impl Tally {
    pub(super) fn one(failed: bool) -> Self {
        Tally {
            requests: 1,
            errors: u64::from(failed),
        }
    }

    fn add(self, other: Tally) -> Tally {
        Tally {
            requests: self.requests + other.requests,
            errors: self.errors + other.errors,
        }
    }
}

/// What a row is: a pod, or the Service address sticky mode dials (a
/// gateway's endpoint list can name it; it is not a pod and never shares
/// in the spread).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PodKind {
    #[default]
    Pod,
    Service,
}

impl PodKind {
    /// "pod" or "service", for reports.
    pub fn as_str(self) -> &'static str {
        match self {
            PodKind::Pod => "pod",
            PodKind::Service => "service",
        }
    }
}

#[derive(Clone, Debug)]
pub struct PodStats {
    /// Its name, or its address while no reply or listing has named it.
    pub name: String,
    pub ip: String,
    /// The address (`host:port`) a gateway dials for it, from the endpoint
    /// lists or the replies; empty when unknown (pods of one host share an
    /// IP, so this is what joins a skip or a failure to the pod).
    pub endpoint: String,
    pub kind: PodKind,
    /// `None` when no pod source has listed it (seen only in requests).
    pub ready: Option<bool>,
    /// Listed once, no longer: shown as gone instead of dropped.
    pub gone: bool,
    /// Why a gateway's balancer skips it; `None` when none does.
    pub skipped: Option<String>,
    /// Why a gateway's health check of it fails ("connection refused");
    /// `None` while they pass or none has run.
    pub down: Option<String>,
    /// Which family of its own metrics its numbers come from (pods' metrics view).
    pub metrics_family: Option<String>,
    /// A gateway routes to it while it terminates (no pod of the Service is ready).
    pub serving_terminating: bool,
    /// Failed requests by gRPC code since the reset (a summary that follows
    /// a snapshot adds its errors to the count but not here).
    pub error_codes: BTreeMap<i32, u64>,
    /// Requests by method since the reset, as summaries report them.
    pub methods: ByMethod,
    /// What the pod source says beyond readiness (kube).
    pub info: Option<PodInfo>,
    pub(super) by_gateway: BTreeMap<String, Counts>,
    /// Requests by when they were counted, for the last [`KEPT`]: one
    /// entry per raw event, or a summary's difference per summary.
    pub(super) recent: VecDeque<(Instant, Tally)>,
    /// The callers' errors among them (a code [`is_client_error`] says is
    /// theirs), by when they were counted: they do not make the pod failing.
    client_recent: VecDeque<(Instant, Tally)>,
    /// Latency histograms per whole second since the origin, for the last [`KEPT`].
    pub(super) latency_window: VecDeque<(u64, Vec<u64>)>,
    /// The window `in_window` and `latency_ms` are over (the view's).
    window: Window,
    /// The newest whole second seen (a count or a tick): the latency window ends there.
    latest_second: u64,
    /// Latency histogram since the last reset.
    latency_total: Vec<u64>,
    /// p50 and p99 of the window, refreshed by [`super::Stats::tick`] so a
    /// frame does not merge every pod's histograms.
    percentiles_us: Option<(f64, f64)>,
    percentiles_stale: bool,
    pub last_hit: Option<Instant>,
    pub changed_at: Option<Instant>,
    /// Each gateway's gauges for it (in flight, connections), from its
    /// latest summary.
    pub(super) gauges: super::readiness::GaugesByGateway,
}

impl PodStats {
    pub(super) fn new(name: String, ip: String) -> Self {
        PodStats {
            name,
            ip,
            endpoint: String::new(),
            kind: PodKind::Pod,
            ready: None,
            gone: false,
            skipped: None,
            down: None,
            metrics_family: None,
            serving_terminating: false,
            error_codes: BTreeMap::new(),
            methods: ByMethod::new(),
            info: None,
            by_gateway: BTreeMap::new(),
            recent: VecDeque::new(),
            client_recent: VecDeque::new(),
            latency_window: VecDeque::new(),
            window: Window::default(),
            latest_second: 0,
            latency_total: Vec::new(),
            percentiles_us: None,
            percentiles_stale: false,
            last_hit: None,
            changed_at: None,
            gauges: Default::default(),
        }
    }

    /// No reply or listing has named it yet: its name is its address.
    pub fn unnamed(&self) -> bool {
        self.name == self.ip || (!self.endpoint.is_empty() && self.name == self.endpoint)
    }

    pub fn hits(&self) -> u64 {
        self.by_gateway.values().map(Counts::hits).sum()
    }

    pub fn errors(&self) -> u64 {
        self.by_gateway.values().map(Counts::errors).sum()
    }

    /// Successful share of its requests; `None` before its first.
    pub fn success_rate(&self) -> Option<f64> {
        let hits = self.hits();
        (hits > 0).then(|| hits.saturating_sub(self.errors()) as f64 / hits as f64)
    }

    pub(super) fn windowed(mut self, window: Window) -> Self {
        self.set_window(window);
        self
    }

    pub(super) fn set_window(&mut self, window: Window) {
        self.window = window;
        self.percentiles_stale = true;
    }

    fn tally(&self, now: Instant) -> Tally {
        match self.window.span() {
            None => Tally {
                requests: self.hits(),
                errors: self.errors(),
            },
            Some(span) => in_window(&self.recent, now, span),
        }
    }

    /// Requests in the window ending at `now`.
    pub fn in_window(&self, now: Instant) -> u64 {
        self.tally(now).requests
    }

    /// Failed requests in the window ending at `now`.
    pub fn errors_in_window(&self, now: Instant) -> u64 {
        self.tally(now).errors
    }

    /// Latency percentile (0..=100) over the window, in milliseconds.
    /// p50 and p99 come from the cache while it is fresh.
    pub fn latency_ms(&self, percentile: f64) -> Option<f64> {
        let cached = match (self.percentiles_stale, self.percentiles_us) {
            (false, Some((p50, _))) if percentile == 50.0 => Some(p50),
            (false, Some((_, p99))) if percentile == 99.0 => Some(p99),
            _ => latency_buckets::percentile_us(&self.window_histogram(), percentile),
        };
        cached.map(|us| us / 1000.0)
    }

    /// Latency percentile (0..=100) since the last reset, in milliseconds.
    pub fn latency_since_reset_ms(&self, percentile: f64) -> Option<f64> {
        latency_buckets::percentile_us(&self.latency_total, percentile).map(|us| us / 1000.0)
    }

    fn window_histogram(&self) -> Vec<u64> {
        let Some(span) = self.window.span() else {
            return self.latency_total.clone();
        };
        let first = self.latest_second.saturating_sub(span.as_secs() - 1);
        let mut merged = Vec::new();
        for (_, counts) in self.latency_window.iter().filter(|(s, _)| *s >= first) {
            merge_into(&mut merged, counts);
        }
        merged
    }

    pub(super) fn refresh_percentiles(&mut self) {
        if self.percentiles_stale {
            let merged = self.window_histogram();
            let p50 = latency_buckets::percentile_us(&merged, 50.0);
            let p99 = latency_buckets::percentile_us(&merged, 99.0);
            self.percentiles_us = p50.zip(p99);
            self.percentiles_stale = false;
        }
    }

    /// One request from the raw stream.
    pub(super) fn record(&mut self, gateway: &str, now: Instant, second: u64, latency_us: u64, grpc_code: i32) {
        let failed = grpc_code != 0;
        if failed {
            *self.error_codes.entry(grpc_code).or_default() += 1;
        }
        match self.by_gateway.get_mut(gateway) {
            Some(counts) => counts.add(failed),
            None => self.by_gateway.entry(gateway.to_owned()).or_default().add(failed),
        }
        // On the stack: the raw stream calls this for every request.
        let bucket = bucket_of(latency_us);
        let mut one = [0; latency_buckets::BUCKETS];
        one[bucket] = 1;
        self.counted(now, second, Tally::one(failed), &one[..=bucket]);
        if is_client_error(grpc_code) {
            push_recent(&mut self.client_recent, now, Tally { requests: 0, errors: 1 });
        }
    }

    /// The callers' errors among failures a summary added at `now`.
    pub(super) fn client_errors_counted(&mut self, now: Instant, codes: &BTreeMap<i32, u64>) {
        let errors: u64 = codes.iter().filter(|(c, _)| is_client_error(**c)).map(|(_, n)| n).sum();
        if errors > 0 {
            push_recent(&mut self.client_recent, now, Tally { requests: 0, errors });
        }
    }

    /// The callers' errors in the window ending at `now`.
    pub fn client_errors_in_window(&self, now: Instant) -> u64 {
        match self.window.span() {
            None => self
                .error_codes
                .iter()
                .filter(|(c, _)| is_client_error(**c))
                .map(|(_, n)| n)
                .sum(),
            Some(span) => in_window(&self.client_recent, now, span).errors,
        }
    }

    /// `requests` more, with these latencies, counted at `now` (in whole
    /// `second` since the origin).
    pub(super) fn counted(&mut self, now: Instant, second: u64, tally: Tally, latencies: &[u64]) {
        self.latest_second = self.latest_second.max(second);
        if tally.requests == 0 {
            return;
        }
        match self.latency_window.back_mut() {
            Some((s, counts)) if *s == second => merge_into(counts, latencies),
            _ => self.latency_window.push_back((second, latencies.to_vec())),
        }
        merge_into(&mut self.latency_total, latencies);
        self.percentiles_stale = true;
        push_recent(&mut self.recent, now, tally);
        self.last_hit = Some(now);
        self.changed_at = Some(now);
    }

    pub(super) fn prune(&mut self, now: Instant, now_second: u64) {
        prune_window(&mut self.recent, now);
        prune_window(&mut self.client_recent, now);
        if now_second > self.latest_second {
            self.latest_second = now_second;
            self.percentiles_stale = true;
        }
        let first = now_second.saturating_sub(KEPT.as_secs() - 1);
        let before = self.latency_window.len();
        while self.latency_window.front().is_some_and(|(s, _)| *s < first) {
            self.latency_window.pop_front();
        }
        if self.latency_window.len() != before {
            self.percentiles_stale = true;
        }
    }

    /// Takes in `other`, a row found to be this pod (listed by its address,
    /// then named by its replies): its counts, its history and its listing.
    pub(super) fn absorb(&mut self, other: PodStats) {
        for (gateway, counts) in other.by_gateway {
            self.by_gateway.entry(gateway).or_default().absorb(counts);
        }
        self.add_error_codes(&other.error_codes);
        super::methods::add(&mut self.methods, &other.methods);
        self.recent.extend(other.recent);
        self.recent.make_contiguous().sort_by_key(|(at, _)| *at);
        self.client_recent.extend(other.client_recent);
        self.client_recent.make_contiguous().sort_by_key(|(at, _)| *at);
        for (second, counts) in other.latency_window {
            match self.latency_window.iter_mut().find(|(s, _)| *s == second) {
                Some((_, mine)) => merge_into(mine, &counts),
                None => self.latency_window.push_back((second, counts)),
            }
        }
        self.latency_window.make_contiguous().sort_by_key(|(s, _)| *s);
        merge_into(&mut self.latency_total, &other.latency_total);
        self.percentiles_stale = true;
        self.latest_second = self.latest_second.max(other.latest_second);
        self.last_hit = self.last_hit.max(other.last_hit);
        self.changed_at = self.changed_at.max(other.changed_at);
        if self.ready.is_none() {
            self.ready = other.ready;
            self.gone = other.gone;
        }
        self.skipped = self.skipped.take().or(other.skipped);
        self.down = self.down.take().or(other.down);
        self.serving_terminating |= other.serving_terminating;
        if self.endpoint.is_empty() {
            self.endpoint = other.endpoint;
        }
        if self.ip.is_empty() {
            self.ip = other.ip;
        }
    }

    /// Failures by code that a summary added.
    pub(super) fn add_error_codes(&mut self, codes: &BTreeMap<i32, u64>) {
        for (code, n) in codes {
            *self.error_codes.entry(*code).or_default() += n;
        }
    }

    pub(super) fn reset(&mut self) {
        self.error_codes.clear();
        self.methods.clear();
        self.by_gateway.values_mut().for_each(Counts::reset);
        self.latency_window.clear();
        self.latency_total.clear();
        self.percentiles_us = None;
        self.percentiles_stale = false;
        self.recent.clear();
        self.client_recent.clear();
        self.last_hit = None;
        self.changed_at = None;
        // The seconds restart with the view's origin: a latency window that
        // ended at the old second would hold nothing until the clock got back there.
        self.latest_second = 0;
    }
}

#[cfg(test)]
mod tests;
