//! Requests by method (calls through the gateway's gRPC ingress; REST's
//! `POST /greet` has no method): what each summary added, per pod, since
//! the reset. As with error codes, a summary right after a snapshot only
//! sets the baseline: a snapshot carries no methods.

use std::collections::BTreeMap;

use super::Tally;

/// Requests and errors by method ("" for `POST /greet`).
pub(crate) type ByMethod = BTreeMap<String, Tally>;

/// How a method with no name (REST's `POST /greet`) is shown.
pub(crate) const REST_METHOD: &str = "POST /greet";

/// `later - earlier` per method (one that shrank, after a restart, counts 0).
pub(super) fn difference(later: &ByMethod, earlier: &ByMethod) -> ByMethod {
    later
        .iter()
        .map(|(method, n)| {
            let before = earlier.get(method).copied().unwrap_or_default();
            let added = Tally {
                requests: n.requests.saturating_sub(before.requests),
                errors: n.errors.saturating_sub(before.errors),
            };
            (method.clone(), added)
        })
        .filter(|(_, added)| added.requests > 0)
        .collect()
}

/// Adds `added` into `into`.
pub(super) fn add(into: &mut ByMethod, added: &ByMethod) {
    for (method, n) in added {
        let entry = into.entry(method.clone()).or_default();
        entry.requests += n.requests;
        entry.errors += n.errors;
    }
}

/// The name a method is shown by.
pub(crate) fn shown(method: &str) -> &str {
    if method.is_empty() { REST_METHOD } else { method }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn by(pairs: &[(&str, u64, u64)]) -> ByMethod {
        pairs
            .iter()
            .map(|(m, requests, errors)| {
                (
                    (*m).to_owned(),
                    Tally {
                        requests: *requests,
                        errors: *errors,
                    },
                )
            })
            .collect()
    }

    #[test]
    fn what_a_summary_added_by_method() {
        let earlier = by(&[("", 5, 0), ("/a.S/M", 3, 1)]);
        let later = by(&[("", 5, 0), ("/a.S/M", 7, 2), ("/b.S/N", 1, 0)]);
        assert_eq!(difference(&later, &earlier), by(&[("/a.S/M", 4, 1), ("/b.S/N", 1, 0)]));
        // After a restart the gateway counts from zero again.
        assert_eq!(difference(&by(&[("/a.S/M", 2, 0)]), &earlier), by(&[]));
        let mut total = by(&[("/a.S/M", 1, 0)]);
        add(&mut total, &by(&[("/a.S/M", 4, 1), ("", 2, 0)]));
        assert_eq!(total, by(&[("", 2, 0), ("/a.S/M", 5, 1)]));
        assert_eq!(shown(""), "POST /greet");
        assert_eq!(shown("/a.S/M"), "/a.S/M");
    }
}
