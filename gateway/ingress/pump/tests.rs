use std::time::Duration;

use super::*;

#[tokio::test]
async fn a_pump_waiting_for_window_room_resets_its_stream_when_its_call_ends() {
    let (client_io, server_io) = tokio::io::duplex(1024 * 1024);
    let server = tokio::spawn(async move {
        let mut connection = h2::server::handshake(server_io).await.unwrap();
        let (request, _respond) = connection.accept().await.unwrap().unwrap();
        tokio::spawn(async move { while connection.accept().await.is_some() {} });
        // Never releases what it reads: the client's window stays shut.
        let mut body = request.into_body();
        loop {
            match body.data().await {
                Some(Ok(_)) => {}
                Some(Err(err)) => return err.reason(),
                None => return None,
            }
        }
    });
    let (send_request, connection) = h2::client::handshake(client_io).await.unwrap();
    tokio::spawn(connection);
    let mut send_request = send_request.ready().await.unwrap();
    let request = http::Request::post("http://upstream/echo.Echo/Collect")
        .body(())
        .unwrap();
    let (response, stream) = send_request.send_request(request, false).unwrap();
    // A client stream that goes on: more than the window, then nothing yet.
    let (frames, received) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::convert::Infallible>>(1);
    frames
        .send(Ok(Frame::data(Bytes::from(vec![7u8; 100_000]))))
        .await
        .unwrap();
    let body = http_body_util::StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(received));
    let call =
        crate::ingress::request_pump::RequestPump::start(body, stream).expect("waiting for room: a pump to drive on");
    // The call ends (its client reset it, or its deadline passed).
    drop((call, response));
    let reason = tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("the upstream stream must be reset, not left open")
        .unwrap();
    assert_eq!(reason, Some(h2::Reason::CANCEL));
    drop(frames);
}

#[tokio::test]
async fn a_burst_of_one_byte_frames_goes_on_as_one_frame_then_the_trailers() {
    let (client_io, server_io) = tokio::io::duplex(1024 * 1024);
    let server = tokio::spawn(async move {
        let mut connection = h2::server::handshake(server_io).await.unwrap();
        let (request, _respond) = connection.accept().await.unwrap().unwrap();
        tokio::spawn(async move { while connection.accept().await.is_some() {} });
        let mut body = request.into_body();
        let mut chunks = Vec::new();
        while let Some(chunk) = body.data().await {
            let chunk = chunk.unwrap();
            let _ = body.flow_control().release_capacity(chunk.len());
            chunks.push(chunk.len());
        }
        let trailers = body.trailers().await.unwrap();
        (chunks, trailers.map(|t| t["x-end"].clone()))
    });
    let (send_request, connection) = h2::client::handshake(client_io).await.unwrap();
    tokio::spawn(connection);
    let mut send_request = send_request.ready().await.unwrap();
    let request = http::Request::post("http://upstream/echo.Echo/Collect")
        .body(())
        .unwrap();
    let (_response, stream) = send_request.send_request(request, false).unwrap();
    // Everything already received, as a client's one write of 1,000 frames.
    let mut trailers = HeaderMap::new();
    trailers.insert("x-end", http::HeaderValue::from_static("yes"));
    let frames = (0..1000)
        .map(|_| Frame::data(Bytes::from_static(b"x")))
        .chain(std::iter::once(Frame::trailers(trailers)))
        .collect();
    Pump::new(AllReceived(frames), stream).await;
    let (chunks, end) = tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(chunks, [1000], "one DATA frame for the burst");
    assert_eq!(end.as_ref().map(|v| v.to_str().unwrap()), Some("yes"));
}

/// A body whose every frame is there at once.
struct AllReceived(std::collections::VecDeque<Frame<Bytes>>);

impl Body for AllReceived {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::convert::Infallible>>> {
        Poll::Ready(self.0.pop_front().map(Ok))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_empty()
    }
}
