//! Idle and slow clients on the gRPC ingress and the REST port: each is
//! closed (or asked to go) within its documented limit, set short here
//! through the binary's flags.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use super::frames::{self, Raw, Seen};
use super::{Counting, gateway_process};

const FLAGS: [&str; 10] = [
    "--first-request-timeout",
    "1s",
    "--idle-timeout",
    "2s",
    "--keepalive-interval",
    "500ms",
    "--keepalive-timeout",
    "500ms",
    "--stream-idle-timeout",
    "2s",
];

/// Waits for one Greet call's answer (its trailers) on `stream`.
async fn answered(raw: &mut Raw, stream: u32) {
    let done = raw
        .until(Duration::from_secs(5), |seen| {
            (*seen
                == Seen::Headers {
                    stream,
                    end_stream: true,
                })
            .then_some(())
        })
        .await;
    assert!(done.is_some(), "no answer to the call on stream {stream}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_slow_clients_are_closed_within_their_limits() {
    let upstream = Counting::default();
    let gateway = gateway_process(upstream.serve().await, &FLAGS);

    // A preface, then nothing: closed at the first-request limit (1 s).
    let started = Instant::now();
    let mut silent = Raw::connect(gateway.grpc, &[], true).await;
    assert_eq!(silent.goaway_or_close(Duration::from_secs(5)).await, Some(u32::MAX));
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(3),
        "{waited:?}"
    );

    // A header block never ended (HEADERS without END_HEADERS): the same.
    let started = Instant::now();
    let mut open_block = Raw::connect(gateway.grpc, &[], false).await;
    // Its SETTINGS acknowledged first: any frame inside an open block is a protocol error.
    assert!(open_block.round_trip().await);
    let head = frames::grpc_head(frames::GREET);
    assert!(
        open_block
            .write(&frames::frame(frames::HEADERS, 0, 1, &head[..20]))
            .await
    );
    assert_eq!(open_block.goaway_or_close(Duration::from_secs(5)).await, Some(u32::MAX));
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(3),
        "{waited:?}"
    );

    // A call, then no other: GOAWAY (NO_ERROR) at the idle timeout (2 s).
    let mut idle = Raw::connect(gateway.grpc, &[], true).await;
    let stream = idle.stream();
    assert!(idle.write(&frames::greet_call(stream, "idle")).await);
    answered(&mut idle, stream).await;
    let quiet = Instant::now();
    assert_eq!(idle.goaway_or_close(Duration::from_secs(5)).await, Some(0));
    let waited = quiet.elapsed();
    assert!(
        waited >= Duration::from_millis(1900) && waited < Duration::from_secs(4),
        "{waited:?}"
    );

    // A client that answers no PING: closed within interval + timeout (1 s),
    // before its idle timeout.
    let started = Instant::now();
    let mut deaf = Raw::connect(gateway.grpc, &[], false).await;
    let stream = deaf.stream();
    assert!(deaf.write(&frames::greet_call(stream, "deaf")).await);
    assert_eq!(deaf.goaway_or_close(Duration::from_secs(5)).await, Some(u32::MAX));
    let waited = started.elapsed();
    assert!(waited < Duration::from_millis(1900), "{waited:?}");

    // A call whose body stops coming: reset (CANCEL) at the stream idle timeout.
    let mut stuck = Raw::connect(gateway.grpc, &[], true).await;
    let stream = stuck.stream();
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
        &frames::greet_message("stuck")[..4],
    ));
    assert!(stuck.write(&call).await);
    let started = Instant::now();
    let reset = stuck
        .until(Duration::from_secs(6), |seen| match seen {
            Seen::Reset { stream: s, code } if *s == stream => Some(*code),
            _ => None,
        })
        .await;
    assert_eq!(reset, Some(frames::CANCEL));
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1900) && waited < Duration::from_secs(5),
        "{waited:?}"
    );

    // REST: a request header never finished (slowloris) is closed at the
    // header-read limit (the first-request timeout, 1 s).
    let started = Instant::now();
    let mut slowloris = tokio::net::TcpStream::connect(gateway.rest).await.unwrap();
    slowloris
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n")
        .await
        .unwrap();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), slowloris.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "the REST port kept a partial header open past 5 s");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    assert_eq!(
        upstream.calls(),
        2,
        "the idle and deaf clients' calls, not the stuck one's"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_without_grpc_timeout_ends_at_the_default_deadline() {
    let upstream = Counting::default();
    let gateway = gateway_process(upstream.serve().await, &["--default-call-timeout", "1s"]);
    // A call whose body never ends: the upstream never answers it.
    let mut raw = Raw::connect(gateway.grpc, &[], true).await;
    let stream = raw.stream();
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
        &frames::greet_message("late")[..4],
    ));
    let started = Instant::now();
    assert!(raw.write(&call).await);
    // Trailers-only: the head ends the stream (grpc-status 4, DEADLINE_EXCEEDED).
    let ended = raw
        .until(Duration::from_secs(5), |seen| {
            (*seen
                == Seen::Headers {
                    stream,
                    end_stream: true,
                })
            .then_some(())
        })
        .await;
    assert!(ended.is_some(), "the call did not end at the default deadline");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    assert_eq!(upstream.calls(), 0);
    // Counted as what it was: a deadline, not a client's cancel.
    let metrics = greet_demo::rest_client::RestClient::new(format!("http://{}", gateway.rest))
        .send(http::Method::GET, "/metrics", None, "")
        .await
        .unwrap()
        .body;
    let outcomes: Vec<&str> = metrics
        .lines()
        .filter(|line| line.starts_with("greet_gateway_requests_total{") && !line.ends_with(" 0"))
        .collect();
    assert_eq!(outcomes.len(), 1, "{outcomes:?}");
    assert!(outcomes[0].contains("outcome=\"DeadlineExceeded\""), "{outcomes:?}");
}
