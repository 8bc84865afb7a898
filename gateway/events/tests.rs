//! The hub: totals, the raw stream's order and lag, summaries, and the
//! hand-over between lock-free counting and raw subscribers under load.

use super::*;

fn hub() -> EventHub {
    EventHub::new(
        GatewayInfo {
            gateway: "gw".into(),
            sticky_target: "svc:50051".into(),
            discovery: "static".into(),
        },
        Mode::Sticky,
    )
}

fn ok(pod: &str, latency_us: u64) -> RequestOutcome {
    RequestOutcome {
        pod_name: pod.into(),
        pod_ip: format!("ip-{pod}"),
        endpoint: "svc:50051".into(),
        mode: Mode::Sticky,
        latency_us,
        ..RequestOutcome::default()
    }
}

#[test]
fn totals_count_requests_errors_and_latency_per_pod() {
    let hub = hub();
    hub.publish_request(ok("a", 100));
    hub.publish_request(ok("a", 300));
    hub.publish_request(ok("b", 50));
    hub.publish_request(RequestOutcome {
        endpoint: "svc:50051".into(),
        grpc_code: 14,
        error: "refused".into(),
        ..RequestOutcome::default()
    });
    let state = hub.snapshot();
    assert_eq!(state.total_requests, 4);
    assert_eq!(state.last_seq, 4);
    let by_key: Vec<(&str, &str, u64, u64, u64)> = state
        .pods
        .iter()
        .map(|p| {
            (
                p.pod_name.as_str(),
                p.endpoint.as_str(),
                p.requests,
                p.errors,
                p.latency_us_sum,
            )
        })
        .collect();
    assert_eq!(
        by_key,
        [
            ("a", "svc:50051", 2, 0, 400),
            ("b", "svc:50051", 1, 0, 50),
            ("", "svc:50051", 1, 1, 0)
        ]
    );
    assert_eq!(state.sticky_target, "svc:50051");
}

#[test]
fn a_failure_that_names_no_ip_keeps_the_pods_known_ip() {
    let hub = hub();
    hub.publish_request(RequestOutcome {
        pod_ip: "10.0.0.1".into(),
        ..ok("pod-a", 100)
    });
    // Balanced mode knows the pod's name from discovery, not always its IP.
    hub.publish_request(RequestOutcome {
        pod_ip: String::new(),
        grpc_code: 14,
        ..ok("pod-a", 100)
    });
    let state = hub.snapshot();
    assert_eq!(state.pods.len(), 1);
    assert_eq!(state.pods[0].pod_ip, "10.0.0.1");
    assert_eq!((state.pods[0].requests, state.pods[0].errors), (2, 1));
}

#[test]
fn events_and_the_start_carry_the_wall_clock_time() {
    let micros = || {
        let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        i64::try_from(since.unwrap().as_micros()).unwrap()
    };
    let before = micros();
    let hub = hub();
    let (_, mut rx) = hub.subscribe();
    hub.publish_request(ok("pod-a", 100));
    hub.publish_mode(Mode::Balanced);
    hub.publish_endpoints(Vec::new());
    let after = micros();
    let started = hub.snapshot().started_unix_us;
    assert!((before..=after).contains(&started), "{before} <= {started} <= {after}");
    for _ in 0..3 {
        let stamp = match rx.try_recv().unwrap().kind.clone().unwrap() {
            event::Kind::Request(r) => r.timestamp_unix_us,
            event::Kind::ModeChanged(m) => m.timestamp_unix_us,
            event::Kind::EndpointsChanged(e) => e.timestamp_unix_us,
            other => panic!("unexpected {other:?}"),
        };
        assert!((started..=after).contains(&stamp), "{started} <= {stamp} <= {after}");
    }
}

#[test]
fn subscriber_gets_events_after_its_snapshot_in_order() {
    let hub = hub();
    hub.publish_request(ok("a", 1));
    let (snapshot, mut rx) = hub.subscribe();
    assert_eq!(snapshot.last_seq, 1);
    hub.publish_mode(Mode::Balanced);
    hub.publish_mode(Mode::Balanced); // unchanged: no event
    hub.publish_request(ok("b", 1));
    let first = rx.try_recv().unwrap();
    match first.kind.as_ref().unwrap() {
        event::Kind::ModeChanged(m) => {
            assert_eq!(
                (m.seq, m.mode, m.previous),
                (2, observe::Mode::Balanced as i32, observe::Mode::Sticky as i32)
            )
        }
        other => panic!("expected a mode change, got {other:?}"),
    }
    match rx.try_recv().unwrap().kind.as_ref().unwrap() {
        event::Kind::Request(r) => assert_eq!((r.seq, r.pod_name.as_str()), (3, "b")),
        other => panic!("expected a request, got {other:?}"),
    }
    assert!(rx.try_recv().is_err());
    assert_eq!(hub.mode(), Mode::Balanced);
}

