//! `dns` mode: round robin per request over the addresses GRPC_SERVER_HOST
//! resolved to at the last re-resolve, as a gRPC client's `round_robin` over
//! a headless Service's DNS name does.
//!
//! Stale on purpose, and independent of discovery's endpoint set: a new pod
//! gets nothing until the next resolve names it, and a removed one keeps
//! getting its share until then (a dead one is skipped and the request
//! retried, as the balancer does for any endpoint that fails). A failed
//! resolve keeps the last answer, as gRPC clients do; with no answer yet,
//! requests fail at once with what to check.
//!
//! The state change of one resolve is pure ([`DnsAnswer::after`]); the
//! resolver is injected ([`Resolver`]): getaddrinfo in the binary, the
//! cluster's pod list in the demo.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::balancer::Balancer;
use super::discovery::{EndpointInfo, EndpointSet};
pub(crate) use super::resolve::Lookup;
use super::resolve::{ResolveLoop, Resolver};

/// What `dns` mode resolves, how, and how often.
#[derive(Clone, Debug)]
pub struct DnsModeConfig {
    /// `host:port`, as named in logs and errors.
    pub name: String,
    pub resolver: Resolver,
    pub interval: Duration,
}

/// The last answer requests are routed by, and the last resolve's problem.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DnsAnswer {
    /// Sorted, one entry per address; `None` until a resolve found any.
    pub addresses: Option<Vec<SocketAddr>>,
    /// Why the last resolve failed; `None` once one succeeds.
    pub problem: Option<String>,
}

impl DnsAnswer {
    /// The answer after a resolve that said `lookup`: a found answer
    /// replaces the last; a failure keeps it and says why.
    pub(crate) fn after(&self, lookup: Lookup) -> DnsAnswer {
        match lookup {
            Lookup::Found(mut addresses) => {
                addresses.sort();
                addresses.dedup();
                DnsAnswer {
                    addresses: Some(addresses),
                    problem: None,
                }
            }
            Lookup::NoSuchName(error) => DnsAnswer {
                addresses: self.addresses.clone(),
                problem: Some(format!("the name has no addresses: {error}")),
            },
            Lookup::Failed(error) => DnsAnswer {
                addresses: self.addresses.clone(),
                problem: Some(format!("the lookup failed: {error}")),
            },
        }
    }

    /// The endpoints to round robin over, each named after the pod that
    /// `known` (discovery's set) has at that address, else as it was named
    /// in `current` (the pool's members): a name that comes and goes with
    /// discovery would make a new member, and new connections, each time.
    pub fn endpoints(&self, known: &[EndpointInfo], current: &[EndpointInfo]) -> EndpointSet {
        let addresses = self.addresses.as_deref().unwrap_or_default();
        addresses
            .iter()
            .map(|addr| {
                let address = addr.to_string();
                let named = |set: &[EndpointInfo]| {
                    set.iter()
                        .find(|e| e.address == address)
                        .and_then(|e| e.pod_name.clone())
                };
                let pod = named(known).or_else(|| named(current));
                EndpointInfo {
                    address,
                    pod_name: pod,
                    ready: true,
                    terminating: false,
                }
            })
            .collect()
    }
}

/// `dns` mode's pool: its own balancer over the last answer, apart from
/// discovery's. Generic over the connection `C`, as the balancer is: the
/// pool does not care what it balances (unit tests use no sockets).
pub struct DnsPool<C> {
    name: String,
    balancer: Balancer<C>,
    answer: Mutex<DnsAnswer>,
    resolves: AtomicU64,
    errors: AtomicU64,
}

impl<C> DnsPool<C> {
    pub fn new(name: String, connect: impl Fn(&EndpointInfo) -> C + Send + Sync + 'static) -> Self {
        DnsPool {
            name,
            balancer: Balancer::new(connect),
            answer: Mutex::default(),
            resolves: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        }
    }

    pub fn balancer(&self) -> &Balancer<C> {
        &self.balancer
    }

    /// Resolves done so far, failed ones included. Counted before the answer
    /// is swapped in: a request that ended before this changed was routed
    /// by the answer before.
    pub fn resolves(&self) -> u64 {
        self.resolves.load(Ordering::Acquire)
    }

    /// Failed resolves so far (the last answer stayed in force).
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    pub fn answer(&self) -> DnsAnswer {
        self.answer.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Applies one resolve's `lookup`; `known` names the pods.
    pub(crate) fn apply(&self, lookup: Lookup, known: &[EndpointInfo]) -> DnsAnswer {
        let mut answer = self.answer.lock().unwrap_or_else(|p| p.into_inner());
        let next = answer.after(lookup);
        self.resolves.fetch_add(1, Ordering::AcqRel);
        if let Some(problem) = &next.problem {
            self.errors.fetch_add(1, Ordering::Relaxed);
            let kept = next.addresses.as_ref().map_or(0, Vec::len);
            tracing::warn!(
                "resolving {} for dns mode: {problem}; keeping the last answer ({kept} addresses)",
                self.name
            );
        } else if next.addresses != answer.addresses {
            let addresses = next.addresses.as_ref().map_or(0, Vec::len);
            tracing::info!(addresses, name = %self.name, "dns mode: new answer");
        }
        self.balancer.update(&next.endpoints(known, &self.balancer.endpoints()));
        *answer = next.clone();
        next
    }

    /// Why a request has no endpoint in `dns` mode, and what to check.
    pub fn no_address_message(&self) -> String {
        let problem = self.answer().problem.unwrap_or_else(|| "not resolved yet".into());
        format!(
            "dns mode has no address for {} ({problem}); check that the name resolves from the gateway \
             (a headless Service, clusterIP: None, with ready pods), or switch to balanced mode with PUT /mode",
            self.name
        )
    }
}

/// Resolves every `interval` for as long as the gateway runs (in every mode,
/// so a switch to `dns` starts from the last answer, as a client would).
pub(crate) async fn follow(gateway: Arc<super::Gateway>, resolver: Resolver, interval: Duration) {
    let mut lookups = ResolveLoop::new(resolver, interval);
    loop {
        let lookup = lookups.next().await;
        let known = gateway.upstream.balancer().endpoints();
        gateway.upstream.dns().apply(lookup, &known);
    }
}

#[cfg(test)]
mod tests;
