//! Cancel storms: many calls reset right after they were sent must not
//! break the upstream connection every other client's calls share.

use std::time::Duration;

use greet_proto::Mode;
use tokio_util::sync::CancellationToken;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};

use super::frames::{self, Raw};
use super::{grpc_addr, ingress_channel, support, unary_until};

/// Streams per attacking connection: below the ingress's premature-reset
/// floor, so each connection is a burst, not a flagged attacker.
const PER_CONNECTION: usize = 50;
const CONNECTIONS: usize = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_cancelled_calls_leave_another_clients_streams_alive() {
    // Sticky: every call shares the one upstream connection through the Service.
    let cluster = support::cluster(1, Mode::Sticky).await;
    let addr = grpc_addr(&cluster);

    // The other client: a health Watch stream and unary calls, through the ingress.
    let mut health = HealthClient::new(ingress_channel(addr).await);
    let mut watch = health
        .watch(HealthCheckRequest { service: String::new() })
        .await
        .unwrap()
        .into_inner();
    let first = watch.message().await.unwrap().unwrap();
    assert_eq!(first.status, ServingStatus::Serving as i32);
    let stop = CancellationToken::new();
    let calm = tokio::spawn(unary_until(addr, stop.clone()));

    // The storm: bursts of calls left open (the body never ends), then
    // all reset in one write, or the connection closed under them.
    for burst in 0..CONNECTIONS {
        let mut attacker = Raw::connect(addr, &[], true).await;
        let mut calls = Vec::new();
        let mut streams = Vec::new();
        for i in 0..PER_CONNECTION {
            let stream = attacker.stream();
            calls.extend(frames::frame(
                frames::HEADERS,
                frames::END_HEADERS,
                stream,
                &frames::grpc_head(frames::GREET),
            ));
            calls.extend(frames::frame(
                frames::DATA,
                0,
                stream,
                &frames::greet_message(&format!("storm-{burst}-{i}")),
            ));
            streams.push(stream);
        }
        assert!(attacker.write(&calls).await, "burst {burst}: the ingress closed early");
        assert!(attacker.round_trip().await, "burst {burst}: the ingress closed early");
        if burst % 2 == 0 {
            let resets: Vec<u8> = streams.iter().flat_map(|&s| frames::reset(s, frames::CANCEL)).collect();
            // The ingress may close this connection for its resets: its own business.
            if attacker.write(&resets).await {
                attacker.round_trip().await;
            }
        }
        drop(attacker);
    }

    // The other client's unary calls all succeeded, during the storm and after it.
    stop.cancel();
    let (calls, failures) = calm.await.unwrap();
    assert!(
        failures.is_empty(),
        "{} of {calls} calls failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    let mut client = greet_proto::greet::greet_service_client::GreetServiceClient::new(ingress_channel(addr).await);
    client.greet(super::greeting("after")).await.unwrap();
    // Its Watch stream is still open: no message (nothing changed), no end.
    let still = tokio::time::timeout(Duration::from_millis(500), watch.message()).await;
    assert!(still.is_err(), "the Watch stream ended: {still:?}");
    // And the upstream still answers health on the shared connection.
    let check = health
        .check(HealthCheckRequest { service: String::new() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(check.status, ServingStatus::Serving as i32);
    cluster.shutdown().await;
}
