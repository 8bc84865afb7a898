//! The gateway's view beside the pods' own: what the gateway sent each pod
//! against what each pod says it served, over the same window. Pods that
//! serve more than the gateway sent them have clients that do not go
//! through the gateway.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::App;

/// Below this the two rates agree: the pods' counters are read once a
/// scrape interval, the gateway's once a summary, so the windows' edges
/// differ by up to a second's worth.
const AGREE_WITHIN: f64 = 0.10;
/// Nor is a difference under this many requests a second news.
const AGREE_BELOW_RPS: f64 = 1.0;
/// The pods' counts arrive a scrape after the gateway's: until both views
/// have counted for a whole default window and a little, their rates over
/// "the last N s" cover different spans and would differ for no reason.
pub(crate) const COMPARE_AFTER: Duration = Duration::from_secs(12);

/// Each pod's own rate over the pods' view's window, by pod name.
pub(crate) fn own_rates(pods: &App, at: Instant) -> BTreeMap<String, f64> {
    let (stats, _) = pods.view(at);
    let seconds = stats.time_window().covered(pods.observed_for(at)).as_secs_f64();
    stats
        .pods
        .values()
        .filter(|p| !p.gone)
        .map(|p| (p.name.clone(), p.in_window(at) as f64 / seconds))
        .collect()
}

/// The line that compares the two views, e.g. `pods served 150.0/s, the
/// gateway sent 100.0/s: 50.0/s reach them another way (clients that
/// bypass the gateway; most on p2 +40.0/s)`.
/// `served` is [`own_rates`] of `pods`, read once a frame by the caller,
/// which shows it per pod too.
pub(crate) fn comparison(gateway: &App, pods: &App, served: &BTreeMap<String, f64>, at: Instant) -> (String, bool) {
    let (stats, _) = gateway.view(at);
    let seconds = stats.time_window().covered(gateway.observed_for(at)).as_secs_f64();
    let sent: BTreeMap<&str, f64> = stats
        .pods
        .values()
        .filter(|p| !p.gone)
        .map(|p| (p.name.as_str(), p.in_window(at) as f64 / seconds))
        .collect();
    let sent_total: f64 = sent.values().sum();
    let served_total: f64 = served.values().sum();
    let extra = served_total - sent_total;
    if served.is_empty() {
        return ("pods' own metrics: none read yet".to_owned(), false);
    }
    let counted = pods.observed_for(at).min(gateway.observed_for(at));
    if counted < COMPARE_AFTER {
        return (
            format!(
                "pods' own metrics beside: they served {served_total:.1}/s, the gateway sent {sent_total:.1}/s \
                 (too soon to compare: {} s of both needed)",
                COMPARE_AFTER.as_secs()
            ),
            false,
        );
    }
    if extra.abs() < AGREE_BELOW_RPS.max(AGREE_WITHIN * sent_total) {
        return (
            format!("pods' own metrics agree: they served {served_total:.1}/s, the gateway sent {sent_total:.1}/s"),
            false,
        );
    }
    if extra < 0.0 {
        return (
            format!(
                "pods served {served_total:.1}/s, the gateway sent {sent_total:.1}/s: some pods' metrics are stale or missing"
            ),
            true,
        );
    }
    let most = served
        .iter()
        .map(|(name, own)| (name, own - sent.get(name.as_str()).copied().unwrap_or(0.0)))
        .max_by(|a, b| a.1.total_cmp(&b.1));
    let most = most.map_or_else(String::new, |(name, more)| format!("; most on {name} +{more:.1}/s"));
    (
        format!(
            "pods served {served_total:.1}/s, the gateway sent {sent_total:.1}/s: {extra:.1}/s reach them another way (clients that bypass the gateway{most})"
        ),
        true,
    )
}

#[cfg(test)]
mod tests;
