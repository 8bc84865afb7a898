//! The EndpointSlice watch loop: events folded into endpoint sets, errors
//! paced by [`CatchUp`], and a log an operator can follow.

use futures_util::{Stream, StreamExt};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::watcher;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::catch_up::{CatchUp, Failure};
use super::{PortSelector, SliceAggregator};
use crate::discovery::{DiscoveryHealth, EndpointSet};
use kube_access::transport_cause;

/// What the loop reports to: the gateway's set channel and discovery health.
pub(crate) struct Sink {
    pub(crate) namespace: String,
    pub(crate) health: DiscoveryHealth,
    pub(crate) sets: mpsc::Sender<EndpointSet>,
}

/// Follows the slices until the receiver of `sink.sets` is gone. `start`
/// starts a watch from scratch (a list, then a watch); after an error the
/// loop waits as `pace` says and starts over, so a recovery is always
/// confirmed by a fresh list, and a set changed while the API server was
/// away is replaced whole. Ends when a watch ends (kube's never does).
pub(crate) async fn follow<S>(mut start: impl FnMut() -> S, port: PortSelector, sink: Sink, mut pace: CatchUp)
where
    S: Stream<Item = Result<watcher::Event<EndpointSlice>, watcher::Error>> + Unpin,
{
    let mut aggregator = SliceAggregator::new(port);
    let mut last: Option<EndpointSet> = None;
    let mut story = WatchLog::default();
    let mut events = start();
    while let Some(event) = events.next().await {
        let now = Instant::now();
        match event {
            Ok(event) => {
                // kube's watcher says `Init` before it lists: that proves nothing.
                if !matches!(event, watcher::Event::Init) {
                    pace.reset();
                    sink.health.recovered();
                    if let Some(line) = story.answered(now) {
                        tracing::info!("{line}");
                    }
                }
                let listed = matches!(event, watcher::Event::InitDone);
                let Some(set) = aggregator.apply(event) else { continue };
                if listed {
                    tracing::info!("{}", story.listed(&set, now));
                }
                if last.as_ref() == Some(&set) {
                    continue;
                }
                last = Some(set.clone());
                if sink.sets.send(set).await.is_err() {
                    return;
                }
            }
            Err(err) => {
                let failure = Failure::of(&err);
                if failure == Failure::Gone {
                    tracing::info!("{}", story.gone(now));
                } else {
                    let problem = describe(&err, &sink.namespace);
                    if let Some(line) = story.failed(&problem, now) {
                        tracing::warn!("{line}");
                    } else {
                        tracing::debug!("EndpointSlice watch: {problem} (again)");
                    }
                    sink.health.failing(format!("EndpointSlice watch: {problem}"));
                }
                tokio::time::sleep(pace.after(failure, now)).await;
                events = start();
            }
        }
    }
}

/// A watch error as an operator should read it: the cause first.
fn describe(err: &watcher::Error, namespace: &str) -> String {
    if let Some(cause) = transport_cause(err) {
        tracing::debug!(
            "EndpointSlice watch: {}",
            greet_proto::sanitize::sanitize_truncated(&err.to_string(), 300)
        );
        return cause.to_owned();
    }
    kube_access::describe_watch_error(
        err,
        "endpointslices.discovery.k8s.io",
        namespace,
        "apply k8s/greetclient-rbac.yaml",
    )
    .to_string()
}

/// The lines the loop logs, decided apart from the loop so they can be tested.
#[derive(Debug, Default)]
pub(crate) struct WatchLog {
    /// Since when, and how many attempts, the watch has been failing.
    failing: Option<(Instant, u32, String)>,
    /// When the set stopped following the API server (an error or a 410),
    /// until the re-list is done.
    broken_since: Option<Instant>,
    listed_before: bool,
}

impl WatchLog {
    /// A failed attempt: a warning for the first of a run or a new problem, else `None`.
    pub(crate) fn failed(&mut self, problem: &str, now: Instant) -> Option<String> {
        self.broken_since.get_or_insert(now);
        let line = format!("EndpointSlice watch: {problem}; retrying, keeping the last endpoint set");
        match &mut self.failing {
            Some((_, attempts, last)) => {
                *attempts += 1;
                if last == problem {
                    return None;
                }
                problem.clone_into(last);
            }
            None => self.failing = Some((now, 1, problem.to_owned())),
        }
        Some(line)
    }

    /// A 410: the watch re-lists at once.
    pub(crate) fn gone(&mut self, now: Instant) -> String {
        self.broken_since.get_or_insert(now);
        "EndpointSlice watch: history compacted while away (410 Gone); re-listing".to_owned()
    }

    /// An event after failing: the watch is back.
    pub(crate) fn answered(&mut self, now: Instant) -> Option<String> {
        let (since, attempts, _) = self.failing.take()?;
        let tries = if attempts == 1 { "attempt" } else { "attempts" };
        Some(format!(
            "EndpointSlice watch resumed after {} ({attempts} failed {tries})",
            seconds(now - since)
        ))
    }

    /// A list is done and `set` is in force.
    pub(crate) fn listed(&mut self, set: &EndpointSet, now: Instant) -> String {
        let ready = set.iter().filter(|e| e.ready).count();
        let count = format!("{} endpoints ({ready} ready)", set.len());
        let first = !std::mem::replace(&mut self.listed_before, true);
        match self.broken_since.take() {
            _ if first => format!("EndpointSlice list: {count}"),
            Some(since) => format!(
                "EndpointSlice re-list: {count}, {} after the watch broke off",
                seconds(now - since)
            ),
            None => format!("EndpointSlice re-list: {count}"),
        }
    }
}

/// `5.2 s`.
fn seconds(duration: std::time::Duration) -> String {
    format!("{:.1} s", duration.as_secs_f64())
}

#[cfg(test)]
mod tests;
