//! A ThreatFox-compatible server on 127.0.0.1, for tests and the demo.
//!
//! It runs on its own thread with its own async runtime, so it serves while
//! the code under test blocks, awaits, or runs in a child process. It checks
//! the `Auth-Key` header, records every request, and can be told to
//! misbehave in each way the real service (or the network) does.

pub mod api;
pub mod dataset;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// The path the API lives under, as on the real service.
pub const API_PATH: &str = "/api/v1/";

/// How the server answers the next requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behavior {
    /// Answer from the data set.
    Normal,
    /// Answer every request with this HTTP status and a short body.
    HttpStatus(u16),
    /// HTTP 429 with this `Retry-After` value, if any.
    RateLimited(Option<String>),
    /// Wait this long, then answer normally.
    Slow(Duration),
    /// HTTP 200 with a body that is not JSON.
    MalformedJson,
    /// HTTP 200 with a valid JSON envelope this many bytes long.
    Oversized(usize),
    /// Like `Oversized`, but chunked, with no `Content-Length` to warn.
    OversizedChunked(usize),
    /// HTTP 200 with this `query_status` and a sentence in `data`.
    QueryStatus(String),
    /// `ok` with one record that lacks its `ioc` field.
    BrokenRecord,
    /// HTTP 403 whose body repeats the key it received (as some services do).
    EchoKey,
}

/// One request as the server received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub auth_key: Option<String>,
    pub content_type: Option<String>,
    pub body: String,
    /// `HTTP/1.1` or `HTTP/2.0`.
    pub version: String,
}

#[derive(Clone, Default)]
struct Shared {
    behavior: Arc<Mutex<Option<Behavior>>>,
    /// Requests still to answer with a failure before `behavior` applies.
    failures: Arc<Mutex<Vec<Behavior>>>,
    received: Arc<Mutex<Vec<Received>>>,
    /// TCP connections accepted, to see whether clients keep them alive.
    connections: Arc<std::sync::atomic::AtomicUsize>,
}

/// A running mock. Dropping it stops the server.
pub struct MockThreatFox {
    addr: SocketAddr,
    tls: bool,
    api_key: String,
    shared: Shared,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Self-signed certificate material for the HTTPS variant.
struct TlsMaterial {
    acceptor: tokio_rustls::TlsAcceptor,
}

impl MockThreatFox {
    /// Plain HTTP on a free port of 127.0.0.1, accepting `api_key`.
    pub fn start(api_key: &str) -> MockThreatFox {
        Self::spawn(api_key, 0, None)
    }

    /// HTTP on a chosen port (0 for any), for the standalone binary.
    pub fn start_on(api_key: &str, port: u16) -> MockThreatFox {
        Self::spawn(api_key, port, None)
    }

    /// HTTPS with a self-signed certificate for `localhost` and 127.0.0.1,
    /// which no default trust store accepts.
    pub fn start_tls(api_key: &str) -> MockThreatFox {
        Self::spawn(api_key, 0, Some(self_signed(false)))
    }

    /// Like `start_tls`, offering HTTP/2 (and HTTP/1.1) during the handshake.
    pub fn start_tls_h2(api_key: &str) -> MockThreatFox {
        Self::spawn(api_key, 0, Some(self_signed(true)))
    }

