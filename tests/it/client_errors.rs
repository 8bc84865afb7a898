//! A client's own errors are not a pod failing: calls to a method no pod
//! serves (UNIMPLEMENTED) through the gateway's gRPC ingress are counted as
//! `client_errors` by `--once`, and `--fail-on errors` does not trip on them.

use greet_tests as support;

use std::time::Duration;

use greet_proto::Mode;
use greet_proto::greet::{Greeting, GreetingRequest, GreetingResponse};
use tonic::transport::Channel;

/// One call to `/greet.GreetService/Nope`, which no greet-server serves.
async fn call_a_missing_method(channel: Channel) -> tonic::Code {
    let mut grpc = tonic::client::Grpc::new(channel);
    if grpc.ready().await.is_err() {
        return tonic::Code::Unavailable;
    }
    let request = tonic::Request::new(GreetingRequest {
        greeting: Some(Greeting {
            first_name: "Ada".into(),
            last_name: "Lovelace".into(),
        }),
    });
    let path = http::uri::PathAndQuery::from_static("/greet.GreetService/Nope");
    let answer: Result<tonic::Response<GreetingResponse>, tonic::Status> =
        grpc.unary(request, path, tonic_prost::ProstCodec::default()).await;
    answer.map_or_else(|status| status.code(), |_| tonic::Code::Ok)
}

#[tokio::test]
async fn unimplemented_calls_are_client_errors_and_do_not_trip_fail_on_errors() {
    let cluster = support::cluster(2, Mode::Balanced).await;
    let observer = format!("http://{}", cluster.gateway.observe_addr);
    let report = tokio::process::Command::new(env!("CARGO_BIN_EXE_greet-top"))
        .args(["--gateway", &observer, "--no-kube", "--once", "3s", "--output", "json"])
        .args(["--fail-on", "errors"])
        .env_remove("KUBECONFIG")
        .env_remove("GREET_TOP_TOKEN")
        .env("HOME", env!("CARGO_TARGET_TMPDIR"))
        .kill_on_drop(true)
        .output();
    let report = tokio::spawn(report);

    // Bad calls all through the observation (greet-top counts from its
    // first snapshot): one every 100 ms, at most 50.
    let channel = Channel::from_shared(format!("http://{}", cluster.gateway.grpc_addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut codes = Vec::new();
    while !report.is_finished() && codes.len() < 50 {
        codes.push(call_a_missing_method(channel.clone()).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(codes.iter().all(|c| *c == tonic::Code::Unimplemented), "{codes:?}");

    let output = report.await.unwrap().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "client errors must not trip --fail-on errors:\n{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let errors = json["errors"].as_u64().unwrap();
    assert!(errors >= 10, "the calls during the 3 s were counted: {json}");
    assert_eq!(json["client_errors"].as_u64(), Some(errors), "{json}");
    // The codes named are UNIMPLEMENTED only (the failures of a pod's first
    // summary interval carry no code: the model cannot know them).
    for pod in json["pods"].as_array().unwrap() {
        let codes = pod["errors_by_code"].as_object().unwrap();
        assert_eq!(codes.keys().collect::<Vec<_>>(), ["UNIMPLEMENTED"], "{pod}");
    }
}
