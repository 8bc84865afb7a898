//! The paced rapid reset (CVE-2023-44487's shape, each stream's HEADERS,
//! DATA and RST_STREAM in one write): GOAWAY ENHANCE_YOUR_CALM once half of
//! 100 streams were reset before their answer, and no call leaks past that.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::frames::{self, Raw, Seen};
use super::{Counting, gateway_in_front_of, unary_until};

/// As the ingress documents it (docs/hardening.md): judged after 100 streams.
const PREMATURE_MIN_STREAMS: usize = 100;
/// The attack's bound: far more streams than the threshold.
const ATTACK_STREAMS: usize = 2_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rapid_reset_attacker_gets_goaway_enhance_your_calm_and_leaks_no_call() {
    let upstream = Counting::default();
    let gateway = gateway_in_front_of(upstream.serve().await).await;
    let stop = CancellationToken::new();
    let calm = tokio::spawn(unary_until(gateway.grpc_addr, stop.clone()));

    let mut attacker = Raw::connect(gateway.grpc_addr, &[], true).await;
    let mut sent = 0;
    let mut goaway = None;
    while sent < ATTACK_STREAMS && goaway.is_none() {
        let stream = attacker.stream();
        let mut write = frames::greet_call(stream, "rapid");
        write.extend(frames::reset(stream, frames::CANCEL));
        if !attacker.write(&write).await {
            break;
        }
        sent += 1;
        while let Ok(seen) = attacker.seen.try_recv() {
            if let Seen::GoAway { code, last_stream } = seen {
                goaway = Some((code, last_stream));
            }
        }
        // Paced, as the attack that slips under h2's own pending-reset limit.
        tokio::time::sleep(Duration::from_micros(400)).await;
    }
    if goaway.is_none() {
        goaway = attacker
            .until(Duration::from_secs(5), |seen| match seen {
                Seen::GoAway { code, last_stream } => Some((*code, *last_stream)),
                _ => None,
            })
            .await;
    }
    let (code, last_stream) = goaway.unwrap_or_else(|| {
        panic!(
            "no GOAWAY for the attacker after {sent} streams, {} upstream",
            upstream.calls()
        )
    });
    assert_eq!(code, frames::ENHANCE_YOUR_CALM);
    // The streams the ingress took before it said so: the 100 it judges by,
    // and the few that came while it counted.
    let taken = (last_stream as usize).div_ceil(2);
    assert!(
        (PREMATURE_MIN_STREAMS..=2 * PREMATURE_MIN_STREAMS).contains(&taken),
        "GOAWAY after {taken} streams ({sent} sent)"
    );
    assert!(
        upstream.calls() <= PREMATURE_MIN_STREAMS,
        "{} of the attacker's calls reached the upstream",
        upstream.calls()
    );

    stop.cancel();
    let (calls, failures) = calm.await.unwrap();
    assert!(
        failures.len() * 100 <= calls,
        "{} of {calls} calls failed: {failures:?}",
        failures.len()
    );
    gateway.shutdown().await.unwrap();
}
