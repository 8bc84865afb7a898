//! Endpoint discovery: every source yields whole endpoint sets as a stream,
//! so the balancer never cares where they came from.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use futures_util::Stream;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::WatchStream;

pub use crate::resolve::name_has_no_addresses;
use crate::resolve::{Lookup, ResolveLoop, Resolver};

mod endpoint_slices;
/// The Kubernetes source: every EndpointSlice of a Service, merged.
pub use endpoint_slices::{PortSelector, watch as endpoint_slices};

/// One upstream endpoint.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EndpointInfo {
    /// `host:port` to dial.
    pub address: String,
    /// The pod behind the address, when the source knows it.
    pub pod_name: Option<String>,
    /// Not-ready endpoints are kept in the set (to be shown) but get no traffic.
    pub ready: bool,
    /// Terminating but still serving (an EndpointSlice's `serving: true,
    /// terminating: true`). Such an endpoint is ready only while no other
    /// endpoint of the Service is, as kube-proxy does: then it is "serving
    /// while terminating".
    pub terminating: bool,
}

impl EndpointInfo {
    pub fn ready(address: impl Into<String>) -> Self {
        EndpointInfo {
            address: address.into(),
            pod_name: None,
            ready: true,
            terminating: false,
        }
    }

    pub fn with_pod_name(mut self, pod_name: impl Into<String>) -> Self {
        self.pod_name = Some(pod_name.into());
        self
    }

    pub fn to_proto(&self) -> greet_proto::observe::Endpoint {
        greet_proto::observe::Endpoint {
            address: self.address.clone(),
            pod_name: self.pod_name.clone().unwrap_or_default(),
            ready: self.ready,
            serving_terminating: self.terminating,
            ..Default::default()
        }
    }
}

/// Whether a discovery source is currently failing, shared with the gateway
/// so a 503 can say that discovery, not the pods, is the problem.
#[derive(Clone, Debug, Default)]
pub struct DiscoveryHealth(std::sync::Arc<HealthState>);

#[derive(Debug)]
struct HealthState {
    /// The problem, and when discovery started failing (kept while the
    /// problem's words change, so it says how stale the set is).
    problem: std::sync::Mutex<Option<(String, tokio::time::Instant)>>,
    /// Failed watches and lookups so far, for the metrics.
    errors: std::sync::atomic::AtomicU64,
    /// Since when the endpoint set has not been confirmed current: the last
    /// time the source was heard before it failed (a watch's first error,
    /// a DNS answer before failed lookups); `None` while it is followed.
    unconfirmed_since: std::sync::Mutex<Option<tokio::time::Instant>>,
    /// Bumped when discovery starts failing, its problem's words change,
    /// or it recovers: the Observer tells its subscribers.
    changes: tokio::sync::watch::Sender<u64>,
}

impl Default for HealthState {
    fn default() -> Self {
        HealthState {
            problem: Default::default(),
            errors: Default::default(),
            unconfirmed_since: Default::default(),
            changes: tokio::sync::watch::channel(0).0,
        }
    }
}

impl DiscoveryHealth {
    pub fn failing(&self, problem: impl Into<String>) {
        self.count_error();
        let mut slot = self.problem_slot();
        let since = slot
            .as_ref()
            .map_or_else(tokio::time::Instant::now, |(_, since)| *since);
        let problem = problem.into();
        let changed = slot.as_ref().is_none_or(|(last, _)| *last != problem);
        *slot = Some((problem, since));
        drop(slot);
        self.unconfirmed_slot().get_or_insert(since);
        if changed {
            self.0.changes.send_modify(|n| *n += 1);
        }
    }

    /// The source answers again: the set is current.
    pub fn recovered(&self) {
        let was_failing = self.problem_slot().take().is_some();
        *self.unconfirmed_slot() = None;
        if was_failing {
            self.0.changes.send_modify(|n| *n += 1);
        }
    }