#[test]
fn slow_subscriber_lags_without_blocking_publishers() {
    let hub = hub();
    let (_, mut rx) = hub.subscribe();
    let n = BROADCAST_CAPACITY + 10;
    for _ in 0..n {
        hub.publish_request(ok("a", 1));
    }
    assert_eq!(rx.try_recv().unwrap_err(), broadcast::error::TryRecvError::Lagged(10));
    assert_eq!(hub.snapshot().total_requests, n as u64);
}

fn failed(pod: &str, code: i32, attempts: u32, latency_us: u64) -> RequestOutcome {
    RequestOutcome {
        grpc_code: code,
        error: "failed".into(),
        attempts,
        ..ok(pod, latency_us)
    }
}

#[test]
fn a_summary_counts_requests_errors_by_code_attempts_and_latency_buckets() {
    let hub = hub();
    hub.publish_request(RequestOutcome {
        attempts: 1,
        ..ok("a", 3)
    });
    hub.publish_request(RequestOutcome {
        attempts: 3,
        ..ok("a", 1_000)
    });
    hub.publish_request(failed("a", 14, 2, 1_024));
    hub.publish_request(failed("b", 4, 1, 5_000_000));
    hub.publish_request(failed("b", 14, 1, 9));
    // Not a gRPC code: counted as UNKNOWN (2).
    hub.publish_request(failed("b", 99, 1, 9));
    // No endpoint, no pod: keyed by the (empty) endpoint, 0 attempts.
    hub.publish_request(RequestOutcome {
        grpc_code: 14,
        ..RequestOutcome::default()
    });
    let summary = hub.build_summary(std::time::Duration::from_millis(250));
    assert_eq!(summary.interval_ms, 250);
    let codes =
        |s: &observe::PodSummary| -> Vec<(i32, u64)> { s.error_codes.iter().map(|c| (c.code, c.count)).collect() };
    let keys: Vec<&str> = summary.pods.iter().map(|p| p.pod_name.as_str()).collect();
    assert_eq!(keys, ["", "a", "b"]);
    let [none, a, b] = &summary.pods[..] else {
        panic!("three keys: {summary:?}")
    };
    assert_eq!(
        (none.requests, none.errors, none.attempts, codes(none)),
        (1, 1, 0, vec![(14, 1)])
    );
    assert_eq!((a.requests, a.errors, a.attempts, a.latency_us_sum), (3, 1, 6, 2_027));
    assert_eq!(codes(a), [(14, 1)]);
    assert_eq!((a.pod_ip.as_str(), a.endpoint.as_str()), ("ip-a", "svc:50051"));
    // 3 µs in bucket 3, 1000 µs in 35 (896..1023), 1024 µs in 36.
    let mut expected_a = vec![0; 37];
    expected_a[3] = 1;
    expected_a[35] = 1;
    expected_a[36] = 1;
    assert_eq!(a.latency_buckets, expected_a);
    assert_eq!((b.requests, b.errors, b.attempts), (3, 3, 3));
    assert_eq!(codes(b), [(2, 1), (4, 1), (14, 1)]);
    // 9 µs twice in bucket 8; 5 s in bucket 84 (4,194,304..5,242,879 µs).
    assert_eq!(b.latency_buckets.len(), 85);
    assert_eq!((b.latency_buckets[8], b.latency_buckets[84]), (2, 1));
    assert_eq!(b.latency_buckets.iter().sum::<u64>(), 3);
    let total = summary.total.unwrap();
    assert_eq!((total.requests, total.errors, total.attempts), (7, 5, 9));
    assert_eq!(codes(&total), [(2, 1), (4, 1), (14, 3)]);
    assert_eq!(total.latency_us_sum, 2_027 + 5_000_018);
    assert_eq!(total.latency_buckets.len(), 85);
    assert_eq!(
        (
            total.latency_buckets[0],
            total.latency_buckets[3],
            total.latency_buckets[8]
        ),
        (1, 1, 2)
    );
    // The snapshot agrees with the summary.
    let state = hub.snapshot();
    assert_eq!(state.total_requests, 7);
    assert_eq!(state.pods.iter().map(|p| p.errors).sum::<u64>(), 5);
}

