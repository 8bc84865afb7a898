//! `--log-format` / `LOG_FORMAT` on the three binaries: text for people, one
//! flat JSON object a line for a cluster's log collector.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A binary whose stderr lines arrive on a channel; killed on drop.
struct Logged {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Logged {
    fn start(command: &mut Command) -> Logged {
        let mut child = command.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Logged { child, lines }
    }

    /// The next stderr line, failing the test after 20 s without one.
    fn next_line(&self) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(20))
            .expect("no log line within 20 s")
    }

    /// SIGTERM, then every line until the process closes stderr.
    fn sigterm_and_collect(&mut self) -> Vec<String> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let mut rest = Vec::new();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(20)) {
            rest.push(line);
        }
        assert_eq!(self.child.wait().unwrap().code(), Some(0), "after SIGTERM: {rest:?}");
        rest
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn json(line: &str) -> serde_json::Map<String, serde_json::Value> {
    match serde_json::from_str(line) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => panic!("not a JSON object: {line}"),
    }
}

#[test]
fn greet_server_logs_one_flat_json_object_a_line_with_log_format_env() {
    let mut server = Logged::start(
        Command::new(env!("CARGO_BIN_EXE_greet-server"))
            // No metrics listener: a test must not take port 9090.
            .args(["--listen", "127.0.0.1:0", "--pod-name", "pod-a", "--metrics-port", "0"])
            .env("LOG_FORMAT", "json")
            .env_remove("RUST_LOG"),
    );
    let first = json(&server.next_line());
    assert_eq!(first["level"], "INFO");
    assert_eq!(first["message"], "greet-server listening");
    assert_eq!(first["target"], "greet_server");
    assert_eq!(first["pod_name"], "pod-a");
    let addr: std::net::SocketAddr = first["addr"].as_str().unwrap().parse().unwrap();
    assert_eq!(addr.ip().to_string(), "127.0.0.1");
    let timestamp = first["timestamp"].as_str().unwrap();
    assert!(
        timestamp.len() >= 20 && timestamp.ends_with('Z') && timestamp.as_bytes()[10] == b'T',
        "{timestamp}"
    );
    // No nested "fields"/"span": collectors index the top-level keys.
    assert!(
        !first.contains_key("fields") && !first.contains_key("span"),
        "{first:?}"
    );

    let rest = server.sigterm_and_collect();
    let messages: Vec<String> = rest
        .iter()
        .map(|line| json(line)["message"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        messages,
        [
            "greet-server shutting down: reporting not ready, then finishing in-flight requests",
            "greet-server drained; exiting"
        ]
    );
}

#[test]
fn greet_gateway_takes_the_log_format_flag_and_text_stays_the_default() {
    let gateway = |format: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_greet-gateway"));
        command
            .args(["--bind", "127.0.0.1", "--port", "0", "--observe-port", "0"])
            .args(["--grpc-port", "0"])
            .args(["--discovery", "static", "--endpoints", "127.0.0.1:1"])
            .env_remove("LOG_FORMAT")
            .env_remove("RUST_LOG");
        if let Some(format) = format {
            command.args(["--log-format", format]);
        }
        Logged::start(&mut command)
    };

    let json_gateway = gateway(Some("json"));
    let listening = std::iter::repeat_with(|| json(&json_gateway.next_line()))
        .find(|line| line["message"] == "greet-gateway listening")
        .unwrap();
    assert_eq!(listening["level"], "INFO");
    assert_eq!(listening["mode"], "sticky");

    let text_gateway = gateway(None);
    let line = std::iter::repeat_with(|| text_gateway.next_line())
        .find(|line| line.contains("greet-gateway listening"))
        .unwrap();
    assert!(serde_json::from_str::<serde_json::Value>(&line).is_err(), "{line}");
    assert!(line.contains(" INFO ") && line.contains("mode=sticky"), "{line}");
}

