use std::sync::atomic::{AtomicUsize, Ordering};

use tokio_stream::StreamExt;

use super::*;
use crate::discovery::{self, DiscoveryHealth};

/// A resolver that never answers, counting the lookups started.
fn hanging() -> (Resolver, Arc<AtomicUsize>) {
    let started = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&started);
    let resolver = Resolver::new(move || {
        counted.fetch_add(1, Ordering::SeqCst);
        Box::pin(std::future::pending())
    });
    (resolver, started)
}

#[tokio::test(start_paused = true)]
async fn a_lookup_that_never_answers_fails_at_the_limit_and_is_not_doubled() {
    let (resolver, started) = hanging();
    let mut lookups = ResolveLoop::new(resolver, Duration::from_millis(100));
    let before = tokio::time::Instant::now();
    assert_eq!(lookups.next().await, Lookup::Failed("no answer within 1s".into()));
    assert_eq!(before.elapsed(), Duration::from_secs(1));
    assert_eq!(lookups.next().await, Lookup::Failed("no answer within 1s".into()));
    assert_eq!(started.load(Ordering::SeqCst), 1, "the first lookup is waited on again");
}

#[tokio::test(start_paused = true)]
async fn dns_discovery_gives_up_on_a_lookup_that_never_answers() {
    let (resolver, started) = hanging();
    let health = DiscoveryHealth::default();
    let mut sets = discovery::dns_with(
        resolver,
        "greet.invalid:50051".into(),
        Duration::from_millis(100),
        health.clone(),
    );
    // Two limits pass: two failures counted, the set never sent, one lookup.
    let nothing = tokio::time::timeout(Duration::from_millis(2_500), sets.next()).await;
    assert!(nothing.is_err(), "no endpoint set from a name that never resolved");
    assert_eq!(health.errors(), 2);
    assert_eq!(started.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn dns_discovery_and_dns_mode_read_an_answer_alike() {
    let answers = Arc::new(std::sync::Mutex::new(vec![
        Ok(vec!["10.0.0.1:50051".parse().unwrap()]),
        Err(std::io::Error::new(std::io::ErrorKind::NotFound, "NXDOMAIN")),
        Err(std::io::Error::new(std::io::ErrorKind::NotFound, "NXDOMAIN")),
    ]));
    let resolver = Resolver::new(move || {
        let next = answers.lock().unwrap().remove(0);
        Box::pin(async move { next })
    });
    let health = DiscoveryHealth::default();
    let mut sets = discovery::dns_with(
        resolver,
        "greet:50051".into(),
        Duration::from_millis(100),
        health.clone(),
    );
    let first = sets.next().await.unwrap();
    assert_eq!(
        first.iter().map(|e| e.address.as_str()).collect::<Vec<_>>(),
        ["10.0.0.1:50051"]
    );
    // No addresses once is a hiccup (counted, the set kept); twice, an empty set.
    assert_eq!(sets.next().await.unwrap(), discovery::EndpointSet::new());
    assert_eq!(health.errors(), 1);
}
