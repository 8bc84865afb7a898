//! A small HTTP/1.1 client for the gateway's REST API, used by greet-top's
//! load generator and by the tests. Keeps connections alive across requests;
//! an https:// base speaks TLS (never plaintext): greet-top brings the
//! verifying connector ([`RestClient::with_connector`]); [`RestClient::new`]
//! trusts no certificate, for the loopback cluster's plain http://.

use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use greet_runtime::auth::ControlToken;

/// A response's status, content type and body.
#[derive(Debug, Clone)]
pub struct RestResponse {
    pub status: StatusCode,
    pub content_type: Option<String>,
    /// `WWW-Authenticate`: what a 401 asks for.
    pub www_authenticate: Option<String>,
    pub body: String,
}

impl RestResponse {
    /// The body as JSON.
    pub fn json(&self) -> anyhow::Result<serde_json::Value> {
        serde_json::from_str(&self.body).with_context(|| format!("response body is not JSON: {:?}", self.body))
    }
}

/// The TCP part of every connection; TLS, when the URL asks, goes over it.
pub fn http_connector() -> HttpConnector {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_secs(2)));
    // https:// URLs reach it too, to be wrapped in TLS.
    connector.enforce_http(false);
    connector
}

/// A TLS configuration that trusts no certificate.
fn no_trust() -> rustls::ClientConfig {
    rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map(|builder| {
            builder
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth()
        })
        .unwrap_or_else(|_| unreachable!("ring supports the default protocol versions"))
}

/// Client of one gateway's REST API, e.g. `http://127.0.0.1:9091`.
#[derive(Clone)]
pub struct RestClient {
    base: String,
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
    /// `authorization` sent with every request, for a gateway whose controls
    /// need its token (`PUT /mode`).
    authorization: Option<String>,
}

impl RestClient {
    /// A client of `base`. An https:// base is refused at the handshake
    /// (no certificate is trusted): never plaintext either.
    pub fn new(base: impl Into<String>) -> Self {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(no_trust())
            .https_or_http()
            .enable_http1()
            .wrap_connector(http_connector());
        Self::with_connector(base.into(), connector)
    }

    /// A client of `base` through `connector` (TLS as the caller verifies it).
    pub fn with_connector(base: String, connector: HttpsConnector<HttpConnector>) -> Self {
        RestClient {
            base: base.trim_end_matches('/').to_owned(),
            client: Client::builder(TokioExecutor::new()).build(connector),
            timeout: Duration::from_secs(10),
            authorization: None,
        }
    }

    /// Sends `token` with every request, as `authorization: Bearer <token>`.
    pub fn with_token(mut self, token: &ControlToken) -> Self {
        self.authorization = Some(token.header_value());
        self
    }

    /// `POST /greet` with the article's JSON body.
    pub async fn greet(&self, first_name: &str, last_name: &str) -> anyhow::Result<RestResponse> {
        let body = serde_json::json!({ "first_name": first_name, "last_name": last_name }).to_string();
        self.send(Method::POST, "/greet", Some("application/json"), body).await
    }

    /// `PUT /mode`.
    pub async fn set_mode(&self, mode: greet_proto::Mode) -> anyhow::Result<RestResponse> {
        let body = serde_json::json!({ "mode": mode }).to_string();
        self.send(Method::PUT, "/mode", Some("application/json"), body).await
    }

    /// Any request; `content_type` `None` sends no Content-Type header.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: impl Into<Bytes>,
    ) -> anyhow::Result<RestResponse> {
        let url = format!("{}{}", self.base, path);
        let mut request = Request::builder().method(method.clone()).uri(&url);
        if let Some(content_type) = content_type {
            request = request.header(header::CONTENT_TYPE, content_type);
        }
        if let Some(authorization) = &self.authorization {
            request = request.header(header::AUTHORIZATION, authorization);
        }
        let request = request
            .body(Full::new(body.into()))
            .with_context(|| format!("building {method} {url}"))?;
        let exchange = async {
            let response = self.client.request(request).await?;
            let status = response.status();
            let text_of = |name| {
                let value = response.headers().get(name)?;
                value.to_str().ok().map(str::to_owned)
            };
            let content_type = text_of(header::CONTENT_TYPE);
            let www_authenticate = text_of(header::WWW_AUTHENTICATE);
            let bytes = response.into_body().collect().await?.to_bytes();
            anyhow::Ok(RestResponse {
                status,
                content_type,
                www_authenticate,
                body: String::from_utf8_lossy(&bytes).into_owned(),
            })
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .with_context(|| format!("{method} {url} timed out after {:?}", self.timeout))?
            .with_context(|| format!("{method} {url} failed"))
    }
}
