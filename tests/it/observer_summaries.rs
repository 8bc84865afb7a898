//! The aggregated Observer stream over real gRPC: a summary per interval
//! that counts everything (a subscriber that falls behind loses nothing),
//! mode changes as they happen, a sample never above the asked rate, and
//! old clients' empty request still getting the raw stream.

use std::collections::BTreeMap;
use std::time::Duration;

use greet_gateway::GatewayHandle;
use greet_gateway::RequestOutcome;
use greet_proto::Mode;
use greet_proto::observe::observer_client::ObserverClient;
use greet_proto::observe::{self, SetModeRequest, Summary, WatchRequest, event};
use prost::Message;
use tonic::Streaming;

use greet_tests::podless;

async fn gateway() -> GatewayHandle {
    podless::gateway_on(podless::ANY_PORT).await
}

/// Counts `n` requests as served, round robin over three pods, every 7th a
/// failure with UNAVAILABLE after 2 attempts, as the request path would.
fn serve_requests(gateway: &GatewayHandle, n: u64) {
    for i in 0..n {
        let failed = i % 7 == 0;
        gateway.gateway.hub.publish_request(RequestOutcome {
            pod_name: format!("pod-{}", i % 3),
            pod_ip: format!("127.0.0.{}", 2 + i % 3),
            endpoint: format!("127.0.0.{}:50051", 2 + i % 3),
            mode: Mode::Balanced,
            latency_us: 100 + i % 1000,
            grpc_code: if failed { 14 } else { 0 },
            attempts: if failed { 2 } else { 1 },
            ..RequestOutcome::default()
        });
    }
}

async fn watch(
    gateway: &GatewayHandle,
    request: WatchRequest,
) -> (ObserverClient<tonic::transport::Channel>, Streaming<observe::Event>) {
    let mut client = ObserverClient::connect(format!("http://{}", gateway.observe_addr))
        .await
        .unwrap();
    let stream = client.watch(request).await.unwrap().into_inner();
    (client, stream)
}

async fn next(stream: &mut Streaming<observe::Event>) -> event::Kind {
    tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("an event within 10 s")
        .unwrap()
        .expect("the stream ended early")
        .kind
        .unwrap()
}

fn summaries(interval_ms: u32) -> WatchRequest {
    WatchRequest {
        summary_interval_ms: interval_ms,
        sample_per_second: 0,
    }
}

