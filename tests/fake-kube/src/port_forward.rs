//! WebSocket port-forward (v4.channel.k8s.io), as the API server and kubelet speak it to kube 5.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::Query;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use tokio_util::sync::CancellationToken;

use crate::request::{bad_request, status_response};
use crate::store::{Kind, Shared};
use crate::{CLOSE_GRACE, FAKE_USER, PORT_FORWARD_PROTOCOL};

/// The most ports one port-forward request may name (two channels each, one byte per channel).
const MAX_FORWARDED_PORTS: usize = 128;

/// `/api/v1/namespaces/{ns}/pods/{name}/portforward` -> (ns, name).
pub(crate) fn port_forward_path(path: &str) -> Option<(&str, &str)> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["api", "v1", "namespaces", ns, "pods", name, "portforward"] if !ns.is_empty() && !name.is_empty() => {
            Some((ns, name))
        }
        _ => None,
    }
}

pub(crate) struct PortForwardRequest<'a> {
    pub(crate) method: &'a Method,
    pub(crate) uri: &'a Uri,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) namespace: &'a str,
    pub(crate) pod: &'a str,
}

/// Where one tunnel goes and what its error messages name.
pub(crate) struct TunnelSpec {
    ports: Vec<u16>,
    target: SocketAddr,
    pod: String,
    uid: String,
}

/// Answers a port-forward request: a `Status` error, or 101 and a tunnel task.
pub(crate) fn port_forward(
    shared: &Arc<Shared>,
    request: &PortForwardRequest<'_>,
    on_upgrade: Option<OnUpgrade>,
) -> Response {
    let (namespace, pod) = (request.namespace, request.pod);
    if request.method != Method::GET {
        return status_response(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            &format!(
                "the fake kube API server serves port-forward over WebSocket (GET) only, not {}",
                request.method
            ),
            None,
        );
    }
    let mut inner = shared.lock();
    if inner.port_forward_forbidden {
        let message = format!(
            "pods \"{pod}\" is forbidden: User \"{FAKE_USER}\" cannot create resource \"pods/portforward\" in API \
             group \"\" in the namespace \"{namespace}\""
        );
        let details = json!({"name": pod, "kind": "pods"});
        return status_response(StatusCode::FORBIDDEN, "Forbidden", &message, Some(details));
    }
    let Some(object) = inner.objects.get(&(Kind::Pods, namespace.to_owned(), pod.to_owned())) else {
        return status_response(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("pods \"{pod}\" not found"),
            Some(json!({"name": pod, "kind": "pods"})),
        );
    };
    let uid = object["metadata"]["uid"].as_str().unwrap_or_default().to_owned();
    let Some(&target) = inner.port_forward_targets.get(&(namespace.to_owned(), pod.to_owned())) else {
        return status_response(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("the fake kube API server has no port-forward target for pod \"{pod}\" (see port_forward_to)"),
            Some(json!({"name": pod, "kind": "pods"})),
        );
    };
    let ports = match forwarded_ports(request.uri) {
        Ok(ports) => ports,
        Err(message) => return bad_request(&message),
    };
    let accept = match websocket_accept(request.headers) {
        Ok(accept) => accept,
        Err(message) => return bad_request(&message),
    };
    let Some(on_upgrade) = on_upgrade else {
        return bad_request("Upgrade request required: this connection cannot be upgraded");
    };
    inner.port_forward_count += 1;
    drop(inner);

    let spec = TunnelSpec {
        ports,
        target,
        pod: pod.to_owned(),
        uid,
    };
    tokio::spawn(run_tunnel(on_upgrade, spec, shared.shutdown.clone()));
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::UPGRADE, "websocket")
        .header(header::CONNECTION, "Upgrade")
        .header(header::SEC_WEBSOCKET_ACCEPT, accept)
        .header(header::SEC_WEBSOCKET_PROTOCOL, PORT_FORWARD_PROTOCOL)
        .body(Body::empty())
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// The `ports` query parameter(s), each a comma-separated list of ports 1..=65535.
fn forwarded_ports(uri: &Uri) -> Result<Vec<u16>, String> {
    let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(uri).map_err(|e| e.body_text())?;
    let mut ports = Vec::new();
    for value in pairs.iter().filter(|(key, _)| key == "ports").map(|(_, value)| value) {
        for text in value.split(',').map(str::trim) {
            match text.parse::<u16>() {
                Ok(port) if port > 0 => ports.push(port),
                _ => {
                    return Err(format!(
                        "ports: Invalid value: {text:?}: must be a port number in 1-65535"
                    ));
                }
            }
        }
    }
    if ports.is_empty() {
        return Err("ports: Required value: at least one port must be specified".to_owned());
    }
    if ports.len() > MAX_FORWARDED_PORTS {
        return Err(format!(
            "ports: Too many: at most {MAX_FORWARDED_PORTS} ports may be forwarded"
        ));
    }
    Ok(ports)
}

