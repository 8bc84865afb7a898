//! STUCK, UNEVEN, EVEN and SLOW: how the judged span's requests spread
//! over the pods that can take traffic, and whether one of them is much
//! slower than the rest.

use super::span::Span;
use super::words::Words;
use super::{Diagnosis, MIN_REQUESTS, Severity, Verdict};
use crate::state::stats::{PodStats, Stats, jain_index};
use greet_proto::Mode;

/// One pod with at least this share of the span's requests is "stuck".
const STUCK_SHARE: f64 = 0.9;
/// Jain's index from which the spread counts as even.
const EVEN_FAIRNESS: f64 = 0.9;
/// A pod is slow when its p99 is at least this many times the median of
/// the other pods' p99...
const SLOW_FACTOR: f64 = 3.0;
/// ...and at least this many milliseconds (below it, nobody waits).
const SLOW_FLOOR_MS: f64 = 5.0;
/// ...and its median at least this many times the others' median: a long
/// tail alone (one request in thirty held up on a busy node) is noise, a
/// pod every caller waits on is slow.
const SLOW_P50_FACTOR: f64 = 2.0;
/// Fewer requests than this to a pod say nothing about its p99.
const SLOW_MIN_REQUESTS: u64 = 5;

/// A pod much slower than the others: its name, its p99 and the others'.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Slow<'s> {
    name: &'s str,
    p99_ms: f64,
    others_ms: f64,
}

/// The live pod whose p99 over the span is ≥ [`SLOW_FACTOR`] × the
/// median of the other live pods' (and ≥ [`SLOW_FLOOR_MS`]); the slowest
/// when several are.
pub(super) fn slow<'s>(stats: &'s Stats, span: &Span) -> Option<Slow<'s>> {
    let timed: Vec<(&PodStats, f64, f64)> = stats
        .live_pods()
        .filter(|p| span.pod(p).requests >= SLOW_MIN_REQUESTS)
        .filter_map(|p| Some((p, span.percentile_ms(p, 99.0)?, span.percentile_ms(p, 50.0)?)))
        .collect();
    timed
        .iter()
        .filter_map(|(pod, p99, p50)| {
            let others = || timed.iter().filter(|(other, _, _)| other.name != pod.name);
            let others_p99 = median(others().map(|(_, p99, _)| *p99).collect())?;
            let others_p50 = median(others().map(|(_, _, p50)| *p50).collect())?;
            let slow =
                *p99 >= SLOW_FLOOR_MS && *p99 >= SLOW_FACTOR * others_p99 && *p50 >= SLOW_P50_FACTOR * others_p50;
            slow.then_some(Slow {
                name: pod.name.as_str(),
                p99_ms: *p99,
                others_ms: others_p99,
            })
        })
        .max_by(|a, b| a.p99_ms.total_cmp(&b.p99_ms))
}

/// The median of `values`; `None` with none.
fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => None,
        n if n % 2 == 1 => Some(values[n / 2]),
        n => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
    }
}

impl Slow<'_> {
    /// "…-9hlbq is 70× slower (p99 70 ms vs 1.0 ms)".
    fn slower(&self) -> Words {
        let times = self.p99_ms / self.others_ms.max(f64::MIN_POSITIVE);
        Words::default()
            .name(self.name)
            .text(format!(" is {times:.0}× slower"))
            .clause(3, |w| {
                w.text(format!(" (p99 {} vs {})", ms(self.p99_ms), ms(self.others_ms)))
            })
    }
}

/// Milliseconds as the verdict writes them: "70 ms", "1.4 ms".
fn ms(value: f64) -> String {
    if value >= 10.0 {
        format!("{value:.0} ms")
    } else {
        format!("{value:.1} ms")
    }
}

/// What to do when no mode spreads the traffic: a key away behind our
/// gateway; a change in the clients for a workload greet-top only watches.
pub(super) const PRESS_M: &str = " — press m to balance";
pub(super) const FIX_THE_CLIENTS: &str =
    " — its clients hold long-lived connections: balance per request in them, or cap connection age";

