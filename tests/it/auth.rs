//! The gateway's control token on a real gateway on loopback: every protected
//! call without, with a wrong and with the right token, the open calls still
//! open, nothing changed by a refused call, and the binaries' start-up.
//! greet-top's side (its token, its refused state) is in auth/greet_top.rs.

// Only the cluster's shape is used here.
#[allow(dead_code)]
use greet_tests as support;

mod greet_top_client;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use greet_demo::LocalCluster;
use greet_demo::rest_client::{RestClient, RestResponse};
use greet_proto::Mode;
use greet_proto::observe::observer_client::ObserverClient;
use greet_proto::observe::{GetStateRequest, SetModeRequest, WatchRequest};
use greet_runtime::auth::{ControlToken, Denied};
use http::Method;
use tonic::transport::Channel;

pub(crate) const TOKEN: &str = "s3cret-control-token";

pub(crate) fn token(text: &str) -> ControlToken {
    ControlToken::from_setting(text, "test").unwrap()
}

/// Two pods behind a sticky gateway that wants [`TOKEN`].
pub(crate) async fn protected_cluster() -> LocalCluster {
    let mut config = support::config(2, Mode::Sticky);
    config.gateway.control_token = Some(token(TOKEN));
    LocalCluster::start(config).await.unwrap()
}

/// What a call sends as `authorization`.
#[derive(Clone, Copy, Debug)]
enum Sent {
    Nothing,
    Wrong,
    Basic,
    Right,
}

/// The `authorization` value for `sent`, and the refusal the gateway must answer with.
fn authorization(sent: Sent) -> (Option<&'static str>, Option<Denied>) {
    match sent {
        Sent::Nothing => (None, Some(Denied::Missing)),
        Sent::Wrong => (Some("Bearer not-the-token"), Some(Denied::Wrong)),
        Sent::Basic => (Some("Basic czNjcmV0"), Some(Denied::NotBearer)),
        Sent::Right => (Some("Bearer s3cret-control-token"), None),
    }
}

const EVERY_SENT: [Sent; 4] = [Sent::Nothing, Sent::Wrong, Sent::Basic, Sent::Right];

fn request<T>(message: T, sent: Sent) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let (Some(value), _) = authorization(sent) {
        request.metadata_mut().insert("authorization", value.parse().unwrap());
    }
    request
}

async fn observer(cluster: &LocalCluster) -> ObserverClient<Channel> {
    let url = format!("http://{}", cluster.gateway.observe_addr);
    ObserverClient::new(Channel::from_shared(url).unwrap().connect().await.unwrap())
}

/// The outcome of a gRPC call: OK, or the code and message.
fn outcome<T>(result: Result<T, tonic::Status>) -> Result<(), (tonic::Code, String)> {
    result.map(|_| ()).map_err(|s| (s.code(), s.message().to_owned()))
}

fn expected(sent: Sent) -> Result<(), (tonic::Code, String)> {
    match authorization(sent).1 {
        None => Ok(()),
        Some(denied) => Err((tonic::Code::Unauthenticated, denied.message().to_owned())),
    }
}

async fn mode_now(observer: &mut ObserverClient<Channel>) -> i32 {
    let state = observer
        .get_state(request(GetStateRequest::default(), Sent::Right))
        .await;
    state.unwrap().into_inner().mode
}

#[tokio::test]
async fn every_observer_rpc_wants_the_token_and_a_refused_set_mode_changes_nothing() {
    let cluster = protected_cluster().await;
    let mut observer = observer(&cluster).await;
    for sent in EVERY_SENT {
        let watch = observer.watch(request(WatchRequest::default(), sent)).await;
        assert_eq!(outcome(watch), expected(sent), "Watch, {sent:?}");
        let state = observer.get_state(request(GetStateRequest::default(), sent)).await;
        assert_eq!(outcome(state), expected(sent), "GetState, {sent:?}");
        if matches!(sent, Sent::Right) {
            continue;
        }
        let balanced = SetModeRequest {
            mode: Mode::Balanced.to_proto() as i32,
        };
        let set = observer.set_mode(request(balanced, sent)).await;
        assert_eq!(outcome(set), expected(sent), "SetMode, {sent:?}");
        assert_eq!(
            mode_now(&mut observer).await,
            Mode::Sticky.to_proto() as i32,
            "{sent:?}"
        );
    }
    let balanced = SetModeRequest {
        mode: Mode::Balanced.to_proto() as i32,
    };
    let set = observer.set_mode(request(balanced, Sent::Right)).await.unwrap();
    assert_eq!(set.into_inner().mode, Mode::Balanced.to_proto() as i32);
    assert_eq!(cluster.gateway.gateway.upstream.mode(), Mode::Balanced);
}

/// `PUT /mode` with `sent`, and a body that is `body`.
async fn put_mode(cluster: &LocalCluster, sent: Sent, body: &str) -> RestResponse {
    let base = format!("http://{}", cluster.gateway.rest_addr);
    let rest = match sent {
        Sent::Right => RestClient::new(base).with_token(&token(TOKEN)),
        Sent::Wrong => RestClient::new(base).with_token(&token("not-the-token")),
        Sent::Nothing | Sent::Basic => RestClient::new(base),
    };
    rest.send(Method::PUT, "/mode", Some("application/json"), body.to_owned())
        .await
        .unwrap()
}

