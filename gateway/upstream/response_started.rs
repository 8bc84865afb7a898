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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::proto::greet::greet_service_client::GreetServiceClient;
    use crate::proto::greet::{Greeting, GreetingRequest};

    fn channel(addr: std::net::SocketAddr) -> Channel {
        tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect_lazy()
    }

    async fn greet(channel: Channel, greeting: Option<Greeting>) -> (Result<String, tonic::Code>, bool) {
        let started = ResponseStarted::default();
        let mut client = GreetServiceClient::new(started.watch(channel));
        let result = client.greet(GreetingRequest { greeting }).await;
        let result = result.map(|r| r.into_inner().pod_name).map_err(|s| s.code());
        (result, started.get())
    }

    #[tokio::test]
    async fn a_response_began_when_the_server_answered_even_with_an_error() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let config = crate::server::ServerConfig {
            pod_name: "p1".into(),
            pod_ip: "127.0.0.1".into(),
            max_connection_age: None,
            shutdown_delay: Duration::ZERO,
            drain_timeout: Duration::from_secs(1),
        };
        let stop = tokio_util::sync::CancellationToken::new();
        let server = tokio::spawn(crate::server::serve(listener, config, stop.clone().cancelled_owned()));
        let greeting = Greeting {
            first_name: "A".into(),
            last_name: "B".into(),
        };
        assert_eq!(greet(channel(addr), Some(greeting)).await, (Ok("p1".into()), true));
        // The server's own error status: an answer, not to be repeated.
        assert_eq!(
            greet(channel(addr), None).await,
            (Err(tonic::Code::InvalidArgument), true)
        );
        stop.cancel();
        server.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn no_response_began_when_nothing_answered() {
        let refusing = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let (result, started) = greet(channel(refusing), None).await;
        assert!(result.is_err());
        assert!(!started);
    }
}
