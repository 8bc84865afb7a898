//! Who is connected to greet-server, for its metrics: the HTTP/2
//! connections open now and the distinct client addresses behind them. A
//! client that pins one connection (the sticky gateway) shows as one
//! connection from one address however many requests it sends; a balanced
//! gateway holds one to every pod.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// The open connections by client address; changed only when a connection
/// opens or closes.
#[derive(Clone, Debug, Default)]
pub(crate) struct Clients {
    open: Gauge,
    addresses: Gauge,
    by_address: Arc<Mutex<HashMap<IpAddr, u64>>>,
}

impl Clients {
    /// Adds the gauges to `registry`.
    pub(crate) fn register(&self, registry: &mut Registry) {
        registry.register(
            "greet_server_open_connections",
            "HTTP/2 connections open to this server now",
            self.open.clone(),
        );
        registry.register(
            "greet_server_client_addresses",
            "Distinct client IP addresses with a connection open to this server now",
            self.addresses.clone(),
        );
    }

    /// A connection from `client` opened: counted until the guard drops.
    pub(crate) fn connected(&self, client: IpAddr) -> ClientGuard {
        self.open.inc();
        let mut by_address = self.lock();
        *by_address.entry(client).or_default() += 1;
        self.addresses.set(by_address.len() as i64);
        ClientGuard {
            clients: self.clone(),
            client,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, u64>> {
        // Each update leaves the map whole: a panic elsewhere cannot break it.
        self.by_address.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Held by an open connection.
#[derive(Debug)]
pub(crate) struct ClientGuard {
    clients: Clients,
    client: IpAddr,
}

impl Drop for ClientGuard {
    fn drop(&mut self) {
        self.clients.open.dec();
        let mut by_address = self.clients.lock();
        if let Some(count) = by_address.get_mut(&self.client) {
            *count -= 1;
            if *count == 0 {
                by_address.remove(&self.client);
            }
        }
        self.clients.addresses.set(by_address.len() as i64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_and_distinct_addresses_follow_opens_and_closes() {
        let clients = Clients::default();
        let (one, two) = ("127.0.0.1".parse().unwrap(), "127.0.0.2".parse().unwrap());
        let a = clients.connected(one);
        let b = clients.connected(two);
        let c = clients.connected(two);
        assert_eq!((clients.open.get(), clients.addresses.get()), (3, 2));
        drop(b);
        assert_eq!((clients.open.get(), clients.addresses.get()), (2, 2));
        drop(c);
        assert_eq!((clients.open.get(), clients.addresses.get()), (1, 1));
        drop(a);
        assert_eq!((clients.open.get(), clients.addresses.get()), (0, 0));
    }
}