/// Checks the WebSocket upgrade headers; returns the `Sec-WebSocket-Accept` value.
fn websocket_accept(headers: &HeaderMap) -> Result<String, String> {
    let values = |name: header::HeaderName| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(|token| token.trim().to_owned())
            .filter(|token| !token.is_empty())
            .collect()
    };
    let upgrade = values(header::UPGRADE)
        .iter()
        .any(|v| v.eq_ignore_ascii_case("websocket"));
    let connection = values(header::CONNECTION)
        .iter()
        .any(|v| v.eq_ignore_ascii_case("upgrade"));
    let version = values(header::SEC_WEBSOCKET_VERSION).iter().any(|v| v == "13");
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .map(|key| key.as_bytes())
        .filter(|key| !key.is_empty());
    let (true, true, true, Some(key)) = (upgrade, connection, version, key) else {
        return Err("Upgrade request required: port-forward needs a WebSocket upgrade (version 13)".to_owned());
    };
    let protocols = values(header::SEC_WEBSOCKET_PROTOCOL);
    if !protocols.iter().any(|p| p == PORT_FORWARD_PROTOCOL) {
        return Err(format!(
            "requested protocol(s) are not supported: {protocols:?}; supports [\"{PORT_FORWARD_PROTOCOL}\"]"
        ));
    }
    Ok(derive_accept_key(key))
}

/// A binary message on `channel`.
fn channel_message(channel: u8, payload: &[u8]) -> WsMessage {
    let mut message = BytesMut::with_capacity(payload.len() + 1);
    message.put_u8(channel);
    message.put_slice(payload);
    WsMessage::Binary(message.freeze())
}

/// Port index `i`'s data channel; its error channel is one more. `i` < [`MAX_FORWARDED_PORTS`].
fn data_channel(index: usize) -> u8 {
    u8::try_from(2 * index).expect("port index checked against MAX_FORWARDED_PORTS")
}

type Tunnel = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// One port-forward connection, from the upgrade to the last byte. Ends on `shutdown` at the latest.
async fn run_tunnel(on_upgrade: OnUpgrade, spec: TunnelSpec, shutdown: CancellationToken) {
    let work = async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let mut ws: Tunnel = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        // First message on every channel: the port, 2 bytes little-endian.
        for (index, port) in spec.ports.iter().enumerate() {
            for channel in [data_channel(index), data_channel(index) + 1] {
                if ws.feed(channel_message(channel, &port.to_le_bytes())).await.is_err() {
                    return;
                }
            }
        }
        if ws.flush().await.is_err() {
            return;
        }
        let (sink, stream) = ws.split();
        // Cancelled when the client closes or the connection breaks: stop forwarding.
        let closing = CancellationToken::new();
        // Cancelled when the close handshake is over or given up on: stop reading.
        let stop_reading = CancellationToken::new();
        let (out_tx, out_rx) = mpsc::channel::<WsMessage>(16);
        let mut inbound = Vec::with_capacity(spec.ports.len());
        let mut forwards = Vec::with_capacity(spec.ports.len());
        for (index, &port) in spec.ports.iter().enumerate() {
            let (tx, rx) = mpsc::channel::<Bytes>(16);
            inbound.push(tx);
            forwards.push(forward_port(&spec, index, port, rx, out_tx.clone(), closing.clone()));
        }
        drop(out_tx);
        tokio::join!(
            read_client(stream, inbound, &closing, &stop_reading),
            write_client(sink, out_rx, &closing, &stop_reading),
            futures_util::future::join_all(forwards),
        );
    };
    tokio::select! {
        () = work => {}
        () = shutdown.cancelled() => {}
    }
}

