//! Watch served with each event's shared encoding: the generated server
//! would encode every event once per subscriber (ten subscribers, ten
//! encodings of the same summary); this route hands tonic the bytes encoded
//! once (events/shared.rs). Every other method goes to the generated server.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{BufMut, Bytes};
use tokio_stream::StreamExt;
use tonic::Status;
use tonic::body::Body;
use tonic::codec::{Codec, EncodeBuf, Encoder};
use tonic::codegen::{BoxFuture, Service, StdError};
use tonic::server::NamedService;
use tonic_prost::ProstDecoder;

use super::ObserverService;
use greet_proto::observe::WatchRequest;
use greet_proto::observe::observer_server::{ObserverServer, SERVICE_NAME};

const WATCH_PATH: &str = "/greet.observe.v1.Observer/Watch";

/// The Observer service as the network sees it.
#[derive(Clone)]
pub(crate) struct ObserverRoutes {
    service: Arc<ObserverService>,
    generated: ObserverServer<ObserverService>,
}

impl ObserverRoutes {
    pub(crate) fn new(service: ObserverService) -> Self {
        let service = Arc::new(service);
        ObserverRoutes {
            generated: ObserverServer::from_arc(Arc::clone(&service)),
            service,
        }
    }
}

impl NamedService for ObserverRoutes {
    const NAME: &'static str = SERVICE_NAME;
}

impl<B> Service<http::Request<B>> for ObserverRoutes
where
    B: tonic::codegen::Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if request.uri().path() != WATCH_PATH {
            return self.generated.call(request);
        }
        let service = Arc::clone(&self.service);
        Box::pin(async move {
            let watch = tower::service_fn(move |request: tonic::Request<WatchRequest>| {
                let events = service.events(request.get_ref());
                async move {
                    let wire = events.map(|event| Ok::<_, Status>(event.wire()));
                    Ok::<_, Status>(tonic::Response::new(wire))
                }
            });
            Ok(tonic::server::Grpc::new(WireCodec)
                .server_streaming(watch, request)
                .await)
        })
    }
}

/// Sends bytes that are already an encoded Event; reads a WatchRequest.
#[derive(Clone, Copy, Default)]
struct WireCodec;

struct PreEncoded;

impl Encoder for PreEncoded {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Codec for WireCodec {
    type Encode = Bytes;
    type Decode = WatchRequest;
    type Encoder = PreEncoded;
    type Decoder = ProstDecoder<WatchRequest>;

    fn encoder(&mut self) -> PreEncoded {
        PreEncoded
    }

    fn decoder(&mut self) -> ProstDecoder<WatchRequest> {
        ProstDecoder::default()
    }
}
