use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use tokio::net::TcpListener;

use super::*;
use greet_proto::greet::{Greeting, GreetingRequest, GreetingResponse};

/// How the fake server answers every call.
#[derive(Clone)]
enum Answer {
    /// This body (framed as the test gives it), then these trailers.
    Body(Bytes, &'static [(&'static str, &'static str)]),
    /// Headers only, carrying these pairs.
    HeadersOnly(u16, &'static [(&'static str, &'static str)]),
    /// Never answers.
    Hang,
}

fn pairs(list: &[(&'static str, &'static str)]) -> HeaderMap {
    list.iter()
        .map(|(k, v)| (http::HeaderName::from_static(k), http::HeaderValue::from_static(v)))
        .collect()
}

/// An HTTP/2 server on loopback answering each call with `answer`; it also
/// sends back the request's `grpc-timeout` and path as headers, to check.
async fn server(answer: Answer) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let answer = answer.clone();
            tokio::spawn(async move {
                let mut connection = h2::server::handshake(tcp).await.unwrap();
                while let Some(Ok((request, mut respond))) = connection.accept().await {
                    let answer = answer.clone();
                    tokio::spawn(async move {
                        let timeout = request.headers()["grpc-timeout"].clone();
                        let path = request.uri().path().to_owned();
                        let mut received = request.into_body();
                        while let Some(Ok(_)) = received.data().await {}
                        let mut head = http::Response::builder()
                            .header("x-sent-timeout", timeout)
                            .header("x-sent-path", path)
                            .header("x-pod-name", "pod-a");
                        match answer {
                            Answer::Hang => std::future::pending::<()>().await,
                            Answer::HeadersOnly(code, list) => {
                                for (k, v) in list {
                                    head = head.header(*k, *v);
                                }
                                let response = head.status(code).body(()).unwrap();
                                let _ = respond.send_response(response, true);
                            }
                            Answer::Body(body, trailers) => {
                                let response = head.status(200).body(()).unwrap();
                                let mut send = respond.send_response(response, false).unwrap();
                                let _ = send.send_data(body, false);
                                let _ = send.send_trailers(pairs(trailers));
                            }
                        }
                    });
                }
            });
        }
    });
    address
}

fn greeting() -> GreetingRequest {
    GreetingRequest {
        greeting: Some(Greeting {
            first_name: "Ada".into(),
            last_name: "Lovelace".into(),
        }),
    }
}

fn reply_frame(result: &str) -> Bytes {
    frame(&GreetingResponse {
        result: result.into(),
        ..GreetingResponse::default()
    })
}

async fn greet(address: &str, limit: Duration) -> Result<(GreetingResponse, HeaderMap), UnaryFailure> {
    let raw = RawH2::new(address, Duration::from_secs(1)).unwrap();
    call(&raw, "/greet.GreetService/Greet", &greeting(), limit).await
}

#[tokio::test]
async fn a_reply_is_decoded_with_its_headers_and_the_limit_goes_as_grpc_timeout() {
    let address = server(Answer::Body(reply_frame("Hello"), &[("grpc-status", "0")])).await;
    let (reply, headers) = greet(&address, Duration::from_millis(1500)).await.unwrap();
    assert_eq!(reply.result, "Hello");
    assert_eq!(headers["x-pod-name"], "pod-a");
    assert_eq!(headers["x-sent-timeout"], "1500000u");
    assert_eq!(headers["x-sent-path"], "/greet.GreetService/Greet");
}

#[tokio::test]
async fn a_status_in_the_trailers_or_in_trailers_only_is_the_servers_failure() {
    let address = server(Answer::Body(
        Bytes::new(),
        &[("grpc-status", "13"), ("grpc-message", "database%20is%20down")],
    ))
    .await;
    let Err(UnaryFailure::Status(status, headers)) = greet(&address, Duration::from_secs(1)).await else {
        panic!("a status");
    };
    assert_eq!(
        (status.code(), status.message()),
        (tonic::Code::Internal, "database is down")
    );
    assert_eq!(headers["x-pod-name"], "pod-a", "the headers name the pod");

    let address = server(Answer::HeadersOnly(
        200,
        &[
            ("content-type", "application/grpc"),
            ("grpc-status", "14"),
            ("grpc-message", "draining"),
        ],
    ))
    .await;
    let failure = greet(&address, Duration::from_secs(1)).await.unwrap_err();
    assert_eq!(failure.to_string(), "The service is currently unavailable: draining");
}

#[tokio::test]
async fn what_is_not_a_grpc_reply_says_what_it_is() {
    let cases: [(Answer, &str); 5] = [
        (
            Answer::HeadersOnly(503, &[]),
            "The service is currently unavailable: HTTP 503 Service Unavailable",
        ),
        (
            Answer::HeadersOnly(404, &[]),
            "Operation is not implemented or not supported: HTTP 404 Not Found",
        ),
        (
            Answer::HeadersOnly(200, &[("grpc-status", "0")]),
            "the call ended OK with no reply message",
        ),
        (
            Answer::Body(Bytes::from_static(&[1, 0, 0, 0, 1, 0]), &[("grpc-status", "0")]),
            "a compressed reply, though the gateway accepts none",
        ),
        (
            Answer::Body(Bytes::from_static(&[0, 0, 0, 0, 9, 0]), &[("grpc-status", "0")]),
            "a reply whose length prefix does not match its body",
        ),
    ];
    for (answer, expected) in cases {
        let address = server(answer).await;
        let failure = greet(&address, Duration::from_secs(1)).await.unwrap_err();
        assert_eq!(failure.to_string(), expected);
    }
    let address = server(Answer::Body(reply_frame("Hello"), &[])).await;
    let failure = greet(&address, Duration::from_secs(1)).await.unwrap_err();
    assert_eq!(
        failure.to_string(),
        "Internal error: the reply ended without a grpc-status"
    );
}

#[tokio::test]
async fn a_server_that_never_answers_is_no_answer_within_the_limit() {
    let address = server(Answer::Hang).await;
    let started = tokio::time::Instant::now();
    let failure = greet(&address, Duration::from_millis(200)).await.unwrap_err();
    assert!(matches!(failure, UnaryFailure::NoAnswer(limit) if limit == Duration::from_millis(200)));
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
}

#[tokio::test]
async fn a_refused_connection_did_not_get_through() {
    // Port 1: privileged, so no test can be listening there.
    let Err(UnaryFailure::Raw(failure)) = greet("127.0.0.1:1", Duration::from_secs(1)).await else {
        panic!("a connection failure");
    };
    assert_eq!(failure.skip_reason().as_deref(), Some("connection refused"));
}