#[test]
fn an_unknown_log_format_is_refused_with_the_choices() {
    for (binary, args) in [
        (env!("CARGO_BIN_EXE_greet-server"), &["--log-format", "xml"][..]),
        (env!("CARGO_BIN_EXE_greet-gateway"), &["--log-format", "xml"][..]),
        (env!("CARGO_BIN_EXE_greet-top"), &["demo", "--log-format", "xml"][..]),
    ] {
        let output = Command::new(binary).args(args).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{binary}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("invalid value 'xml' for '--log-format <LOG_FORMAT>'")
                && stderr.contains("[possible values: text, json]"),
            "{binary}: {stderr}"
        );
    }
}

/// `request` (method and path) to `addr` over a plain HTTP/1.1 connection,
/// with `body` as JSON if not empty; the whole answer.
fn http_answer(addr: &str, request: &str, body: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        stream,
        "{request} HTTP/1.1\r\nhost: gateway\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

/// `POST /greet` to `addr`; the status code.
fn greet_status(addr: &str) -> u16 {
    let answer = http_answer(addr, "POST /greet", r#"{"first_name":"Ada","last_name":"Lovelace"}"#);
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {answer:?}"))
}

/// The message of the next JSON line whose message `wanted` accepts, failing after 20 s.
fn message_where(logged: &Logged, wanted: impl Fn(&str) -> bool) -> (String, String) {
    loop {
        let line = json(&logged.next_line());
        let message = line["message"].as_str().unwrap_or_default().to_owned();
        if wanted(&message) {
            return (line["level"].as_str().unwrap_or_default().to_owned(), message);
        }
    }
}

#[test]
fn the_gateway_logs_each_ejection_and_re_admission_with_its_reason_first() {
    // A port nothing listens on yet: the only endpoint refuses, then a server
    // takes it. Fixed, below 32768 and on an address no other test uses, so
    // no port-0 bind elsewhere in the suite can take it meanwhile.
    let endpoint = "127.0.0.88:27588".to_owned();
    let gateway = Logged::start(
        Command::new(env!("CARGO_BIN_EXE_greet-gateway"))
            .args(["--bind", "127.0.0.1", "--port", "0", "--observe-port", "0"])
            .args(["--grpc-port", "0", "--mode", "balanced", "--health-check-interval", "0"])
            .args(["--discovery", "static", "--endpoints", &endpoint])
            .env("LOG_FORMAT", "json")
            .env_remove("GATEWAY_MODE")
            .env_remove("RUST_LOG"),
    );
    let listening = std::iter::repeat_with(|| json(&gateway.next_line()))
        .find(|line| line["message"] == "greet-gateway listening")
        .unwrap();
    let rest = listening["rest_addr"].as_str().unwrap().to_owned();

    assert_eq!(greet_status(&rest), 503);
    let ejected = message_where(&gateway, |m| m.contains("skipping endpoint"));
    assert_eq!(
        ejected,
        (
            "WARN".to_owned(),
            format!("connection refused: skipping endpoint {endpoint} for 2 s (ejection 1 in a row)")
        )
    );

    let server = Logged::start(
        Command::new(env!("CARGO_BIN_EXE_greet-server"))
            .args(["--listen", &endpoint, "--pod-name", "pod-a", "--metrics-port", "0"])
            .env("LOG_FORMAT", "json")
            .env_remove("RUST_LOG"),
    );
    assert!(server.next_line().contains("greet-server listening"));
    // The only endpoint is tried although skipped: the next request re-admits it.
    assert_eq!(greet_status(&rest), 200);
    let readmitted = message_where(&gateway, |m| m.contains("back in rotation"));
    assert_eq!(
        readmitted,
        (
            "INFO".to_owned(),
            format!(
                "a request succeeded: endpoint {endpoint} (pod-a) back in rotation after 1 ejection in a row (last: connection refused)"
            )
        )
    );
}

#[test]
fn an_unreachable_api_server_is_logged_once_cause_first_and_kubes_own_lines_not_at_all() {
    // Port 1 on loopback: nothing listens, every connect is refused.
    let kubeconfig = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("logs-unreachable-kubeconfig");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: down\n  cluster: {server: 'http://127.0.0.1:1'}\n\
         contexts:\n- name: down\n  context: {cluster: down, namespace: default}\ncurrent-context: down\n\
         users:\n- name: u\n  user: {}\n",
    )
    .unwrap();
    let mut gateway = Logged::start(
        Command::new(env!("CARGO_BIN_EXE_greet-gateway"))
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                "0",
                "--observe-port",
                "0",
                "--grpc-port",
                "0",
            ])
            .args(["--discovery", "kube", "--health-check-interval", "0"])
            .env("KUBECONFIG", &kubeconfig)
            .env("LOG_FORMAT", "json")
            .env("GRPC_SERVER_HOST", "127.0.0.1")
            .env("GRPC_SVC", "greetserver")
            .env("POD_NAMESPACE", "default")
            .env_remove("RUST_LOG"),
    );
    let mut lines = Vec::new();
    let rest = loop {
        let line = json(&gateway.next_line());
        if line["message"] == "greet-gateway listening" {
            break line["rest_addr"].as_str().unwrap().to_owned();
        }
        lines.push(line);
    };
    // Until the watch has failed for 3 s: several retries (one a second at most).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let answer = http_answer(&rest, "GET /healthz", "");
        let failing_for = answer
            .split("\"failing_for_ms\":")
            .nth(1)
            .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|ms| ms.parse::<u64>().ok());
        if failing_for.is_some_and(|ms| ms >= 3000) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "discovery not failing for 3 s: {answer}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    lines.extend(gateway.sigterm_and_collect().iter().map(|line| json(line)));
    let from_kube: Vec<_> = lines
        .iter()
        .filter(|line| line["target"].as_str().is_some_and(|target| target.starts_with("kube")))
        .collect();
    assert!(from_kube.is_empty(), "kube's own lines: {from_kube:?}");
    let watch: Vec<(&str, &str)> = lines
        .iter()
        .filter(|line| {
            line["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("EndpointSlice watch"))
        })
        .map(|line| (line["level"].as_str().unwrap(), line["message"].as_str().unwrap()))
        .collect();
    assert_eq!(
        watch,
        [(
            "WARN",
            "EndpointSlice watch: the API server refuses connections — down or restarting?; retrying, keeping the last endpoint set"
        )],
        "once for the outage, cause first"
    );
}

