//! Sends one already-approved request over a pooled or new connection (TCP,
//! optional TLS, HTTP/1.1), with every wait bounded by the lookup's deadline
//! and the body by a byte cap.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::uri::Scheme;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::client::conn::http1::SendRequest;
use hyper::client::conn::http2;
use hyper_util::rt::TokioExecutor;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error, WasiBody};

use super::pool::{ConnectionPool, PoolKey};

/// Bounds for one request.
#[derive(Clone, Copy, Debug)]
pub struct SendLimits {
    pub connect_timeout: Duration,
    /// Nothing about this request may still be running after this instant.
    pub deadline: Instant,
    pub max_response_bytes: u64,
}

pub type IoFuture = Box<dyn Future<Output = Result<(), Error>> + Send>;

/// Called when the response-size cap trips, so the host can say which
/// limit failed the lookup.
pub type OnLimit = Arc<dyn Fn() + Send + Sync>;
/// Called with the body bytes received so far, for the audit record.
pub type OnBytes = Arc<dyn Fn(u64) + Send + Sync>;

/// Where a request goes and how: the host's connection pool and the TLS
/// settings of the instance making it.
#[derive(Clone)]
pub struct Route {
    pub pool: ConnectionPool,
    pub tls: Arc<ClientConfig>,
    pub verify_ssl: bool,
    /// Run once, when the request is about to be written to a connection.
    pub before_send: Option<super::BeforeSend>,
}

pub async fn send(
    mut request: Request<WasiBody>,
    route: Route,
    limits: SendLimits,
    on_limit: OnLimit,
    on_bytes: OnBytes,
) -> Result<(Response<WasiBody>, IoFuture), Error> {
    let uri = request.uri().clone();
    let https = uri.scheme() == Some(&Scheme::HTTPS);
    let host = uri.host().ok_or(Error::HttpRequestUriInvalid)?;
    let key = PoolKey {
        https,
        host: host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
        port: uri.port_u16().unwrap_or(if https { 443 } else { 80 }),
        verify_ssl: route.verify_ssl,
    };
    // The request line carries only the path: the authority went into `Host`.
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    *request.uri_mut() = path.parse().map_err(|_| Error::HttpRequestUriInvalid)?;

    let mut before_send = route.before_send.clone();
    let mut mark_sent = move || -> Result<(), Error> {
        match before_send.take() {
            Some(hook) => hook().map_err(|e| {
                Error::InternalError(Some(format!(
                    "the quota ledger could not record the request: {e}"
                )))
            }),
            None => Ok(()),
        }
    };
    let (sender, response) = loop {
        // An HTTP/2 connection carries any number of requests at once.
        if let Some(mut shared) = route.pool.shared(&key) {
            mark_sent()?;
            match try_send(shared.try_send_request(request), limits.deadline).await {
                Ok(response) => {
                    route.pool.note_reused();
                    break (None, response);
                }
                Err(Unsent(unsent, _)) => {
                    route.pool.forget_shared(&key);
                    request = unsent;
                    continue;
                }
                Err(Failed(e)) => return Err(e),
            }
        }
        let (connection, reused) = match ready_idle(&route.pool, &key, limits.deadline).await {
            Some(sender) => (Opened::Http1(sender), true),
            None => (open(&key, &route, limits).await?, false),
        };
        mark_sent()?;
        let mut sender = match connection {
            Opened::Http2(mut shared) => {
                match try_send(shared.try_send_request(request), limits.deadline).await {
                    Ok(response) => break (None, response),
                    Err(Unsent(..)) => return Err(Error::ConnectionTerminated),
                    Err(Failed(e)) => return Err(e),
                }
            }
            Opened::Http1(sender) => sender,
        };
        match try_send(sender.try_send_request(request), limits.deadline).await {
            Ok(response) => {
                if reused {
                    route.pool.note_reused();
                }
                break (Some(sender), response);
            }
            // The server closed an idle connection under us before the
            // request left: nothing was sent, so another one may carry it.
            Err(Unsent(unsent, _)) if reused => request = unsent,
            Err(Unsent(_, e) | Failed(e)) => return Err(e),
        }
    };

    let declared = response
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_response_bytes) {
        on_limit();
        return Err(Error::HttpResponseBodySize(Some(limits.max_response_bytes)));
    }
    let closing = response
        .headers()
        .get(http::header::CONNECTION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("close"));
    // HTTP/2 streams need no hand-back: the connection stays shared.
    let release = sender.filter(|_| !closing).map(|sender| Release {
        pool: route.pool.clone(),
        key,
        sender,
    });

    let response = response.map(|incoming| {
        CappedBody {
            inner: incoming,
            received: 0,
            max: limits.max_response_bytes,
            deadline: Box::pin(tokio::time::sleep_until(limits.deadline)),
            on_limit,
            on_bytes,
            release,
        }
        .boxed_unsync()
    });
    // The connection is driven by its own task and may outlive this
    // request in the pool, so there is nothing for the caller to await.
    let io: IoFuture = Box::new(async { Ok(()) });
    Ok((response, io))
}

/// A pooled connection ready for a new request, if one is.
async fn ready_idle(
    pool: &ConnectionPool,
    key: &PoolKey,
    deadline: Instant,
) -> Option<SendRequest<WasiBody>> {
    // An idle connection is ready at once or never; don't wait long on one.
    const READY_WAIT: Duration = Duration::from_millis(50);
    while let Some(mut sender) = pool.checkout(key) {
        let wait = READY_WAIT.min(remaining(deadline));
        if let Ok(Ok(())) = tokio::time::timeout(wait, sender.ready()).await {
            return Some(sender);
        }
    }
    None
}

