//! Routes over fake pools: no socket, no upstream; the connection is the
//! address it would dial.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::discovery::{EndpointInfo, EndpointSet};
use crate::in_flight::SendTimes;

pub(crate) type FakeMember = Result<Arc<String>, String>;

/// Pools whose connection is the address it would dial.
pub(crate) struct Fake {
    pool: Balancer<FakeMember>,
    sticky: Arc<String>,
    sends: Arc<SendTimes>,
    sticky_pod: Mutex<Option<String>>,
    changes: AtomicUsize,
}

impl Fake {
    /// A pool of `addresses`; one starting with "bad" cannot be dialled.
    pub(crate) fn with(addresses: &[&str]) -> Self {
        let pool = Balancer::new(|info: &EndpointInfo| {
            if info.address.starts_with("bad") {
                Err(format!("{:?} has no port", info.address))
            } else {
                Ok(Arc::new(info.address.clone()))
            }
        });
        let set: EndpointSet = addresses.iter().map(|a| EndpointInfo::ready(*a)).collect();
        pool.update(&set);
        Fake {
            pool,
            sticky: Arc::new("svc:50051".to_owned()),
            sends: Arc::new(SendTimes::default()),
            sticky_pod: Mutex::new(None),
            changes: AtomicUsize::new(0),
        }
    }

    pub(crate) fn changes(&self) -> usize {
        self.changes.load(Ordering::Relaxed)
    }

    pub(crate) fn skip_of(&self, address: &str) -> Option<String> {
        self.pool
            .report()
            .into_iter()
            .find(|(info, _)| info.address == address)
            .and_then(|(_, skip)| skip)
            .map(|skip| skip.reason)
    }
}

impl Pools for Fake {
    type Member = FakeMember;
    type Conn = String;

    fn pool(&self, _mode: Mode) -> &Balancer<FakeMember> {
        &self.pool
    }

    fn connection_of(member: &FakeMember) -> Result<&Arc<String>, &str> {
        member.as_ref().map_err(String::as_str)
    }

    fn pool_changed(&self, _mode: Mode) {
        self.changes.fetch_add(1, Ordering::Relaxed);
    }

    fn nowhere(&self, mode: Mode) -> UpstreamError {
        UpstreamError::NoEndpoints {
            mode,
            discovery: "fake".into(),
        }
    }

    fn sticky(&self) -> (Arc<String>, &str) {
        (Arc::clone(&self.sticky), "svc:50051")
    }

    fn sticky_sending(&self, sent: Instant) -> Sending {
        Sending::new(&self.sends, sent)
    }

    fn sticky_replied_from(&self, pod: &str) {
        *self.sticky_pod.lock().unwrap() = Some(pod.to_owned());
    }

    fn sticky_pod(&self) -> Option<String> {
        self.sticky_pod.lock().unwrap().clone()
    }
}

pub(crate) fn pick(fake: &Fake, mode: Mode) -> Route<Fake> {
    Route::pick(fake, mode).unwrap_or_else(|no| panic!("no route: {}", no.error))
}

#[test]
fn balanced_routes_go_round_robin_and_a_failed_endpoint_is_skipped_and_not_retried() {
    let fake = Fake::with(&["a:1", "b:1", "c:1"]);
    let mut seen: Vec<String> = (0..3).map(|_| pick(&fake, Mode::Balanced).endpoint).collect();
    seen.sort();
    assert_eq!(seen, ["a:1", "b:1", "c:1"]);

    let route = pick(&fake, Mode::Balanced);
    let failed = route.endpoint.clone();
    assert_eq!(route.connection(), &failed, "the member's own connection");
    route.failed(&fake, "connection refused");
    assert_eq!(fake.changes(), 1, "a new skip is published");
    assert_eq!(fake.skip_of(&failed).as_deref(), Some("connection refused"));
    let retry = route.retry(&fake).unwrap();
    assert_ne!(retry.endpoint, failed);
    for _ in 0..6 {
        assert_ne!(pick(&fake, Mode::Balanced).endpoint, failed, "skipped");
    }
}

