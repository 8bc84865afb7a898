//! greet-top against a gateway that wants a token: the token on every call,
//! direct and through the API server's port-forward, a refusal shown as what
//! it is, the backoff kept, and `--once` with and without the token.

use std::time::{Duration, Instant};

use fake_kube::{FakeKube, pod};
use greet_proto::Mode;
use greet_top::kube_source::{self, GatewayPods};
use greet_top::observer_client::{self, GatewayLink, Subscription};
use greet_top::state::{AppEvent, GatewayEvent, Refusal};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{TOKEN, protected_cluster, token};

fn link(url: &str, with: Option<&str>) -> GatewayLink {
    let channel = observer_client::observer_channel(url).unwrap();
    GatewayLink::new(channel, with.map(token).as_ref())
}

/// Follows `link` and returns the first `n` connection events (not the stream's own events).
async fn first_connection_events(link: GatewayLink, n: usize) -> Vec<AppEvent> {
    let (tx, mut rx) = mpsc::channel(1024);
    let cancel = CancellationToken::new();
    tokio::spawn(observer_client::follow(
        "gw".into(),
        link,
        Subscription::Summaries,
        tx,
        cancel.clone(),
    ));
    let mut seen = Vec::new();
    while seen.len() < n {
        let event = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("an event within 10 s")
            .expect("the worker runs");
        if !matches!(event, AppEvent::Gateway { .. }) {
            seen.push(event);
        }
    }
    cancel.cancel();
    seen
}

fn refusals(events: &[AppEvent]) -> Vec<(Refusal, Duration)> {
    events
        .iter()
        .map(|e| match e {
            AppEvent::Refused { refusal, retry_in, .. } => (*refusal, *retry_in),
            other => panic!("not a refusal: {other:?}"),
        })
        .collect()
}

#[tokio::test]
async fn a_refusing_gateway_is_shown_refused_and_retried_on_the_growing_backoff() {
    let cluster = protected_cluster().await;
    let url = format!("http://{}", cluster.gateway.observe_addr);
    let backoff = [250, 500, 1000].map(Duration::from_millis);
    let started = Instant::now();
    let events = first_connection_events(link(&url, None), 3).await;
    assert_eq!(refusals(&events), backoff.map(|b| (Refusal::NoToken, b)));
    assert!(
        started.elapsed() >= Duration::from_millis(750),
        "it waited between tries"
    );
    let events = first_connection_events(link(&url, Some("not-the-token")), 3).await;
    assert_eq!(refusals(&events), backoff.map(|b| (Refusal::WrongToken, b)));

    let (tx, mut rx) = mpsc::channel(1024);
    let cancel = CancellationToken::new();
    tokio::spawn(observer_client::follow(
        "gw".into(),
        link(&url, Some(TOKEN)),
        Subscription::Summaries,
        tx,
        cancel.clone(),
    ));
    let first = rx.recv().await.unwrap();
    assert!(matches!(first, AppEvent::Connected { .. }), "{first:?}");
    let second = rx.recv().await.unwrap();
    assert!(
        matches!(
            second,
            AppEvent::Gateway {
                event: GatewayEvent::Snapshot(_),
                ..
            }
        ),
        "{second:?}"
    );
    cancel.cancel();
}

#[tokio::test]
async fn the_m_key_says_a_refusal_plainly_and_with_the_token_switches() {
    let cluster = protected_cluster().await;
    let url = format!("http://{}", cluster.gateway.observe_addr);
    let answer = |event| match event {
        AppEvent::ModeSet { result, .. } => result,
        other => panic!("not a mode answer: {other:?}"),
    };
    let refused = observer_client::set_mode("gw".into(), link(&url, None), Mode::Balanced).await;
    assert_eq!(
        answer(refused),
        Err("refused: the gateway wants a token — start greet-top with --token or GREET_TOP_TOKEN".to_owned())
    );
    let wrong = observer_client::set_mode("gw".into(), link(&url, Some("nope")), Mode::Balanced).await;
    assert_eq!(
        answer(wrong),
        Err("refused: wrong token — check --token or GREET_TOP_TOKEN".to_owned())
    );
    assert_eq!(cluster.gateway.gateway.upstream.mode(), Mode::Sticky, "nothing changed");
    let switched = observer_client::set_mode("gw".into(), link(&url, Some(TOKEN)), Mode::Balanced).await;
    assert_eq!(answer(switched), Ok(Mode::Balanced));
    // --once ends with GetState: through the same client, with the token.
    let state = observer_client::final_state("gw".into(), link(&url, Some(TOKEN))).await;
    assert!(state.is_some());
    assert!(
        observer_client::final_state("gw".into(), link(&url, None))
            .await
            .is_none()
    );
}

