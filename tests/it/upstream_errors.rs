//! What a client of the gateway gets when greet-server misbehaves: a slow
//! server is a 504, a failing one a 502, each with a JSON body that names the
//! server and says what to do, in both modes; the Observer counts the error.

use std::net::SocketAddr;
use std::time::Duration;

use greet_demo::GatewaySpec;
use greet_demo::rest_client::RestClient;
use greet_gateway::GatewayHandle;
use greet_gateway::UpstreamTimeouts;
use greet_gateway::discovery::{self, EndpointInfo};
use greet_proto::Mode;
use greet_proto::greet::greet_service_server::{GreetService, GreetServiceServer};
use greet_proto::greet::{GreetingRequest, GreetingResponse};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

const UPSTREAM_TIMEOUT: Duration = Duration::from_millis(300);

/// A Greet server that answers too late, or with an error status.
#[derive(Clone)]
enum Misbehaviour {
    Slow(Duration),
    Fails(tonic::Code, &'static str),
}

#[tonic::async_trait]
impl GreetService for Misbehaviour {
    async fn greet(&self, _request: Request<GreetingRequest>) -> Result<Response<GreetingResponse>, Status> {
        match self {
            Misbehaviour::Slow(delay) => {
                tokio::time::sleep(*delay).await;
                Ok(Response::new(GreetingResponse::default()))
            }
            Misbehaviour::Fails(code, message) => Err(Status::new(*code, *message)),
        }
    }
}

async fn misbehaving_server(behaviour: Misbehaviour, stop: &CancellationToken) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    let stop = stop.clone();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(GreetServiceServer::new(behaviour))
            .serve_with_incoming_shutdown(incoming, stop.cancelled_owned()),
    );
    addr
}

async fn gateway_to(server: SocketAddr, mode: Mode) -> GatewayHandle {
    let spec = GatewaySpec {
        mode,
        timeouts: UpstreamTimeouts {
            request: UPSTREAM_TIMEOUT,
            connect: Duration::from_millis(500),
        },
        ..GatewaySpec::default()
    };
    let endpoints = discovery::static_endpoints([EndpointInfo::ready(server.to_string())].into_iter().collect());
    spec.start(server.to_string(), endpoints, Default::default())
        .await
        .unwrap()
}

/// POSTs one greeting; returns the status and the `error` of the JSON body.
async fn greet_error(gateway: &GatewayHandle) -> (u16, String) {
    let rest = RestClient::new(format!("http://{}", gateway.rest_addr));
    let response = rest.greet("Ada", "Lovelace").await.unwrap();
    assert_eq!(
        response.content_type.as_deref(),
        Some("application/json"),
        "{}",
        response.body
    );
    let json = response.json().unwrap();
    let error = json["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error text in {json}"))
        .to_owned();
    (response.status.as_u16(), error)
}

/// The one pod total the gateway reports: (requests, errors).
fn counted(gateway: &GatewayHandle) -> (u64, u64) {
    let state = gateway.gateway.hub.snapshot();
    assert_eq!(state.pods.len(), 1, "{:?}", state.pods);
    (state.pods[0].requests, state.pods[0].errors)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_slower_than_the_upstream_timeout_is_a_504_in_both_modes() {
    let stop = CancellationToken::new();
    let server = misbehaving_server(Misbehaviour::Slow(Duration::from_secs(5)), &stop).await;
    for mode in [Mode::Sticky, Mode::Balanced] {
        let gateway = gateway_to(server, mode).await;
        let started = std::time::Instant::now();
        let (status, error) = greet_error(&gateway).await;
        assert_eq!(status, 504, "{mode}: {error}");
        assert_eq!(
            error,
            format!(
                "greet-server at {server} did not answer within 300ms; check its load and the network, or raise --upstream-timeout"
            ),
            "{mode}"
        );
        // Answered at the deadline, not when the server got round to it.
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{mode}: {:?}",
            started.elapsed()
        );
        assert_eq!(counted(&gateway), (1, 1), "{mode}");
        gateway.shutdown().await.unwrap();
    }
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_fails_the_call_is_a_502_naming_its_status_in_both_modes() {
    let stop = CancellationToken::new();
    let server = misbehaving_server(Misbehaviour::Fails(tonic::Code::Internal, "database is down"), &stop).await;
    for mode in [Mode::Sticky, Mode::Balanced] {
        let gateway = gateway_to(server, mode).await;
        for attempt in 0..3 {
            let (status, error) = greet_error(&gateway).await;
            assert_eq!(status, 502, "{mode} #{attempt}: {error}");
            assert_eq!(
                error,
                format!("greet-server at {server} failed the call with Internal: database is down"),
                "{mode} #{attempt}"
            );
        }
        // A failing call is not a dead endpoint: every attempt reached the server.
        assert_eq!(counted(&gateway), (3, 3), "{mode}");
        gateway.shutdown().await.unwrap();
    }
    stop.cancel();
}
