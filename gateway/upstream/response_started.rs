//! Whether an upstream call's response began (its headers arrived). A call
//! that failed before that got no answer at all and may be sent again; one
//! that failed after may have been served and must not.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use tonic::body::Body;
use tonic::transport::Channel;

/// Set once the call's response headers arrive; shared by the clones of the
/// [`Watched`] channel made for one call.
#[derive(Clone, Debug, Default)]
pub(super) struct ResponseStarted(Arc<AtomicBool>);

impl ResponseStarted {
    /// `channel`, reporting to this flag.
    pub(super) fn watch(&self, channel: Channel) -> Watched {
        Watched {
            inner: channel,
            started: self.clone(),
        }
    }

    pub(super) fn get(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// A channel that sets its [`ResponseStarted`] when a response begins.
#[derive(Clone, Debug)]
pub(super) struct Watched {
    inner: Channel,
    started: ResponseStarted,
}

type ResponseFuture = Pin<Box<dyn Future<Output = Result<http::Response<Body>, tonic::transport::Error>> + Send>>;

impl tower::Service<http::Request<Body>> for Watched {
    type Response = http::Response<Body>;
    type Error = tonic::transport::Error;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let response = self.inner.call(request);
        let started = self.started.clone();
        Box::pin(async move {
            let response = response.await?;
            started.0.store(true, Ordering::Release);
            Ok(response)
        })
    }
}
