//! The Observer port under `--max-connections`: a share of its own (a
//! sixteenth, at least one), so idle clients filling the ingress's and REST
//! port's share leave an open Watch going and a new dashboard served; past
//! its own share, an Observer connection waits as any other.

use std::time::Duration;

use greet_proto::observe::observer_client::ObserverClient;
use greet_proto::observe::{GetStateRequest, WatchRequest, event};

use super::frames::{self, Raw, Seen};
use super::{Counting, gateway_process, ingress_channel};

/// Whether `raw`'s PING is answered within `within`: served, or still in
/// the listen queue.
async fn served(raw: &mut Raw, within: Duration) -> bool {
    raw.until(within, |seen| (*seen == Seen::PingAck).then_some(()))
        .await
        .is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_clients_at_the_cap_leave_the_observer_its_own_share() {
    let upstream = Counting::default();
    // 32: the ingress and REST ports share 30, the Observer port has 2.
    let flags = ["--max-connections", "32", "--first-request-timeout", "60s"];
    let gateway = gateway_process(upstream.serve().await, &flags);

    // A dashboard's Watch, open before the flood: the Observer's first place.
    let mut dashboard = ObserverClient::new(ingress_channel(gateway.observe).await);
    let request = WatchRequest {
        summary_interval_ms: 250,
        ..WatchRequest::default()
    };
    let mut watch = dashboard.watch(request).await.unwrap().into_inner();
    let first = watch.message().await.unwrap().and_then(|e| e.kind);
    assert!(matches!(first, Some(event::Kind::Snapshot(_))), "{first:?}");

    // 30 idle ingress clients take the client ports' share; the 31st waits.
    let mut idle = Vec::new();
    for _ in 0..30 {
        let mut raw = Raw::connect(gateway.grpc, &[], true).await;
        assert!(raw.round_trip().await);
        idle.push(raw);
    }
    let mut over = Raw::connect(gateway.grpc, &[], true).await;
    assert!(over.write(&frames::frame(frames::PING, 0, 0, &[0; 8])).await);
    assert!(
        !served(&mut over, Duration::from_millis(500)).await,
        "an ingress client served over the cap"
    );

    // The open Watch goes on: its summaries keep coming.
    for _ in 0..2 {
        let next = tokio::time::timeout(Duration::from_secs(5), watch.message())
            .await
            .expect("a summary within 5 s")
            .unwrap()
            .and_then(|e| e.kind);
        assert!(matches!(next, Some(event::Kind::Summary(_))), "{next:?}");
    }

    // A second dashboard is served: the Observer's second place.
    let mut second = ObserverClient::new(ingress_channel(gateway.observe).await);
    second.get_state(GetStateRequest {}).await.unwrap();

    // A third Observer connection is over the Observer's share: it waits.
    let mut third = Raw::connect(gateway.observe, &[], true).await;
    assert!(third.write(&frames::frame(frames::PING, 0, 0, &[0; 8])).await);
    assert!(
        !served(&mut third, Duration::from_millis(500)).await,
        "an Observer connection served over its share"
    );

    // It is served once the second dashboard goes, and the ingress client
    // once an idle one goes.
    drop(second);
    assert!(
        served(&mut third, Duration::from_secs(5)).await,
        "not served once a place was free"
    );
    idle.pop();
    assert!(
        served(&mut over, Duration::from_secs(5)).await,
        "not served once a place was free"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_observer_connection_with_no_stream_goes_at_the_idle_limit_and_a_watch_stays() {
    let upstream = Counting::default();
    let gateway = gateway_process(upstream.serve().await, &["--idle-timeout", "1s"]);
    let mut dashboard = ObserverClient::new(ingress_channel(gateway.observe).await);
    let request = WatchRequest {
        summary_interval_ms: 250,
        ..WatchRequest::default()
    };
    let mut watch = dashboard.watch(request).await.unwrap().into_inner();

    // A connection that opens no stream: GOAWAY NO_ERROR at the idle limit.
    let started = tokio::time::Instant::now();
    let mut idle = Raw::connect(gateway.observe, &[], true).await;
    assert_eq!(idle.goaway_or_close(Duration::from_secs(5)).await, Some(0));
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(3),
        "{waited:?}"
    );

    // The Watch, open all along (over twice the idle limit), still gets its summaries.
    while started.elapsed() < Duration::from_millis(2500) {
        let next = tokio::time::timeout(Duration::from_secs(5), watch.message())
            .await
            .expect("a summary within 5 s")
            .unwrap()
            .and_then(|e| e.kind);
        assert!(
            matches!(next, Some(event::Kind::Snapshot(_) | event::Kind::Summary(_))),
            "{next:?}"
        );
    }
}