#[test]
fn the_fast_path_builds_no_event_and_a_raw_subscriber_switches_it_off_until_it_leaves() {
    let hub = hub();
    hub.publish_request(ok("a", 1));
    assert!(!hub.gate.is_raw());
    let (snapshot, mut rx) = hub.subscribe();
    assert_eq!((snapshot.last_seq, snapshot.total_requests), (1, 1));
    assert!(hub.gate.is_raw());
    hub.publish_request(ok("a", 1));
    assert!(matches!(rx.try_recv().unwrap().kind, Some(event::Kind::Request(ref r)) if r.seq == 2));
    drop(rx);
    // The first request after the last raw subscriber left reopens the fast path.
    hub.publish_request(ok("a", 1));
    assert!(!hub.gate.is_raw());
    // A snapshot alone closes it only while it reads.
    assert_eq!(hub.snapshot().last_seq, 3);
    assert!(!hub.gate.is_raw());
}

#[tokio::test(start_paused = true)]
async fn one_summary_per_tick_is_built_and_shared_by_every_subscriber_of_the_interval() {
    let hub = Arc::new(hub());
    let interval = std::time::Duration::from_millis(250);
    let mut feeds: Vec<summary::Feed> = (0..10).map(|_| hub.summary_feed(interval)).collect();
    let mut slow = hub.summary_feed(std::time::Duration::from_secs(1));
    for tick in 1..=8u64 {
        hub.publish_request(ok("a", 10));
        tokio::time::sleep(interval).await;
        for feed in &mut feeds {
            feed.changed().await.unwrap();
        }
        let first = feeds[0].borrow_and_update().clone().unwrap();
        for feed in &mut feeds[1..] {
            let latest = feed.borrow_and_update().clone().unwrap();
            assert!(Arc::ptr_eq(&first, &latest), "every subscriber shares one summary");
        }
        let Some(event::Kind::Summary(summary)) = &first.kind else {
            panic!("a summary, got {first:?}")
        };
        assert_eq!(summary.total.as_ref().unwrap().requests, tick);
        // Ten subscribers at 250 ms, one at 1 s: one build per tick of each.
        assert_eq!(hub.summaries_built(), tick + tick / 4, "tick {tick}");
    }
    assert!(slow.has_changed().unwrap());
    let latest = slow.borrow_and_update().clone().unwrap();
    let Some(event::Kind::Summary(summary)) = &latest.kind else {
        panic!("a summary")
    };
    assert_eq!(
        (summary.interval_ms, summary.total.as_ref().unwrap().requests),
        (1000, 8)
    );
    assert_eq!(hub.summaries.subscribers(), 11, "ten at 250 ms and one at 1 s");
    // Nobody listens any more: the tickers stop at their next tick.
    drop(feeds);
    drop(slow);
    let built = hub.summaries_built();
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(hub.summaries_built(), built);
    assert_eq!(hub.summaries.subscribers(), 0);
    assert!(hub.summaries.lock().is_empty());
}

#[test]
fn summary_intervals_are_clamped_and_zero_asks_for_the_raw_stream() {
    let ms = |v: u32| summary::interval_of(v).map(|d| d.as_millis());
    assert_eq!(ms(0), None);
    assert_eq!(ms(1), Some(250));
    assert_eq!(ms(249), Some(250));
    assert_eq!(ms(250), Some(250));
    assert_eq!(ms(1_000), Some(1_000));
    assert_eq!(ms(5_000), Some(5_000));
    assert_eq!(ms(5_001), Some(5_000));
    assert_eq!(ms(u32::MAX), Some(5_000));
}

