//! Resolving one name again and again, with a time limit: the one loop
//! `--discovery dns` and `dns` mode share, so a fix to one is a fix to both
//! (a lookup that never answers used to hang the first forever).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

/// One lookup of the name: its addresses, or the resolver's error.
pub type ResolveFuture = Pin<Box<dyn Future<Output = std::io::Result<Vec<SocketAddr>>> + Send>>;

/// Resolves GRPC_SERVER_HOST:GRPC_SERVER_PORT once per call.
#[derive(Clone)]
pub struct Resolver(Arc<dyn Fn() -> ResolveFuture + Send + Sync>);

impl Resolver {
    pub fn new(resolve: impl Fn() -> ResolveFuture + Send + Sync + 'static) -> Self {
        Resolver(Arc::new(resolve))
    }

    /// The system's resolver (getaddrinfo, through tokio): what a gRPC
    /// client's DNS resolver asks.
    pub fn system(host: String, port: u16) -> Self {
        Resolver::new(move || {
            let host = host.clone();
            Box::pin(async move { Ok(tokio::net::lookup_host((host.as_str(), port)).await?.collect()) })
        })
    }

    /// One lookup, as a future of its own (spawned, so it can outlive a tick).
    pub(crate) fn resolve(&self) -> ResolveFuture {
        (self.0)()
    }
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Resolver")
    }
}

/// What one resolve said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Lookup {
    Found(Vec<SocketAddr>),
    /// The name has no addresses (NXDOMAIN, or an answer with none).
    NoSuchName(String),
    /// Any other failure (a timeout, SERVFAIL, no server).
    Failed(String),
}

impl Lookup {
    pub(crate) fn from_result(result: std::io::Result<Vec<SocketAddr>>) -> Lookup {
        match result {
            Ok(addrs) if addrs.is_empty() => Lookup::NoSuchName("the answer has no addresses".into()),
            Ok(addrs) => Lookup::Found(addrs),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound || name_has_no_addresses(&err.to_string()) => {
                Lookup::NoSuchName(err.to_string())
            }
            Err(err) => Lookup::Failed(err.to_string()),
        }
    }
}

/// Resolves every `interval`: each [`Self::next`] waits for the next tick and
/// gives that lookup's outcome, a lookup taking longer than the interval (at
/// least 1 s) counting as failed.
pub(crate) struct ResolveLoop {
    resolver: Resolver,
    ticker: tokio::time::Interval,
    /// A lookup still running from an earlier tick: waited on again, never
    /// doubled (getaddrinfo blocks a thread until its own timeouts end).
    pending: Option<JoinHandle<std::io::Result<Vec<SocketAddr>>>>,
    limit: Duration,
}

impl ResolveLoop {
    pub(crate) fn new(resolver: Resolver, interval: Duration) -> Self {
        // At least 1 ms: tokio's interval refuses zero (the CLI asks 100 ms).
        let mut ticker = tokio::time::interval(interval.max(Duration::from_millis(1)));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ResolveLoop {
            resolver,
            ticker,
            pending: None,
            limit: interval.max(Duration::from_secs(1)),
        }
    }

    /// The next tick's lookup.
    pub(crate) async fn next(&mut self) -> Lookup {
        self.ticker.tick().await;
        let resolver = &self.resolver;
        let lookup = self.pending.get_or_insert_with(|| tokio::spawn(resolver.resolve()));
        match tokio::time::timeout(self.limit, lookup).await {
            Ok(done) => {
                self.pending = None;
                match done {
                    Ok(result) => Lookup::from_result(result),
                    Err(join) => Lookup::Failed(format!("the lookup's task failed: {join}")),
                }
            }
            Err(_) => Lookup::Failed(format!("no answer within {:?}", self.limit)),
        }
    }
}

/// A lookup that failed because the name has no addresses (a headless
/// Service with no ready pod answers NXDOMAIN), as opposed to a DNS hiccup.
/// The resolver only says so in words: glibc, musl and macOS phrasings.
pub fn name_has_no_addresses(error: &str) -> bool {
    const NO_RECORDS: [&str; 4] = [
        "Name or service not known",
        "No address associated with hostname",
        "nodename nor servname provided",
        "Name does not resolve",
    ];
    NO_RECORDS.iter().any(|phrase| error.contains(phrase))
}

#[cfg(test)]
mod tests;