#[tokio::test]
async fn the_token_goes_through_the_api_servers_port_forward_too() {
    const NS: &str = "default";
    let cluster = protected_cluster().await;
    let kube = FakeKube::start().await;
    kube.apply_pod(pod(NS, "greetclient-1", &[("run", "greetclient")], "10.2.0.1", true));
    kube.port_forward_to(NS, "greetclient-1", cluster.gateway.observe_addr);
    for (with, expect_refusal) in [(Some(TOKEN), None), (None, Some(Refusal::NoToken))] {
        let target = greet_tests::kube_target(&kube, NS).await;
        let gateways = GatewayPods {
            namespace: NS.into(),
            selector: "run=greetclient".into(),
            port: 9092,
            subscription: Subscription::Summaries,
            token: with.map(token),
        };
        let (tx, mut rx) = mpsc::channel(1024);
        let cancel = CancellationToken::new();
        let channels = Default::default();
        tokio::spawn(kube_source::follow_gateway_pods(
            target,
            gateways,
            tx,
            channels,
            cancel.clone(),
        ));
        let outcome = loop {
            let event = tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .unwrap()
                .unwrap();
            match event {
                AppEvent::Gateway {
                    event: GatewayEvent::Snapshot(_),
                    ..
                } => break None,
                AppEvent::Refused { refusal, .. } => break Some(refusal),
                _ => {}
            }
        };
        cancel.cancel();
        assert_eq!(outcome, expect_refusal, "token {with:?}");
    }
}

async fn once(url: &str, env: &[(&str, &str)]) -> std::process::Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_greet-top"));
    command
        .args(["--gateway", url, "--no-kube", "--once", "1s", "--output", "json"])
        .env_remove("GREET_TOP_TOKEN")
        .env_remove("KUBECONFIG")
        .env("HOME", env!("CARGO_TARGET_TMPDIR"));
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().await.unwrap()
}

#[tokio::test]
async fn once_against_a_protected_gateway_needs_the_token_and_says_so() {
    let cluster = protected_cluster().await;
    let url = format!("http://{}", cluster.gateway.observe_addr);
    let without = once(&url, &[]).await;
    assert_eq!(without.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&without.stdout), "", "no partial report");
    assert_eq!(
        String::from_utf8_lossy(&without.stderr),
        format!(
            "Error: the gateway's Observer at {url} refused greet-top: the gateway wants a token — start greet-top \
             with --token or GREET_TOP_TOKEN\n"
        )
    );
    let wrong = once(&url, &[("GREET_TOP_TOKEN", "not-the-token")]).await;
    assert_eq!(wrong.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&wrong.stderr),
        format!(
            "Error: the gateway's Observer at {url} refused greet-top: wrong token — check --token or GREET_TOP_TOKEN\n"
        )
    );
    let empty = once(&url, &[("GREET_TOP_TOKEN", "")]).await;
    assert_eq!(empty.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&empty.stderr).starts_with("Error: --token / GREET_TOP_TOKEN is set but empty"),
        "{}",
        String::from_utf8_lossy(&empty.stderr)
    );

    let with = once(&url, &[("GREET_TOP_TOKEN", TOKEN)]).await;
    assert_eq!(with.status.code(), Some(0), "{}", String::from_utf8_lossy(&with.stderr));
    let report: serde_json::Value = serde_json::from_slice(&with.stdout).unwrap();
    assert_eq!(report["mode"], "sticky");
    assert_eq!(report["gateways"], serde_json::json!([url]));
    assert!(report.get("refused").is_none(), "{report}");
    assert_eq!(report["pods"].as_array().map(Vec::len), Some(2), "{report}");
}
