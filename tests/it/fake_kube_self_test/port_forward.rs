//! WebSocket port-forward as kube 5's `Api::portforward` speaks it.

use super::*;

const PORT_FORWARD_PATH: &str = "GET /api/v1/namespaces/default/pods/greetserver-a/portforward?&ports=9092";

/// A TCP echo server on loopback, serving every connection until the test ends.
async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut read, mut write) = tcp.split();
                let _ = tokio::io::copy(&mut read, &mut write).await;
            });
        }
    });
    addr
}

/// A server that says `bye` to every connection and closes it.
async fn bye_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let _ = tcp.write_all(b"bye").await;
        }
    });
    addr
}

/// Writes `payload` and reads it back (concurrently, so any size fits through the buffers).
async fn echo_round_trip(stream: &mut DuplexStream, payload: &[u8]) {
    let (mut read, mut write) = tokio::io::split(stream);
    let mut echoed = vec![0; payload.len()];
    let (written, read) = within(
        "the echo",
        futures_util::future::join(write.write_all(payload), read.read_exact(&mut echoed)),
    )
    .await;
    written.unwrap();
    read.unwrap();
    assert!(echoed == payload, "echo differs ({} bytes)", payload.len());
}

async fn forward(pods: &Api<Pod>, pod: &str, ports: &[u16]) -> kube::api::Portforwarder {
    match within("the port-forward upgrade", pods.portforward(pod, ports)).await {
        Ok(forwarder) => forwarder,
        Err(error) => panic!("port-forward to {pod} {ports:?} failed: {error}"),
    }
}

/// Waits for kube's forwarder task after the server ended the tunnel (its Close once every port's
/// target connection was done) and the stream was dropped. kube 5 then sends a Close of its own,
/// which tungstenite refuses once the peer has closed, so `join` reports `SendAfterClosing`: that
/// is kube's doing, the same against a real API server.
async fn join_after_server_close(forwarder: kube::api::Portforwarder) {
    let error = within("the forwarder", forwarder.join())
        .await
        .expect_err("kube 5 reports its own late Close");
    assert!(format!("{error:?}").contains("SendAfterClosing"), "{error:?}");
}

fn port_forward_error(result: kube::Result<kube::api::Portforwarder>) -> kube::Error {
    match result {
        Ok(_) => panic!("expected the port-forward to be refused"),
        Err(error) => error,
    }
}

#[tokio::test]
async fn port_forward_tunnels_bytes_to_the_registered_target() {
    let kube = FakeKube::start().await;
    kube.apply_pod(greet_pod("greetserver-a", "10.1.0.1"));
    kube.port_forward_to("default", "greetserver-a", echo_server().await);
    let pods: Api<Pod> = Api::namespaced(kube.client("default").await, "default");

    let mut first = forward(&pods, "greetserver-a", &[9092]).await;
    let mut one = first.take_stream(9092).unwrap();
    echo_round_trip(&mut one, b"hello through the tunnel").await;
    // A second, independent tunnel while the first is open; then both, interleaved.
    let mut second = forward(&pods, "greetserver-a", &[9092]).await;
    let mut two = second.take_stream(9092).unwrap();
    echo_round_trip(&mut two, b"second tunnel").await;
    let big: Vec<u8> = (0..3 * 1024 * 1024).map(|i: u32| (i % 251) as u8).collect();
    futures_util::future::join(echo_round_trip(&mut one, &big), echo_round_trip(&mut two, b"small")).await;
    assert_eq!(kube.port_forward_count(), 2);
    assert_eq!(
        kube.requests().iter().filter(|r| *r == PORT_FORWARD_PATH).count(),
        2,
        "{:#?}",
        kube.requests()
    );

    // The client ends a tunnel by closing its stream: the forwarder finishes cleanly.
    drop(one);
    within("the first forwarder", first.join()).await.unwrap();
    echo_round_trip(&mut two, b"still there").await;
    drop(two);
    within("the second forwarder", second.join()).await.unwrap();

    // Several ports in one request: each its own connection to the target.
    let mut both = forward(&pods, "greetserver-a", &[80, 9092]).await;
    let mut web = both.take_stream(80).unwrap();
    let mut grpc = both.take_stream(9092).unwrap();
    echo_round_trip(&mut grpc, b"to 9092").await;
    echo_round_trip(&mut web, b"to 80").await;
    drop((web, grpc));
    within("the two-port forwarder", both.join()).await.unwrap();

    // The target closes its connection: the client reads to EOF, with no error.
    kube.apply_pod(greet_pod("greetserver-b", "10.1.0.2"));
    kube.port_forward_to("default", "greetserver-b", bye_server().await);
    let mut bye = forward(&pods, "greetserver-b", &[9092]).await;
    let error = bye.take_error(9092).unwrap();
    let mut stream = bye.take_stream(9092).unwrap();
    let mut said = Vec::new();
    within("EOF from the target", stream.read_to_end(&mut said))
        .await
        .unwrap();
    assert_eq!(said, b"bye");
    // kube resolves the error future with None only once its task ends, after the stream is gone.
    drop(stream);
    join_after_server_close(bye).await;
    assert_eq!(within("the error channel", error).await, None);

    // Nothing listens at the target: the upgrade works, the error channel says why, then EOF.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    kube.apply_pod(greet_pod("greetserver-c", "10.1.0.3"));
    kube.port_forward_to("default", "greetserver-c", closed);
    let mut refused = forward(&pods, "greetserver-c", &[9092]).await;
    let error = refused.take_error(9092).unwrap();
    let mut stream = refused.take_stream(9092).unwrap();
    let message = within("the error message", error).await.expect("an error message");
    assert!(
        message.starts_with("error forwarding port 9092 to pod greetserver-c, uid "),
        "{message}"
    );
    let mut nothing = Vec::new();
    within("EOF", stream.read_to_end(&mut nothing)).await.unwrap();
    assert!(nothing.is_empty());
    drop(stream);
    join_after_server_close(refused).await;
}

