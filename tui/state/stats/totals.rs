//! A gateway's totals (snapshots, cumulative summaries) folded into the
//! counters: they replace its share, their growth feeds the windows.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::counts::Counts;
use super::methods::{self, ByMethod};
use super::pod::push_recent;
use super::{Clock, SPARK_SECONDS, Stats, Tally};
use crate::state::messages::PodTotals;
use greet_proto::latency_buckets::merge_into;

impl Stats {
    /// `gateway`'s cumulative counters replace its share; what they counted
    /// since its last snapshot or summary enters the rates, the latency
    /// window and the per-second series, spread over the time it took.
    pub(in crate::state) fn apply_summary(&mut self, gateway: &str, totals: Vec<PodTotals>, clock: Clock) {
        // Several totals can land on one entry (a pod named in one, known by
        // its IP in another): they add up.
        let mut by_key: BTreeMap<Option<String>, PodTotals> = BTreeMap::new();
        for pod in totals {
            let key = self.attribute(&pod.name, &pod.endpoint, &pod.ip);
            let entry = by_key.entry(key).or_insert_with(|| PodTotals {
                ip: pod.ip.clone(),
                endpoint: pod.endpoint.clone(),
                latency_buckets: Some(Vec::new()),
                ..PodTotals::default()
            });
            entry.requests += pod.requests;
            entry.errors += pod.errors;
            entry.carried_over.requests += pod.carried_over.requests;
            entry.carried_over.errors += pod.carried_over.errors;
            for (code, n) in &pod.error_codes {
                *entry.error_codes.entry(*code).or_default() += n;
            }
            methods::add(&mut entry.methods, &pod.methods);
            super::readiness::add_gauges(&mut entry.gauges, pod.gauges);
            if let (Some(into), Some(from)) = (entry.latency_buckets.as_mut(), pod.latency_buckets.as_deref()) {
                merge_into(into, from);
            }
        }
        // Gauges are the latest summary's: a pod it leaves out holds nothing.
        for pod in self.pods.values_mut() {
            pod.set_gauges(gateway, None);
        }
        let mut counted = Tally::default();
        let mut revived = Vec::new();
        for (key, pod) in by_key {
            let delta = match &key {
                Some(key) => {
                    // A forgotten pod's totals only move its baseline on.
                    if self.unforget(key) {
                        revived.push(key.clone());
                    }
                    let forgotten = revived.last() == Some(key);
                    let stats = self.pod_mut(key, &pod.endpoint, &pod.ip);
                    stats.set_gauges(gateway, pod.gauges);
                    let counts = stats.by_gateway.entry(gateway.to_owned()).or_default();
                    let by_method = counts.advance_methods(&pod);
                    let carried_over = counts.advance_carried_over(&pod);
                    let (delta, latencies, codes) = counts.advance(&pod);
                    stats.counted(clock.now, clock.second(), delta, &latencies);
                    stats.add_error_codes(&codes);
                    stats.client_errors_counted(clock.now, &codes);
                    methods::add(&mut stats.methods, &by_method);
                    if forgotten {
                        Tally::default()
                    } else {
                        self.details.failed_by_code(key, clock.now, &codes);
                        self.details.called(key, clock.now, &by_method);
                        self.details.carried_over(key, clock.now, carried_over);
                        delta
                    }
                }
                None => {
                    let counts = self.unattributed.entry(gateway.to_owned()).or_default();
                    let carried_over = counts.advance_carried_over(&pod);
                    let (delta, _, codes) = counts.advance(&pod);
                    self.details.failed_by_code("", clock.now, &codes);
                    self.details.carried_over("", clock.now, carried_over);
                    delta
                }
            };
            counted.requests += delta.requests;
            counted.errors += delta.errors;
        }
        self.forget_again(revived);
        let since = self.summary_at.insert(gateway.to_owned(), clock.now);
        if counted.requests > 0 {
            push_recent(&mut self.recent, clock.now, counted);
            self.spread_over_seconds(since.unwrap_or(clock.now), counted, clock);
        }
    }

