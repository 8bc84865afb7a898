//! Server reflection in v1 and v1alpha, each binary listing exactly the
//! services it serves (the two share one descriptor set, so without a list
//! greet-server advertised the Observer too).

use greet_demo::{LocalPod, PodOptions};
use tonic::transport::Channel;
use tonic_reflection::pb::{v1, v1alpha};

use greet_tests::podless;

/// The services a v1 reflection client is told about, sorted.
async fn listed_v1(url: String) -> Vec<String> {
    let channel = Channel::from_shared(url).unwrap().connect().await.unwrap();
    let mut client = v1::server_reflection_client::ServerReflectionClient::new(channel);
    let request = v1::ServerReflectionRequest {
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
        ..Default::default()
    };
    let mut answers = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let answer = answers.message().await.unwrap().unwrap();
    let Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(list)) = answer.message_response
    else {
        panic!("not a service list: {answer:?}");
    };
    let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    names
}

/// The same through v1alpha, as the Python reflection client asks.
async fn listed_v1alpha(url: String) -> Vec<String> {
    let channel = Channel::from_shared(url).unwrap().connect().await.unwrap();
    let mut client = v1alpha::server_reflection_client::ServerReflectionClient::new(channel);
    let request = v1alpha::ServerReflectionRequest {
        message_request: Some(v1alpha::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
        ..Default::default()
    };
    let mut answers = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let answer = answers.message().await.unwrap().unwrap();
    let Some(v1alpha::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        answer.message_response
    else {
        panic!("not a service list: {answer:?}");
    };
    let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    names
}

fn expected(own: &str) -> Vec<String> {
    let mut names: Vec<String> = [
        own,
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    ]
    .map(str::to_owned)
    .to_vec();
    names.sort();
    names
}

#[tokio::test]
async fn greet_server_lists_greet_health_and_reflection_in_both_versions() {
    let options = PodOptions {
        max_connection_age: None,
        drain_timeout: std::time::Duration::from_secs(1),
        ..PodOptions::default()
    };
    let pod = LocalPod::start("greetserver-reflection", "127.0.0.1:0".parse().unwrap(), options)
        .await
        .unwrap();
    let url = format!("http://{}", pod.addr);
    assert_eq!(listed_v1(url.clone()).await, expected("greet.GreetService"));
    assert_eq!(listed_v1alpha(url).await, expected("greet.GreetService"));
}

#[tokio::test]
async fn the_gateways_observer_port_lists_the_observer_not_greet() {
    let gateway = podless::gateway_on(podless::ANY_PORT).await;
    let url = format!("http://{}", gateway.observe_addr);
    assert_eq!(listed_v1(url.clone()).await, expected("greet.observe.v1.Observer"));
    assert_eq!(listed_v1alpha(url).await, expected("greet.observe.v1.Observer"));
    gateway.shutdown().await.unwrap();
}
