//! The scraper loop with a scripted fetcher on tokio's paused clock (time
//! moves only when every task waits, so rounds are exact), and one run
//! over real HTTP.

use std::sync::Arc;
use std::time::Duration;

use pod_metrics::{Family, HttpFetch, PodReading, ScrapeConfig, ScrapeStatus, Target, run};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::support::{Answer, Script, Scripted, Server, handled, page, url_target};

fn target(pod: &str) -> Target {
    url_target(pod, format!("http://{pod}.test/metrics"))
}

fn config() -> ScrapeConfig {
    ScrapeConfig {
        interval: Duration::from_secs(1),
        timeout: Duration::from_secs(1),
        ..ScrapeConfig::default()
    }
}

struct Running {
    rx: mpsc::Receiver<Vec<PodReading>>,
    targets: watch::Sender<Vec<Target>>,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

fn start(fetch: Arc<Scripted>, pods: &[&str], config: ScrapeConfig) -> Running {
    let (targets, targets_rx) = watch::channel(pods.iter().map(|p| target(p)).collect());
    let (tx, rx) = mpsc::channel(1_000);
    let cancel = CancellationToken::new();
    let task = tokio::spawn(run(targets_rx, fetch, config, tx, cancel.clone()));
    Running {
        rx,
        targets,
        cancel,
        task,
    }
}

impl Running {
    async fn next(&mut self) -> Vec<PodReading> {
        tokio::time::timeout(Duration::from_secs(120), self.rx.recv())
            .await
            .expect("a round within two minutes (paused clock)")
            .expect("the scraper runs")
    }

