//! The Observer gRPC service: a live stream of what the gateway does, and the
//! mode switch.

use std::pin::Pin;
use std::sync::Arc;

use futures_util::Stream;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use super::Gateway;
use crate::common::Mode;
use crate::proto::observe::observer_server::Observer;
use crate::proto::observe::{Event, GetStateRequest, Lagged, SetModeRequest, State, WatchRequest, event};

pub struct ObserverService {
    gateway: Arc<Gateway>,
    /// Ends every Watch stream when the gateway shuts down, so the server can drain.
    shutdown: CancellationToken,
}

impl ObserverService {
    pub fn new(gateway: Arc<Gateway>, shutdown: CancellationToken) -> Self {
        ObserverService { gateway, shutdown }
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<Event, Status>> + Send>>;

#[tonic::async_trait]
impl Observer for ObserverService {
    type WatchStream = EventStream;

    async fn watch(&self, _request: Request<WatchRequest>) -> Result<Response<Self::WatchStream>, Status> {
        let (snapshot, rx) = self.gateway.hub.subscribe();
        let first = Event {
            kind: Some(event::Kind::Snapshot(snapshot)),
        };
        let live = BroadcastStream::new(rx).map(|item| match item {
            Ok(event) => Ok(Event::clone(&event)),
            Err(BroadcastStreamRecvError::Lagged(dropped)) => Ok(Event {
                kind: Some(event::Kind::Lagged(Lagged { dropped })),
            }),
        });
        let shutdown = self.shutdown.clone().cancelled_owned();
        let stream = tokio_stream::once(Ok(first)).chain(live);
        Ok(Response::new(Box::pin(futures_util::StreamExt::take_until(
            stream, shutdown,
        ))))
    }

    async fn set_mode(&self, request: Request<SetModeRequest>) -> Result<Response<State>, Status> {
        let value = request.into_inner().mode;
        let mode = Mode::from_proto(value).ok_or_else(|| {
            Status::invalid_argument(format!(
                "mode {value} is not a mode: send MODE_STICKY (1) or MODE_BALANCED (2)"
            ))
        })?;
        self.gateway.upstream.set_mode(mode).await;
        Ok(Response::new(self.gateway.hub.snapshot()))
    }

    async fn get_state(&self, _request: Request<GetStateRequest>) -> Result<Response<State>, Status> {
        Ok(Response::new(self.gateway.hub.snapshot()))
    }
}
