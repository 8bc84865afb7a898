use std::collections::BTreeMap;

use tokio::time::Instant;

use super::*;

fn addrs(list: &[&str]) -> Vec<SocketAddr> {
    list.iter().map(|a| a.parse().unwrap()).collect()
}

fn pool() -> DnsPool<Result<(), String>> {
    DnsPool::new("greet.test:50051".into(), |_| Err("no sockets in unit tests".into()))
}

/// `n` picks, counted by address.
fn picks(pool: &DnsPool<Result<(), String>>, n: usize) -> BTreeMap<String, usize> {
    let mut hits = BTreeMap::new();
    for _ in 0..n {
        let member = pool.balancer().pick(Instant::now()).expect("an address");
        *hits.entry(member.info.address.clone()).or_default() += 1;
    }
    hits
}

#[test]
fn a_found_answer_replaces_the_last_sorted_and_once_each() {
    let answer = DnsAnswer::default().after(Lookup::Found(addrs(&["10.0.0.3:1", "10.0.0.1:1", "10.0.0.3:1"])));
    assert_eq!(
        answer,
        DnsAnswer {
            addresses: Some(addrs(&["10.0.0.1:1", "10.0.0.3:1"])),
            problem: None,
        }
    );
    let answer = answer.after(Lookup::Found(addrs(&["10.0.0.2:1"])));
    assert_eq!(answer.addresses, Some(addrs(&["10.0.0.2:1"])));
}

#[test]
fn a_failed_resolve_keeps_the_last_answer_and_says_why() {
    let last = DnsAnswer::default().after(Lookup::Found(addrs(&["10.0.0.1:1"])));
    let gone = last.after(Lookup::NoSuchName("Name or service not known".into()));
    assert_eq!(gone.addresses, last.addresses);
    assert_eq!(
        gone.problem.as_deref(),
        Some("the name has no addresses: Name or service not known")
    );
    let hiccup = last.after(Lookup::Failed("Temporary failure in name resolution".into()));
    assert_eq!(hiccup.addresses, last.addresses);
    assert_eq!(
        hiccup.problem.as_deref(),
        Some("the lookup failed: Temporary failure in name resolution")
    );
    let back = hiccup.after(Lookup::Found(addrs(&["10.0.0.1:1"])));
    assert_eq!(back, last);
    // No answer ever: still none, with the reason.
    let never = DnsAnswer::default().after(Lookup::NoSuchName("NXDOMAIN".into()));
    assert_eq!(never.addresses, None);
    assert_eq!(never.endpoints(&[], &[]), vec![]);
}

#[test]
fn lookups_are_told_apart_by_what_the_resolver_said() {
    let io = |kind, text: &str| Err(std::io::Error::new(kind, text.to_owned()));
    assert_eq!(
        Lookup::from_result(io(
            std::io::ErrorKind::Other,
            "failed to lookup address information: Name or service not known"
        )),
        Lookup::NoSuchName("failed to lookup address information: Name or service not known".into())
    );
    assert_eq!(
        Lookup::from_result(io(std::io::ErrorKind::NotFound, "no pod")),
        Lookup::NoSuchName("no pod".into())
    );
    assert_eq!(
        Lookup::from_result(io(std::io::ErrorKind::Other, "Temporary failure in name resolution")),
        Lookup::Failed("Temporary failure in name resolution".into())
    );
    assert_eq!(
        Lookup::from_result(Ok(vec![])),
        Lookup::NoSuchName("the answer has no addresses".into())
    );
    assert_eq!(
        Lookup::from_result(Ok(addrs(&["10.0.0.1:1"]))),
        Lookup::Found(addrs(&["10.0.0.1:1"]))
    );
}

#[test]
fn endpoints_are_named_after_discoverys_pods_at_the_same_address() {
    let answer = DnsAnswer::default().after(Lookup::Found(addrs(&["10.0.0.1:1", "10.0.0.2:1"])));
    let known = [EndpointInfo::ready("10.0.0.2:1").with_pod_name("pod-2")];
    assert_eq!(
        answer.endpoints(&known, &[]),
        vec![
            EndpointInfo::ready("10.0.0.1:1"),
            EndpointInfo::ready("10.0.0.2:1").with_pod_name("pod-2"),
        ]
    );
    // Discovery no longer lists pod-2 (not ready, or not seen yet): the
    // member keeps its name, and so its connections.
    let current = answer.endpoints(&known, &[]);
    assert_eq!(answer.endpoints(&[], &current), current);
}

#[test]
fn requests_round_robin_over_the_last_answer_only() {
    let pool = pool();
    assert!(pool.balancer().pick(Instant::now()).is_none());
    assert_eq!(
        pool.no_address_message(),
        "dns mode has no address for greet.test:50051 (not resolved yet); check that the name resolves from \
         the gateway (a headless Service, clusterIP: None, with ready pods), or switch to balanced mode with PUT /mode"
    );
    pool.apply(Lookup::NoSuchName("NXDOMAIN".into()), &[]);
    assert!(pool.balancer().pick(Instant::now()).is_none());
    assert!(
        pool.no_address_message()
            .contains("for greet.test:50051 (the name has no addresses: NXDOMAIN); check")
    );
    assert_eq!((pool.resolves(), pool.errors()), (1, 1));

    // Discovery already knows a fourth pod: the answer does not, so it gets nothing.
    let known: Vec<EndpointInfo> = ["10.0.0.1:1", "10.0.0.2:1", "10.0.0.3:1", "10.0.0.4:1"]
        .map(EndpointInfo::ready)
        .into();
    pool.apply(
        Lookup::Found(addrs(&["10.0.0.1:1", "10.0.0.2:1", "10.0.0.3:1"])),
        &known,
    );
    let three = picks(&pool, 300);
    assert_eq!(three.values().copied().collect::<Vec<_>>(), [100, 100, 100]);
    assert!(!three.contains_key("10.0.0.4:1"));

    // The next resolve names it: an exact quarter from then on.
    pool.apply(
        Lookup::Found(addrs(&["10.0.0.1:1", "10.0.0.2:1", "10.0.0.3:1", "10.0.0.4:1"])),
        &known,
    );
    let four = picks(&pool, 400);
    assert_eq!(four.values().copied().collect::<Vec<_>>(), [100, 100, 100, 100]);

    // The name gone: the last answer stays, and so does the split.
    pool.apply(Lookup::NoSuchName("NXDOMAIN".into()), &known);
    assert_eq!(picks(&pool, 400), four);
    assert_eq!((pool.resolves(), pool.errors()), (4, 2));
}
