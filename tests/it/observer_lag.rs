//! A Watch subscriber that falls behind is told exactly how much it missed:
//! every request the gateway counted is either delivered or included in a
//! `lagged` notice, never silently lost, and publishing never waits for it.

use std::time::Duration;

use greet_demo::rest_client::RestClient;
use greet_gateway::GatewayHandle;
use greet_gateway::RequestOutcome;
use greet_proto::Mode;
use greet_proto::observe::observer_client::ObserverClient;
use greet_proto::observe::{GetStateRequest, WatchRequest, event};

/// Far more than the broadcast ring and the transport's buffers hold.
const PUBLISHED: u64 = 100_000;

use greet_tests::podless;

async fn gateway() -> GatewayHandle {
    podless::gateway_on(podless::ANY_PORT).await
}

/// Counts `n` requests as served, round robin over three pods, as the
/// request path would.
fn serve_requests(gateway: &GatewayHandle, n: u64) {
    for i in 0..n {
        gateway.gateway.hub.publish_request(RequestOutcome {
            pod_name: format!("pod-{}", i % 3),
            pod_ip: format!("127.0.0.{}", 2 + i % 3),
            endpoint: format!("127.0.0.{}:50051", 2 + i % 3),
            mode: Mode::Balanced,
            latency_us: 100,
            ..RequestOutcome::default()
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_falls_behind_gets_lagged_notices_that_account_for_every_request() {
    let gateway = gateway().await;
    // The discovery source's first (empty) endpoint set is event 1: wait for it,
    // so that everything after the snapshot is a request.
    let mut waited = 0;
    while gateway.gateway.hub.snapshot().last_seq < 1 {
        assert!(waited < 500, "the first endpoint set never arrived");
        waited += 1;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut client = ObserverClient::connect(format!("http://{}", gateway.observe_addr))
        .await
        .unwrap();
    let mut stream = client.watch(WatchRequest::default()).await.unwrap().into_inner();
    let first = stream.message().await.unwrap().and_then(|e| e.kind);
    let Some(event::Kind::Snapshot(snapshot)) = first else {
        panic!("the stream must open with a snapshot, got {first:?}");
    };
    assert_eq!(snapshot.last_seq, 1);

    // The subscriber reads nothing while the gateway serves PUBLISHED requests.
    serve_requests(&gateway, PUBLISHED);

    let (mut delivered, mut dropped, mut notices) = (0u64, 0u64, 0u64);
    let mut last_seq = snapshot.last_seq;
    let mut dropped_since_last = 0u64;
    while last_seq < 1 + PUBLISHED {
        let message = tokio::time::timeout(Duration::from_secs(10), stream.message())
            .await
            .expect("the stream stalled before the last request arrived")
            .unwrap()
            .expect("the stream ended early");
        match message.kind {
            Some(event::Kind::Request(request)) => {
                // Sequence numbers skip exactly what the notices said was dropped.
                assert_eq!(
                    request.seq,
                    last_seq + 1 + dropped_since_last,
                    "a gap no lagged notice accounts for"
                );
                last_seq = request.seq;
                dropped_since_last = 0;
                delivered += 1;
            }
            Some(event::Kind::Lagged(lagged)) => {
                assert!(
                    lagged.dropped > 0,
                    "a lagged notice must say how many events were dropped"
                );
                dropped += lagged.dropped;
                dropped_since_last += lagged.dropped;
                notices += 1;
            }
            other => panic!("unexpected event {other:?}"),
        }
    }
    assert!(notices >= 1, "{PUBLISHED} unread events must overflow the ring");
    assert!(dropped > 0);
    assert_eq!(delivered + dropped, PUBLISHED);

    // The totals a resubscriber would start from count every request.
    let state = client.get_state(GetStateRequest::default()).await.unwrap().into_inner();
    assert_eq!(state.last_seq, 1 + PUBLISHED);
    assert_eq!(state.pods.iter().map(|p| p.requests).sum::<u64>(), PUBLISHED);

    // The gateway's metrics count the same drops, and the one subscriber.
    let metrics = RestClient::new(format!("http://{}", gateway.rest_addr))
        .send(http::Method::GET, "/metrics", None, "")
        .await
        .unwrap()
        .body;
    for sample in [
        format!("\ngreet_gateway_observer_dropped_events_total {dropped}\n"),
        "\ngreet_gateway_observer_subscribers 1\n".to_owned(),
    ] {
        assert!(metrics.contains(&sample), "no {sample:?} in {metrics}");
    }
    gateway.shutdown().await.unwrap();
}

/// greet-top on the raw stream, frozen (SIGSTOP) while the gateway serves far
/// more than the ring holds, falls behind for certain; once it runs again it
/// must resubscribe and report exactly what the gateway counted, not what
/// reached it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn greet_top_resubscribes_after_lagging_and_its_totals_equal_get_state() {
    frozen_greet_top_reports_what_the_gateway_served(&["--raw-events"]).await;
}

/// The same with greet-top's default stream, summaries: nothing to lag on,
/// and the totals are as exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn greet_top_on_summaries_frozen_meanwhile_reports_exactly_what_was_served() {
    frozen_greet_top_reports_what_the_gateway_served(&[]).await;
}

async fn frozen_greet_top_reports_what_the_gateway_served(args: &[&str]) {
    const SERVED: u64 = 200_000;
    let gateway = gateway().await;
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_greet-top"))
        .args(["--no-kube", "--gateway", &format!("http://{}", gateway.observe_addr)])
        .args(["--once", "10s", "--output", "json"])
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = child.id().unwrap().to_string();
    let mut waited = 0;
    while gateway.gateway.hub.subscribers() == 0 {
        assert!(waited < 500, "greet-top never subscribed");
        waited += 1;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Counting starts at greet-top's first snapshot: let it arrive before the freeze.
    tokio::time::sleep(Duration::from_millis(300)).await;
    signal(&pid, "-STOP");
    serve_requests(&gateway, SERVED);
    signal(&pid, "-CONT");
    let output = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("greet-top --once did not finish")
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let state = gateway.gateway.hub.snapshot();
    assert_eq!(report["total"], SERVED, "{stdout}");
    for totals in &state.pods {
        let pod = report["pods"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == totals.pod_name.as_str())
            .unwrap_or_else(|| panic!("{} missing from {stdout}", totals.pod_name));
        assert_eq!(pod["hits"], totals.requests, "{stdout}");
    }
    gateway.shutdown().await.unwrap();
}

fn signal(pid: &str, signal: &str) {
    let status = std::process::Command::new("kill").args([signal, pid]).status().unwrap();
    assert!(status.success(), "kill {signal} {pid}");
}
