//! The test-only Echo service (tests/proto/echo.proto) behind a real
//! gateway, and a bare HTTP/2 client to call it through the gRPC ingress.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use greet_demo::GatewaySpec;
use greet_gateway::GatewayHandle;
use greet_gateway::discovery::{self, EndpointInfo};
use greet_proto::Mode;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::sync::mpsc;
use tokio_stream::{Stream, StreamExt};
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status, Streaming};

#[allow(clippy::all, dead_code, unreachable_pub)]
pub(crate) mod pb {
    tonic::include_proto!("greet.test.v1");
}

use pb::Chunk;
use pb::echo_client::EchoClient;
use pb::echo_server::{Echo, EchoServer};

/// What the server saw of the calls that do not answer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Seen {
    /// A Hang call began, with its grpc-timeout header if it had one.
    HangStarted(Option<String>),
    /// A Hang call was dropped: cancelled by the client or the gateway.
    HangDropped,
}

struct EchoService {
    seen: mpsc::UnboundedSender<Seen>,
}

/// Reports the Hang call's end when the server drops it.
struct DropReport(mpsc::UnboundedSender<Seen>);

impl Drop for DropReport {
    fn drop(&mut self) {
        let _ = self.0.send(Seen::HangDropped);
    }
}

type ChunkStream = Pin<Box<dyn Stream<Item = Result<Chunk, Status>> + Send>>;

/// The request's `x-test-*` metadata, to be sent back, and its `user-agent`
/// as `x-seen-user-agent`.
fn test_metadata(request: &MetadataMap) -> MetadataMap {
    let echoed = request.clone().into_headers();
    let mut kept: http::HeaderMap = echoed
        .iter()
        .filter(|(name, _)| name.as_str().starts_with("x-test-"))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    if let Some(agent) = echoed.get("user-agent") {
        kept.insert("x-seen-user-agent", agent.clone());
    }
    MetadataMap::from_headers(kept)
}

/// The status Count ends with on a "fail" payload: a message that needs
/// percent-encoding, details and trailer metadata (ASCII and binary).
pub(crate) fn the_failure() -> Status {
    let mut metadata = MetadataMap::new();
    metadata.insert("x-trailer", "kept".parse().unwrap());
    metadata.insert_bin(
        "x-trailer-bin",
        tonic::metadata::MetadataValue::from_bytes(&[0, 1, 254, 255]),
    );
    Status::with_details_and_metadata(
        tonic::Code::Aborted,
        "übel: aborted ✗ after 2",
        bytes::Bytes::from_static(b"\x00\x01details"),
        metadata,
    )
}

#[tonic::async_trait]
impl Echo for EchoService {
    async fn unary(&self, request: Request<Chunk>) -> Result<Response<Chunk>, Status> {
        let metadata = test_metadata(request.metadata());
        let mut response = Response::new(request.into_inner());
        *response.metadata_mut() = metadata;
        Ok(response)
    }

    type CountStream = ChunkStream;

    async fn count(&self, request: Request<Chunk>) -> Result<Response<ChunkStream>, Status> {
        let Chunk { index, payload } = request.into_inner();
        let fail = payload == b"fail";
        let chunks = (0..index).map(move |index| {
            Ok(Chunk {
                index,
                payload: payload.clone(),
            })
        });
        let end = fail.then(|| Err(the_failure()));
        Ok(Response::new(Box::pin(tokio_stream::iter(chunks.chain(end)))))
    }

    async fn collect(&self, request: Request<Streaming<Chunk>>) -> Result<Response<Chunk>, Status> {
        let mut stream = request.into_inner();
        let mut all = Chunk::default();
        while let Some(chunk) = stream.next().await {
            all.index += 1;
            all.payload.extend(chunk?.payload);
        }
        Ok(Response::new(all))
    }

    type ChatStream = ChunkStream;

    async fn chat(&self, request: Request<Streaming<Chunk>>) -> Result<Response<ChunkStream>, Status> {
        Ok(Response::new(Box::pin(request.into_inner())))
    }

    async fn hang(&self, request: Request<Chunk>) -> Result<Response<Chunk>, Status> {
        let timeout = request
            .metadata()
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let _ = self.seen.send(Seen::HangStarted(timeout));
        let _report = DropReport(self.seen.clone());
        std::future::pending().await
    }
}

/// An Echo server on loopback. Served by axum, not tonic's transport server,
/// which would end a call at its grpc-timeout itself: here only the gateway does.
pub(crate) async fn echo_server() -> (SocketAddr, mpsc::UnboundedReceiver<Seen>) {
    let (seen, events) = mpsc::unbounded_channel();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = tonic::service::Routes::new(EchoServer::new(EchoService { seen })).into_axum_router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (addr, events)
}

/// A gateway in `mode` whose Service and only endpoint is `upstream`.
pub(crate) async fn gateway(mode: Mode, upstream: SocketAddr) -> GatewayHandle {
    let spec = GatewaySpec {
        name: "gateway-ingress-test".into(),
        mode,
        ..GatewaySpec::default()
    };
    let endpoint = EndpointInfo {
        address: upstream.to_string(),
        pod_name: Some("echo-pod".into()),
        ready: true,
        terminating: false,
    };
    let discovery = discovery::static_endpoints(vec![endpoint]);
    let gateway = spec
        .start(upstream.to_string(), discovery, Default::default())
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while gateway.gateway.upstream.balancer().ready_count() == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the endpoint set was not applied"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    gateway
}

/// A bare HTTP/2 connection as a tower service: unlike tonic's `Channel` it
/// leaves grpc-timeout to the server side.
#[derive(Clone)]
pub(crate) struct Bare(hyper::client::conn::http2::SendRequest<tonic::body::Body>);

type Responding = Pin<Box<dyn Future<Output = Result<http::Response<hyper::body::Incoming>, hyper::Error>> + Send>>;

impl tower::Service<http::Request<tonic::body::Body>> for Bare {
    type Response = http::Response<hyper::body::Incoming>;
    type Error = hyper::Error;
    type Future = Responding;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), hyper::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Responding {
        Box::pin(self.0.send_request(request))
    }
}

/// An Echo client on its own HTTP/2 connection to `addr`.
pub(crate) async fn client(addr: SocketAddr) -> EchoClient<Bare> {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (send, connection) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(connection);
    EchoClient::with_origin(Bare(send), format!("http://{addr}").parse().unwrap())
}

/// The next thing the server saw, within 5 s.
pub(crate) async fn next_seen(events: &mut mpsc::UnboundedReceiver<Seen>) -> Seen {
    tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .expect("the server saw it within 5 s")
        .expect("the server is running")
}
