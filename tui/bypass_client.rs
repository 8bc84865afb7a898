//! The demo's second client: it calls the pods straight, not through the
//! gateway, as clients that hold their own connections to a Service's pods
//! do. The gateway's view does not see these calls; the pods' own metrics
//! count them, so the two views differ and the screen says so.

use std::net::SocketAddr;
use std::time::Duration;

use greet_proto::greet::greet_service_client::GreetServiceClient;
use greet_proto::greet::{Greeting, GreetingRequest};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, Endpoint};

/// Calls a second the bypassing client makes, spread over the pods.
pub(crate) const BYPASS_RATE: u32 = 20;

/// Calls the pods in `pods` in turn, [`BYPASS_RATE`] a second, until `stop`.
/// A failed call is dropped: the pods' metrics count it, which is the point.
pub(crate) async fn run(pods: watch::Receiver<Vec<SocketAddr>>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(1) / BYPASS_RATE);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut clients: Vec<(SocketAddr, GreetServiceClient<Channel>)> = Vec::new();
    let mut next = 0usize;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let addrs = pods.borrow().clone();
        clients.retain(|(addr, _)| addrs.contains(addr));
        for addr in &addrs {
            if !clients.iter().any(|(known, _)| known == addr)
                && let Ok(endpoint) = Endpoint::from_shared(format!("http://{addr}"))
            {
                clients.push((*addr, GreetServiceClient::new(endpoint.connect_lazy())));
            }
        }
        if clients.is_empty() {
            continue;
        }
        next = (next + 1) % clients.len();
        let mut client = clients[next].1.clone();
        tokio::spawn(async move {
            let request = GreetingRequest {
                greeting: Some(Greeting {
                    first_name: "Direct".to_owned(),
                    last_name: "Caller".to_owned(),
                }),
            };
            let _ = tokio::time::timeout(Duration::from_secs(2), client.greet(request)).await;
        });
    }
}