    fn spawn(api_key: &str, port: u16, tls: Option<TlsMaterial>) -> MockThreatFox {
        let shared = Shared::default();
        let std_listener =
            std::net::TcpListener::bind(("127.0.0.1", port)).expect("cannot bind 127.0.0.1");
        std_listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let addr = std_listener.local_addr().expect("local address");
        let (stop, stopped) = oneshot::channel();
        let is_tls = tls.is_some();
        let key = api_key.to_string();
        let state = shared.clone();
        let thread = std::thread::Builder::new()
            .name("threatfox-mock".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("mock runtime");
                runtime.block_on(async move {
                    let listener = TcpListener::from_std(std_listener).expect("tokio listener");
                    tokio::select! {
                        _ = serve(listener, tls, key, state) => {}
                        _ = stopped => {}
                    }
                });
            })
            .expect("cannot start the mock thread");
        MockThreatFox {
            addr,
            tls: is_tls,
            api_key: api_key.to_string(),
            shared,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT/api/v1/` (or `https://localhost:PORT/...`).
    pub fn base_url(&self) -> url::Url {
        let text = if self.tls {
            format!("https://localhost:{}{API_PATH}", self.addr.port())
        } else {
            format!("http://127.0.0.1:{}{API_PATH}", self.addr.port())
        };
        url::Url::parse(&text).expect("valid URL")
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    pub fn set_behavior(&self, behavior: Behavior) {
        *self.shared.behavior.lock().unwrap() = Some(behavior);
    }

    /// Answers the next requests with these behaviors, one each, then
    /// goes back to the current behavior.
    pub fn fail_next(&self, failures: Vec<Behavior>) {
        let mut queue = self.shared.failures.lock().unwrap();
        *queue = failures;
        queue.reverse();
    }

    /// Every request received so far.
    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }

    pub fn request_count(&self) -> usize {
        self.shared.received.lock().unwrap().len()
    }

    /// TCP connections accepted so far.
    pub fn connection_count(&self) -> usize {
        self.shared
            .connections
            .load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for MockThreatFox {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve(listener: TcpListener, tls: Option<TlsMaterial>, key: String, shared: Shared) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        shared
            .connections
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let key = key.clone();
        let shared = shared.clone();
        let service = service_fn(move |request| handle(request, key.clone(), shared.clone()));
        match &tls {
            None => {
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            Some(material) => {
                let acceptor = material.acceptor.clone();
                tokio::spawn(async move {
                    // A client that rejects our certificate hangs up here.
                    let Ok(stream) = acceptor.accept(stream).await else {
                        return;
                    };
                    if stream.get_ref().1.alpn_protocol() == Some(b"h2") {
                        let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    } else {
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    }
                });
            }
        }
    }
}

async fn handle(
    request: Request<Incoming>,
    key: String,
    shared: Shared,
) -> Result<Response<Body>, Infallible> {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let auth_key = header("auth-key");
    let content_type = header("content-type");
    let method = request.method().to_string();
    let path = request.uri().path().to_string();
    let version = format!("{:?}", request.version());
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    shared.received.lock().unwrap().push(Received {
        method: method.clone(),
        path: path.clone(),
        auth_key: auth_key.clone(),
        content_type,
        body: String::from_utf8_lossy(&body).into_owned(),
        version,
    });
    let queued = shared.failures.lock().unwrap().pop();
    let behavior = queued.unwrap_or_else(|| {
        shared
            .behavior
            .lock()
            .unwrap()
            .clone()
            .unwrap_or(Behavior::Normal)
    });

    if path != API_PATH {
        return Ok(text(StatusCode::NOT_FOUND, "Not Found"));
    }
    if method != "POST" {
        return Ok(text(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed"));
    }
    if behavior == Behavior::EchoKey {
        let echoed = format!("Access denied for key {}", auth_key.unwrap_or_default());
        return Ok(text(StatusCode::FORBIDDEN, &echoed));
    }
    match auth_key {
        None => {
            return Ok(text(
                StatusCode::UNAUTHORIZED,
                "Unauthorized: no Auth-Key header",
            ));
        }
        Some(k) if k != key => return Ok(text(StatusCode::FORBIDDEN, "Forbidden")),
        Some(_) => {}
    }
    Ok(match behavior {
        Behavior::Normal | Behavior::EchoKey => json(&api::answer(&body)),
        Behavior::HttpStatus(code) => text(
            StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            "Service temporarily unavailable",
        ),
        Behavior::RateLimited(retry_after) => {
            let mut response = text(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests");
            if let Some(value) = retry_after {
                response
                    .headers_mut()
                    .insert("retry-after", value.parse().expect("header value"));
            }
            response
        }
        Behavior::Slow(delay) => {
            tokio::time::sleep(delay).await;
            json(&api::answer(&body))
        }
        Behavior::MalformedJson => text(
            StatusCode::OK,
            "{\"query_status\": \"ok\", \"data\": [ {\"id\": ",
        ),
        Behavior::Oversized(size) => {
            let padding = "x".repeat(size.saturating_sub(60));
            json(&serde_json::json!({"query_status": "no_result", "data": padding}))
        }
        Behavior::OversizedChunked(size) => {
            let mut response = Response::new(BoxBody::new(Chunked { left: size }));
            response.headers_mut().insert(
                "content-type",
                "application/json".parse().expect("header value"),
            );
            response
        }
        Behavior::QueryStatus(status) => json(
            &serde_json::json!({"query_status": status, "data": "The mock was told to say this"}),
        ),
        Behavior::BrokenRecord => {
            let mut record = dataset::records().remove(0);
            record.as_object_mut().unwrap().remove("ioc");
            json(&serde_json::json!({"query_status": "ok", "data": [record]}))
        }
    })
}

type Body = BoxBody<Bytes, Infallible>;

fn text(status: StatusCode, body: &str) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())).boxed());
    *response.status_mut() = status;
    response
}

fn json(value: &serde_json::Value) -> Response<Body> {
    let mut response = text(StatusCode::OK, &value.to_string());
    response.headers_mut().insert(
        "content-type",
        "application/json".parse().expect("header value"),
    );
    response
}

fn self_signed(http2: bool) -> TlsMaterial {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .expect("self-signed certificate");
    let cert = certified.cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::try_from(certified.signing_key.serialize_der())
        .expect("private key");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .expect("server certificate");
    if http2 {
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    }
    TlsMaterial {
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
    }
}

/// A body of `left` bytes sent in 64 KiB chunks, length unknown up front.
struct Chunked {
    left: usize,
}

impl hyper::body::Body for Chunked {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
        if self.left == 0 {
            return std::task::Poll::Ready(None);
        }
        let n = self.left.min(64 * 1024);
        self.left -= n;
        std::task::Poll::Ready(Some(Ok(hyper::body::Frame::data(Bytes::from(vec![
            b' ';
            n
        ])))))
    }
}
