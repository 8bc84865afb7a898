//! Loopback servers and a scripted fetcher.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{HeaderMap, Response, StatusCode, Uri};
use bytes::Bytes;
use pod_metrics::{Fetch, FetchError, FetchFuture, Fetched, Target, Via};

/// What a path answers.
#[derive(Clone)]
pub(crate) enum Answer {
    Page {
        status: u16,
        content_type: &'static str,
        body: Bytes,
    },
    /// Never answers.
    Hang,
    /// `chunks` chunks of `chunk_len` bytes, chunked (no Content-Length).
    Stream { chunk_len: usize, chunks: usize },
}

pub(crate) fn page(status: u16, content_type: &'static str, body: impl Into<Bytes>) -> Answer {
    Answer::Page {
        status,
        content_type,
        body: body.into(),
    }
}

#[derive(Default)]
pub(crate) struct State {
    answers: Mutex<HashMap<String, Answer>>,
    /// Requests seen, `path?query` and the Accept header.
    pub(crate) requests: Mutex<Vec<(String, String)>>,
    pub(crate) hits: AtomicUsize,
}

/// An HTTP server on 127.0.0.1 answering by path (404 for unknown ones).
pub(crate) struct Server {
    pub(crate) addr: SocketAddr,
    pub(crate) state: Arc<State>,
}

impl Server {
    pub(crate) async fn start() -> Server {
        let state = Arc::new(State::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let app = axum::Router::new().fallback({
            let state = Arc::clone(&state);
            move |uri: Uri, headers: HeaderMap| answer(Arc::clone(&state), uri, headers)
        });
        tokio::spawn(async move { axum::serve(listener, app).await });
        Server { addr, state }
    }

    pub(crate) fn set(&self, path: &str, answer: Answer) {
        self.state.answers.lock().unwrap().insert(path.to_owned(), answer);
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub(crate) fn requests(&self) -> Vec<(String, String)> {
        self.state.requests.lock().unwrap().clone()
    }
}

async fn answer(state: Arc<State>, uri: Uri, headers: HeaderMap) -> Response<Body> {
    state.hits.fetch_add(1, Ordering::SeqCst);
    let accept = headers
        .get("accept")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    let path_and_query = uri.path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_default();
    state.requests.lock().unwrap().push((path_and_query, accept));
    let found = state.answers.lock().unwrap().get(uri.path()).cloned();
    match found {
        Some(Answer::Page {
            status,
            content_type,
            body,
        }) => Response::builder()
            .status(StatusCode::from_u16(status).unwrap())
            .header("content-type", content_type)
            .body(Body::from(body))
            .unwrap(),
        Some(Answer::Hang) => std::future::pending().await,
        Some(Answer::Stream { chunk_len, chunks }) => {
            let stream = futures_util::stream::iter(
                (0..chunks).map(move |_| Ok::<_, Infallible>(Bytes::from(vec![b'#'; chunk_len]))),
            );
            Response::builder()
                .header("content-type", "text/plain")
                .body(Body::from_stream(stream))
                .unwrap()
        }
        None => Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body(Body::from("404 page not found\n"))
            .unwrap(),
    }
}

/// A target read from `url`.
pub(crate) fn url_target(pod: &str, url: String) -> Target {
    Target {
        pod: pod.to_owned(),
        ip: String::new(),
        via: Via::Url(url),
    }
}

/// What a scripted pod answers.
#[derive(Clone)]
pub(crate) enum Script {
    Body(String),
    Fail(String),
    Hang,
}

/// A fetcher answering each pod (by `Target::pod`) from a script.
#[derive(Default)]
pub(crate) struct Scripted {
    scripts: Mutex<HashMap<String, Script>>,
    hits: Mutex<HashMap<String, usize>>,
}

impl Scripted {
    pub(crate) fn set(&self, pod: &str, script: Script) {
        self.scripts.lock().unwrap().insert(pod.to_owned(), script);
    }

    pub(crate) fn hits(&self, pod: &str) -> usize {
        self.hits.lock().unwrap().get(pod).copied().unwrap_or(0)
    }
}

impl Fetch for Scripted {
    fn fetch<'a>(&'a self, target: &'a Target, _max_bytes: usize) -> FetchFuture<'a> {
        *self.hits.lock().unwrap().entry(target.pod.clone()).or_default() += 1;
        let script = self.scripts.lock().unwrap().get(&target.pod).cloned();
        Box::pin(async move {
            match script {
                Some(Script::Body(body)) => Ok(Fetched {
                    body: Bytes::from(body),
                    content_type: Some("text/plain; version=0.0.4".to_owned()),
                }),
                Some(Script::Fail(cause)) => Err(FetchError(cause)),
                Some(Script::Hang) => std::future::pending().await,
                None => Err(FetchError("no script".to_owned())),
            }
        })
    }
}

/// A pod's `grpc_server_handled_total` page: `ok` OK calls, `failed` Unavailable.
pub(crate) fn handled(ok: u64, failed: u64) -> String {
    format!(
        "grpc_server_handled_total{{grpc_service=\"greet.GreetService\",grpc_method=\"Greet\",grpc_code=\"OK\"}} {ok}\n\
         grpc_server_handled_total{{grpc_service=\"greet.GreetService\",grpc_method=\"Greet\",grpc_code=\"Unavailable\"}} {failed}\n"
    )
}
