//! HTTP/2 keepalive: PINGs on a connection, and the end of waiting for a
//! peer that stopped answering (a pod or client gone without a reset). A
//! leaf: the upstream connections and the ingress's client connections
//! both keep alive so.

use std::time::Duration;

/// Ends when the peer did not answer a PING within `timeout`, one sent every
/// `interval`; never without pings (`None`, or a zero interval) or once the
/// connection is gone (its own task sees that and says why).
pub(crate) async fn keepalive(ping_pong: Option<h2::PingPong>, interval: Duration, timeout: Duration) {
    let Some(mut ping_pong) = ping_pong.filter(|_| !interval.is_zero()) else {
        return std::future::pending().await;
    };
    loop {
        tokio::time::sleep(interval).await;
        match tokio::time::timeout(timeout, ping_pong.ping(h2::Ping::opaque())).await {
            Ok(Ok(_pong)) => {}
            Ok(Err(_)) => return std::future::pending().await,
            Err(_) => return,
        }
    }
}