/// Requests per pod in a summary.
fn per_pod(summary: &Summary) -> BTreeMap<String, (u64, u64, u64)> {
    summary
        .pods
        .iter()
        .map(|p| (p.pod_name.clone(), (p.requests, p.errors, p.attempts)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_summary_subscriber_that_falls_behind_loses_nothing_and_sees_no_lagged() {
    const BEFORE: u64 = 300;
    const SERVED: u64 = 200_000;
    let gateway = gateway().await;
    serve_requests(&gateway, BEFORE);
    let (_client, mut stream) = watch(&gateway, summaries(250)).await;
    let event::Kind::Snapshot(snapshot) = next(&mut stream).await else {
        panic!("the stream opens with a snapshot");
    };
    assert_eq!(snapshot.total_requests, BEFORE);
    // The subscriber reads nothing while far more than any buffer holds is served.
    serve_requests(&gateway, SERVED - BEFORE);

    // Snapshot totals plus every summary's growth over the one before.
    let mut counted: BTreeMap<String, u64> = snapshot.pods.iter().map(|p| (p.pod_name.clone(), p.requests)).collect();
    let mut previous = counted.clone();
    let last = loop {
        match next(&mut stream).await {
            event::Kind::Summary(summary) => {
                assert_eq!(summary.interval_ms, 250);
                for pod in &summary.pods {
                    let before = previous.get(&pod.pod_name).copied().unwrap_or(0);
                    assert!(pod.requests >= before, "cumulative counters only grow");
                    *counted.entry(pod.pod_name.clone()).or_default() += pod.requests - before;
                    previous.insert(pod.pod_name.clone(), pod.requests);
                }
                if summary.total.as_ref().unwrap().requests == SERVED {
                    break summary;
                }
            }
            event::Kind::EndpointsChanged(_) => {}
            other => panic!("a summary subscriber gets no {other:?}"),
        }
    };
    let third = SERVED / 3;
    let expected: BTreeMap<String, u64> = (0..3)
        .map(|p| (format!("pod-{p}"), third + u64::from(p < SERVED % 3)))
        .collect();
    assert_eq!(counted, expected);
    // Errors and attempts: every 7th request (i % 7 == 0) failed after 2 attempts.
    let mut exact = BTreeMap::new();
    for i in (0..BEFORE).chain(0..SERVED - BEFORE) {
        let e: &mut (u64, u64, u64) = exact.entry(format!("pod-{}", i % 3)).or_default();
        e.0 += 1;
        e.1 += u64::from(i % 7 == 0);
        e.2 += if i % 7 == 0 { 2 } else { 1 };
    }
    assert_eq!(per_pod(&last), exact);
    let failed = BEFORE.div_ceil(7) + (SERVED - BEFORE).div_ceil(7);
    let total = last.total.unwrap();
    assert_eq!(total.errors, failed);
    assert_eq!(total.error_codes.len(), 1);
    assert_eq!((total.error_codes[0].code, total.error_codes[0].count), (14, failed));
    assert_eq!(total.latency_buckets.iter().sum::<u64>(), SERVED);
    assert_eq!(gateway.gateway.hub.snapshot().total_requests, SERVED);
    gateway.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summary_subscribers_get_mode_changes_as_they_happen_and_clamped_intervals() {
    let gateway = gateway().await;
    // 1 ms asks too often: clamped to 250 ms. 60 s is too rare: 5 s.
    let (mut client, mut fast) = watch(&gateway, summaries(1)).await;
    let (_slow_client, mut slow) = watch(&gateway, summaries(60_000)).await;
    assert!(matches!(next(&mut fast).await, event::Kind::Snapshot(_)));
    assert!(matches!(next(&mut slow).await, event::Kind::Snapshot(_)));
    assert_eq!(gateway.gateway.hub.subscribers(), 2);
    client
        .set_mode(SetModeRequest {
            mode: observe::Mode::Sticky as i32,
        })
        .await
        .unwrap();
    // The slow one sees the change long before its first summary is due.
    let changed = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            if let event::Kind::ModeChanged(change) = next(&mut slow).await {
                return change;
            }
        }
    })
    .await
    .expect("the mode change within 2 s, not at the next 5-s summary");
    assert_eq!(
        (changed.previous, changed.mode),
        (observe::Mode::Balanced as i32, observe::Mode::Sticky as i32)
    );
    let mut intervals = Vec::new();
    while intervals.len() < 2 {
        if let event::Kind::Summary(summary) = next(&mut fast).await {
            intervals.push(summary.interval_ms);
        }
    }
    assert_eq!(intervals, [250, 250]);
    let started = tokio::time::Instant::now();
    let summary = loop {
        if let event::Kind::Summary(summary) = next(&mut slow).await {
            break summary;
        }
    };
    assert_eq!(summary.interval_ms, 5_000);
    assert!(started.elapsed() < Duration::from_millis(5_500));
    gateway.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sample_never_exceeds_the_asked_rate_and_none_is_sent_unasked() {
    const RATE: u32 = 5;
    let gateway = gateway().await;
    let (_c1, mut sampled) = watch(
        &gateway,
        WatchRequest {
            summary_interval_ms: 250,
            sample_per_second: RATE,
        },
    )
    .await;
    let (_c2, mut unsampled) = watch(&gateway, summaries(250)).await;
    assert!(matches!(next(&mut sampled).await, event::Kind::Snapshot(_)));
    assert!(matches!(next(&mut unsampled).await, event::Kind::Snapshot(_)));
    // About 2.5 s of traffic, 40 requests every 10 ms.
    let traffic = {
        let hub = std::sync::Arc::clone(&gateway.gateway.hub);
        tokio::spawn(async move {
            for i in 0..250u64 {
                for _ in 0..40 {
                    hub.publish_request(RequestOutcome {
                        pod_name: format!("pod-{}", i % 3),
                        latency_us: i,
                        ..RequestOutcome::default()
                    });
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    let mut samples = Vec::new();
    let mut last_total = 0;
    while last_total < 10_000 {
        match next(&mut sampled).await {
            event::Kind::Request(request) => samples.push(request.timestamp_unix_us),
            event::Kind::Summary(summary) => last_total = summary.total.unwrap().requests,
            _ => {}
        }
    }
    traffic.await.unwrap();
    assert!(!samples.is_empty(), "the first request after subscribing is sampled");
    for window in samples.windows(RATE as usize + 1) {
        assert!(
            window[RATE as usize] - window[0] >= 1_000_000,
            "more than {RATE} samples within one second: {window:?}"
        );
    }
    loop {
        match next(&mut unsampled).await {
            event::Kind::Request(request) => panic!("no sample was asked for: {request:?}"),
            event::Kind::Summary(summary) if summary.total.as_ref().unwrap().requests == 10_000 => break,
            _ => {}
        }
    }
    gateway.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_old_clients_empty_request_gets_the_raw_stream() {
    // What a client built before the options existed sends: no bytes at all.
    assert!(WatchRequest::default().encode_to_vec().is_empty());
    let gateway = gateway().await;
    let (_client, mut stream) = watch(&gateway, WatchRequest::default()).await;
    let event::Kind::Snapshot(snapshot) = next(&mut stream).await else {
        panic!("the stream opens with a snapshot");
    };
    serve_requests(&gateway, 5);
    let mut seqs = Vec::new();
    while seqs.len() < 5 {
        match next(&mut stream).await {
            event::Kind::Request(request) => seqs.push(request.seq),
            event::Kind::EndpointsChanged(_) => {}
            other => panic!("the raw stream has no {other:?}"),
        }
    }
    let first = snapshot.last_seq + 1;
    let endpoint_set = u64::from(snapshot.last_seq == 0);
    let expected: Vec<u64> = (first + endpoint_set..first + endpoint_set + 5).collect();
    assert_eq!(seqs, expected);
    gateway.shutdown().await.unwrap();
}

// One thread: the gateway's stream cannot run while the changes are published.
#[tokio::test]
async fn a_summary_subscriber_behind_on_endpoint_changes_gets_the_state_instead() {
    let gateway = gateway().await;
    let (_client, mut stream) = watch(&gateway, summaries(5_000)).await;
    assert!(matches!(next(&mut stream).await, event::Kind::Snapshot(_)));
    // More changes than are kept for it, unread.
    let endpoint = |n: usize| observe::Endpoint {
        address: format!("127.0.0.{}:50051", 2 + n % 200),
        pod_name: format!("pod-{n}"),
        ready: true,
        ..Default::default()
    };
    for n in 0..1_000 {
        gateway.gateway.hub.publish_endpoints(vec![endpoint(n)]);
    }
    let last = loop {
        match next(&mut stream).await {
            event::Kind::EndpointsChanged(_) => {}
            event::Kind::Snapshot(state) => break state,
            other => panic!("no {other:?} before the state"),
        }
    };
    assert_eq!(last.endpoints, [endpoint(999)]);
    assert_eq!(last.last_seq, gateway.gateway.hub.snapshot().last_seq);
    gateway.shutdown().await.unwrap();
}
