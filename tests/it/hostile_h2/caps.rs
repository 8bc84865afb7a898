//! The process-wide caps: in-flight ingress calls (over it: REFUSED_STREAM)
//! and connections on the front doors (over it: not served until one goes).

use std::time::Duration;

use super::frames::{self, Raw, Seen};
use super::{Counting, gateway_process};

/// A call whose body never ends: it stays in flight.
fn open_call(stream: u32) -> Vec<u8> {
    let mut call = frames::frame(
        frames::HEADERS,
        frames::END_HEADERS,
        stream,
        &frames::grpc_head(frames::GREET),
    );
    call.extend(frames::frame(
        frames::DATA,
        0,
        stream,
        &frames::greet_message("held")[..4],
    ));
    call
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_over_the_stream_cap_is_refused() {
    let upstream = Counting::default();
    let gateway = gateway_process(upstream.serve().await, &["--max-streams", "2"]);
    let mut raw = Raw::connect(gateway.grpc, &[], true).await;
    let streams: Vec<u32> = (0..3).map(|_| raw.stream()).collect();
    for &stream in &streams[..2] {
        assert!(raw.write(&open_call(stream)).await);
    }
    assert!(raw.round_trip().await);
    assert!(raw.write(&open_call(streams[2])).await);
    let refused = raw
        .until(Duration::from_secs(5), |seen| match seen {
            Seen::Reset { stream, code } => Some((*stream, *code)),
            _ => None,
        })
        .await;
    assert_eq!(refused, Some((streams[2], frames::REFUSED_STREAM)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_over_the_cap_waits_until_another_goes() {
    let upstream = Counting::default();
    let gateway = gateway_process(upstream.serve().await, &["--max-connections", "1"]);
    let mut first = Raw::connect(gateway.grpc, &[], true).await;
    assert!(first.round_trip().await);
    // The second is in the listen queue: nothing answers its PING.
    let mut second = Raw::connect(gateway.grpc, &[], true).await;
    assert!(second.write(&frames::frame(frames::PING, 0, 0, &[0; 8])).await);
    let answered = second
        .until(Duration::from_millis(500), |seen| {
            (*seen == Seen::PingAck).then_some(())
        })
        .await;
    assert_eq!(answered, None, "served over the cap");
    drop(first);
    let answered = second
        .until(Duration::from_secs(5), |seen| (*seen == Seen::PingAck).then_some(()))
        .await;
    assert_eq!(answered, Some(()), "not served once the first connection went");
}
