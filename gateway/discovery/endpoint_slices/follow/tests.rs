use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::stream::{self, BoxStream};

use super::*;
use crate::discovery::EndpointInfo;
use crate::discovery::endpoint_slices::tests::{grpc, slice};

type Item = Result<watcher::Event<EndpointSlice>, watcher::Error>;

enum Step {
    Wait(Duration),
    Yield(Box<Item>),
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn yield_(item: Item) -> Step {
    Step::Yield(Box::new(item))
}

/// A list of slice `a` with p1 and, if given, p2 of that readiness.
fn list(p2: Option<bool>) -> Vec<Step> {
    let mut endpoints = vec![("10.0.0.1", "p1", Some(true), None)];
    if let Some(ready) = p2 {
        endpoints.push(("10.0.0.2", "p2", Some(ready), None));
    }
    vec![
        yield_(Ok(watcher::Event::Init)),
        yield_(Ok(watcher::Event::InitApply(slice("a", ("grpc", 50051), &endpoints)))),
        yield_(Ok(watcher::Event::InitDone)),
    ]
}

/// A list that fails, as kube's watcher yields it: `Init` first.
fn refused() -> Vec<Step> {
    vec![yield_(Ok(watcher::Event::Init)), refused_error()]
}

fn refused_error() -> Step {
    yield_(Err(watcher::Error::InitialListFailed(kube::Error::ReadEvents(
        io::Error::from(io::ErrorKind::ConnectionRefused),
    ))))
}

fn gone() -> Step {
    yield_(Err(watcher::Error::WatchError(Box::new(kube::core::Status {
        code: 410,
        reason: "Expired".into(),
        ..kube::core::Status::default()
    }))))
}

fn then(mut first: Vec<Step>, rest: Vec<Step>) -> Vec<Step> {
    first.extend(rest);
    first
}

/// Plays `steps`, then hangs as a quiet watch does.
fn play(steps: Vec<Step>) -> BoxStream<'static, Item> {
    stream::unfold(steps.into_iter(), |mut steps| async move {
        loop {
            match steps.next() {
                Some(Step::Wait(d)) => tokio::time::sleep(d).await,
                Some(Step::Yield(item)) => return Some((*item, steps)),
                None => std::future::pending::<()>().await,
            }
        }
    })
    .boxed()
}

/// Ready flags of p1, p2 in a set.
fn readiness(set: &EndpointSet) -> Vec<(&str, bool)> {
    set.iter()
        .map(|e| (e.pod_name.as_deref().unwrap_or(""), e.ready))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn after_an_outage_and_a_410_the_watch_starts_over_at_once() {
    // Each start plays the next script; the times of the starts are recorded.
    let mut scripts = VecDeque::from([
        then(
            list(Some(true)),
            vec![Step::Wait(Duration::from_secs(5)), refused_error()],
        ),
        refused(),
        refused(),
        refused(),
        refused(),
        // Back, with p2 not ready; then history is compacted under a live watch.
        then(list(Some(false)), vec![Step::Wait(Duration::from_secs(2)), gone()]),
        list(None),
    ]);
    let starts = Arc::new(Mutex::new(Vec::new()));
    let start = {
        let starts = starts.clone();
        move || {
            starts.lock().unwrap().push(Instant::now());
            play(scripts.pop_front().unwrap_or_default())
        }
    };
    let health = DiscoveryHealth::default();
    let (sets, mut rx) = mpsc::channel(16);
    let sink = Sink {
        namespace: "default".into(),
        health: health.clone(),
        sets,
    };
    let t0 = Instant::now();
    let task = tokio::spawn(follow(start, grpc(), sink, CatchUp::with_jitter(|| 1.0)));

    assert_eq!(readiness(&rx.recv().await.unwrap()), [("p1", true), ("p2", true)]);
    assert_eq!(readiness(&rx.recv().await.unwrap()), [("p1", true), ("p2", false)]);
    assert_eq!(
        t0.elapsed(),
        ms(7500),
        "100 + 200 + 400 + 800 ms after the API went away at 5 s"
    );
    assert_eq!(health.problem(), None);
    assert_eq!(health.errors(), 5);
    assert_eq!(readiness(&rx.recv().await.unwrap()), [("p1", true)]);
    assert_eq!(t0.elapsed(), ms(9500), "re-listed as the 410 came");
    let starts: Vec<_> = starts.lock().unwrap().iter().map(|at| *at - t0).collect();
    assert_eq!(starts, [0, 5100, 5300, 5700, 6500, 7500, 9500].map(ms));
    assert_eq!(health.errors(), 5, "a 410 is no failure");
    drop(rx);
    task.abort();
}

#[tokio::test(start_paused = true)]
async fn the_last_set_stays_and_health_says_why_while_failing() {
    let mut scripts = VecDeque::from([
        then(list(Some(true)), refused()),
        vec![Step::Wait(Duration::from_secs(60))],
    ]);
    let health = DiscoveryHealth::default();
    let (sets, mut rx) = mpsc::channel(16);
    let sink = Sink {
        namespace: "default".into(),
        health: health.clone(),
        sets,
    };
    let task = tokio::spawn(follow(
        move || play(scripts.pop_front().unwrap_or_default()),
        grpc(),
        sink,
        CatchUp::with_jitter(|| 1.0),
    ));
    assert_eq!(readiness(&rx.recv().await.unwrap()), [("p1", true), ("p2", true)]);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        health.problem().as_deref(),
        Some("EndpointSlice watch: the API server refuses connections — down or restarting?")
    );
    assert!(rx.try_recv().is_err(), "no new set");
    task.abort();
}

