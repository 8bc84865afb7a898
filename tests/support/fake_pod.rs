//! A Greet server in the test's own process, named as a pod, that answers
//! at once or, while hung, never: for tests that need a pod to stop
//! answering without a process to SIGSTOP.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use greet_proto::greet::greet_service_server::{GreetService, GreetServiceServer};
use greet_proto::greet::{Greeting, GreetingRequest, GreetingResponse};
use tonic::{Request, Response, Status};

/// A Greet server named `name` that answers at once, or never while `hung`,
/// or fails without naming itself while `failing` (as a layer in front of
/// the service does: a timeout, a load shedder).
#[derive(Clone)]
pub struct Pod {
    pub name: &'static str,
    pub hung: Arc<AtomicBool>,
    pub failing: Arc<AtomicBool>,
}

#[tonic::async_trait]
impl GreetService for Pod {
    async fn greet(&self, _request: Request<GreetingRequest>) -> Result<Response<GreetingResponse>, Status> {
        if self.hung.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        if self.failing.load(Ordering::SeqCst) {
            return Err(Status::resource_exhausted("shedding load"));
        }
        let mut response = Response::new(GreetingResponse {
            result: "Hello".into(),
            pod_name: self.name.into(),
            pod_ip: "127.0.0.1".into(),
        });
        response
            .metadata_mut()
            .insert("x-pod-name", tonic::metadata::MetadataValue::from_static(self.name));
        Ok(response)
    }
}

pub async fn serve(pod: Pod) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(GreetServiceServer::new(pod))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    addr
}

pub fn pod(name: &'static str, hung: bool) -> Pod {
    Pod {
        name,
        hung: Arc::new(AtomicBool::new(hung)),
        failing: Arc::new(AtomicBool::new(false)),
    }
}

pub fn greeting() -> GreetingRequest {
    GreetingRequest {
        greeting: Some(Greeting {
            first_name: "Ada".into(),
            last_name: "Lovelace".into(),
        }),
    }
}
