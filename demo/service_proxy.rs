//! A tiny L4 "Service": like kube-proxy, it balances *connections* (round
//! robin) across the pods, not requests. One long-lived HTTP/2 connection
//! through it therefore sticks to one pod, exactly as in a cluster.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Serves until `shutdown`; every accepted connection is piped to the next
/// backend of `backends` in round-robin order. With no backend, or when the
/// chosen one refuses, the client connection is closed (as kube-proxy rejects).
pub async fn run(listener: TcpListener, backends: watch::Receiver<Vec<SocketAddr>>, shutdown: CancellationToken) {
    let next = Arc::new(AtomicUsize::new(0));
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (client, _) = match accepted {
            Ok(conn) => conn,
            Err(err) => {
                tracing::warn!("service proxy: accept failed: {err}");
                continue;
            }
        };
        let backend = {
            let current = backends.borrow();
            if current.is_empty() {
                None
            } else {
                Some(current[next.fetch_add(1, Ordering::Relaxed) % current.len()])
            }
        };
        let Some(backend) = backend else {
            continue; // dropping `client` closes it
        };
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let Ok(mut upstream) = TcpStream::connect(backend).await else {
                return;
            };
            let mut client = client;
            let _ = client.set_nodelay(true);
            let _ = upstream.set_nodelay(true);
            tokio::select! {
                () = shutdown.cancelled() => {}
                _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {}
            }
        });
    }
}
