//! greet-top reading the pods' own metrics, no gateway: known traffic sent
//! straight to the servers comes out exactly in `--once json`, read
//! directly (`--metrics-url`), through the fake API server's pod proxy, and
//! from a Python grpcio server instrumented with py-grpc-prometheus.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fake_kube::{FakeKube, pod};
use greet_demo::{LocalPod, PodOptions};
use greet_proto::greet::greet_service_client::GreetServiceClient;
use greet_proto::greet::{Greeting, GreetingRequest};
use serde_json::Value;

/// `greet-top ARGS`, no cluster unless the args give one.
fn spawn_greet_top(args: &[&str], kubeconfig: Option<&std::path::Path>) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_greet-top"));
    command
        .args(args)
        .env("HOME", env!("CARGO_TARGET_TMPDIR"))
        .env_remove("KUBERNETES_SERVICE_HOST")
        // Loopback only, whatever proxy the environment names.
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    match kubeconfig {
        Some(path) => command.env("KUBECONFIG", path),
        None => command.env_remove("KUBECONFIG"),
    };
    command.spawn().expect("running greet-top")
}

/// Waits (at most 20 s) until greet-top says it counts from its first
/// scrape: traffic sent after that is in the report, whole.
fn until_counting(child: &mut Child) -> std::thread::JoinHandle<String> {
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    let rest = std::thread::spawn(move || {
        let mut reader = BufReader::new(stderr);
        let mut seen = String::new();
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap_or(0) > 0 {
            if line.contains("counting from the first scrape") {
                let _ = tx.send(());
            }
            seen.push_str(&line);
            line.clear();
        }
        seen
    });
    rx.recv_timeout(Duration::from_secs(20))
        .expect("greet-top never said it counts from the first scrape");
    rest
}

/// The report greet-top prints when it exits.
fn report(mut child: Child, stderr: std::thread::JoinHandle<String>) -> Value {
    let mut stdout = String::new();
    child.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
    let status = child.wait().unwrap();
    let stderr = stderr.join().unwrap();
    assert!(status.success(), "greet-top failed: {stderr}\n{stdout}");
    serde_json::from_str(&stdout).unwrap_or_else(|err| panic!("{err}: {stdout}"))
}

async fn greet(pod: SocketAddr, ok: usize, missing_greeting: usize) {
    let mut client = GreetServiceClient::connect(format!("http://{pod}")).await.unwrap();
    for i in 0..ok + missing_greeting {
        let greeting = (i < ok).then(|| Greeting {
            first_name: "Ada".into(),
            last_name: "Lovelace".into(),
        });
        let reply = client.greet(GreetingRequest { greeting }).await;
        assert_eq!(reply.is_ok(), i < ok, "{reply:?}");
    }
}

fn row<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["pods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no row {name}: {report:#}"))
}

/// Three pods, each serving its metrics on its own port.
async fn three_pods() -> Vec<LocalPod> {
    let options = PodOptions {
        metrics: true,
        ..PodOptions::default()
    };
    let mut pods = Vec::new();
    for name in ["pod-a", "pod-b", "pod-c"] {
        pods.push(
            LocalPod::start(name, "127.0.0.1:0".parse().unwrap(), options)
                .await
                .unwrap(),
        );
    }
    pods
}

/// 220 calls to pod-a (20 of them INVALID_ARGUMENT), 50 to each other.
async fn known_traffic(pods: &[LocalPod]) {
    greet(pods[0].addr, 200, 20).await;
    greet(pods[1].addr, 50, 0).await;
    greet(pods[2].addr, 50, 0).await;
}

