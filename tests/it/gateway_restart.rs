//! A gateway restarted under load, seen from the dashboard: what the old
//! process counted stays counted, `r` after the restart counts from there,
//! and the result is what a dashboard started after the restart shows.

use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent};
use greet_gateway::GatewayHandle;
use greet_gateway::RequestOutcome;
use greet_proto::Mode;
use greet_top::observer_client::{self, Subscription};
use greet_top::state::{App, AppEvent};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use greet_tests::podless;

use podless::gateway_on;

/// `n` requests served round robin over three pods.
fn serve(gateway: &GatewayHandle, n: u64) {
    for i in 0..n {
        gateway.gateway.hub.publish_request(RequestOutcome {
            pod_name: format!("pod-{}", i % 3),
            endpoint: format!("127.0.0.{}:50051", 2 + i % 3),
            mode: Mode::Balanced,
            latency_us: 100,
            attempts: 1,
            ..RequestOutcome::default()
        });
    }
}

/// A dashboard following one gateway, as greet-top does by default.
struct Dashboard {
    app: App,
    rx: mpsc::Receiver<AppEvent>,
    cancel: CancellationToken,
}

impl Dashboard {
    fn follow(url: &str, app: App) -> Self {
        let (tx, rx) = mpsc::channel(1024);
        let cancel = CancellationToken::new();
        let channel = observer_client::observer_channel(url).unwrap();
        let follow = observer_client::follow(url.to_owned(), channel, Subscription::Summaries, tx, cancel.clone());
        tokio::spawn(follow);
        Dashboard { app, rx, cancel }
    }

    /// Folds events in until `done` holds (10 s at most).
    async fn until(&mut self, what: &str, done: impl Fn(&App) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !done(&self.app) {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(event)) => self.app.update(event, Instant::now()),
                _ => panic!("{what}: not within 10 s; hits {:?}", hits(&self.app)),
            }
        }
    }
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

fn hits(app: &App) -> Vec<(String, u64)> {
    app.stats().pods.values().map(|p| (p.name.clone(), p.hits())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_survive_a_gateway_restart_and_a_reset_after_it_matches_a_fresh_dashboard() {
    let first = gateway_on(podless::ANY_PORT).await;
    let observe = first.observe_addr;
    let url = format!("http://{observe}");
    let mut before = Dashboard::follow(&url, App::new(&url, Instant::now()).expecting(&url));
    before.until("first snapshot", App::synced).await;
    serve(&first, 300);
    before.until("300 counted", |app| app.stats().total() == 300).await;

    first.shutdown().await.unwrap();
    before.until("the gateway is down", App::disconnected).await;
    let second = gateway_on(&observe.to_string()).await;
    before
        .until("reconnected to the new process", |app| {
            app.gateways()[&url].restarted_at.is_some() && !app.disconnected()
        })
        .await;
    serve(&second, 30);
    // The old process's 300 stay; the new one's 30 add to them.
    before.until("330 counted", |app| app.stats().total() == 330).await;
    assert_eq!(
        hits(&before.app),
        [("pod-0".into(), 110), ("pod-1".into(), 110), ("pod-2".into(), 110)]
    );

    // r, and a dashboard started now: both count from here.
    before.app.on_key(KeyEvent::from(KeyCode::Char('r')), Instant::now());
    let mut fresh = Dashboard::follow(&url, App::new(&url, Instant::now()).counting_from_now());
    fresh.until("first snapshot", App::synced).await;
    serve(&second, 600);
    before
        .until("600 since the reset", |app| app.stats().total() == 600)
        .await;
    fresh
        .until("600 since it started", |app| app.stats().total() == 600)
        .await;
    let expected = [("pod-0".into(), 200), ("pod-1".into(), 200), ("pod-2".into(), 200)];
    assert_eq!(hits(&before.app), expected);
    assert_eq!(hits(&fresh.app), expected);
    assert_eq!(before.app.stats().errors(), fresh.app.stats().errors());
    drop((before, fresh));
    second.shutdown().await.unwrap();
}