    /// Changes when discovery starts failing, its problem changes, or it
    /// recovers (not on a repeat of the same problem).
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.0.changes.subscribe()
    }

    /// The state the Observer sends, `source` being discovery's name, at
    /// `now` (`now_unix_us` on the wall clock).
    pub fn to_proto(
        &self,
        source: &str,
        now: tokio::time::Instant,
        now_unix_us: i64,
    ) -> greet_proto::observe::DiscoveryState {
        let micros = |d: Duration| i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
        let (last_error, failing_since_unix_us) = match &*self.problem_slot() {
            Some((problem, since)) => (
                greet_proto::sanitize::sanitize_truncated(problem, 300),
                now_unix_us.saturating_sub(micros(now.saturating_duration_since(*since))),
            ),
            None => (String::new(), 0),
        };
        greet_proto::observe::DiscoveryState {
            source: source.to_owned(),
            failing_since_unix_us,
            last_error,
            set_age_ms: u64::try_from(self.set_age(now).as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// A failure that keeps the endpoint set (a DNS hiccup): counted, and
    /// the set is as old as the source's last answer, at `last_answer`.
    pub fn kept_stale(&self, last_answer: tokio::time::Instant) {
        self.count_error();
        self.unconfirmed_slot().get_or_insert(last_answer);
    }

    /// How long the endpoint set has gone unconfirmed at `now`: zero while
    /// discovery follows its source (a live watch, a lookup that answered).
    pub fn set_age(&self, now: tokio::time::Instant) -> std::time::Duration {
        self.unconfirmed_slot()
            .map_or(std::time::Duration::ZERO, |since| now.saturating_duration_since(since))
    }

    /// The last problem, while it lasts.
    pub fn problem(&self) -> Option<String> {
        self.problem_slot().as_ref().map(|(problem, _)| problem.clone())
    }

    /// When discovery started failing, while it fails: the endpoint set is
    /// that old (or older).
    pub fn failing_since(&self) -> Option<tokio::time::Instant> {
        self.problem_slot().as_ref().map(|(_, since)| *since)
    }

    /// Counts a failure that keeps the endpoint set (a DNS hiccup).
    pub fn count_error(&self) {
        self.0.errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Failures so far.
    pub fn errors(&self) -> u64 {
        self.0.errors.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn unconfirmed_slot(&self) -> std::sync::MutexGuard<'_, Option<tokio::time::Instant>> {
        self.0.unconfirmed_since.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn problem_slot(&self) -> std::sync::MutexGuard<'_, Option<(String, tokio::time::Instant)>> {
        self.0.problem.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The whole current set of endpoints, sorted by address, one entry per address.
pub type EndpointSet = Vec<EndpointInfo>;

/// A source of endpoint sets. Each item replaces the previous set; when the
/// stream ends, the last set stays in force.
pub type DiscoveryStream = Pin<Box<dyn Stream<Item = EndpointSet> + Send>>;

/// Sorts by address and keeps one entry per address; where duplicates
/// disagree, a ready entry and a known pod name win (a plainly ready entry
/// over a terminating one).
pub fn normalize(endpoints: impl IntoIterator<Item = EndpointInfo>) -> EndpointSet {
    let mut by_address: BTreeMap<String, EndpointInfo> = BTreeMap::new();
    for endpoint in endpoints {
        match by_address.get_mut(&endpoint.address) {
            None => {
                by_address.insert(endpoint.address.clone(), endpoint);
            }
            Some(existing) => {
                let plainly_ready = |e: &EndpointInfo| e.ready && !e.terminating;
                existing.terminating = if plainly_ready(existing) || plainly_ready(&endpoint) {
                    false
                } else {
                    existing.terminating || endpoint.terminating
                };
                existing.ready |= endpoint.ready;
                if existing.pod_name.is_none() {
                    existing.pod_name = endpoint.pod_name;
                }
            }
        }
    }
    by_address.into_values().collect()
}

/// kube-proxy's fallback: when no endpoint of `set` is ready, the ones
/// terminating but still serving take the traffic (a rolling update of a
/// one-replica Service keeps answering); otherwise they get none.
pub fn serve_terminating_when_none_ready(mut set: EndpointSet) -> EndpointSet {
    let none_ready = !set.iter().any(|e| e.ready && !e.terminating);
    for endpoint in set.iter_mut().filter(|e| e.terminating) {
        endpoint.ready = none_ready;
    }
    set
}

/// The endpoints that take traffic only because none is ready (serving while terminating).
pub fn serving_while_terminating(set: &[EndpointInfo]) -> impl Iterator<Item = &EndpointInfo> {
    set.iter().filter(|e| e.ready && e.terminating)
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EndpointListError {
    #[error("endpoint {0:?} is not host:port (e.g. 10.0.0.5:50051)")]
    NotHostPort(String),
    #[error("endpoint {0:?} has an invalid port: use a number from 1 to 65535")]
    BadPort(String),
}

/// Parses `--endpoints host:port,host:port,...`; an empty string is an empty set.
pub fn parse_endpoint_list(list: &str) -> Result<EndpointSet, EndpointListError> {
    let mut endpoints = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (host, port) = item
            .rsplit_once(':')
            .filter(|(host, _)| !host.is_empty())
            .ok_or_else(|| EndpointListError::NotHostPort(item.to_owned()))?;
        match port.parse::<u16>() {
            Ok(p) if p > 0 => {}
            _ => return Err(EndpointListError::BadPort(item.to_owned())),
        }
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(EndpointListError::NotHostPort(item.to_owned()));
        }
        endpoints.push(EndpointInfo::ready(item));
    }
    Ok(normalize(endpoints))
}

/// A fixed set, emitted once.
pub fn static_endpoints(set: EndpointSet) -> DiscoveryStream {
    Box::pin(tokio_stream::once(normalize(set)))
}

/// Endpoint sets pushed through a watch channel (the demo's registry, tests).
pub fn from_watch(rx: tokio::sync::watch::Receiver<EndpointSet>) -> DiscoveryStream {
    Box::pin(WatchStream::new(rx).map(normalize))
}

/// The endpoint set of resolved socket addresses (one per address).
pub fn endpoints_from_addrs(addrs: impl IntoIterator<Item = SocketAddr>) -> EndpointSet {
    normalize(addrs.into_iter().map(|addr| EndpointInfo::ready(addr.to_string())))
}

/// Re-resolves `host:port` every `interval` (a headless Service's DNS name
/// returns one address per ready pod) and yields the set whenever it changes.
/// A name with no addresses twice in a row is an empty set (no ready pod);
/// any other failed lookup keeps the previous set: a DNS hiccup must not
/// empty the balancer.
pub fn dns(host: String, port: u16, interval: Duration, health: DiscoveryHealth) -> DiscoveryStream {
    dns_with(
        Resolver::system(host.clone(), port),
        format!("{host}:{port}"),
        interval,
        health,
    )
}

/// [`dns`] with the resolver given: the same loop (and the same time limit
/// on a lookup that never answers) as `dns` mode's.
pub fn dns_with(resolver: Resolver, name: String, interval: Duration, health: DiscoveryHealth) -> DiscoveryStream {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tokio::spawn(async move {
        let mut lookups = ResolveLoop::new(resolver, interval);
        let mut last: Option<EndpointSet> = None;
        let mut no_addresses_in_a_row = 0;
        let mut last_answer = tokio::time::Instant::now();
        loop {
            let set = match lookups.next().await {
                Lookup::Found(addrs) => {
                    no_addresses_in_a_row = 0;
                    Ok(endpoints_from_addrs(addrs))
                }
                Lookup::NoSuchName(error) => {
                    no_addresses_in_a_row += 1;
                    if no_addresses_in_a_row >= 2 {
                        Ok(EndpointSet::new())
                    } else {
                        Err(format!("the name has no addresses: {error}"))
                    }
                }
                Lookup::Failed(error) => Err(format!("the lookup failed: {error}")),
            };
            match set {
                Ok(set) => {
                    last_answer = tokio::time::Instant::now();
                    health.recovered();
                    if last.as_ref() != Some(&set) {
                        last = Some(set.clone());
                        if tx.send(set).await.is_err() {
                            return;
                        }
                    }
                }
                Err(problem) => {
                    health.kept_stale(last_answer);
                    tracing::warn!("resolving {name} for DNS discovery: {problem}; keeping the last endpoint set");
                }
            }
            if tx.is_closed() {
                return;
            }
        }
    });
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
}

impl Resolver {
    /// Answers with the ready addresses of a watched endpoint set, as a
    /// headless Service's DNS name does (the demo's registry): no ready
    /// endpoint is a name with no addresses.
    pub fn from_watch(set: tokio::sync::watch::Receiver<EndpointSet>) -> Self {
        Resolver::new(move || {
            let addresses: Vec<SocketAddr> = set
                .borrow()
                .iter()
                .filter(|e| e.ready)
                .filter_map(|e| e.address.parse().ok())
                .collect();
            Box::pin(async move {
                if addresses.is_empty() {
                    return Err(std::io::Error::new(std::io::ErrorKind::NotFound, "no ready pod"));
                }
                Ok(addresses)
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn failing_keeps_its_start_while_the_problem_changes_and_recovery_ends_it() {
        let health = DiscoveryHealth::default();
        assert_eq!((health.problem(), health.failing_since()), (None, None));
        let start = tokio::time::Instant::now();
        health.failing("refused");
        tokio::time::advance(std::time::Duration::from_secs(3)).await;
        health.failing("timed out");
        assert_eq!(health.problem().as_deref(), Some("timed out"));
        assert_eq!(health.failing_since(), Some(start));
        health.recovered();
        assert_eq!((health.problem(), health.failing_since()), (None, None));
        assert_eq!(health.errors(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn the_set_ages_from_the_first_failure_or_the_last_answer_until_recovery() {
        let health = DiscoveryHealth::default();
        let start = tokio::time::Instant::now();
        assert_eq!(health.set_age(start), Duration::ZERO);
        health.failing("refused");
        tokio::time::advance(Duration::from_millis(2500)).await;
        health.failing("refused");
        assert_eq!(health.set_age(tokio::time::Instant::now()), Duration::from_millis(2500));
        health.recovered();
        assert_eq!(health.set_age(tokio::time::Instant::now()), Duration::ZERO);
        // A lookup failed 4 s after the last answer: the set is that old, not 0 s.
        let answered = tokio::time::Instant::now();
        tokio::time::advance(Duration::from_secs(4)).await;
        health.kept_stale(answered);
        health.kept_stale(tokio::time::Instant::now());
        assert_eq!(health.set_age(tokio::time::Instant::now()), Duration::from_secs(4));
        assert_eq!((health.problem(), health.errors()), (None, 4));
    }

    #[tokio::test(start_paused = true)]
    async fn a_change_is_signalled_once_and_the_proto_says_since_when_and_how_stale() {
        let health = DiscoveryHealth::default();
        let mut changes = health.changes();
        let start = tokio::time::Instant::now();
        assert_eq!(
            health.to_proto("kube", start, 1_000_000_000),
            greet_proto::observe::DiscoveryState {
                source: "kube".into(),
                ..Default::default()
            }
        );
        health.failing("EndpointSlice watch: refused\u{1b}[2J");
        assert!(changes.has_changed().unwrap());
        changes.mark_unchanged();
        tokio::time::advance(Duration::from_millis(8200)).await;
        health.failing("EndpointSlice watch: refused\u{1b}[2J");
        assert!(!changes.has_changed().unwrap(), "the same problem again is no change");
        assert_eq!(
            health.to_proto("kube", tokio::time::Instant::now(), 1_000_000_000),
            greet_proto::observe::DiscoveryState {
                source: "kube".into(),
                failing_since_unix_us: 1_000_000_000 - 8_200_000,
                last_error: "EndpointSlice watch: refused[2J".into(),
                set_age_ms: 8200,
            }
        );
        health.failing("EndpointSlice watch: timed out");
        assert!(changes.has_changed().unwrap());
        changes.mark_unchanged();
        health.recovered();
        assert!(changes.has_changed().unwrap());
        changes.mark_unchanged();
        health.recovered();
        assert!(!changes.has_changed().unwrap(), "recovered twice is one change");
    }

    #[test]
    fn every_failure_is_counted_and_only_a_failing_one_is_reported() {
        let health = DiscoveryHealth::default();
        health.count_error();
        assert_eq!((health.errors(), health.problem()), (1, None));
        health.failing("watch: 403");
        health.clone().recovered();
        assert_eq!((health.errors(), health.problem()), (2, None));
    }

    #[test]
    fn parses_endpoint_lists() {
        let set = parse_endpoint_list("127.0.0.2:50051, 127.0.0.1:50051,,[::1]:7,127.0.0.1:50051").unwrap();
        let addresses: Vec<_> = set.iter().map(|e| e.address.as_str()).collect();
        assert_eq!(addresses, ["127.0.0.1:50051", "127.0.0.2:50051", "[::1]:7"]);
        assert!(set.iter().all(|e| e.ready && e.pod_name.is_none()));
        assert_eq!(parse_endpoint_list("").unwrap(), vec![]);
    }

    #[test]
    fn rejects_malformed_endpoints() {
        assert_eq!(
            parse_endpoint_list("10.0.0.1").unwrap_err().to_string(),
            "endpoint \"10.0.0.1\" is not host:port (e.g. 10.0.0.5:50051)"
        );
        assert_eq!(
            parse_endpoint_list("a:1,b:http").unwrap_err(),
            EndpointListError::BadPort("b:http".into())
        );
        assert_eq!(
            parse_endpoint_list("b:0").unwrap_err(),
            EndpointListError::BadPort("b:0".into())
        );
        assert_eq!(
            parse_endpoint_list(":80").unwrap_err(),
            EndpointListError::NotHostPort(":80".into())
        );
    }

    #[test]
    fn normalize_merges_duplicates_preferring_ready_and_named() {
        let set = normalize([
            EndpointInfo {
                address: "b:1".into(),
                pod_name: None,
                ready: false,
                terminating: false,
            },
            EndpointInfo::ready("a:1"),
            EndpointInfo::ready("b:1").with_pod_name("pod-b"),
        ]);
        assert_eq!(
            set,
            vec![
                EndpointInfo::ready("a:1"),
                EndpointInfo::ready("b:1").with_pod_name("pod-b"),
            ]
        );
    }

    #[test]
    fn resolved_addresses_become_a_sorted_set() {
        let addrs: Vec<SocketAddr> = ["10.0.0.3:50051", "10.0.0.1:50051", "10.0.0.3:50051"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        let set = endpoints_from_addrs(addrs);
        assert_eq!(
            set,
            vec![
                EndpointInfo::ready("10.0.0.1:50051"),
                EndpointInfo::ready("10.0.0.3:50051")
            ]
        );
    }

    #[tokio::test]
    async fn watch_source_yields_every_published_set() {
        let (tx, rx) = tokio::sync::watch::channel(vec![EndpointInfo::ready("a:1")]);
        let mut stream = from_watch(rx);
        assert_eq!(stream.next().await, Some(vec![EndpointInfo::ready("a:1")]));
        tx.send(vec![EndpointInfo::ready("c:1"), EndpointInfo::ready("b:1")])
            .unwrap();
        assert_eq!(
            stream.next().await,
            Some(vec![EndpointInfo::ready("b:1"), EndpointInfo::ready("c:1")])
        );
        drop(tx);
        assert_eq!(stream.next().await, None);
    }

    #[test]
    fn only_a_name_without_addresses_counts_as_no_pods() {
        assert!(name_has_no_addresses(
            "failed to lookup address information: Name or service not known"
        ));
        assert!(name_has_no_addresses(
            "failed to lookup address information: nodename nor servname provided, or not known"
        ));
        assert!(!name_has_no_addresses(
            "failed to lookup address information: Temporary failure in name resolution"
        ));
    }

    #[tokio::test]
    async fn dns_source_resolves_loopback() {
        let mut stream = dns(
            "127.0.0.1".into(),
            50051,
            Duration::from_secs(3600),
            DiscoveryHealth::default(),
        );
        assert_eq!(stream.next().await, Some(vec![EndpointInfo::ready("127.0.0.1:50051")]));
    }
}