#[tokio::test]
async fn put_mode_wants_the_token_with_a_401_that_says_why_and_changes_nothing() {
    let cluster = protected_cluster().await;
    let balanced = r#"{"mode": "balanced"}"#;
    for (sent, challenge) in [
        (Sent::Nothing, "Bearer"),
        (Sent::Wrong, r#"Bearer error="invalid_token""#),
    ] {
        let denied = authorization(sent).1.unwrap();
        // A bad body is refused for the token first: a refused caller learns nothing.
        for body in [balanced, "[1]"] {
            let response = put_mode(&cluster, sent, body).await;
            assert_eq!(response.status, 401, "{sent:?} {body}");
            assert_eq!(response.content_type.as_deref(), Some("application/json"));
            assert_eq!(response.www_authenticate.as_deref(), Some(challenge), "{sent:?}");
            assert_eq!(
                response.json().unwrap(),
                serde_json::json!({ "error": denied.message() }),
                "{sent:?}"
            );
            assert!(
                !response.body.contains("not-the-token"),
                "the token sent is never echoed"
            );
        }
        let mode = cluster.rest().send(Method::GET, "/mode", None, "").await.unwrap();
        assert_eq!(mode.json().unwrap(), serde_json::json!({"mode": "sticky"}), "{sent:?}");
    }
    let response = put_mode(&cluster, Sent::Right, balanced).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.json().unwrap(), serde_json::json!({"mode": "balanced"}));
    // With the token, a bad body is the usual 400.
    assert_eq!(put_mode(&cluster, Sent::Right, "[1]").await.status, 400);
}

#[tokio::test]
async fn greet_mode_healthz_health_and_reflection_stay_open() {
    let cluster = protected_cluster().await;
    let rest = cluster.rest();
    let greet = rest.greet("Ada", "Lovelace").await.unwrap();
    assert_eq!(greet.status, 200, "{}", greet.body);
    assert!(greet.body.starts_with("reponse from Greet rpc: Hello, Ada Lovelace"));
    let mode = rest.send(Method::GET, "/mode", None, "").await.unwrap();
    assert_eq!(
        (mode.status.as_u16(), mode.body.as_str()),
        (200, r#"{"mode":"sticky"}"#)
    );
    assert_eq!(rest.send(Method::GET, "/healthz", None, "").await.unwrap().status, 200);
    assert_eq!(rest.send(Method::GET, "/metrics", None, "").await.unwrap().status, 200);

    let url = format!("http://{}", cluster.gateway.observe_addr);
    let channel = Channel::from_shared(url).unwrap().connect().await.unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let check = tonic_health::pb::HealthCheckRequest {
        service: "greet.observe.v1.Observer".into(),
    };
    assert_eq!(health.check(check).await.unwrap().into_inner().status, 1, "SERVING");
    use tonic_reflection::pb::v1;
    let mut reflection = v1::server_reflection_client::ServerReflectionClient::new(channel);
    let list = v1::ServerReflectionRequest {
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
        ..Default::default()
    };
    let mut answers = reflection
        .server_reflection_info(tokio_stream::iter([list]))
        .await
        .unwrap()
        .into_inner();
    assert!(
        answers.message().await.unwrap().is_some(),
        "reflection answers without a token"
    );
}

/// A gateway binary on free loopback ports, its stderr read line by line.
struct GatewayProcess {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl GatewayProcess {
    fn start(env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_greet-gateway"));
        command
            .args(["--bind", "127.0.0.1", "--port", "0", "--observe-port", "0"])
            .args(["--grpc-port", "0"])
            .args(["--endpoints", "127.0.0.1:1"])
            .env_remove("GATEWAY_CONTROL_TOKEN")
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        GatewayProcess { child, lines }
    }

    /// Every stderr line up to the one that says the gateway listens.
    fn start_up_log(&self) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut seen = Vec::new();
        while let Ok(line) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            let listening = line.contains("greet-gateway listening");
            seen.push(line);
            if listening {
                return seen;
            }
        }
        panic!("the gateway did not say it listens within 20 s: {seen:#?}");
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_gateway_warns_once_at_start_that_its_controls_are_open_without_a_token() {
    let open = GatewayProcess::start(&[]).start_up_log();
    let warnings: Vec<&String> = open.iter().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warnings.len(), 1, "{open:#?}");
    assert!(
        warnings[0].ends_with(
            "the gateway's controls are open: anyone who reaches its ports can switch the mode (PUT /mode, \
             Observer.SetMode) and watch every pod (Observer.Watch); set GATEWAY_CONTROL_TOKEN (or \
             --control-token) to require a bearer token"
        ),
        "{}",
        warnings[0]
    );
    let protected = GatewayProcess::start(&[("GATEWAY_CONTROL_TOKEN", TOKEN)]).start_up_log();
    assert!(!protected.iter().any(|l| l.contains("WARN")), "{protected:#?}");
    assert!(
        !protected.iter().any(|l| l.contains(TOKEN)),
        "the token is never logged"
    );
}

#[test]
fn an_empty_token_is_a_start_up_error_not_auth_off() {
    for value in ["", "  "] {
        let output = Command::new(env!("CARGO_BIN_EXE_greet-gateway"))
            .args(["--bind", "127.0.0.1", "--port", "0", "--observe-port", "0"])
            .args(["--grpc-port", "0"])
            .env("GATEWAY_CONTROL_TOKEN", value)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "{value:?}");
        assert_eq!(
            String::from_utf8_lossy(&output.stderr),
            "Error: --control-token / GATEWAY_CONTROL_TOKEN is set but empty: set it to the control token (in \
             Kubernetes, the key `token` of the Secret greetclient-control-token), or unset it\n"
        );
    }
    let output = Command::new(env!("CARGO_BIN_EXE_greet-gateway"))
        .args(["--control-token", "with space"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("Error: --control-token / GATEWAY_CONTROL_TOKEN holds a space"),
        "{stderr}"
    );
    assert!(!stderr.contains("with space"), "the value is never repeated: {stderr}");
}