    /// Adds `counted` (requests and failures) counted between `since` and
    /// `clock.now` to the per-second series, each second getting its share
    /// of the span.
    fn spread_over_seconds(&mut self, since: Instant, counted: Tally, clock: Clock) {
        let oldest = clock.now.checked_sub(Duration::from_secs(SPARK_SECONDS as u64));
        let since = since.max(clock.origin).max(oldest.unwrap_or(since));
        let span = clock.now.saturating_duration_since(since).as_secs_f64();
        let (first, last) = (clock.second_of(since), clock.second());
        if span <= 0.0 {
            self.add_to_second(last, counted);
            return;
        }
        // Shares by cumulative rounding, so they add up to exactly the counts.
        let upto = |n: u64, end: Instant| {
            let share = (n as f64 * end.saturating_duration_since(since).as_secs_f64() / span).round() as u64;
            share.min(n)
        };
        let mut given = Tally::default();
        for second in first..=last {
            let end = if second == last {
                clock.now
            } else {
                clock.origin + Duration::from_secs(second + 1)
            };
            let share = Tally {
                requests: upto(counted.requests, end).saturating_sub(given.requests),
                errors: upto(counted.errors, end).saturating_sub(given.errors),
            };
            given.requests += share.requests;
            given.errors += share.errors;
            self.add_to_second(second, share);
        }
    }

    /// `gateway` restarted: its counts so far are kept, its next totals add to them.
    pub(in crate::state) fn carry_over(&mut self, gateway: &str) {
        let contributions = self
            .pods
            .values_mut()
            .chain(self.forgotten.values_mut())
            .filter_map(|pod| pod.by_gateway.get_mut(gateway))
            .chain(self.unattributed.get_mut(gateway));
        contributions.for_each(Counts::carry_over);
    }

    /// `gateway`'s totals replace what it contributed before: they include
    /// whatever this view missed while disconnected. With `from_here` they
    /// count as already seen (counting starts now).
    pub(in crate::state) fn replace_totals(
        &mut self,
        gateway: &str,
        totals: &[PodTotals],
        from_here: bool,
        now: Instant,
    ) {
        self.summary_at.insert(gateway.to_owned(), now);
        // A snapshot carries no gauges: the ones before it are stale.
        for pod in self.pods.values_mut() {
            pod.set_gauges(gateway, None);
        }
        // Requests by method before these totals, to add what they add.
        let methods_before: BTreeMap<String, Option<ByMethod>> = self
            .pods
            .iter_mut()
            .filter_map(|(key, pod)| Some((key.clone(), pod.by_gateway.get_mut(gateway)?.methods_seen.take())))
            .collect();
        let contributions = self
            .pods
            .values_mut()
            .chain(self.forgotten.values_mut())
            .filter_map(|pod| pod.by_gateway.get_mut(gateway))
            .chain(self.unattributed.get_mut(gateway));
        for counts in contributions {
            counts.total = 0;
            counts.errors = 0;
            counts.forget_histograms();
        }
        let mut attributed = std::collections::BTreeSet::new();
        let mut revived = Vec::new();
        for pod in totals {
            let key = self.attribute(&pod.name, &pod.endpoint, &pod.ip);
            if let Some(key) = &key
                && self.unforget(key)
            {
                revived.push(key.clone());
            }
            let counts = match &key {
                Some(key) => self
                    .pod_mut(key, &pod.endpoint, &pod.ip)
                    .by_gateway
                    .entry(gateway.to_owned())
                    .or_default(),
                None => self.unattributed.entry(gateway.to_owned()).or_default(),
            };
            // Several totals can land on one entry (a pod named in one, known
            // by its IP in another): they add up.
            counts.total += pod.requests;
            counts.errors += pod.errors;
            // A gateway that names no method for requests it counted (one built
            // before the gRPC ingress) gives no baseline.
            if !pod.methods.is_empty() || pod.requests == 0 {
                methods::add(counts.methods_seen.get_or_insert_default(), &pod.methods);
            }
            if from_here {
                counts.reset();
            }
            attributed.extend(key);
        }
        self.forget_again(revived);
        if from_here {
            return;
        }
        for key in attributed {
            let Some(pod) = self.pods.get_mut(&key) else { continue };
            let seen = pod.by_gateway.get(gateway).and_then(|c| c.methods_seen.as_ref());
            let before = methods_before.get(&key).cloned().flatten().unwrap_or_default();
            let added = methods::difference(seen.unwrap_or(&ByMethod::new()), &before);
            methods::add(&mut pod.methods, &added);
        }
    }
}
