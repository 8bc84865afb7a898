//! greet-top's Observer client against gateways that send garbage, too much,
//! or too fast (fakes.rs): a clear error on that gateway's line and a retry
//! on the growing backoff, never a hang or a crash, and a dashboard that
//! stays responsive under a flood.

mod fakes;
use greet_tests::pty;

use std::time::{Duration, Instant};

use fakes::Behaviour;

async fn once_json(url: &str) -> (Option<i32>, String, String) {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_greet-top"))
        .args(["--gateway", url, "--no-kube", "--once", "2s", "--output", "json"])
        .env_remove("GREET_TOP_TOKEN")
        .env_remove("KUBECONFIG")
        .env("HOME", env!("CARGO_TARGET_TMPDIR"))
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(30), output)
        .await
        .expect("greet-top --once 2s ended within 30 s")
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// What `greet-top --once 2s` says about the gateway at `url`, when it cannot watch it.
fn cannot_watch(url: &str, why: &str) -> String {
    format!("Error: could not reach the gateway's Observer at {url} within 2s: {why}\n")
}

const WRONG_PORT: &str = "is this the gateway's Observer port (9092)?";

#[tokio::test]
async fn once_against_a_gateway_that_is_not_one_exits_1_with_the_cause() {
    let huge = fakes::observer(Behaviour::Huge {
        bytes: 17 * 1024 * 1024,
    })
    .await;
    let http1 = fakes::raw_tcp(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n").await;
    let garbage = fakes::raw_tcp(b"\x00\xff\xfe garbage \x1b[2J\x07 more garbage").await;
    let web = fakes::web_page().await;
    let silent = fakes::raw_tcp(b"").await;
    let fails = fakes::observer(Behaviour::Fails("bad\u{1b}[2J\u{7} news\r\nsecond line")).await;
    let cases = [
        (
            &huge,
            format!(
                "message too large: the gateway sent 17825905 bytes, over greet-top's limit of 16 MiB; {WRONG_PORT}"
            ),
        ),
        (
            &web,
            format!(
                "not a gRPC answer: protocol error: received message with invalid compression flag: 60 (valid \
                 flags are 0 and 1) while receiving response with status: 200 OK; {WRONG_PORT}"
            ),
        ),
        (&silent, "no answer".to_owned()),
        // Control characters from the network never reach the terminal.
        (&fails, "Internal: bad[2J newssecond line".to_owned()),
    ];
    for (fake, why) in cases {
        let (code, stdout, stderr) = once_json(&fake.url).await;
        assert_eq!((code, stdout.as_str()), (Some(1), ""), "{why}: no report");
        assert_eq!(stderr, cannot_watch(&fake.url, &why));
    }
    // Bytes that are not HTTP/2: the connection fails while the call is
    // either being sent (hyper cancels it) or waiting for its answer (the h2
    // error), whichever comes first.
    let either = [
        format!("connection closed before any answer; {WRONG_PORT}"),
        format!("not a gRPC answer: connection error detected: frame with invalid size; {WRONG_PORT}"),
    ];
    for fake in [&http1, &garbage] {
        let (code, stdout, stderr) = once_json(&fake.url).await;
        assert_eq!((code, stdout.as_str()), (Some(1), ""), "no report");
        assert!(
            either.iter().any(|why| stderr == cannot_watch(&fake.url, why)),
            "{stderr}"
        );
    }
}

#[tokio::test]
async fn an_oversize_message_is_an_error_on_the_gateways_line_retried_on_the_growing_backoff() {
    use greet_top::observer_client::{self, Subscription};
    use greet_top::state::AppEvent;

    let huge = fakes::observer(Behaviour::Huge {
        bytes: 17 * 1024 * 1024,
    })
    .await;
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let cancel = tokio_util::sync::CancellationToken::new();
    let channel = observer_client::observer_channel(&huge.url).unwrap();
    tokio::spawn(observer_client::follow(
        "gw".into(),
        channel,
        Subscription::Summaries,
        tx,
        cancel.clone(),
    ));
    let mut failures = Vec::new();
    while failures.len() < 3 {
        match rx.recv().await.unwrap() {
            // The stream opens each time; the first message is refused.
            AppEvent::Connected { .. } => {}
            AppEvent::Disconnected { error, retry_in, .. } => failures.push((error, retry_in.as_millis())),
            other => panic!("unexpected {other:?}"),
        }
    }
    cancel.cancel();
    let error =
        format!("message too large: the gateway sent 17825905 bytes, over greet-top's limit of 16 MiB; {WRONG_PORT}");
    // A subscription that fails at once does not reset the backoff.
    assert_eq!(failures, [(error.clone(), 250), (error.clone(), 500), (error, 1000)]);
}

#[tokio::test]
async fn once_against_a_flood_reports_and_exits_on_time() {
    let flood = fakes::observer(Behaviour::Flood).await;
    let started = Instant::now();
    let (code, stdout, stderr) = once_json(&flood.url).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let pods: Vec<&str> = report["pods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(pods, fakes::PODS);
    assert_eq!(report["mode"], "sticky");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooded_dashboard_stays_responsive_and_q_quits_at_once() {
    let flood = fakes::observer(Behaviour::Flood).await;
    let mut dashboard = pty::start_dashboard(&["--gateway", &flood.url, "--no-kube"], &[]);
    let total = |screen: &str| -> Option<u64> {
        let line = screen.lines().find(|l| l.contains(" req "))?;
        line.split(" req ").next()?.split_whitespace().last()?.parse().ok()
    };
    // The screen is read on this (blocking) thread; the fake runs on the workers.
    let first = dashboard
        .screen
        .wait_for("the flooded pods on screen", Duration::from_secs(30), |s| {
            s.contains("● connected") && fakes::PODS.iter().all(|p| s.contains(p)) && total(s).is_some()
        });
    // Frames keep coming while the flood goes on: the count moves.
    let before = total(&first).unwrap();
    dashboard
        .screen
        .wait_for("a later frame with a higher count", Duration::from_secs(30), |s| {
            total(s).is_some_and(|t| t > before)
        });
    dashboard.press(b"q");
    let pressed = Instant::now();
    let status = loop {
        if let Some(status) = dashboard.child.try_wait().unwrap() {
            break status;
        }
        // A failure guard, not a benchmark: q is handled between frames.
        assert!(
            pressed.elapsed() < Duration::from_secs(5),
            "greet-top did not quit within 5 s of q"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success(), "exit status {status:?}");
    dashboard.assert_restored();
}
