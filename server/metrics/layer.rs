//! The tower layer that counts every call of the tonic server: started when
//! the request arrives, handled (with the code from the `grpc-status`
//! header of a trailers-only answer, or from the trailers) when the answer's
//! body ends, messages as their gRPC frames go by. A call whose answer is
//! dropped before its end (the client went away) is handled as Canceled.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::{Buf, Bytes};
use http::{HeaderMap, Request, Response};
use http_body::{Body as _, Frame, SizeHint};
use prometheus_client::metrics::counter::Counter;
use tonic::body::Body;
use tower::{Layer, Service};

use super::{GrpcMetrics, MethodMetrics};

/// Codes used when a call ends without a status of its own.
const CANCELED: i32 = 1;
const UNKNOWN: i32 = 2;

#[derive(Clone, Debug)]
pub(crate) struct MetricsLayer(Arc<GrpcMetrics>);

impl MetricsLayer {
    pub(super) fn new(metrics: Arc<GrpcMetrics>) -> Self {
        MetricsLayer(metrics)
    }
}

impl<S> Layer<S> for MetricsLayer {
    type Service = Metered<S>;

    fn layer(&self, inner: S) -> Metered<S> {
        Metered {
            inner,
            metrics: Arc::clone(&self.0),
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Metered<S> {
    inner: S,
    metrics: Arc<GrpcMetrics>,
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S> Service<Request<Body>> for Metered<S>
where
    S: Service<Request<Body>, Response = Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = Response<MeteredBody>;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let Some(method) = self.metrics.method(request.uri().path()).cloned() else {
            let answer = self.inner.call(request);
            return Box::pin(async move { Ok(answer.await?.map(MeteredBody::unmetered)) });
        };
        method.started.inc();
        let request = if method.client_streaming {
            let received = method.received.clone();
            request.map(|body| Body::new(MeteredBody::counting(body, received)))
        } else {
            method.received.inc();
            request
        };
        let call = Call {
            method,
            started: Instant::now(),
            header_code: None,
        };
        let answer = self.inner.call(request);
        Box::pin(async move {
            let mut call = call;
            let response = answer.await?;
            call.header_code = grpc_status(response.headers());
            match call.header_code {
                // A trailers-only answer (an error status): handled now, before
                // the client can see it, not when the server drops its body.
                Some(code) if response.body().is_end_stream() => {
                    call.finish(code);
                    Ok(response.map(MeteredBody::unmetered))
                }
                _ => Ok(response.map(|body| MeteredBody::answer(body, call))),
            }
        })
    }
}

/// The status code in `grpc-status`, if there is one.
fn grpc_status(headers: &HeaderMap) -> Option<i32> {
    headers.get("grpc-status")?.to_str().ok()?.parse().ok()
}

/// One call being answered; counted as handled exactly once, when dropped
/// at the latest.
struct Call {
    method: Arc<MethodMetrics>,
    started: Instant,
    /// The code of a trailers-only answer.
    header_code: Option<i32>,
}

impl Call {
    fn finish(self, code: i32) {
        self.method.handled(code, self.started.elapsed().as_secs_f64());
    }
}

/// Counts the gRPC messages that start in a stream of data chunks: each is
/// a 5-byte header (flag, big-endian length) and that many bytes.
#[derive(Debug, Default)]
struct Frames {
    header: [u8; 5],
    header_len: usize,
    payload_left: u64,
}

impl Frames {
    /// How many messages start in `chunk`.
    fn feed(&mut self, mut chunk: &[u8]) -> u64 {
        let mut started = 0;
        while !chunk.is_empty() {
            if self.payload_left > 0 {
                let n = chunk
                    .len()
                    .min(usize::try_from(self.payload_left).unwrap_or(usize::MAX));
                chunk = &chunk[n..];
                self.payload_left -= n as u64;
                continue;
            }
            let n = chunk.len().min(5 - self.header_len);
            self.header[self.header_len..self.header_len + n].copy_from_slice(&chunk[..n]);
            self.header_len += n;
            chunk = &chunk[n..];
            if self.header_len == 5 {
                started += 1;
                self.header_len = 0;
                let [_, a, b, c, d] = self.header;
                self.payload_left = u64::from(u32::from_be_bytes([a, b, c, d]));
            }
        }
        started
    }
}

/// The messages of one direction of a stream, counted as they go by.
struct Messages {
    frames: Frames,
    counter: Counter,
}

/// A body seen on its way: a request's (client streams: its messages
/// counted) or an answer's (server streams: its messages counted; a served
/// method's call handled when the body ends).
pub(crate) struct MeteredBody {
    inner: Body,
    messages: Option<Messages>,
    call: Option<Call>,
}

impl MeteredBody {
    fn unmetered(inner: Body) -> Self {
        MeteredBody {
            inner,
            messages: None,
            call: None,
        }
    }

    fn counting(inner: Body, counter: Counter) -> Self {
        let mut body = MeteredBody::unmetered(inner);
        body.messages = Some(Messages {
            frames: Frames::default(),
            counter,
        });
        body
    }

    fn answer(inner: Body, call: Call) -> Self {
        let mut body = if call.method.server_streaming {
            MeteredBody::counting(inner, call.method.sent.clone())
        } else {
            MeteredBody::unmetered(inner)
        };
        body.call = Some(call);
        body
    }

    fn observe(&mut self, polled: &Option<Result<Frame<Bytes>, tonic::Status>>) {
        if let (Some(messages), Some(Ok(frame))) = (&mut self.messages, polled)
            && let Some(data) = frame.data_ref()
        {
            let started = messages.frames.feed(data.chunk());
            if started > 0 {
                messages.counter.inc_by(started);
            }
        }
        let Some(call) = &self.call else { return };
        let code = match polled {
            Some(Ok(frame)) => match frame.trailers_ref() {
                Some(trailers) => grpc_status(trailers).or(call.header_code).unwrap_or(UNKNOWN),
                None => return,
            },
            Some(Err(status)) => status.code() as i32,
            None => call.header_code.unwrap_or(UNKNOWN),
        };
        self.finish(code);
    }

    fn finish(&mut self, code: i32) {
        if let Some(call) = self.call.take() {
            call.finish(code);
        }
    }
}

impl Drop for MeteredBody {
    fn drop(&mut self) {
        // A trailers-only answer may be dropped unread; any other answer that
        // ends here did not reach its status: the client went away.
        let code = self.call.as_ref().and_then(|call| call.header_code).unwrap_or(CANCELED);
        self.finish(code);
    }
}

impl http_body::Body for MeteredBody {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(ready) = &polled {
            self.observe(ready);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_counted_across_chunk_boundaries() {
        let mut frames = Frames::default();
        // Two messages of 3 and 0 bytes, then one of 2 split mid-header.
        let wire = [
            0, 0, 0, 0, 3, b'a', b'b', b'c', 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, b'x', b'y',
        ];
        assert_eq!(frames.feed(&wire), 3);
        let mut split = Frames::default();
        let counts: Vec<u64> = [&wire[..2], &wire[2..6], &wire[6..9], &wire[9..16], &wire[16..]]
            .iter()
            .map(|chunk| split.feed(chunk))
            .collect();
        assert_eq!(counts, [0, 1, 0, 1, 1]);
        assert_eq!(split.payload_left, 0);
        assert_eq!(split.header_len, 0);
    }
}