fn assert_exact(report: &Value, names: [&str; 3], family: &str) {
    assert_eq!(report["state"], "UNEVEN", "{report:#}");
    assert_eq!(report["total"], 320, "{report:#}");
    assert_eq!(
        (report["errors"].as_u64(), report["client_errors"].as_u64()),
        (Some(20), Some(20))
    );
    let a = row(report, names[0]);
    assert_eq!(
        (a["hits"].as_u64(), a["errors"].as_u64()),
        (Some(220), Some(20)),
        "{a:#}"
    );
    assert_eq!(a["errors_by_code"], serde_json::json!({"INVALID_ARGUMENT": 20}));
    assert_eq!(a["share"].as_f64(), Some(220.0 / 320.0));
    assert_eq!(
        a["methods"]["/greet.GreetService/Greet"],
        serde_json::json!({"hits": 220, "errors": 20})
    );
    assert_eq!(a["family"], family);
    for name in &names[1..] {
        let other = row(report, name);
        assert_eq!(
            (other["hits"].as_u64(), other["errors"].as_u64()),
            (Some(50), Some(0)),
            "{other:#}"
        );
        assert_eq!(other["share"].as_f64(), Some(50.0 / 320.0));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_urls_give_exact_counts_errors_by_code_and_shares() {
    let pods = three_pods().await;
    let urls: Vec<String> = pods
        .iter()
        .map(|p| format!("{}=http://{}/metrics", p.name, p.metrics_addr.unwrap()))
        .collect();
    let urls = urls.join(",");
    let args = [
        "--metrics-url",
        &urls,
        "--once",
        "3s",
        "--output",
        "json",
        "--scrape-interval",
        "200ms",
        "--fail-on",
        "errors",
    ];
    let mut child = spawn_greet_top(&args, None);
    let stderr = until_counting(&mut child);
    known_traffic(&pods).await;
    let report = report(child, stderr);
    assert_exact(&report, ["pod-a", "pod-b", "pod-c"], "grpc_server");
    assert_eq!(
        row(&report, "pod-b")["url"],
        format!("http://{}/metrics", pods[1].metrics_addr.unwrap())
    );
    assert_eq!(report["gateways"], serde_json::json!(["pods' own metrics"]));
}

const NS: &str = "default";

/// The fake API server listing `pods` (`run=greetserver`), each proxied to
/// its metrics listener on port 9090; and a kubeconfig for it.
async fn cluster_of(pods: &[LocalPod]) -> (FakeKube, std::path::PathBuf) {
    let kube = FakeKube::start().await;
    for (i, local) in pods.iter().enumerate() {
        // Pod IPs of a cluster's own: the proxy, not greet-top, dials the pods.
        kube.apply_pod(pod(
            NS,
            &local.name,
            &[("run", "greetserver")],
            &format!("10.1.0.{}", i + 1),
            true,
        ));
        kube.proxy_to(NS, &local.name, 9090, local.metrics_addr.unwrap());
    }
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("greet-top-pods-metrics-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = kube.write_kubeconfig(&dir, NS);
    (kube, kubeconfig)
}

const THROUGH_THE_API_SERVER: [&str; 10] = [
    "--source",
    "metrics",
    "--metrics-port",
    "9090",
    "--once",
    "3s",
    "--output",
    "json",
    "--scrape-interval",
    "500ms",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pod_proxy_gives_the_same_exact_counts() {
    let pods = three_pods().await;
    let (kube, kubeconfig) = cluster_of(&pods).await;
    let mut child = spawn_greet_top(&THROUGH_THE_API_SERVER, Some(&kubeconfig));
    let stderr = until_counting(&mut child);
    known_traffic(&pods).await;
    let report = report(child, stderr);
    assert_exact(&report, ["pod-a", "pod-b", "pod-c"], "grpc_server");
    assert_eq!(
        row(&report, "pod-a")["url"],
        "/api/v1/namespaces/default/pods/pod-a:9090/proxy/metrics"
    );
    let stats = kube.pod_proxy_stats();
    assert!(
        stats.forwarded >= 3 * 2,
        "a baseline and at least one more round each: {stats:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_pod_proxy_names_the_missing_rule_and_the_ways_around_it() {
    let pods = three_pods().await;
    let (kube, kubeconfig) = cluster_of(&pods).await;
    kube.forbid("pods/proxy", true);
    let mut args = THROUGH_THE_API_SERVER.to_vec();
    args[5] = "1s";
    let child = spawn_greet_top(&args, Some(&kubeconfig));
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_str(&stdout).unwrap();
    let a = row(&report, "pod-a");
    assert_eq!(a["readiness"], "down", "{a:#}");
    let down = a["down"].as_str().unwrap();
    assert!(
        down.starts_with(
            "greet-top may not get pods/proxy in namespace default (RBAC: needs verb get on resource pods/proxy); \
             grant it (k8s/greet-top-rbac.yaml) or use --metrics-url / a port-forward instead"
        ),
        "{down}"
    );
    assert_eq!(report["total"], 0);
}

/// A foreign server (grpcio with py-grpc-prometheus: upper-case codes,
/// `_created` gauges, series made on first use) reads the same: errors by
/// code exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_grpcio_server_with_py_grpc_prometheus_is_read_exactly() {
    let Some(python) = greet_tests::python::greet_server("greetserver-py").await else {
        return;
    };
    let url = format!("http://{}/metrics", python.metrics);
    let args = [
        "--metrics-url",
        &url,
        "--once",
        "2s",
        "--output",
        "json",
        "--scrape-interval",
        "500ms",
    ];
    let mut child = spawn_greet_top(&args, None);
    let stderr = until_counting(&mut child);
    let mut client = GreetServiceClient::connect(format!("http://{}", python.grpc))
        .await
        .unwrap();
    let request = |first: &str| GreetingRequest {
        greeting: Some(Greeting {
            first_name: first.into(),
            last_name: "Lovelace".into(),
        }),
    };
    for first in std::iter::repeat_n("Ada", 30)
        .chain(std::iter::repeat_n("fail-unavailable", 5))
        .chain(std::iter::repeat_n("", 3))
    {
        let reply = client.greet(request(first)).await;
        assert_eq!(reply.is_ok(), first == "Ada", "{first}: {reply:?}");
    }
    let report = report(child, stderr);
    // Named by the pod label its metrics carry, else its address.
    let pods = report["pods"].as_array().unwrap();
    assert_eq!(pods.len(), 1, "{report:#}");
    let pod = &pods[0];
    assert_eq!(
        (pod["hits"].as_u64(), pod["errors"].as_u64()),
        (Some(38), Some(8)),
        "{pod:#}"
    );
    assert_eq!(
        pod["errors_by_code"],
        serde_json::json!({"UNAVAILABLE": 5, "INVALID_ARGUMENT": 3})
    );
    assert_eq!(pod["family"], "grpc_server");
    assert_eq!(pod["url"], url);
    assert_eq!(report["state"], "FAILING", "{report:#}");
}
