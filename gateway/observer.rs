//! The Observer gRPC service: a live stream of what the gateway does, and the
//! mode switch. Watch streams are built from shared events (one allocation,
//! one encoding, however many subscribers): wire.rs serves them to the
//! network as their encoded bytes.

mod auth;
mod discovery_changes;
mod wire;

pub(crate) use auth::ObserverAuth;
pub(crate) use discovery_changes::publish_discovery_changes;
pub(crate) use wire::ObserverRoutes;

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::Stream;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::{BroadcastStream, WatchStream};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use super::Gateway;
use super::events::sample::RateFilter;
use super::events::shared::Shared;
use super::events::summary::interval_of;
use greet_proto::Mode;
use greet_proto::observe::observer_server::Observer;
use greet_proto::observe::{Event, GetStateRequest, Lagged, SetModeRequest, State, WatchRequest, event};

pub(crate) struct ObserverService {
    gateway: Arc<Gateway>,
    /// Ends every Watch stream when the gateway shuts down, so the server can drain.
    shutdown: CancellationToken,
}

impl ObserverService {
    pub(crate) fn new(gateway: Arc<Gateway>, shutdown: CancellationToken) -> Self {
        ObserverService { gateway, shutdown }
    }

    /// What a Watch with these options streams, until the gateway shuts down.
    fn events(&self, options: &WatchRequest) -> SharedStream {
        let stream = match interval_of(options.summary_interval_ms) {
            None => self.raw_stream(),
            Some(interval) => self.summary_stream(interval, options.sample_per_second),
        };
        let shutdown = self.shutdown.clone().cancelled_owned();
        Box::pin(futures_util::StreamExt::take_until(stream, shutdown))
    }

    /// The snapshot, then every event; `lagged` when the subscriber falls behind.
    fn raw_stream(&self) -> SharedStream {
        let (snapshot, rx) = self.gateway.hub.subscribe();
        let gateway = Arc::clone(&self.gateway);
        let live = BroadcastStream::new(rx).map(move |item| match item {
            Ok(event) => event,
            Err(BroadcastStreamRecvError::Lagged(dropped)) => {
                gateway.metrics.observer_dropped(dropped);
                Arc::new(Shared::new(event::Kind::Lagged(Lagged { dropped })))
            }
        });
        Box::pin(tokio_stream::once(snapshot_event(snapshot)).chain(live))
    }

    /// The snapshot, then the latest summary each interval, mode and endpoint
    /// changes as they happen, and the sample asked for.
    fn summary_stream(&self, interval: Duration, sample_per_second: u32) -> SharedStream {
        let hub = Arc::clone(&self.gateway.hub);
        let subscription = hub.subscribe_summaries(interval);
        let summaries = WatchStream::from_changes(subscription.feed).filter_map(|latest| latest);
        let control = BroadcastStream::new(subscription.control).map(move |item| match item {
            Ok(event) => event,
            // Hundreds of unread mode and endpoint changes: the state now
            // replaces them (it holds the latest of both), with no gap.
            Err(BroadcastStreamRecvError::Lagged(_)) => snapshot_event(hub.snapshot()),
        });
        let live = summaries.merge(control);
        let first = tokio_stream::once(snapshot_event(subscription.snapshot));
        if sample_per_second == 0 {
            return Box::pin(first.chain(live));
        }
        let (wanted, samples) = self.gateway.hub.sampler.subscribe();
        let mut filter = RateFilter::new(sample_per_second);
        let samples = BroadcastStream::new(samples).filter_map(move |item| {
            // The guard lives as long as the stream: sampling stops with it.
            let _wanted = &wanted;
            // A sample that arrived too late to be kept is skipped, not counted.
            item.ok().filter(|event| filter.keep(event))
        });
        Box::pin(first.chain(live.merge(samples)))
    }
}

fn snapshot_event(state: State) -> Arc<Shared> {
    Arc::new(Shared::new(event::Kind::Snapshot(state)))
}

type SharedStream = Pin<Box<dyn Stream<Item = Arc<Shared>> + Send>>;
type EventStream = Pin<Box<dyn Stream<Item = Result<Event, Status>> + Send>>;

#[tonic::async_trait]
impl Observer for ObserverService {
    type WatchStream = EventStream;

    /// The network is served by wire.rs, with each event's shared encoding;
    /// this typed form is for in-process users of the generated server.
    async fn watch(&self, request: Request<WatchRequest>) -> Result<Response<Self::WatchStream>, Status> {
        let events = self.events(request.get_ref());
        Ok(Response::new(Box::pin(events.map(|event| Ok(Event::clone(&event))))))
    }

    async fn set_mode(&self, request: Request<SetModeRequest>) -> Result<Response<State>, Status> {
        let value = request.into_inner().mode;
        let mode = Mode::from_proto(value).ok_or_else(|| {
            Status::invalid_argument(format!(
                "mode {value} is not a mode: send MODE_STICKY (1), MODE_BALANCED (2) or MODE_LEAST_LOADED (3)"
            ))
        })?;
        self.gateway.upstream.set_mode(mode).await;
        Ok(Response::new(self.gateway.hub.snapshot()))
    }

    async fn get_state(&self, _request: Request<GetStateRequest>) -> Result<Response<State>, Status> {
        Ok(Response::new(self.gateway.hub.snapshot()))
    }
}