#[tokio::test]
async fn port_forward_refusals_are_status_errors() {
    let kube = FakeKube::start().await;
    kube.apply_pod(greet_pod("greetserver-a", "10.1.0.1"));
    kube.apply_pod(greet_pod("greetserver-b", "10.1.0.2"));
    kube.port_forward_to("default", "greetserver-a", echo_server().await);
    let client = kube.client("default").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");

    // Forbidden, with the API server's wording; "pods" and "pods/portforward" are separate.
    kube.forbid("pods/portforward", true);
    let error = port_forward_error(within("port-forward", pods.portforward("greetserver-a", &[9092])).await);
    assert_forbidden(
        &error,
        &format!(
            "pods \"greetserver-a\" is forbidden: User \"{FAKE_USER}\" cannot create resource \"pods/portforward\" \
             in API group \"\" in the namespace \"default\""
        ),
    );
    within("get", pods.get("greetserver-a")).await.unwrap();
    kube.forbid("pods/portforward", false);
    kube.forbid("pods", true);
    let mut forwarder = forward(&pods, "greetserver-a", &[9092]).await;
    echo_round_trip(&mut forwarder.take_stream(9092).unwrap(), b"allowed").await;
    kube.forbid("pods", false);

    // An unknown pod, and a pod without a target: 404 before any upgrade.
    let error = port_forward_error(within("port-forward", pods.portforward("nope", &[9092])).await);
    let status = api_status(&error);
    assert_eq!((status.code, status.message.as_str()), (404, "pods \"nope\" not found"));
    assert!(status.is_not_found());
    let error = port_forward_error(within("port-forward", pods.portforward("greetserver-b", &[9092])).await);
    let status = api_status(&error);
    assert_eq!(status.code, 404);
    assert!(status.message.contains("no port-forward target"), "{status:?}");
    assert_eq!(kube.port_forward_count(), 1);

    // Bad ports, and a GET that is no WebSocket upgrade: 400.
    let path = "/api/v1/namespaces/default/pods/greetserver-a/portforward";
    for query in ["", "?ports=http", "?ports=0", "?ports=9092,70000"] {
        let request = http::Request::get(format!("{path}{query}")).body(Vec::new()).unwrap();
        let error = match within("connect", client.connect(request)).await {
            Ok(_) => panic!("{query}: upgraded"),
            Err(error) => error,
        };
        assert_eq!(api_status(&error).code, 400, "{query}: {error}");
    }
    let plain = http::Request::get(format!("{path}?ports=9092"))
        .body(Vec::new())
        .unwrap();
    let error = within("plain GET", client.request_text(plain)).await.unwrap_err();
    let status = api_status(&error);
    assert_eq!(status.code, 400);
    assert!(status.message.starts_with("Upgrade request required"), "{status:?}");
    assert_eq!(kube.port_forward_count(), 1);

    // On the wire: only v4.channel.k8s.io is spoken; the 101 carries the RFC 6455 accept key, and
    // the first frames are the port (little-endian) on the data and error channels.
    let raw = async |protocol: &str| {
        let addr = kube.url().trim_start_matches("http://").to_owned();
        let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!(
            "GET {path}?ports=9092 HTTP/1.1\r\nHost: fake\r\nAuthorization: Bearer {FAKE_TOKEN}\r\nUpgrade: \
             websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: \
             dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: {protocol}\r\n\r\n"
        );
        tcp.write_all(request.as_bytes()).await.unwrap();
        let mut received = Vec::new();
        while !received.windows(4).any(|w| w == b"\r\n\r\n") {
            let mut buf = [0; 4096];
            let n = tcp.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed before the head: {}", String::from_utf8_lossy(&received));
            received.extend_from_slice(&buf[..n]);
        }
        (tcp, received)
    };
    let (_, head) = within("a v5-only request", raw("v5.channel.k8s.io")).await;
    assert!(head.starts_with(b"HTTP/1.1 400 "), "{}", String::from_utf8_lossy(&head));
    let (mut tcp, mut received) = within("a v4 request", raw("v4.channel.k8s.io")).await;
    let end = received.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8_lossy(&received[..end]).to_lowercase();
    assert!(head.starts_with("http/1.1 101 "), "{head}");
    assert!(
        head.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
        "{head}"
    );
    assert!(head.contains("sec-websocket-protocol: v4.channel.k8s.io"), "{head}");
    let mut frames = received.split_off(end);
    while frames.len() < 10 {
        let mut buf = [0; 64];
        let n = within("the port frames", tcp.read(&mut buf)).await.unwrap();
        assert!(n > 0, "closed after {frames:?}");
        frames.extend_from_slice(&buf[..n]);
    }
    // FIN+binary, unmasked, 3 bytes: channel, then 9092 = 0x2384 little-endian.
    assert_eq!(frames[..10], [0x82, 3, 0, 0x84, 0x23, 0x82, 3, 1, 0x84, 0x23]);
    assert_eq!(kube.port_forward_count(), 2);
}
