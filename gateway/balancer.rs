//! Per-request round robin over the ready endpoints.
//!
//! Readers (every request) load an immutable snapshot and bump one atomic
//! counter: no lock on the request path. Writers (discovery updates) build a
//! new snapshot, keeping the connection of every endpoint that stays, and swap
//! it in. Generic over the connection type so it is tested without sockets.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::time::Instant;

use super::discovery::{EndpointInfo, EndpointSet};

/// How long an endpoint that refused a request is skipped.
pub const EJECTION: Duration = Duration::from_secs(2);

/// One endpoint and its (lazily connected) connection.
#[derive(Debug)]
pub struct Member<C> {
    pub info: EndpointInfo,
    pub conn: C,
    /// Milliseconds since the balancer's epoch until which this member is skipped.
    ejected_until_ms: AtomicU64,
}

type Connect<C> = Box<dyn Fn(&EndpointInfo) -> C + Send + Sync>;

/// One discovery update, swapped in whole so readers never see the two
/// lists disagree.
struct Snapshot<C> {
    /// Every endpoint discovery reported, ready or not (to be shown).
    all: Arc<EndpointSet>,
    /// Ready endpoints only, in address order: what requests pick from.
    ready: Vec<Arc<Member<C>>>,
}

pub struct Balancer<C> {
    snapshot: ArcSwap<Snapshot<C>>,
    next: AtomicUsize,
    connect: Connect<C>,
    epoch: Instant,
    update_lock: std::sync::Mutex<()>,
}

impl<C> Balancer<C> {
    /// `connect` makes the connection for a newly seen endpoint; it must not
    /// block (connect lazily).
    pub fn new(connect: impl Fn(&EndpointInfo) -> C + Send + Sync + 'static) -> Self {
        Balancer {
            snapshot: ArcSwap::from_pointee(Snapshot {
                all: Arc::new(Vec::new()),
                ready: Vec::new(),
            }),
            next: AtomicUsize::new(0),
            connect: Box::new(connect),
            epoch: Instant::now(),
            update_lock: std::sync::Mutex::new(()),
        }
    }

    /// Replaces the endpoint set. Endpoints that stay (same address and pod)
    /// keep their connection and ejection state; the others are dropped, so a
    /// removed endpoint gets no new request once this returns.
    pub fn update(&self, set: &EndpointSet) {
        let _guard = self.update_lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let current = self.snapshot.load();
        let current = &current.ready;
        let ready = set
            .iter()
            .filter(|info| info.ready)
            .map(|info| {
                current
                    .iter()
                    .find(|m| m.info.address == info.address && m.info.pod_name == info.pod_name)
                    .cloned()
                    .unwrap_or_else(|| {
                        Arc::new(Member {
                            info: info.clone(),
                            conn: (self.connect)(info),
                            ejected_until_ms: AtomicU64::new(0),
                        })
                    })
            })
            .collect();
        self.snapshot.store(Arc::new(Snapshot {
            all: Arc::new(set.clone()),
            ready,
        }));
    }

    /// The next member in round-robin order, skipping ejected members unless
    /// all are ejected (then trying one beats failing outright). `None` when
    /// no endpoint is ready.
    pub fn pick(&self, now: Instant) -> Option<Arc<Member<C>>> {
        let snapshot = self.snapshot.load();
        let ready = &snapshot.ready;
        if ready.is_empty() {
            return None;
        }
        let now_ms = self.millis_since_epoch(now);
        let mut first = None;
        for _ in 0..ready.len() {
            let member = &ready[self.next.fetch_add(1, Ordering::Relaxed) % ready.len()];
            if member.ejected_until_ms.load(Ordering::Relaxed) <= now_ms {
                return Some(Arc::clone(member));
            }
            first.get_or_insert(member);
        }
        first.map(Arc::clone)
    }