#[test]
fn out_of_descriptors_the_ingress_warns_once_backs_off_and_accepts_again() {
    // 64 descriptors: the gateway needs about 20 of its own, so the ingress
    // runs out within 60 clients.
    let mut gateway = Logged::start(
        Command::new("sh")
            .args([
                "-c",
                "ulimit -n 64 && exec \"$0\" \"$@\"",
                env!("CARGO_BIN_EXE_greet-gateway"),
            ])
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                "0",
                "--observe-port",
                "0",
                "--grpc-port",
                "0",
            ])
            .args(["--health-check-interval", "0", "--first-request-timeout", "1s"])
            .env("LOG_FORMAT", "json")
            .env("GRPC_SERVER_HOST", "127.0.0.1")
            .env_remove("RUST_LOG"),
    );
    let grpc = loop {
        let line = json(&gateway.next_line());
        if line["message"] == "greet-gateway listening" {
            break line["grpc_addr"].as_str().unwrap().to_owned();
        }
    };
    // Idle clients, each holding a descriptor of the gateway's until the
    // first-request limit closes it; those past the limit wait in the backlog.
    let clients: Vec<_> = (0..80).map(|_| std::net::TcpStream::connect(&grpc).unwrap()).collect();
    let out = message_where(&gateway, |m| m.contains("cannot accept connections"));
    assert_eq!(
        out,
        (
            "WARN".to_owned(),
            "the gRPC ingress cannot accept connections (out of file descriptors?); retrying with backoff up to 1s"
                .to_owned()
        )
    );
    // The idle ones are closed after 1 s: the waiting ones are accepted.
    let back = json(&gateway.next_line());
    assert_eq!(
        back["message"], "the gRPC ingress accepts connections again",
        "{back:?}"
    );
    assert_eq!(back["level"], "INFO");
    drop(clients);
    // At the limit, accepts fail and succeed by turns as connections close:
    // still one warning and one "again" (at most one each 30 s).
    let rest = gateway.sigterm_and_collect();
    assert!(
        !rest
            .iter()
            .any(|line| line.contains("cannot accept connections") || line.contains("accepts connections again")),
        "one warning an episode: {rest:?}"
    );
}