#[test]
fn the_log_tells_an_outage_and_the_catch_up() {
    let mut log = WatchLog::default();
    let t0 = Instant::now();
    let two = vec![EndpointInfo::ready("10.0.0.1:1"), EndpointInfo::ready("10.0.0.2:1")];
    assert_eq!(log.answered(t0), None);
    assert_eq!(log.listed(&two, t0), "EndpointSlice list: 2 endpoints (2 ready)");

    let refused = "the API server refuses connections — down or restarting?";
    assert_eq!(
        log.failed(refused, t0 + ms(1000)).as_deref(),
        Some(
            "EndpointSlice watch: the API server refuses connections — down or restarting?; retrying, keeping the last endpoint set"
        )
    );
    assert_eq!(
        log.failed(refused, t0 + ms(1100)),
        None,
        "the same problem again is not repeated"
    );
    assert_eq!(
        log.failed("API server answered 500: etcd down", t0 + ms(1300))
            .as_deref(),
        Some("EndpointSlice watch: API server answered 500: etcd down; retrying, keeping the last endpoint set")
    );
    assert_eq!(
        log.answered(t0 + ms(6200)).as_deref(),
        Some("EndpointSlice watch resumed after 5.2 s (3 failed attempts)")
    );
    assert_eq!(log.answered(t0 + ms(6210)), None);
    let mut one_ready = two.clone();
    one_ready[1].ready = false;
    assert_eq!(
        log.listed(&one_ready, t0 + ms(6300)),
        "EndpointSlice re-list: 2 endpoints (1 ready), 5.3 s after the watch broke off"
    );

    // A 410 under a live watch.
    assert_eq!(
        log.gone(t0 + ms(10_000)),
        "EndpointSlice watch: history compacted while away (410 Gone); re-listing"
    );
    assert_eq!(log.answered(t0 + ms(10_010)), None, "a 410 is no failure");
    assert_eq!(
        log.listed(&two, t0 + ms(10_040)),
        "EndpointSlice re-list: 2 endpoints (2 ready), 0.0 s after the watch broke off"
    );
    assert_eq!(
        log.listed(&two, t0 + ms(20_000)),
        "EndpointSlice re-list: 2 endpoints (2 ready)"
    );
}

#[test]
fn one_failed_attempt_is_said_in_the_singular() {
    let mut log = WatchLog::default();
    let t0 = Instant::now();
    log.failed("x", t0);
    assert_eq!(
        log.answered(t0 + ms(150)).as_deref(),
        Some("EndpointSlice watch resumed after 0.1 s (1 failed attempt)")
    );
}