#[test]
fn a_response_ends_the_skip_and_names_the_pod() {
    let fake = Fake::with(&["a:1"]);
    pick(&fake, Mode::Balanced).failed(&fake, "connection refused");
    assert_eq!(fake.skip_of("a:1").as_deref(), Some("connection refused"));
    // All skipped: trying one beats failing outright.
    let mut route = pick(&fake, Mode::Balanced);
    assert_eq!(route.known_pod(&fake), None);
    route.succeeded(&fake, Some("pod-a"));
    assert_eq!(fake.skip_of("a:1"), None);
    assert_eq!(route.known_pod(&fake).as_deref(), Some("pod-a"));
    let mut outcome = RequestOutcome {
        method: "/m".to_owned(),
        ..RequestOutcome::default()
    };
    route.describe(&mut outcome, 1);
    assert_eq!(outcome.pod_name, "pod-a");
    assert_eq!(outcome.pod_ip, "a");
    assert_eq!(outcome.method, "/m", "the call's own");
    assert_eq!(fake.changes(), 2, "the skip, then its end");
}

#[test]
fn an_address_that_cannot_be_dialled_is_skipped_and_the_next_endpoint_taken() {
    let fake = Fake::with(&["a:1", "bad-host"]);
    for _ in 0..4 {
        assert_eq!(pick(&fake, Mode::Balanced).endpoint, "a:1");
    }
    assert_eq!(
        fake.skip_of("bad-host").as_deref(),
        Some("not a valid address: \"bad-host\" has no port")
    );

    let all_bad = Fake::with(&["bad-1", "bad-2"]);
    let Err(no) = Route::pick(&all_bad, Mode::LeastLoaded) else {
        panic!("nothing can be dialled");
    };
    assert!(no.endpoint.starts_with("bad-"), "{}", no.endpoint);
    assert_eq!(
        no.error.to_string(),
        format!(
            "endpoint {:?} is not a valid address: {:?} has no port",
            no.endpoint, no.endpoint
        )
    );
}

#[test]
fn an_empty_pool_is_nowhere_to_send_in_the_modes_words() {
    let fake = Fake::with(&[]);
    let Err(no) = Route::pick(&fake, Mode::LeastLoaded) else {
        panic!("no endpoint");
    };
    assert_eq!(no.endpoint, "");
    assert_eq!(
        no.error.to_string(),
        "no ready endpoint in least-loaded mode (discovery: fake); check that the gRPC pods are running and ready, or switch the gateway to sticky mode (PUT /mode)"
    );
}

#[test]
fn sticky_routes_take_the_services_connection_and_retry_on_it() {
    let fake = Fake::with(&["a:1", "b:1"]);
    let mut route = pick(&fake, Mode::Sticky);
    assert_eq!(route.endpoint, "svc:50051");
    assert_eq!(route.connection(), "svc:50051");
    assert_eq!(route.max_attempts(&fake), 2);
    assert_eq!(route.try_limit(&fake, None), None, "only the call's deadline");
    assert_eq!(fake.sends.count(), 1, "in flight on the sticky connection");
    route.succeeded(&fake, Some("pod-x"));
    assert_eq!(fake.sends.count(), 0, "answered");
    assert_eq!(route.known_pod(&fake).as_deref(), Some("pod-x"));
    // A pool member failing is not the sticky connection's concern.
    route.failed(&fake, "connection refused");
    assert_eq!((fake.changes(), fake.skip_of("a:1")), (0, None));
    let retry = route.retry(&fake).unwrap();
    assert_eq!(retry.endpoint, "svc:50051");
    assert_eq!(retry.connection(), "svc:50051");
}

#[test]
fn a_balanced_call_tries_each_ready_endpoint_at_most_three_and_limits_a_try_only_with_another_to_go_to() {
    let one = Fake::with(&["a:1"]);
    let route = pick(&one, Mode::Balanced);
    assert_eq!(route.max_attempts(&one), 1);
    assert_eq!(route.try_limit(&one, None), None, "nowhere else to go");
    let two = Fake::with(&["a:1", "b:1"]);
    let route = pick(&two, Mode::Balanced);
    assert_eq!(route.max_attempts(&two), 2);
    assert!(route.try_limit(&two, None).is_some());
    let five = Fake::with(&["a:1", "b:1", "c:1", "d:1", "e:1"]);
    assert_eq!(pick(&five, Mode::Dns).max_attempts(&five), 3);
}

#[test]
fn the_host_of_an_endpoint() {
    assert_eq!(host_of("10.0.0.7:50051"), "10.0.0.7");
    assert_eq!(host_of("[fd00::7]:50051"), "fd00::7");
    assert_eq!(host_of("greet"), "greet");
}
