//! The shipped binaries as a user runs them: configured by the article's
//! environment variables, and draining cleanly on SIGTERM.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use greet_demo::rest_client::RestClient;
use greet_proto::greet::greet_service_client::GreetServiceClient;
use greet_proto::greet::{Greeting, GreetingRequest};
use greet_server::ServerConfig;
use greet_tests::listening;
use greet_top::observer_client;
use greet_top::state::AppEvent;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// Fixed ports for the greet-server binary, whose metrics listener cannot
/// take port 0 (0 turns it off): below 32768, out of the range port-0
/// binds elsewhere in the suite draw from, and used by no other test.
const SERVER_GRPC_PORT: u16 = 27_586;
const SERVER_METRICS_PORT: u16 = 27_587;

/// Starts a greet-gateway on port 0 for each listener: the process, its
/// REST port and its Observer port.
fn spawn_gateway(command: &mut Command) -> (Running, u16, u16) {
    let (child, line) = listening::spawn_until_logged(
        command
            .env("GATEWAY_PORT", "0")
            .env("OBSERVE_PORT", "0")
            .env("GATEWAY_GRPC_PORT", "0")
            .stdout(Stdio::null()),
        "greet-gateway listening",
    );
    let port_of = |field| listening::address_in(&line, field).port();
    (Running(child), port_of("rest_addr"), port_of("observe_addr"))
}