enum Opened {
    Http1(SendRequest<WasiBody>),
    /// Already shared in the pool for other requests to the origin.
    Http2(http2::SendRequest<WasiBody>),
}

/// Why a request did not get a response.
enum SendFailure {
    /// The connection was gone before the request left; it may go elsewhere.
    Unsent(Request<WasiBody>, Error),
    Failed(Error),
}
use SendFailure::{Failed, Unsent};

/// Awaits one `try_send_request` (HTTP/1.1 or HTTP/2) within the deadline,
/// keeping the request when the connection never took it.
async fn try_send(
    sending: impl Future<
        Output = Result<
            Response<hyper::body::Incoming>,
            hyper::client::conn::TrySendError<Request<WasiBody>>,
        >,
    >,
    deadline: Instant,
) -> Result<Response<hyper::body::Incoming>, SendFailure> {
    match tokio::time::timeout(remaining(deadline), sending).await {
        Err(_) => Err(Failed(Error::ConnectionReadTimeout)),
        Ok(Ok(response)) => Ok(response),
        Ok(Err(mut failed)) => match failed.take_message() {
            Some(unsent) => Err(Unsent(unsent, Error::from(failed.into_error()))),
            None => Err(Failed(Error::from(failed.into_error()))),
        },
    }
}

/// A new connection to `key`'s origin: TCP, then TLS when the scheme says,
/// speaking HTTP/2 when the server chose it during the TLS handshake.
async fn open(key: &PoolKey, route: &Route, limits: SendLimits) -> Result<Opened, Error> {
    let connect_budget = limits.connect_timeout.min(remaining(limits.deadline));
    let tcp = match tokio::time::timeout(
        connect_budget,
        TcpStream::connect((key.host.as_str(), key.port)),
    )
    .await
    {
        Err(_) => return Err(Error::ConnectionTimeout),
        Ok(Err(e)) => return Err(connect_error(e)),
        Ok(Ok(tcp)) => tcp,
    };
    let _ = tcp.set_nodelay(true);

    let io: Box<dyn IoStream> = if key.https {
        let name = match key.host.parse::<std::net::IpAddr>() {
            Ok(ip) => ServerName::from(ip),
            Err(_) => ServerName::try_from(key.host.clone())?,
        };
        let handshake = tokio_rustls::TlsConnector::from(route.tls.clone()).connect(name, tcp);
        let stream = match tokio::time::timeout(remaining(limits.deadline), handshake).await {
            Err(_) => return Err(Error::ConnectionTimeout),
            Ok(Err(e)) => return Err(tls_error(e)),
            Ok(Ok(stream)) => stream,
        };
        if stream.get_ref().1.alpn_protocol() == Some(b"h2") {
            let (sender, connection) =
                http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await?;
            tokio::spawn(connection);
            route.pool.note_opened();
            route.pool.share(key.clone(), sender.clone());
            return Ok(Opened::Http2(sender));
        }
        Box::new(stream)
    } else {
        Box::new(tcp)
    };

    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    tokio::spawn(connection);
    route.pool.note_opened();
    Ok(Opened::Http1(sender))
}

/// Hands the connection back to the pool once its response has been read
/// to the end; a response abandoned half-way takes its connection with it.
struct Release {
    pool: ConnectionPool,
    key: PoolKey,
    sender: SendRequest<WasiBody>,
}

trait IoStream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static> IoStream for T {}

fn remaining(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

fn connect_error(e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::ConnectionRefused {
        return Error::ConnectionRefused;
    }
    let text = e.to_string();
    if text.contains("lookup") || text.contains("resolve") {
        return Error::DnsError {
            rcode: Some(text),
            info_code: None,
        };
    }
    Error::DestinationUnavailable
}

fn tls_error(e: std::io::Error) -> Error {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(rustls::Error::InvalidCertificate(_)) => Error::TlsCertificateError,
        Some(rustls::Error::AlertReceived(alert)) => Error::TlsAlertReceived {
            alert_id: Some(u8::from(*alert)),
            alert_message: Some(format!("{alert:?}")),
        },
        _ => Error::TlsProtocolError,
    }
}

/// A response body that fails once it passes `max` bytes or the deadline.
struct CappedBody {
    inner: hyper::body::Incoming,
    received: u64,
    max: u64,
    deadline: Pin<Box<Sleep>>,
    on_limit: OnLimit,
    on_bytes: OnBytes,
    release: Option<Release>,
}

impl CappedBody {
    fn release(&mut self) {
        if let Some(release) = self.release.take() {
            release.pool.checkin(release.key, release.sender);
        }
    }
}

impl Body for CappedBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        if self.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(Error::HttpResponseTimeout)));
        }
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.received += data.len() as u64;
                    (self.on_bytes)(self.received);
                    if self.received > self.max {
                        (self.on_limit)();
                        self.release = None;
                        return Poll::Ready(Some(Err(Error::HttpResponseBodySize(Some(self.max)))));
                    }
                }
                if self.inner.is_end_stream() {
                    self.release();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                self.release = None;
                Poll::Ready(Some(Err(Error::from(e))))
            }
            Poll::Ready(None) => {
                self.release();
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
