//! Every kind of gRPC call through the ingress to the test-only Echo
//! service: what the client sends and gets is what the server got and sent.

use std::time::{Duration, Instant};

use greet_gateway::GatewayHandle;
use greet_proto::Mode;
use tokio_stream::StreamExt;
use tonic::Request;

use super::echo::pb::Chunk;
use super::echo::{Seen, client, echo_server, gateway, next_seen, the_failure};

fn chunk(index: u32, payload: &[u8]) -> Chunk {
    Chunk {
        index,
        payload: payload.to_vec(),
    }
}

/// The gateway's (total calls, failed calls by gRPC code) so far.
fn observed(gateway: &GatewayHandle) -> (u64, Vec<(i32, u64)>) {
    let totals = gateway.gateway.hub.totals();
    let codes = totals.error_codes.iter().map(|c| (c.code, c.count)).collect();
    (totals.requests, codes)
}

/// The pods the gateway counted calls for.
fn pods(gateway: &GatewayHandle) -> Vec<String> {
    gateway
        .gateway
        .hub
        .snapshot()
        .pods
        .into_iter()
        .map(|p| p.pod_name)
        .collect()
}

#[tokio::test]
async fn unary_and_streaming_calls_pass_frames_and_metadata_unchanged() {
    let (upstream, _seen) = echo_server().await;
    let gateway = gateway(Mode::Sticky, upstream).await;
    let mut echo = client(gateway.grpc_addr).await;

    let mut request = Request::new(chunk(7, b"hello"));
    request
        .metadata_mut()
        .insert("x-test-token", "abc 123".parse().unwrap());
    let binary = tonic::metadata::MetadataValue::from_bytes(&[0, 1, 2, 255]);
    request.metadata_mut().insert_bin("x-test-raw-bin", binary.clone());
    request
        .metadata_mut()
        .insert("user-agent", "echo-test/1.0".parse().unwrap());
    let response = echo.unary(request).await.unwrap();
    assert_eq!(response.metadata().get("x-test-token").unwrap(), "abc 123");
    // Not even a client library's name added: the server sees the client's.
    assert_eq!(response.metadata().get("x-seen-user-agent").unwrap(), "echo-test/1.0");
    assert_eq!(response.metadata().get_bin("x-test-raw-bin").unwrap(), &binary);
    assert_eq!(response.into_inner(), chunk(7, b"hello"));

    // Server streaming: messages larger than an HTTP/2 frame (16 KiB).
    let big: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
    let chunks: Vec<Chunk> = echo
        .count(chunk(5, &big))
        .await
        .unwrap()
        .into_inner()
        .map(Result::unwrap)
        .collect()
        .await;
    let expected: Vec<Chunk> = (0..5).map(|i| chunk(i, &big)).collect();
    assert_eq!(chunks, expected);

    // Client streaming; then more than the 64 KiB the ingress keeps for a retry.
    let sent = ["a", "bb", "ccc", "dddd"].map(|p| chunk(0, p.as_bytes()));
    let all = echo.collect(tokio_stream::iter(sent)).await.unwrap().into_inner();
    assert_eq!(all, chunk(4, b"abbcccdddd"));
    let sent: Vec<Chunk> = (0..4).map(|_| chunk(0, &big)).collect();
    let all = echo.collect(tokio_stream::iter(sent)).await.unwrap().into_inner();
    assert_eq!(all, chunk(4, &big.repeat(4)));

    // Bidirectional, in turns: each reply arrives before the next request is
    // sent, so the ingress passes frames as they come, not at the stream's end.
    let (to_server, requests) = tokio::sync::mpsc::channel(1);
    let mut replies = echo
        .chat(tokio_stream::wrappers::ReceiverStream::new(requests))
        .await
        .unwrap()
        .into_inner();
    for i in 0..5 {
        to_server.send(chunk(i, format!("turn {i}").as_bytes())).await.unwrap();
        let reply = tokio::time::timeout(Duration::from_secs(5), replies.next())
            .await
            .expect("the reply to this turn before the next request")
            .unwrap()
            .unwrap();
        assert_eq!(reply, chunk(i, format!("turn {i}").as_bytes()));
    }
    drop(to_server);
    assert!(replies.next().await.is_none(), "the stream ends with the client's");

    assert_eq!(
        observed(&gateway),
        (5, vec![]),
        "five calls, each observed once, all OK"
    );
    let methods: Vec<(String, u64)> = gateway
        .gateway
        .hub
        .totals()
        .methods
        .into_iter()
        .map(|m| (m.method, m.requests))
        .collect();
    let calls =
        [("Chat", 1), ("Collect", 2), ("Count", 1), ("Unary", 1)].map(|(m, n)| (format!("/greet.test.v1.Echo/{m}"), n));
    assert_eq!(methods, calls);
    assert_eq!(
        pods(&gateway),
        [upstream.to_string()],
        "sticky, a server that does not name its pod: the Service"
    );
}

