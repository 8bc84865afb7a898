//! Fetching straight from a URL (local runs, compose, a port-forward): a
//! pooled hyper client, `http://` only.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::{
    ACCEPT, BodyError, Fetch, FetchError, FetchFuture, Fetched, content_type, error_chain, http_status_cause,
    read_capped, read_excerpt, too_big_cause,
};
use crate::reading::{Target, Via};
use greet_proto::sanitize::sanitize_truncated;

/// Reads [`Via::Url`] targets over plain HTTP/1.1.
#[derive(Clone, Debug)]
pub struct HttpFetch {
    client: Client<HttpConnector, Empty<Bytes>>,
}

impl Default for HttpFetch {
    fn default() -> Self {
        HttpFetch::new()
    }
}

impl HttpFetch {
    pub fn new() -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            // Scrapes come every second or so: keep the connection.
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(1)
            .build(connector);
        HttpFetch { client }
    }

    /// Fetches `url`.
    pub async fn fetch_url(&self, url: &str, max_bytes: usize) -> Result<Fetched, FetchError> {
        let shown = sanitize_truncated(url, 300);
        let uri: http::Uri = url
            .parse()
            .map_err(|_| FetchError(format!("not a URL: {shown} (expected http://host:port/path)")))?;
        match uri.scheme_str() {
            Some("http") if uri.authority().is_some() => {}
            Some("https") => {
                return Err(FetchError(format!(
                    "https is not supported yet for metrics URLs ({shown}); use http://, or a port-forward"
                )));
            }
            _ => return Err(FetchError(format!("not an http:// URL: {shown}"))),
        }
        let request = http::Request::get(uri)
            .header(http::header::ACCEPT, ACCEPT)
            .header(http::header::USER_AGENT, "greet-top")
            .body(Empty::new())
            .map_err(|e| FetchError(format!("cannot request {shown}: {}", error_chain(&e))))?;
        let response = self.client.request(request).await.map_err(|e| {
            if e.is_connect() {
                // The top error ("client error (Connect)") says nothing its
                // sources do not.
                let cause = std::error::Error::source(&e).map_or_else(|| error_chain(&e), error_chain);
                FetchError(format!("cannot connect to {shown}: {cause}"))
            } else {
                FetchError(format!("the request to {shown} failed: {}", error_chain(&e)))
            }
        })?;
        let (parts, body) = response.into_parts();
        if !parts.status.is_success() {
            let excerpt = read_excerpt(body).await;
            return Err(FetchError(http_status_cause(parts.status, &shown, &excerpt)));
        }
        let too_big = parts
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
            .is_some_and(|n| n > max_bytes as u64);
        if too_big {
            return Err(FetchError(too_big_cause(max_bytes)));
        }
        let body = read_capped(body, max_bytes).await.map_err(|e| match e {
            BodyError::TooBig => FetchError(too_big_cause(max_bytes)),
            BodyError::Failed(e) => FetchError(format!(
                "the answer from {shown} broke off: {}",
                sanitize_truncated(&e, 200)
            )),
        })?;
        Ok(Fetched {
            body,
            content_type: content_type(&parts.headers),
        })
    }
}

impl Fetch for HttpFetch {
    fn fetch<'a>(&'a self, target: &'a Target, max_bytes: usize) -> FetchFuture<'a> {
        Box::pin(async move {
            match &target.via {
                Via::Url(url) => self.fetch_url(url, max_bytes).await,
                Via::PodProxy { .. } => Err(FetchError(
                    "reading a pod through the API server needs a Kubernetes client (PodProxyFetch)".to_owned(),
                )),
            }
        })
    }
}
