//! greet-top's Observer client against gateways that send garbage, too much,
//! or too fast (fakes.rs): a clear error on that gateway's line and a retry
//! on the growing backoff, never a hang or a crash, and a dashboard that
//! stays responsive under a flood.

#[path = "observer_hostile/fakes.rs"]
mod fakes;

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{CommandBuilder, PtySize, native_pty_system};

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
    use greet_top::tui::observer_client::{self, Subscription};
    use greet_top::tui::state::AppEvent;

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

/// `greet-top ARGS` in a 100x30 pseudo-terminal, its screen parsed as it comes.
struct Dashboard {
    screen: Arc<Mutex<vt100::Parser>>,
    child: Box<dyn portable_pty::Child + Send + Sync>,
    keys: Box<dyn Write + Send>,
    _master: Box<dyn portable_pty::MasterPty + Send>,
}

impl Dashboard {
    fn start(args: &[&str]) -> Self {
        let size = PtySize {
            rows: 30,
            cols: 100,
            pixel_width: 0,
            pixel_height: 0,
        };
        let pty = native_pty_system().openpty(size).unwrap();
        let mut command = CommandBuilder::new(env!("CARGO_BIN_EXE_greet-top"));
        command.args(args);
        command.env("TERM", "xterm-256color");
        command.env("HOME", env!("CARGO_TARGET_TMPDIR"));
        command.env_remove("KUBECONFIG");
        command.env_remove("GREET_TOP_TOKEN");
        let child = pty.slave.spawn_command(command).unwrap();
        drop(pty.slave);
        let screen = Arc::new(Mutex::new(vt100::Parser::new(
            std::num::NonZeroU16::new(30).unwrap(),
            std::num::NonZeroU16::new(100).unwrap(),
            0,
        )));
        let mut reader = pty.master.try_clone_reader().unwrap();
        let parser = Arc::clone(&screen);
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                parser.lock().unwrap().process(&buf[..n]);
            }
        });
        let keys = pty.master.take_writer().unwrap();
        Dashboard {
            screen,
            child,
            keys,
            _master: pty.master,
        }
    }

    fn text(&self) -> String {
        self.screen.lock().unwrap().screen().contents()
    }

    /// Waits until `check` holds for the screen text (30 s at most).
    async fn wait_for(&self, what: &str, check: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = self.text();
            if check(&text) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; screen:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooded_dashboard_stays_responsive_and_q_quits_at_once() {
    let flood = fakes::observer(Behaviour::Flood).await;
    let mut dashboard = Dashboard::start(&["--gateway", &flood.url, "--no-kube"]);
    let total = |screen: &str| -> Option<u64> {
        let line = screen.lines().find(|l| l.contains(" req "))?;
        line.split(" req ").next()?.split_whitespace().last()?.parse().ok()
    };
    let first = dashboard
        .wait_for("the flooded pods on screen", |s| {
            s.contains("● connected") && fakes::PODS.iter().all(|p| s.contains(p)) && total(s).is_some()
        })
        .await;
    // Frames keep coming while the flood goes on: the count moves.
    let before = total(&first).unwrap();
    dashboard
        .wait_for("a later frame with a higher count", |s| {
            total(s).is_some_and(|t| t > before)
        })
        .await;
    dashboard.keys.write_all(b"q").unwrap();
    dashboard.keys.flush().unwrap();
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
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(status.success(), "exit status {status:?}");
}