    async fn stop(self) {
        self.cancel.cancel();
        self.task.await.expect("the scraper ends cleanly");
    }
}

fn requests(reading: &PodReading) -> Option<u64> {
    reading.totals.as_ref().map(|t| t.requests)
}

#[tokio::test(start_paused = true)]
async fn first_scrape_is_the_baseline_then_deltas_and_resets() {
    let fetch = Arc::new(Scripted::default());
    fetch.set("a", Script::Body(handled(1_000, 40)));
    let mut scraper = start(Arc::clone(&fetch), &["a"], config());
    let first = scraper.next().await;
    assert_eq!(first[0].pod, "a");
    assert_eq!(first[0].family, Some(Family::GrpcPrometheus));
    assert_eq!(requests(&first[0]), Some(0));
    assert!(matches!(first[0].status, ScrapeStatus::Ok { .. }));

    fetch.set("a", Script::Body(handled(1_200, 45)));
    let second = scraper.next().await;
    let totals = second[0].totals.clone().expect("totals");
    assert_eq!((totals.requests, totals.errors), (205, 5));
    assert_eq!(totals.error_codes.get(&14), Some(&5));
    assert_eq!(totals.methods.get("/greet.GreetService/Greet"), Some(&(205, 5)));

    // The pod restarted: 1,200 → 50 counts 50, never negative.
    fetch.set("a", Script::Body(handled(50, 0)));
    let third = scraper.next().await;
    assert_eq!(requests(&third[0]), Some(255));
    scraper.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_hung_pod_does_not_hold_back_the_others() {
    let fetch = Arc::new(Scripted::default());
    fetch.set("fast", Script::Body(handled(1, 0)));
    fetch.set("slow", Script::Hang);
    let mut scraper = start(
        Arc::clone(&fetch),
        &["fast", "slow"],
        ScrapeConfig {
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(3),
            ..ScrapeConfig::default()
        },
    );
    let started = tokio::time::Instant::now();
    // Round one ends with its interval: fast is read, slow still pending.
    let first = scraper.next().await;
    assert_eq!(started.elapsed(), Duration::from_secs(1));
    assert!(matches!(first[0].status, ScrapeStatus::Ok { .. }));
    assert_eq!(first[1].status, ScrapeStatus::Pending);
    // Fast keeps its rhythm while slow's one scrape runs to its limit: the
    // rounds from 1 s on have only fast in them and report once it is read.
    fetch.set("fast", Script::Body(handled(11, 0)));
    let mut round = scraper.next().await;
    while requests(&round[0]) != Some(10) {
        round = scraper.next().await;
    }
    assert!(started.elapsed() <= Duration::from_secs(2));
    assert_eq!(round[1].status, ScrapeStatus::Pending);
    assert_eq!(fetch.hits("slow"), 1, "no second scrape while one runs");
    let mut round = scraper.next().await;
    while matches!(round[1].status, ScrapeStatus::Pending) {
        round = scraper.next().await;
    }
    match &round[1].status {
        ScrapeStatus::Failing { cause, last_ok, .. } => {
            assert_eq!(cause, "timed out after 3s");
            assert_eq!(*last_ok, None);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(round[1].totals, None);
    scraper.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_pod_that_stops_answering_keeps_its_totals_and_backs_off() {
    let fetch = Arc::new(Scripted::default());
    fetch.set("a", Script::Body(handled(10, 0)));
    let mut scraper = start(Arc::clone(&fetch), &["a"], config());
    let ok = scraper.next().await;
    let ScrapeStatus::Ok { at: ok_at } = ok[0].status else {
        panic!("{:?}", ok[0].status)
    };
    fetch.set("a", Script::Body(handled(13, 0)));
    assert_eq!(requests(&scraper.next().await[0]), Some(3));
    let last_ok = match scraper.next().await[0].status {
        ScrapeStatus::Ok { at } => at,
        ref other => panic!("{other:?}"),
    };
    assert!(last_ok >= ok_at);
    fetch.set(
        "a",
        Script::Fail("HTTP 500 from http://a.test/metrics: boom".to_owned()),
    );
    let hits_before = fetch.hits("a");
    let mut since_seen = None;
    // 16 more rounds: scraped in rounds 0, 2, 5, 10 (skipping 1, 2, 4, 8).
    for _ in 0..16 {
        let reading = scraper.next().await.remove(0);
        assert_eq!(reading.totals.as_ref().map(|t| t.requests), Some(3), "totals stay");
        match reading.status {
            ScrapeStatus::Failing {
                cause,
                since,
                last_ok: seen,
            } => {
                assert_eq!(cause, "HTTP 500 from http://a.test/metrics: boom");
                assert_eq!(seen, Some(last_ok));
                assert_eq!(*since_seen.get_or_insert(since), since, "since stays put");
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(fetch.hits("a") - hits_before, 4);
    // It answers again: back to Ok, counting on from its totals.
    fetch.set("a", Script::Body(handled(20, 0)));
    let mut reading = scraper.next().await.remove(0);
    while !matches!(reading.status, ScrapeStatus::Ok { .. }) {
        reading = scraper.next().await.remove(0);
    }
    assert_eq!(requests(&reading), Some(10));
    scraper.stop().await;
}

#[tokio::test(start_paused = true)]
async fn the_backoff_stops_at_thirty_seconds() {
    let fetch = Arc::new(Scripted::default());
    fetch.set("a", Script::Fail("down".to_owned()));
    let mut scraper = start(
        Arc::clone(&fetch),
        &["a"],
        ScrapeConfig {
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(1),
            ..ScrapeConfig::default()
        },
    );
    // At 10 s a round, the skips are 1, 2, 3, 3, … rounds (30 s at most).
    for _ in 0..16 {
        scraper.next().await;
    }
    // Scraped in rounds 0, 2, 5, 9, 13.
    assert_eq!(fetch.hits("a"), 5);
    scraper.stop().await;
}

#[tokio::test(start_paused = true)]
async fn targets_come_and_go_between_rounds() {
    let fetch = Arc::new(Scripted::default());
    for pod in ["a", "b", "c"] {
        fetch.set(pod, Script::Body(handled(5, 0)));
    }
    let mut scraper = start(Arc::clone(&fetch), &["a", "b"], config());
    let names = |readings: &[PodReading]| readings.iter().map(|r| r.pod.clone()).collect::<Vec<_>>();
    assert_eq!(names(&scraper.next().await), ["a", "b"]);
    fetch.set("a", Script::Body(handled(7, 0)));
    scraper.targets.send(vec![target("c"), target("a")]).unwrap();
    let round = scraper.next().await;
    assert_eq!(names(&round), ["c", "a"]);
    assert_eq!(requests(&round[1]), Some(2), "a kept its baseline");
    assert_eq!(requests(&round[0]), Some(0), "c starts with its own baseline");
    // b comes back as a new pod: a fresh baseline, nothing carried over.
    fetch.set("b", Script::Body(handled(50, 0)));
    scraper.targets.send(vec![target("a"), target("b")]).unwrap();
    let round = scraper.next().await;
    assert_eq!(names(&round), ["a", "b"]);
    assert_eq!(requests(&round[1]), Some(0));
    scraper.stop().await;
}

#[tokio::test(start_paused = true)]
async fn no_grpc_family_is_its_own_status() {
    let fetch = Arc::new(Scripted::default());
    fetch.set("a", Script::Body("up 1\n".to_owned()));
    let mut scraper = start(Arc::clone(&fetch), &["a"], config());
    let reading = scraper.next().await.remove(0);
    match reading.status {
        ScrapeStatus::NoGrpcMetrics { cause, .. } => assert_eq!(
            cause,
            "no gRPC server metrics at http://a.test/metrics — looked for grpc_server_handled_total, \
             rpc_server_call_duration_seconds, rpc_server_duration_milliseconds"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!((reading.family, reading.totals), (None, None));
    scraper.stop().await;
}

#[tokio::test(start_paused = true)]
async fn an_empty_pod_name_takes_the_pods_own_hint() {
    let fetch = Arc::new(Scripted::default());
    let mut scraper = start(Arc::clone(&fetch), &[], config());
    fetch.set(
        "",
        Script::Body(format!("target_info{{k8s_pod_name=\"greet-7\"}} 1\n{}", handled(1, 0))),
    );
    scraper
        .targets
        .send(vec![url_target("", "http://10.0.0.7:9090/metrics".to_owned())])
        .unwrap();
    let mut round = scraper.next().await;
    while round.is_empty() || round[0].status == ScrapeStatus::Pending {
        round = scraper.next().await;
    }
    assert_eq!(round[0].pod, "greet-7");
    assert_eq!(round[0].url, "http://10.0.0.7:9090/metrics");
    scraper.stop().await;
}

#[tokio::test(start_paused = true)]
async fn the_loop_ends_when_no_one_listens() {
    let fetch = Arc::new(Scripted::default());
    fetch.set("a", Script::Body(handled(1, 0)));
    let scraper = start(fetch, &["a"], config());
    drop(scraper.rx);
    tokio::time::timeout(Duration::from_secs(60), scraper.task)
        .await
        .expect("ends")
        .expect("cleanly");
}

/// Over real HTTP on loopback: a hung endpoint fails on its time limit while
/// the other pod's readings come every round.
#[tokio::test]
async fn over_http_a_hung_endpoint_fails_on_time() {
    let server = Server::start().await;
    server.set("/a", page(200, "text/plain", handled(3, 1)));
    server.set("/slow", Answer::Hang);
    let (_targets, targets_rx) = watch::channel(vec![
        url_target("a", server.url("/a")),
        url_target("slow", server.url("/slow")),
    ]);
    let (tx, mut rx) = mpsc::channel(100);
    let cancel = CancellationToken::new();
    let config = ScrapeConfig {
        interval: Duration::from_millis(200),
        timeout: Duration::from_millis(300),
        ..ScrapeConfig::default()
    };
    let task = tokio::spawn(run(targets_rx, Arc::new(HttpFetch::new()), config, tx, cancel.clone()));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut a_ok_while_slow_pending = false;
    loop {
        let round = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .expect("the slow pod fails within 20 s")
            .expect("the scraper runs");
        if matches!(round[0].status, ScrapeStatus::Ok { .. }) && round[1].status == ScrapeStatus::Pending {
            a_ok_while_slow_pending = true;
        }
        if let ScrapeStatus::Failing { cause, .. } = &round[1].status {
            assert_eq!(cause, "timed out after 300ms");
            assert!(matches!(round[0].status, ScrapeStatus::Ok { .. }));
            break;
        }
    }
    assert!(
        a_ok_while_slow_pending,
        "a was reported while slow was still being scraped"
    );
    cancel.cancel();
    task.await.expect("ends");
}