/// Many publishers on a multi-threaded runtime, raw subscribers joining while
/// they run: each one's snapshot, plus what it was sent, plus what it was told
/// it missed, is exactly what was served, with no sequence number twice or skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn raw_subscribers_joining_under_concurrent_load_miss_nothing_and_see_nothing_twice() {
    const PUBLISHERS: u64 = 8;
    const EACH: u64 = 6_000;
    const SERVED: u64 = PUBLISHERS * EACH;
    let hub = Arc::new(hub());
    let publishers: Vec<_> = (0..PUBLISHERS)
        .map(|p| {
            let hub = Arc::clone(&hub);
            tokio::spawn(async move {
                for i in 0..EACH {
                    hub.publish_request(ok(&format!("pod-{}", (p + i) % 5), i));
                    if i % 64 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            })
        })
        .collect();
    let subscribers: Vec<_> = (1..=6u64)
        .map(|k| {
            let hub = Arc::clone(&hub);
            tokio::spawn(async move {
                // Join once a k-th of the traffic is counted (the last ones may join after it ended).
                while hub.gate.last_seq() < k * SERVED / 7 {
                    tokio::task::yield_now().await;
                }
                let (snapshot, mut rx) = hub.subscribe();
                assert_eq!(
                    snapshot.total_requests, snapshot.last_seq,
                    "only requests were published"
                );
                assert_eq!(snapshot.pods.iter().map(|p| p.requests).sum::<u64>(), snapshot.last_seq);
                let (mut delivered, mut dropped, mut next) = (0u64, 0u64, snapshot.last_seq + 1);
                while next <= SERVED {
                    match rx.recv().await {
                        Ok(event) => {
                            let Some(event::Kind::Request(request)) = &event.kind else {
                                panic!("only requests were published: {event:?}")
                            };
                            assert_eq!(request.seq, next, "subscriber {k}: no gap, no overlap");
                            next += 1;
                            delivered += 1;
                        }
                        Err(broadcast::error::RecvError::Lagged(n)) => {
                            dropped += n;
                            next += n;
                        }
                        Err(broadcast::error::RecvError::Closed) => panic!("the hub lives"),
                    }
                }
                (snapshot.total_requests, delivered, dropped)
            })
        })
        .collect();
    for publisher in publishers {
        publisher.await.unwrap();
    }
    let served = hub.snapshot();
    assert_eq!((served.last_seq, served.total_requests), (SERVED, SERVED));
    for (k, subscriber) in subscribers.into_iter().enumerate() {
        let (snapshot_total, delivered, dropped) = tokio::time::timeout(std::time::Duration::from_secs(20), subscriber)
            .await
            .expect("every subscriber reaches the last request")
            .unwrap();
        assert_eq!(snapshot_total + delivered + dropped, SERVED, "subscriber {}", k + 1);
    }
    let by_pod: Vec<u64> = served.pods.iter().map(|p| p.requests).collect();
    assert_eq!(by_pod, [SERVED / 5; 5]);
}

#[test]
fn codes_just_past_the_last_grpc_code_count_as_unknown() {
    let hub = hub();
    // 16 (UNAUTHENTICATED) is the last code; 17 and -1 are not codes.
    for code in [16, 17, -1] {
        hub.publish_request(failed("a", code, 1, 9));
    }
    let summary = hub.build_summary(std::time::Duration::from_millis(250));
    let codes: Vec<(i32, u64)> = summary.pods[0].error_codes.iter().map(|c| (c.code, c.count)).collect();
    assert_eq!(codes, [(2, 2), (16, 1)]);
}

#[test]
fn a_pod_that_moves_to_a_new_ip_is_shown_at_the_new_one() {
    let hub = hub();
    hub.publish_request(ok("a", 1));
    hub.publish_request(RequestOutcome {
        pod_ip: "10.0.0.77".into(),
        ..ok("a", 1)
    });
    assert_eq!(hub.snapshot().pods[0].pod_ip, "10.0.0.77");
}

#[tokio::test]
async fn a_summary_subscriber_joining_keeps_a_raw_subscribers_stream_whole() {
    let hub = Arc::new(hub());
    let (_, mut raw) = hub.subscribe();
    assert_eq!(hub.subscribers(), 1);
    // Its snapshot takes the lock-free path's hand-over too; the raw one must stay served.
    let summaries = hub.subscribe_summaries(std::time::Duration::from_millis(250));
    assert_eq!(hub.subscribers(), 2, "raw and summary subscriptions both count");
    for _ in 0..5 {
        hub.publish_request(ok("a", 1));
    }
    let mut seqs = Vec::new();
    while let Ok(event) = raw.try_recv() {
        if let Some(event::Kind::Request(request)) = &event.kind {
            seqs.push(request.seq);
        }
    }
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
    drop(summaries);
    drop(raw);
    assert_eq!(hub.subscribers(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_failing_discoverys_set_keeps_ageing_in_snapshots_from_the_moment_it_failed() {
    let hub = hub();
    // Told at the moment discovery started failing: the set is 0 ms old.
    hub.set_discovery(observe::DiscoveryState {
        source: "kube".into(),
        failing_since_unix_us: 1_000_000,
        last_error: "the API server refuses connections".into(),
        set_age_ms: 0,
    });
    tokio::time::advance(std::time::Duration::from_secs(70)).await;
    let state = hub.snapshot().discovery_state.unwrap();
    assert_eq!(state.set_age_ms, 70_000);
    // Working discovery (no failure, a current set) does not age.
    hub.set_discovery(observe::DiscoveryState {
        source: "kube".into(),
        ..observe::DiscoveryState::default()
    });
    tokio::time::advance(std::time::Duration::from_secs(5)).await;
    assert_eq!(hub.snapshot().discovery_state.unwrap().set_age_ms, 0);
}