#[tokio::test]
async fn a_server_error_and_its_trailers_arrive_intact() {
    let (upstream, _seen) = echo_server().await;
    let gateway = gateway(Mode::Balanced, upstream).await;
    let mut echo = client(gateway.grpc_addr).await;

    let mut stream = echo.count(chunk(2, b"fail")).await.unwrap().into_inner();
    assert_eq!(stream.next().await.unwrap().unwrap(), chunk(0, b"fail"));
    assert_eq!(stream.next().await.unwrap().unwrap(), chunk(1, b"fail"));
    let status = stream.next().await.unwrap().unwrap_err();
    let sent = the_failure();
    assert_eq!(status.code(), sent.code());
    assert_eq!(status.message(), sent.message());
    assert_eq!(status.details(), sent.details());
    assert_eq!(status.metadata().get("x-trailer").unwrap(), "kept");
    assert_eq!(
        status
            .metadata()
            .get_bin("x-trailer-bin")
            .unwrap()
            .to_bytes()
            .unwrap()
            .as_ref(),
        [0, 1, 254, 255]
    );
    assert!(stream.next().await.is_none());

    let state = gateway.gateway.hub.snapshot();
    assert_eq!(state.pods.len(), 1);
    assert_eq!(state.pods[0].pod_name, "echo-pod", "balanced: the pod from discovery");
    assert_eq!(observed(&gateway), (1, vec![(tonic::Code::Aborted as i32, 1)]));
}

#[tokio::test]
async fn a_deadline_expires_with_deadline_exceeded_and_cancels_upstream() {
    let (upstream, mut seen) = echo_server().await;
    let gateway = gateway(Mode::Sticky, upstream).await;
    let mut echo = client(gateway.grpc_addr).await;

    let mut request = Request::new(chunk(0, b""));
    request.set_timeout(Duration::from_millis(300));
    let sent_timeout = request
        .metadata()
        .get("grpc-timeout")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let started = Instant::now();
    let status = echo.hang(request).await.unwrap_err();
    let took = started.elapsed();
    assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status:?}");
    assert!(
        (Duration::from_millis(300)..Duration::from_secs(3)).contains(&took),
        "ended at its deadline: {took:?}"
    );
    // Passed on as the time the call has left when it leaves the gateway.
    let Seen::HangStarted(Some(passed)) = next_seen(&mut seen).await else {
        panic!("the upstream call started without a grpc-timeout");
    };
    let micros = |value: &str| value.strip_suffix('u').and_then(|n| n.parse::<u64>().ok());
    assert_eq!(micros(&sent_timeout), Some(300_000), "{sent_timeout}");
    let left = micros(&passed).unwrap_or_else(|| panic!("{passed:?} is not in microseconds"));
    assert!(
        (200_000..=300_000).contains(&left),
        "passed on {passed:?} of {sent_timeout:?}"
    );
    assert_eq!(
        next_seen(&mut seen).await,
        Seen::HangDropped,
        "the upstream call was cancelled"
    );
    assert_eq!(observed(&gateway), (1, vec![(tonic::Code::DeadlineExceeded as i32, 1)]));
    assert_eq!(pods(&gateway), [""], "no answer, no pod: unattributed, as REST's");
}

#[tokio::test]
async fn a_client_cancel_reaches_the_server() {
    let (upstream, mut seen) = echo_server().await;
    let gateway = gateway(Mode::Sticky, upstream).await;
    let mut echo = client(gateway.grpc_addr).await;

    let call = tokio::spawn(async move { echo.hang(chunk(0, b"")).await });
    assert_eq!(next_seen(&mut seen).await, Seen::HangStarted(None));
    call.abort();
    assert_eq!(next_seen(&mut seen).await, Seen::HangDropped);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while observed(&gateway).0 == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the cancelled call was not observed"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(observed(&gateway), (1, vec![(tonic::Code::Cancelled as i32, 1)]));
}

#[tokio::test]
async fn a_deadline_ends_a_stream_whose_client_stopped_reading() {
    let (upstream, _seen) = echo_server().await;
    let gateway = gateway(Mode::Sticky, upstream).await;
    let mut echo = client(gateway.grpc_addr).await;
    // 14 MB of replies: far more than the client's 2 MiB stream window.
    let mut request = Request::new(chunk(200, &vec![1u8; 70_000]));
    request.set_timeout(Duration::from_millis(300));
    // The stream's head arrives; then the client reads nothing more, and
    // its window shuts with the gateway's pump waiting for room.
    let _stalled = echo.count(request).await.unwrap();
    let waited = Instant::now();
    while observed(&gateway).0 == 0 {
        assert!(
            waited.elapsed() < Duration::from_secs(10),
            "the call must end at its deadline, window shut or not"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(observed(&gateway), (1, vec![(tonic::Code::DeadlineExceeded as i32, 1)]));
}
