//! A Greet server that counts the calls that reach it, but a well-behaved
//! client's (last names starting `calm-`): what an attack leaked upstream.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use greet_proto::greet::greet_service_server::{GreetService, GreetServiceServer};
use greet_proto::greet::{GreetingRequest, GreetingResponse};

#[derive(Clone, Default)]
pub struct Counting(Arc<AtomicUsize>);

#[tonic::async_trait]
impl GreetService for Counting {
    async fn greet(
        &self,
        request: tonic::Request<GreetingRequest>,
    ) -> Result<tonic::Response<GreetingResponse>, tonic::Status> {
        let name = request.into_inner().greeting.map(|g| g.last_name).unwrap_or_default();
        // The well-behaved client's calls are not the attack's.
        if !name.starts_with("calm-") {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
        Ok(tonic::Response::new(GreetingResponse {
            result: format!("Hello, {name}"),
            pod_name: "counting".into(),
            pod_ip: "127.0.0.1".into(),
        }))
    }
}

impl Counting {
    pub fn calls(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }

    /// Counts from zero again.
    pub fn reset(&self) {
        self.0.store(0, Ordering::SeqCst);
    }

    /// Serves on a port of its own on 127.0.0.1.
    pub async fn serve(&self) -> SocketAddr {
        self.serve_on(IpAddr::V4(Ipv4Addr::LOCALHOST)).await
    }

    /// Serves on a port of its own on `ip` (a loopback address).
    pub async fn serve_on(&self, ip: IpAddr) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(GreetServiceServer::new(self.clone()))
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
        );
        addr
    }
}