    /// Skips `member` until `now + EJECTION`: it refused a connection.
    pub fn eject(&self, member: &Member<C>, now: Instant) {
        let until = self.millis_since_epoch(now + EJECTION);
        member.ejected_until_ms.store(until, Ordering::Relaxed);
    }

    /// Every endpoint of the last update, ready or not.
    pub fn endpoints(&self) -> Arc<EndpointSet> {
        Arc::clone(&self.snapshot.load().all)
    }

    /// How many endpoints can take requests.
    pub fn ready_count(&self) -> usize {
        self.snapshot.load().ready.len()
    }

    fn millis_since_epoch(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::atomic::AtomicUsize;

    use super::*;

    fn set(addresses: &[&str]) -> EndpointSet {
        addresses.iter().map(|a| EndpointInfo::ready(*a)).collect()
    }

    /// A balancer whose "connection" is the address plus a serial number, so
    /// tests can see when a connection was (re)made.
    fn balancer() -> Balancer<(String, usize)> {
        let made = AtomicUsize::new(0);
        Balancer::new(move |info| (info.address.clone(), made.fetch_add(1, Ordering::Relaxed)))
    }

    fn tally(balancer: &Balancer<(String, usize)>, n: usize) -> HashMap<String, usize> {
        let now = Instant::now();
        let mut hits = HashMap::new();
        for _ in 0..n {
            let member = balancer.pick(now).expect("an endpoint");
            *hits.entry(member.conn.0.clone()).or_default() += 1;
        }
        hits
    }

    #[test]
    fn empty_set_picks_nothing() {
        let b = balancer();
        assert!(b.pick(Instant::now()).is_none());
        b.update(&set(&["a:1"]));
        b.update(&set(&[]));
        assert!(b.pick(Instant::now()).is_none());
        assert_eq!(b.ready_count(), 0);
    }

    #[test]
    fn round_robin_is_exact() {
        let b = balancer();
        b.update(&set(&["a:1", "b:1", "c:1"]));
        let hits = tally(&b, 300);
        assert_eq!(hits.len(), 3);
        assert!(hits.values().all(|&n| n == 100), "{hits:?}");
        // Strict rotation, not just equal totals.
        let now = Instant::now();
        let order: Vec<String> = (0..6).map(|_| b.pick(now).unwrap().info.address.clone()).collect();
        assert_eq!(order[..3], order[3..]);
        assert_eq!(order[..3].iter().collect::<std::collections::HashSet<_>>().len(), 3);
    }

    #[test]
    fn uneven_counts_differ_by_at_most_one() {
        let b = balancer();
        b.update(&set(&["a:1", "b:1", "c:1"]));
        let hits = tally(&b, 301);
        let (min, max) = (hits.values().min().unwrap(), hits.values().max().unwrap());
        assert!(max - min <= 1, "{hits:?}");
        assert_eq!(hits.values().sum::<usize>(), 301);
    }

    #[test]
    fn not_ready_endpoints_get_no_traffic_but_are_listed() {
        let b = balancer();
        let mut endpoints = set(&["a:1", "b:1"]);
        endpoints[1].ready = false;
        b.update(&endpoints);
        assert_eq!(tally(&b, 10), HashMap::from([("a:1".to_owned(), 10)]));
        assert_eq!(b.endpoints().len(), 2);
        assert_eq!(b.ready_count(), 1);
    }

    #[test]
    fn update_keeps_connections_of_endpoints_that_stay() {
        let b = balancer();
        b.update(&set(&["a:1", "b:1"]));
        let before: HashMap<String, usize> = tally_conns(&b);
        b.update(&set(&["b:1", "c:1"]));
        let after = tally_conns(&b);
        assert_eq!(before["b:1"], after["b:1"], "b's connection must be reused");
        assert!(!after.contains_key("a:1"), "removed endpoint must get no traffic");
        assert!(
            after["c:1"] > before["b:1"].max(before["a:1"]),
            "c gets a new connection"
        );
    }

    fn tally_conns(b: &Balancer<(String, usize)>) -> HashMap<String, usize> {
        let now = Instant::now();
        (0..b.ready_count() * 2)
            .map(|_| {
                let m = b.pick(now).unwrap();
                (m.conn.0.clone(), m.conn.1)
            })
            .collect()
    }

    #[test]
    fn a_new_pod_on_a_reused_address_gets_a_new_connection() {
        let b = balancer();
        b.update(&vec![EndpointInfo::ready("a:1").with_pod_name("old")]);
        let old = b.pick(Instant::now()).unwrap().conn.1;
        b.update(&vec![EndpointInfo::ready("a:1").with_pod_name("new")]);
        let new = b.pick(Instant::now()).unwrap();
        assert_ne!(old, new.conn.1);
        assert_eq!(new.info.pod_name.as_deref(), Some("new"));
    }

    #[test]
    fn ejected_member_is_skipped_until_the_ejection_ends() {
        let b = balancer();
        b.update(&set(&["a:1", "b:1", "c:1"]));
        let now = Instant::now();
        let a = b
            .snapshot
            .load()
            .ready
            .iter()
            .find(|m| m.info.address == "a:1")
            .cloned()
            .unwrap();
        b.eject(&a, now);
        let during: Vec<String> = (0..6).map(|_| b.pick(now).unwrap().info.address.clone()).collect();
        assert!(!during.contains(&"a:1".to_owned()), "{during:?}");
        let later = now + EJECTION;
        let after: Vec<String> = (0..3).map(|_| b.pick(later).unwrap().info.address.clone()).collect();
        assert!(after.contains(&"a:1".to_owned()), "{after:?}");
    }

    #[test]
    fn when_all_are_ejected_one_is_still_tried() {
        let b = balancer();
        b.update(&set(&["a:1"]));
        let now = Instant::now();
        let a = b.pick(now).unwrap();
        b.eject(&a, now);
        assert_eq!(b.pick(now).unwrap().info.address, "a:1");
    }

    #[test]
    fn concurrent_pickers_still_split_exactly() {
        // Requests run on every worker thread: the atomic cursor must give
        // each pick its own turn, so totals are exact, not merely close.
        const THREADS: usize = 8;
        const PICKS: usize = 3_000;
        let b = Arc::new(balancer());
        b.update(&set(&["a:1", "b:1", "c:1"]));
        let workers: Vec<_> = (0..THREADS)
            .map(|_| {
                let b = Arc::clone(&b);
                std::thread::spawn(move || tally(&b, PICKS))
            })
            .collect();
        let mut hits: HashMap<String, usize> = HashMap::new();
        for worker in workers {
            for (address, n) in worker.join().unwrap() {
                *hits.entry(address).or_default() += n;
            }
        }
        let each = THREADS * PICKS / 3;
        assert_eq!(
            hits,
            HashMap::from([("a:1".into(), each), ("b:1".into(), each), ("c:1".into(), each)])
        );
    }

    #[test]
    fn an_update_during_picks_never_serves_a_removed_endpoint() {
        let b = Arc::new(balancer());
        b.update(&set(&["a:1", "b:1"]));
        let picker = {
            let b = Arc::clone(&b);
            std::thread::spawn(move || {
                let now = Instant::now();
                // Picks race the update below; once it has returned, "a:1" is gone.
                let mut after_update = Vec::new();
                while after_update.len() < 1_000 {
                    let removed = b.ready_count() == 1;
                    let member = b.pick(now).expect("an endpoint");
                    if removed {
                        after_update.push(member.info.address.clone());
                    }
                }
                after_update
            })
        };
        b.update(&set(&["b:1"]));
        let after = picker.join().unwrap();
        assert!(
            after.iter().all(|a| a == "b:1"),
            "{:?}",
            after.iter().filter(|a| *a != "b:1").count()
        );
    }
}