/// Client -> ports. A Close from the client ends the forwarding; reading on after it sends the
/// Close reply (tungstenite queues it) and then ends the stream.
async fn read_client(
    mut stream: futures_util::stream::SplitStream<Tunnel>,
    inbound: Vec<mpsc::Sender<Bytes>>,
    closing: &CancellationToken,
    stop_reading: &CancellationToken,
) {
    loop {
        let message = tokio::select! {
            message = stream.next() => message,
            () = stop_reading.cancelled() => break,
        };
        match message {
            Some(Ok(WsMessage::Binary(bytes))) if bytes.len() > 1 => {
                let channel = usize::from(bytes[0]);
                // Data for a port's data channel; anything else (the error channels) is ignored.
                if channel % 2 == 0
                    && let Some(port) = inbound.get(channel / 2)
                {
                    tokio::select! {
                        // A port that is done has dropped its receiver: its data is discarded.
                        _ = port.send(bytes.slice(1..)) => {}
                        () = stop_reading.cancelled() => break,
                    }
                }
            }
            Some(Ok(WsMessage::Close(_))) => closing.cancel(),
            Some(Ok(_)) => {}
            Some(Err(_)) | None => break,
        }
    }
    closing.cancel();
}

/// Ports -> client; a Close once every port is done, then waits (bounded) for the client's.
async fn write_client(
    mut sink: futures_util::stream::SplitSink<Tunnel, WsMessage>,
    mut out: mpsc::Receiver<WsMessage>,
    closing: &CancellationToken,
    stop_reading: &CancellationToken,
) {
    loop {
        let message = tokio::select! {
            biased;
            () = closing.cancelled() => return,
            message = out.recv() => message,
        };
        let Some(message) = message else { break };
        if sink.send(message).await.is_err() {
            closing.cancel();
            stop_reading.cancel();
            return;
        }
    }
    let close = CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    };
    if sink.send(WsMessage::Close(Some(close))).await.is_ok() {
        // The reader sees the client's Close (or the connection end) and cancels `closing`.
        let _ = tokio::time::timeout(CLOSE_GRACE, closing.cancelled()).await;
    }
    stop_reading.cancel();
}

/// One forwarded port: a TCP connection to the target, bytes both ways, until either side ends.
async fn forward_port(
    spec: &TunnelSpec,
    index: usize,
    port: u16,
    mut inbound: mpsc::Receiver<Bytes>,
    out: mpsc::Sender<WsMessage>,
    closing: CancellationToken,
) {
    let data = data_channel(index);
    let connected = tokio::select! {
        connected = TcpStream::connect(spec.target) => connected,
        () = closing.cancelled() => return,
    };
    let tcp = match connected {
        Ok(tcp) => tcp,
        Err(error) => {
            let message = format!(
                "error forwarding port {port} to pod {}, uid {}: failed to connect to {}: {error}",
                spec.pod, spec.uid, spec.target
            );
            let _ = out.send(channel_message(data + 1, message.as_bytes())).await;
            return;
        }
    };
    let _ = tcp.set_nodelay(true);
    let (mut from_target, mut to_target) = tcp.into_split();
    let upstream = async {
        while let Some(bytes) = inbound.recv().await {
            if to_target.write_all(&bytes).await.is_err() {
                return;
            }
        }
    };
    let downstream = async {
        let mut buffer = vec![0; 32 * 1024];
        loop {
            match from_target.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if out.send(channel_message(data, &buffer[..n])).await.is_err() {
                        return;
                    }
                }
            }
        }
    };
    tokio::select! {
        () = upstream => {}
        () = downstream => {}
        () = closing.cancelled() => {}
    }
}
