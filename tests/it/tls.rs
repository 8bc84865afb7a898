//! `--gateway https://…` speaks TLS, never plaintext: a raw listener gets a
//! TLS hello, not the HTTP/2 preface (with the bearer token after it); a
//! gateway behind a TLS proxy with a self-signed certificate is followed
//! with `--insecure`, and refused without it, saying why.

use greet_tests as support;

use std::process::Output;
use std::sync::Arc;
use std::time::Duration;

use greet_demo::rest_client::RestClient;
use greet_proto::Mode;
use greet_top::observer_client::Verify;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

async fn greet_top(args: &[&str]) -> Output {
    greet_top_for("1s", args).await
}

async fn greet_top_for(once: &str, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_greet-top"))
        .args(args)
        .args(["--no-kube", "--once", once, "--output", "json"])
        .env_remove("KUBECONFIG")
        .env_remove("GREET_TOP_GATEWAY")
        .env("HOME", env!("CARGO_TARGET_TMPDIR"))
        .kill_on_drop(true)
        .output()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_https_gateway_gets_a_tls_hello_never_the_plaintext_preface() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    let first_bytes = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut bytes = vec![0u8; 24];
        let read = tokio::time::timeout(Duration::from_secs(5), socket.read_exact(&mut bytes)).await;
        (read.is_ok_and(|r| r.is_ok()), bytes)
    });
    let output = greet_top(&["--gateway", &url, "--token", "s3cret"]).await;
    let (complete, bytes) = first_bytes.await.unwrap();
    assert!(complete, "greet-top sent fewer than 24 bytes: {bytes:?}");
    assert!(
        !bytes.starts_with(b"PRI * HTTP/2.0"),
        "plaintext HTTP/2 to an https:// URL"
    );
    // A TLS record of type handshake (22), version 3.x: a ClientHello.
    assert_eq!(&bytes[..2], [22, 3], "{bytes:?}");
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "", "no partial report");
}

/// A self-signed certificate for 127.0.0.1, and a TLS acceptor offering h2.
fn self_signed() -> TlsAcceptor {
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let cert = CertificateDer::from(certified.cert.der().to_vec());
    let key = PrivateKeyDer::from(PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der()));
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    // gRPC (the Observer) and HTTP/1.1 (the REST client) alike.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    TlsAcceptor::from(Arc::new(config))
}

/// Terminates TLS on a loopback port and passes the bytes on to `upstream`.
async fn tls_proxy(upstream: std::net::SocketAddr) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    let acceptor = self_signed();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(socket).await else {
                    return;
                };
                let Ok(mut plain) = TcpStream::connect(upstream).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    url
}

#[tokio::test]
async fn a_self_signed_gateway_is_followed_with_insecure_and_refused_without() {
    let cluster = support::cluster(2, Mode::Balanced).await;
    let url = tls_proxy(cluster.gateway.observe_addr).await;

    // https:// to the gateway's own, plaintext, Observer port: said at once.
    let plaintext = format!("https://{}", cluster.gateway.observe_addr);
    let mismatch = greet_top_for("30s", &["--gateway", &plaintext]).await;
    assert_eq!(mismatch.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&mismatch.stderr),
        format!(
            "Error: cannot follow the gateway's Observer at {plaintext}: TLS handshake failed: received corrupt \
             message of type InvalidContentType; does the gateway serve TLS here? (use http:// if not)\n"
        )
    );

    let insecure = greet_top(&["--gateway", &url, "--insecure"]).await;
    assert_eq!(
        insecure.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&insecure.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&insecure.stdout).unwrap();
    assert_eq!(report["mode"], "balanced", "{report}");
    assert_eq!(report["gateways"], serde_json::json!([url]));

    let started = std::time::Instant::now();
    let verified = greet_top_for("30s", &["--gateway", &url]).await;
    // Retrying cannot make the certificate trusted: the answer comes at once.
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    assert_eq!(verified.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&verified.stdout), "", "no partial report");
    let stderr = String::from_utf8_lossy(&verified.stderr);
    assert!(
        stderr.starts_with(&format!(
            "Error: cannot follow the gateway's Observer at {url}: the gateway's TLS certificate was rejected: \
             invalid peer certificate: UnknownIssuer; pass --insecure to accept a self-signed one"
        )),
        "{stderr}"
    );
}

#[tokio::test]
async fn the_rest_client_speaks_tls_to_an_https_url_never_plaintext() {
    // A raw listener: the first bytes are a TLS hello, not "POST /greet".
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    let first_bytes = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut bytes = vec![0u8; 5];
        let read = tokio::time::timeout(Duration::from_secs(5), socket.read_exact(&mut bytes)).await;
        (read.is_ok_and(|r| r.is_ok()), bytes)
    });
    let rest = greet_top::observer_client::rest_client(url, Verify::Insecure).unwrap();
    let call = tokio::spawn(async move { rest.greet("Hitesh", "Pattanayak").await });
    let (complete, bytes) = first_bytes.await.unwrap();
    assert!(complete, "{bytes:?}");
    assert_eq!(&bytes[..2], [22, 3], "a TLS handshake record: {bytes:?}");
    assert!(call.await.unwrap().is_err(), "the listener never answered");

    // The gateway's REST port behind TLS: --insecure greets through it, the
    // system's roots refuse the self-signed certificate.
    let cluster = support::cluster(2, Mode::Balanced).await;
    let url = tls_proxy(cluster.gateway.rest_addr).await;
    let insecure = greet_top::observer_client::rest_client(url.clone(), Verify::Insecure).unwrap();
    let response = insecure.greet("Hitesh", "Pattanayak").await.unwrap();
    assert_eq!(response.status, 200, "{}", response.body);
    assert!(
        response.body.contains("from pod: name(greetserver-test-"),
        "{}",
        response.body
    );
    let verified = RestClient::new(url).greet("Hitesh", "Pattanayak").await.unwrap_err();
    let chain = format!("{verified:#}");
    assert!(chain.contains("invalid peer certificate: UnknownIssuer"), "{chain}");
}