/// Kills the child on drop, so a failed assertion leaves no process behind.
pub(crate) struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Running {
    pub(crate) fn pid(&self) -> u32 {
        self.0.id()
    }

    /// Async, so this test's runtime keeps answering the HTTP/2 connections
    /// the process is draining.
    async fn sigterm_and_wait(&mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "process did not exit within 10 s of SIGTERM");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The `/metrics` text on a loopback port.
async fn scrape(port: u16) -> String {
    let response = RestClient::new(format!("http://127.0.0.1:{port}"))
        .send(http::Method::GET, "/metrics", None, "")
        .await
        .unwrap();
    assert_eq!(response.status, 200, "{}", response.body);
    response.body
}

async fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(Instant::now() < deadline, "nothing listens on port {port} after 20 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn health_of(url: String, service: &str) -> ServingStatus {
    let mut health = HealthClient::new(
        tonic::transport::Channel::from_shared(url)
            .unwrap()
            .connect()
            .await
            .unwrap(),
    );
    let response = health
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .unwrap()
        .into_inner();
    ServingStatus::try_from(response.status).unwrap()
}

#[tokio::test]
async fn server_and_gateway_binaries_use_the_articles_environment_and_drain_on_sigterm() {
    let (grpc_port, metrics_port) = (SERVER_GRPC_PORT, SERVER_METRICS_PORT);
    let mut server = Running(
        Command::new(env!("CARGO_BIN_EXE_greet-server"))
            .env("GRPC_PORT", grpc_port.to_string())
            .env("METRICS_PORT", metrics_port.to_string())
            .env("POD_NAME", "greetserver-deploy-7595ccbdd5-l8kmv")
            .env("POD_IP", "172.17.0.2")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for_port(grpc_port).await;
    let url = format!("http://127.0.0.1:{grpc_port}");
    assert_eq!(health_of(url.clone(), "").await, ServingStatus::Serving);
    assert_eq!(
        health_of(url.clone(), "greet.GreetService").await,
        ServingStatus::Serving
    );
    let mut client = GreetServiceClient::connect(url).await.unwrap();
    let reply = client
        .greet(GreetingRequest {
            greeting: Some(Greeting {
                first_name: "Hitesh".into(),
                last_name: "Pattanayak".into(),
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        reply.result,
        "Hello, Hitesh Pattanayak from pod: name(greetserver-deploy-7595ccbdd5-l8kmv), ip(172.17.0.2)."
    );

    wait_for_port(metrics_port).await;
    let metrics = scrape(metrics_port).await;
    assert!(
        metrics.contains("\ngrpc_server_handled_total{grpc_type=\"unary\",grpc_service=\"greet.GreetService\",grpc_method=\"Greet\",grpc_code=\"OK\"} 1\n"),
        "{metrics}"
    );

    let (mut gateway, rest_port, observe_port) = spawn_gateway(
        Command::new(env!("CARGO_BIN_EXE_greet-gateway"))
            .env("GATEWAY_BIND", "127.0.0.1")
            .env("GRPC_SERVER_HOST", "127.0.0.1")
            .env("GRPC_SERVER_PORT", grpc_port.to_string())
            .env("GRPC_SVC", "greetserver")
            .env("POD_NAMESPACE", "default"),
    );
    let rest = RestClient::new(format!("http://127.0.0.1:{rest_port}"));
    let response = rest.greet("Hitesh", "Pattanayak").await.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(
        response.body,
        "reponse from Greet rpc: Hello, Hitesh Pattanayak from pod: name(greetserver-deploy-7595ccbdd5-l8kmv), ip(172.17.0.2)."
    );
    wait_for_port(observe_port).await;
    assert_eq!(
        health_of(format!("http://127.0.0.1:{observe_port}"), "").await,
        ServingStatus::Serving
    );
    let metrics = scrape(rest_port).await;
    assert!(
        metrics.contains("\ngreet_gateway_requests_total{pod=\"greetserver-deploy-7595ccbdd5-l8kmv\",mode=\"sticky\",outcome=\"ok\"} 1\n"),
        "{metrics}"
    );

    let status = gateway.sigterm_and_wait().await;
    assert_eq!(status.code(), Some(0), "gateway exit on SIGTERM");
    let status = server.sigterm_and_wait().await;
    assert_eq!(status.code(), Some(0), "server exit on SIGTERM");
}

#[tokio::test]
async fn server_reports_not_serving_before_it_stops_and_finishes_cleanly() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let stop = tokio_util::sync::CancellationToken::new();
    let config = ServerConfig {
        pod_name: "drain".into(),
        pod_ip: "127.0.0.1".into(),
        max_connection_age: None,
        shutdown_delay: Duration::from_millis(500),
        drain_timeout: Duration::from_secs(5),
        reply_delay: greet_server::ReplyDelay::default(),
    };
    let task = tokio::spawn(greet_server::serve(listener, config, stop.clone().cancelled_owned()));
    let mut health = HealthClient::new(
        tonic::transport::Channel::from_shared(url.clone())
            .unwrap()
            .connect()
            .await
            .unwrap(),
    );
    let check = HealthCheckRequest { service: String::new() };
    assert_eq!(
        health.check(check.clone()).await.unwrap().into_inner().status,
        ServingStatus::Serving as i32
    );

    stop.cancel();
    // During the shutdown delay the server still answers, saying NOT_SERVING.
    let deadline = Instant::now() + Duration::from_millis(400);
    let mut saw_not_serving = false;
    while Instant::now() < deadline {
        if health.check(check.clone()).await.unwrap().into_inner().status == ServingStatus::NotServing as i32 {
            saw_not_serving = true;
            break;
        }
    }
    assert!(
        saw_not_serving,
        "health must turn NOT_SERVING as soon as shutdown starts"
    );
    drop(health);
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("server drains within 5 s")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn gateway_reports_unhealthy_during_its_shutdown_delay_then_exits_0() {
    let (mut gateway, rest_port, _) = spawn_gateway(
        Command::new(env!("CARGO_BIN_EXE_greet-gateway"))
            .args(["--shutdown-delay", "2s", "--bind", "127.0.0.1"])
            .env("GRPC_SERVER_HOST", "127.0.0.1"),
    );
    let rest = RestClient::new(format!("http://127.0.0.1:{rest_port}"));
    let health = rest.send(http::Method::GET, "/healthz", None, "").await.unwrap();
    assert_eq!(health.status, 200, "{}", health.body);

    let pid = gateway.0.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(1);
    let draining = loop {
        let health = rest.send(http::Method::GET, "/healthz", None, "").await.unwrap();
        if health.status == 503 {
            break health;
        }
        assert!(
            Instant::now() < deadline,
            "/healthz still {} 1 s after SIGTERM",
            health.status
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        draining.json().unwrap()["error"],
        "the gateway is shutting down; send requests to another replica"
    );
    // Requests are still served during the delay.
    let response = rest.send(http::Method::GET, "/mode", None, "").await.unwrap();
    assert_eq!(response.status, 200);
    drop(rest);
    let status = gateway.sigterm_and_wait().await;
    assert_eq!(status.code(), Some(0));
}

/// A greet-gateway binary on loopback ports of its own choosing (its upstream, port 1,
/// never needed): the process, its REST port and its Observer port.
pub(crate) fn start_gateway(mode: &str) -> (Running, u16, u16) {
    spawn_gateway(
        Command::new(env!("CARGO_BIN_EXE_greet-gateway"))
            .args(["--mode", mode])
            .env("GATEWAY_BIND", "127.0.0.1")
            .env("GRPC_SERVER_HOST", "127.0.0.1")
            .env("GRPC_SERVER_PORT", "1")
            .env("GRPC_SVC", "greetserver")
            .env("POD_NAMESPACE", "default")
            .env_remove("GATEWAY_CONTROL_TOKEN"),
    )
}

fn greet_top(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_greet-top"))
        .args(args)
        .env_remove("KUBECONFIG")
        .env_remove("GREET_TOP_GATEWAY")
        .env_remove("GREET_TOP_TOKEN")
        .env("HOME", env!("CARGO_TARGET_TMPDIR"))
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[tokio::test]
async fn set_mode_switches_a_real_gateway_to_each_mode_and_prints_its_state() {
    let (_gateway, rest_port, observe_port) = start_gateway("sticky");
    let url = format!("http://127.0.0.1:{observe_port}");
    let rest = RestClient::new(format!("http://127.0.0.1:{rest_port}"));
    let mut was = "sticky";
    for mode in ["dns", "least-loaded", "balanced", "sticky"] {
        // The blocking call waits on the child; this runtime has nothing to serve.
        let output = greet_top(&["set-mode", mode, "--gateway", &url]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(stdout.starts_with(&format!("{url}: {mode} (was {was}); ")), "{stdout}");
        // The gateway says the same through its REST API.
        let body = rest.send(http::Method::GET, "/mode", None, "").await.unwrap().body;
        assert_eq!(body, format!("{{\"mode\":\"{mode}\"}}"));
        was = mode;
    }

    // A mode that does not exist: clap's usage error, listing the valid ones.
    let output = greet_top(&["set-mode", "round-robin", "--gateway", &url]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with(
            "error: invalid value 'round-robin' for '<MODE>'\n  [possible values: sticky, balanced, least-loaded, dns]"
        ),
        "{stderr}"
    );
    // Nothing listening: exit 1, the cause first.
    let output = greet_top(&["set-mode", "balanced", "--gateway", "http://127.0.0.1:1"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with(
            "Error: could not switch http://127.0.0.1:1 to balanced: gateway unreachable: Connection refused"
        ),
        "{stderr}"
    );
}

#[tokio::test]
async fn pointed_at_the_gateways_rest_port_greet_top_says_so_at_once() {
    let (_gateway, rest_port, _) = start_gateway("sticky");
    let url = format!("http://127.0.0.1:{rest_port}");
    let started = Instant::now();
    // No retry can help: greet-top says so at once, not after the 30 s.
    let output = greet_top(&["--gateway", &url, "--no-kube", "--once", "30s"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "", "no partial report");
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        format!(
            "Error: {url} is not an Observer endpoint: it answered HTTP 404 Not Found — point --gateway at the \
             gateway's Observer port (OBSERVE_PORT, default 9092)\n"
        )
    );
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());

    // The dashboard's worker never reports it connected (which would restart
    // the header's "unreachable for" at every retry): only failures, each
    // saying what the address is.
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let cancel = tokio_util::sync::CancellationToken::new();
    let channel = observer_client::observer_channel(&url).unwrap();
    let worker = tokio::spawn(observer_client::follow(
        url.clone(),
        channel,
        observer_client::Subscription::Summaries,
        tx,
        cancel.clone(),
    ));
    let mut failures = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(1500);
    while let Ok(Some(event)) = tokio::time::timeout_at(deadline, rx.recv()).await {
        match event {
            AppEvent::Disconnected { error, .. } => {
                assert!(
                    error.starts_with("not an Observer endpoint: it answered HTTP 404"),
                    "{error}"
                );
                failures += 1;
            }
            other => panic!("only failures expected, got {other:?}"),
        }
    }
    cancel.cancel();
    worker.await.unwrap();
    assert!(failures >= 2, "retried on the backoff: {failures}");
}

/// A failure is an exit status even when its message cannot be written (the
/// terminal gone, stderr closed): never a panic or an abort in its place.
#[test]
fn an_error_with_stderr_unwritable_still_exits_1() {
    // Every write to it fails (ENOSPC), as to a terminal gone (EIO).
    let stderr = std::fs::File::options().write(true).open("/dev/full").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_greet-top"))
        .args(["replay", "/nonexistent/incident.grt"])
        .stdin(Stdio::null())
        .stderr(stderr)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{:?}", output.status);
}