/// How the span's requests spread over the live pods, with a slow pod
/// named; `None` with fewer than two live pods or too few requests.
/// `advice` is the action for traffic held on one pod.
pub(super) fn spread(mode: Option<Mode>, stats: &Stats, span: &Span, advice: &'static str) -> Option<Diagnosis> {
    let live: Vec<(&PodStats, u64)> = stats.live_pods().map(|p| (p, span.pod(p).requests)).collect();
    let total: u64 = live.iter().map(|(_, n)| n).sum();
    if live.len() < 2 || total < MIN_REQUESTS {
        return None;
    }
    let counts: Vec<f64> = live.iter().map(|(_, n)| *n as f64).collect();
    let fairness = jain_index(&counts)?;
    let (top, top_n) = live
        .iter()
        .max_by(|(a, na), (b, nb)| na.cmp(nb).then_with(|| b.name.cmp(&a.name)))
        .copied()?;
    let share = 100.0 * top_n as f64 / total as f64;
    let idle: Vec<&str> = live
        .iter()
        .filter(|(_, n)| *n == 0)
        .map(|(p, _)| p.name.as_str())
        .collect();
    let slow = slow(stats, span);
    let slower = |words: Words| match &slow {
        Some(slow) => words.clause(3, |w| w.text("; ").then(slow.slower())),
        None => words,
    };
    let window = span.words();
    // Per request (balanced, least-loaded, dns): named in the verdict.
    let balanced = mode.filter(|m| *m != Mode::Sticky);
    let fairness_words = Words::default()
        .text(format!("fairness {fairness:.2}"))
        .then(window.clone());
    let least_loaded_avoids = slow
        .as_ref()
        .filter(|slow| balanced == Some(Mode::LeastLoaded) && slow.name != top.name);
    if let Some(slow) = least_loaded_avoids {
        // Least-loaded sends less to a slower pod on purpose, even nearly
        // nothing: the slow pod is the news, not the spread.
        let words = Words::new("SLOW: ")
            .name(slow.name)
            .text(format!(
                " p99 {} vs {} for the others",
                ms(slow.p99_ms),
                ms(slow.others_ms)
            ))
            .clause(1, |w| w.text(" — least-loaded sends it less"))
            .clause(2, |w| w.text("; ").then(fairness_words.clone()));
        return Some(Diagnosis::new(Verdict::Slow, Severity::Neutral, words));
    }
    if share >= STUCK_SHARE * 100.0 {
        let words = match balanced {
            Some(mode) => Words::new(format!("UNEVEN while {mode}: {share:.0} % on "))
                .name(top.name.as_str())
                .then(window)
                .then(nothing_for(&idle)),
            None => Words::new("STUCK")
                .hint(advice)
                .text(format!(": {share:.0} % on "))
                .name(top.name.as_str())
                .then(window),
        };
        let verdict = if balanced.is_some() {
            Verdict::Uneven
        } else {
            Verdict::Stuck
        };
        return Some(Diagnosis::new(verdict, Severity::Bad, slower(words)));
    }
    if fairness < EVEN_FAIRNESS {
        let takes = |words: Words| {
            words.clause(1, |w| {
                w.text("; ")
                    .name(top.name.as_str())
                    .text(format!(" takes {share:.0} %"))
            })
        };
        let (verdict, severity, words) = match balanced {
            // Least-loaded sends less to a slower pod on purpose: worth a look, no alarm.
            Some(Mode::LeastLoaded) => (
                Verdict::Steered,
                Severity::Neutral,
                takes(
                    Words::new("UNEVEN on purpose")
                        .clause(1, |w| w.text(": least-loaded favours the faster pods"))
                        .text("; ")
                        .then(fairness_words),
                ),
            ),
            // dns mode keeps to the last DNS answer: a new pod waits for the next resolve.
            Some(Mode::Dns) => (
                Verdict::Steered,
                Severity::Neutral,
                Words::new("UNEVEN on purpose")
                    .clause(1, |w| w.text(": dns mode routes by the last DNS answer"))
                    .then(nothing_for(&idle))
                    .text("; ")
                    .then(fairness_words),
            ),
            Some(_) => (
                Verdict::Uneven,
                Severity::Warning,
                takes(Words::new("UNEVEN while balanced: ").then(fairness_words)).then(nothing_for(&idle)),
            ),
            None => (
                Verdict::Uneven,
                Severity::Warning,
                takes(Words::new("UNEVEN").hint(advice).text(": ").then(fairness_words)),
            ),
        };
        return Some(Diagnosis::new(verdict, severity, slower(words)));
    }
    let even = Words::new(format!("EVEN: {} pods, ", live.len())).then(fairness_words);
    Some(match slow {
        Some(slow) => {
            // The slow pod is the news: the fairness can go for room.
            let even = Words::new(format!("EVEN: {} pods", live.len()))
                .clause(2, |w| w.text(format!(", fairness {fairness:.2}")))
                .then(span.words());
            Diagnosis::new(
                Verdict::Slow,
                Severity::Warning,
                even.text(", but ").then(slow.slower()),
            )
        }
        None => Diagnosis::new(Verdict::Even, Severity::Good, even),
    })
}

/// "; p1, p3 receive nothing" for the live pods that got nothing.
fn nothing_for(idle: &[&str]) -> Words {
    if idle.is_empty() {
        return Words::default();
    }
    let verb = if idle.len() == 1 {
        " receives nothing"
    } else {
        " receive nothing"
    };
    Words::default().clause(2, |w| w.text("; ").names(idle.iter().copied()).text(verb))
}
