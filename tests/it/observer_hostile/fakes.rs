//! Gateways that misbehave, on loopback port 0: a tonic Observer that sends
//! a message over greet-top's limit or floods events as fast as it can, a
//! TCP server that answers with bytes that are not HTTP/2, and an HTTP/2
//! server that answers with a web page instead of gRPC.

use std::net::SocketAddr;
use std::pin::Pin;

use futures_util::Stream;
use greet_proto::observe::observer_server::{Observer, ObserverServer};
use greet_proto::observe::{
    self, Event, GetStateRequest, PodSummary, RequestEvent, SetModeRequest, State, Summary, WatchRequest, event,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::{CancellationToken, DropGuard};
use tonic::{Request, Response, Status};

/// The pods a fake gateway names.
pub(crate) const PODS: [&str; 3] = ["flood-pod-a", "flood-pod-b", "flood-pod-c"];

/// A fake that stops when dropped.
pub(crate) struct Fake {
    pub url: String,
    _stop: DropGuard,
}

async fn listen() -> (TcpListener, SocketAddr, CancellationToken) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr, CancellationToken::new())
}

/// What a fake Observer does.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Behaviour {
    /// Every answer is a message of `bytes` bytes.
    Huge { bytes: usize },
    /// A snapshot, then summaries and request events as fast as the client reads.
    Flood,
    /// Every call fails with this status message (control characters and all).
    Fails(&'static str),
}

pub(crate) async fn observer(behaviour: Behaviour) -> Fake {
    let (listener, addr, stop) = listen().await;
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    let server = tonic::transport::Server::builder()
        .add_service(ObserverServer::new(FakeObserver(behaviour)))
        .serve_with_incoming_shutdown(incoming, stop.clone().cancelled_owned());
    tokio::spawn(server);
    Fake {
        url: format!("http://{addr}"),
        _stop: stop.drop_guard(),
    }
}

struct FakeObserver(Behaviour);

fn state(gateway: String) -> State {
    State {
        mode: observe::Mode::Sticky as i32,
        endpoints: PODS
            .iter()
            .enumerate()
            .map(|(i, pod)| observe::Endpoint {
                address: format!("10.0.0.{}:50051", i + 1),
                pod_name: (*pod).into(),
                ready: true,
                ..Default::default()
            })
            .collect(),
        gateway,
        started_unix_us: 1,
        ..State::default()
    }
}

/// The n-th event of a flood: cumulative summaries and sampled requests, in turn.
fn flood_event(n: u64) -> Event {
    let pod = PODS[(n % 3) as usize];
    let kind = if n.is_multiple_of(2) {
        event::Kind::Summary(Summary {
            pods: PODS
                .iter()
                .map(|pod| PodSummary {
                    pod_name: (*pod).into(),
                    requests: n,
                    attempts: n,
                    ..PodSummary::default()
                })
                .collect(),
            ..Summary::default()
        })
    } else {
        event::Kind::Request(RequestEvent {
            seq: n,
            pod_name: pod.into(),
            latency_us: 500,
            mode: observe::Mode::Sticky as i32,
            ..RequestEvent::default()
        })
    };
    Event { kind: Some(kind) }
}

type Events = Pin<Box<dyn Stream<Item = Result<Event, Status>> + Send>>;

#[tonic::async_trait]
impl Observer for FakeObserver {
    type WatchStream = Events;

    async fn watch(&self, _request: Request<WatchRequest>) -> Result<Response<Events>, Status> {
        let events: Events = match self.0 {
            Behaviour::Huge { bytes } => {
                let huge = Event {
                    kind: Some(event::Kind::Snapshot(state("h".repeat(bytes)))),
                };
                Box::pin(tokio_stream::once(Ok(huge)))
            }
            Behaviour::Flood => {
                let first = Event {
                    kind: Some(event::Kind::Snapshot(state("flood".into()))),
                };
                let mut n = 0;
                let flood = futures_util::stream::repeat_with(move || {
                    n += 1;
                    Ok(flood_event(n))
                });
                Box::pin(futures_util::StreamExt::chain(tokio_stream::once(Ok(first)), flood))
            }
            Behaviour::Fails(message) => return Err(Status::internal(message)),
        };
        Ok(Response::new(events))
    }

    async fn set_mode(&self, _request: Request<SetModeRequest>) -> Result<Response<State>, Status> {
        Err(Status::unimplemented("a fake"))
    }

    async fn get_state(&self, _request: Request<GetStateRequest>) -> Result<Response<State>, Status> {
        Ok(Response::new(match self.0 {
            Behaviour::Huge { bytes } => state("h".repeat(bytes)),
            Behaviour::Flood => state("flood".into()),
            Behaviour::Fails(message) => return Err(Status::internal(message)),
        }))
    }
}

/// Answers every connection with `reply` once the client has sent
/// something (as an HTTP/1.1 server would), then reads and drops the rest.
/// An empty `reply`: a server that never answers.
pub(crate) async fn raw_tcp(reply: &'static [u8]) -> Fake {
    let (listener, addr, stop) = listen().await;
    let serving = stop.clone();
    tokio::spawn(async move {
        while let Some(Ok((mut socket, _))) = serving.run_until_cancelled(listener.accept()).await {
            tokio::spawn(async move {
                let mut sink = [0u8; 4096];
                if matches!(socket.read(&mut sink).await, Ok(n) if n > 0) {
                    let _ = socket.write_all(reply).await;
                }
                while matches!(socket.read(&mut sink).await, Ok(n) if n > 0) {}
            });
        }
    });
    Fake {
        url: format!("http://{addr}"),
        _stop: stop.drop_guard(),
    }
}

/// An HTTP/2 (and HTTP/1.1) web server: 200 and a web page for any request.
pub(crate) async fn web_page() -> Fake {
    let (listener, addr, stop) = listen().await;
    let page = || async {
        (
            [("content-type", "text/html")],
            "<html><body>hello\u{1b}[2J</body></html>",
        )
    };
    let app = axum::Router::new().fallback(page);
    let server = axum::serve(listener, app).with_graceful_shutdown(stop.clone().cancelled_owned());
    tokio::spawn(async move { server.await });
    Fake {
        url: format!("http://{addr}"),
        _stop: stop.drop_guard(),
    }
}
