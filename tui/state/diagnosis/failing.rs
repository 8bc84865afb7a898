//! Failures in the judged span: the pods' (FAILING) apart from the
//! callers' (client errors, which another pod would answer the same), where
//! they happened, and whether they have stopped.

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::span::Span;
use super::words::Words;
use super::{Judged, MIN_REQUESTS, seconds};
use crate::state::stats::Stats;
use greet_proto::grpc_code::{grpc_code_name, is_client_error};

/// Failures stopped when none came for this long (and requests succeeded
/// since): the verdict then says when they stopped instead of FAILING.
pub(crate) const RECOVERED_AFTER: Duration = Duration::from_secs(3);

/// The span's failures, sorted out.
#[derive(Clone, Debug, Default)]
pub(super) struct Failures<'s> {
    pub judged: Judged,
    /// Pods with failures of their own: name, how many, the commonest code.
    pods: Vec<(&'s str, u64, Option<i32>)>,
    /// The pods' failures that named no pod.
    unattributed: u64,
    /// The callers' errors by code.
    client: BTreeMap<i32, u64>,
}

/// The failures in `span`.
pub(super) fn count<'s>(stats: &'s Stats, span: &Span) -> Failures<'s> {
    let tally = span.tally(stats);
    let codes = span.codes(stats);
    let client_of = |codes: &BTreeMap<i32, u64>| -> u64 {
        codes.iter().filter(|(c, _)| is_client_error(**c)).map(|(_, n)| n).sum()
    };
    let mut client = BTreeMap::new();
    for (code, n) in codes.values().flatten().filter(|(c, _)| is_client_error(**c)) {
        *client.entry(*code).or_default() += n;
    }
    let client_errors = client.values().sum::<u64>().min(tally.errors);
    let mut pods = Vec::new();
    for (key, pod) in &stats.pods {
        let theirs = codes.get(key.as_str());
        let own = span.pod(pod).errors.saturating_sub(theirs.map_or(0, client_of));
        if own == 0 {
            continue;
        }
        let main = theirs.and_then(|codes| {
            codes
                .iter()
                .filter(|(c, _)| !is_client_error(**c))
                .max_by_key(|(c, n)| (**n, Reverse(**c)))
                .map(|(c, _)| *c)
        });
        pods.push((pod.name.as_str(), own, main));
    }
    pods.sort_by(|(a, ea, _), (b, eb, _)| eb.cmp(ea).then_with(|| a.cmp(b)));
    let pod_failures = tally.errors - client_errors;
    let named: u64 = pods.iter().map(|(_, n, _)| n).sum();
    Failures {
        judged: Judged {
            requests: tally.requests,
            pod_failures,
            client_errors,
        },
        pods,
        unattributed: pod_failures.saturating_sub(named),
        client,
    }
}

/// When the pods' newest failure was counted.
pub(super) fn last_failure(stats: &Stats) -> Option<Instant> {
    // A failure whose code is unknown (the first summary after a
    // snapshot) counts as the pods' too.
    stats
        .last_failure(|c| !is_client_error(c))
        .or_else(|| stats.last_error())
}

/// The pods' failures in `span` have stopped: the newest is at least
/// [`RECOVERED_AFTER`] old and requests have succeeded since.
pub(super) fn stopped(stats: &Stats, span: &Span) -> bool {
    let Some(last) = last_failure(stats) else {
        return true;
    };
    let since = stats.tally_since(last, span.at);
    span.at.saturating_duration_since(last) >= RECOVERED_AFTER
        && since.requests.saturating_sub(since.errors) >= MIN_REQUESTS
}

impl Failures<'_> {
    /// "FAILING: 6 of 36 requests failed over the last 10 s (p2 5 UNAVAILABLE, 1 naming no pod)".
    pub(super) fn failing(&self, span: &Span, hint: Option<&str>) -> Words {
        let mut words = Words::new("FAILING");
        if let Some(hint) = hint {
            words = words.hint(hint);
        }
        words = words
            .text(format!(": {}", self.judged.pod_failures))
            .clause(1, |w| w.text(format!(" of {}", self.judged.requests)))
            .clause(2, |w| w.text(" requests"))
            .text(" failed")
            .then(span.words())
            .text(" (");
        let mut first = true;
        let mut sep = |words: Words| {
            let words = if first { words } else { words.text(", ") };
            first = false;
            words
        };
        for (name, n, code) in self.pods.iter().take(2) {
            words = sep(words).name(name).text(format!(" {n}"));
            if let Some(code) = code {
                words = words.clause(1, |w| w.text(format!(" {}", grpc_code_name(*code))));
            }
        }
        if self.pods.len() > 2 {
            words = sep(words).text(format!("{} more pods", self.pods.len() - 2));
        }
        if self.unattributed > 0 {
            words = sep(words).text(format!("{} naming no pod", self.unattributed));
        }
        words = words.text(")");
        if self.judged.client_errors > 0 {
            let client = self.client_codes();
            words = words.clause(3, |w| {
                w.text(format!("; and {} client errors ({client})", self.judged.client_errors))
            });
        }
        words
    }

    /// "client errors: 12 UNIMPLEMENTED in 1500 requests over the last 10 s — the callers', not the pods'".
    pub(super) fn client_errors(&self, span: &Span) -> Option<Words> {
        if self.judged.client_errors == 0 {
            return None;
        }
        Some(
            Words::new(format!(
                "client errors: {} in {} requests",
                self.client_codes(),
                self.judged.requests
            ))
            .then(span.words())
            .clause(1, |w| w.text(" — the callers' mistakes, not the pods'")),
        )
    }

    /// "; 12 client errors (12 UNIMPLEMENTED)", for a verdict about something else.
    pub(super) fn client_note(&self) -> Words {
        if self.judged.client_errors == 0 {
            return Words::default();
        }
        let (n, codes) = (self.judged.client_errors, self.client_codes());
        Words::default().clause(3, |w| w.text(format!("; {n} client errors ({codes})")))
    }

    /// "12 UNIMPLEMENTED, 3 NOT_FOUND": the commonest two, then how many more.
    fn client_codes(&self) -> String {
        let mut codes: Vec<(i32, u64)> = self.client.iter().map(|(c, n)| (*c, *n)).collect();
        codes.sort_by_key(|(c, n)| (Reverse(*n), *c));
        let mut named: Vec<String> = codes
            .iter()
            .take(2)
            .map(|(c, n)| format!("{n} {}", grpc_code_name(*c)))
            .collect();
        if codes.len() > 2 {
            let rest: u64 = codes.iter().skip(2).map(|(_, n)| n).sum();
            named.push(format!("{rest} other"));
        }
        named.join(", ")
    }
}

/// "; errors stopped 6 s ago (323 failed)": the pods failed earlier in the window.
pub(super) fn stopped_note(stats: &Stats, window: &Failures, at: Instant) -> Option<Words> {
    if window.judged.pod_failures == 0 {
        return None;
    }
    let ago = at.saturating_duration_since(last_failure(stats)?);
    let failed = window.judged.pod_failures;
    Some(
        Words::default()
            .text(format!("; errors stopped {} ago", seconds(ago)))
            .clause(2, |w| w.text(format!(" ({failed} failed)"))),
    )
}
