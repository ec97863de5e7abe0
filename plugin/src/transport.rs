//! One HTTP POST through `wasi:http/outgoing-handler`, the plugin's only way out.
//!
//! The host decides whether the request may leave and adds the API key
//! itself; this module only speaks HTTP and reports what happened.

use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, Scheme,
};
use wasip2::io::streams::StreamError;

/// The plugin's own ceiling on a response body, above the host's cap, so that
/// a host without a cap cannot make the plugin allocate without bound.
const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

pub struct Reply {
    pub status: u16,
    pub retry_after: Option<String>,
    pub body: Vec<u8>,
}

pub enum TransportError {
    Denied(String),
    Timeout(String),
    Unavailable(String),
    TooLarge(String),
}

/// POSTs `body` as JSON to `url`.
pub fn post_json(url: &str, body: &str) -> Result<Reply, TransportError> {
    let target = Target::parse(url).map_err(TransportError::Denied)?;
    let headers = Fields::from_list(&[("content-type".to_string(), b"application/json".to_vec())])
        .map_err(|e| {
            TransportError::Denied(format!("the host refused the content-type header: {e:?}"))
        })?;
    let request = OutgoingRequest::new(headers);
    let set = [
        request.set_method(&Method::Post).is_ok(),
        request.set_scheme(Some(&target.scheme)).is_ok(),
        request.set_authority(Some(&target.authority)).is_ok(),
        request.set_path_with_query(Some(&target.path)).is_ok(),
    ];
    if set.contains(&false) {
        return Err(TransportError::Denied(format!(
            "the host refused to build a request for {url}"
        )));
    }
    let outgoing = request
        .body()
        .map_err(|_| TransportError::Unavailable("could not open the request body".into()))?;
    let pending = outgoing_handler::handle(request, None).map_err(|e| describe_error(&e))?;
    // When the connection fails, writing the body fails first, but only the
    // response future knows why (refused, TLS, timeout...): prefer its error.
    let written = write_body(&outgoing, body.as_bytes())
        .and_then(|()| OutgoingBody::finish(outgoing, None).map_err(|e| describe_error(&e)));

    pending.subscribe().block();
    let response = match pending.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(e))) => return Err(describe_error(&e)),
        Some(Err(())) | None => {
            return Err(TransportError::Unavailable(
                "the response was lost by the host".into(),
            ));
        }
    };
    written?;
    let status = response.status();
    let retry_after = response
        .headers()
        .get("retry-after")
        .first()
        .map(|v| String::from_utf8_lossy(v).into_owned());
    let incoming = response
        .consume()
        .map_err(|_| TransportError::Unavailable("the response body could not be read".into()))?;
    let body = read_body(incoming)?;
    Ok(Reply {
        status,
        retry_after,
        body,
    })
}

fn write_body(outgoing: &OutgoingBody, bytes: &[u8]) -> Result<(), TransportError> {
    let stream = outgoing
        .write()
        .map_err(|_| TransportError::Unavailable("could not write the request body".into()))?;
    for chunk in bytes.chunks(4096) {
        stream
            .blocking_write_and_flush(chunk)
            .map_err(|e| stream_error("writing the request", e))?;
    }
    Ok(())
}

fn read_body(incoming: IncomingBody) -> Result<Vec<u8>, TransportError> {
    let mut body = Vec::new();
    {
        let stream = incoming
            .stream()
            .map_err(|_| TransportError::Unavailable("could not open the response body".into()))?;
        loop {
            match stream.blocking_read(64 * 1024) {
                Ok(chunk) => {
                    if body.len() + chunk.len() > MAX_BODY_BYTES {
                        return Err(TransportError::TooLarge(format!(
                            "the response body exceeds {MAX_BODY_BYTES} bytes"
                        )));
                    }
                    body.extend_from_slice(&chunk);
                }
                Err(StreamError::Closed) => break,
                Err(e) => return Err(stream_error("reading the response", e)),
            }
        }
    }
    let trailers = IncomingBody::finish(incoming);
    drop(trailers);
    Ok(body)
}

fn stream_error(doing: &str, error: StreamError) -> TransportError {
    match error {
        StreamError::Closed => {
            TransportError::Unavailable(format!("the connection closed while {doing}"))
        }
        StreamError::LastOperationFailed(e) => match wasip2::http::types::http_error_code(&e) {
            Some(code) => describe_error(&code),
            None => TransportError::Unavailable(format!(
                "failed while {doing}: {}",
                e.to_debug_string()
            )),
        },
    }
}

/// Turns a wasi:http error code into a sentence and the right bucket.
fn describe_error(code: &ErrorCode) -> TransportError {
    use ErrorCode::*;
    match code {
        HttpRequestDenied => TransportError::Denied("the host denied the outbound request".into()),
        ConnectionTimeout => TransportError::Timeout("timed out connecting to the provider".into()),
        ConnectionReadTimeout | HttpResponseTimeout => {
            TransportError::Timeout("timed out waiting for the provider's response".into())
        }
        HttpResponseBodySize(limit) => TransportError::TooLarge(match limit {
            Some(n) => format!("the response body exceeds the host's limit of {n} bytes"),
            None => "the response body exceeds the host's limit".into(),
        }),
        TlsCertificateError => TransportError::Unavailable(
            "TLS certificate rejected: the provider's certificate is not trusted".into(),
        ),
        TlsProtocolError => {
            TransportError::Unavailable("TLS handshake with the provider failed".into())
        }
        TlsAlertReceived(alert) => TransportError::Unavailable(format!(
            "TLS alert from the provider: {}",
            alert
                .alert_message
                .clone()
                .unwrap_or_else(|| "unspecified".into())
        )),
        DnsError(dns) => TransportError::Unavailable(format!(
            "the provider's host name could not be resolved ({})",
            dns.rcode.clone().unwrap_or_else(|| "no detail".into())
        )),
        DnsTimeout => {
            TransportError::Timeout("timed out resolving the provider's host name".into())
        }
        ConnectionRefused => {
            TransportError::Unavailable("the provider refused the connection".into())
        }
        DestinationNotFound | DestinationUnavailable | DestinationIpUnroutable => {
            TransportError::Unavailable("the provider cannot be reached".into())
        }
        InternalError(Some(message)) => TransportError::Unavailable(message.clone()),
        other => TransportError::Unavailable(format!("HTTP request failed: {other:?}")),
    }
}

/// The parts of the base URL a wasi:http request is built from.
struct Target {
    scheme: Scheme,
    authority: String,
    path: String,
}

impl Target {
    fn parse(url: &str) -> Result<Self, String> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| format!("the base URL `{url}` has no scheme"))?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "https" => Scheme::Https,
            "http" => Scheme::Http,
            other => {
                return Err(format!(
                    "the base URL scheme `{other}` is not http or https"
                ));
            }
        };
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(split);
        let path = if path.is_empty() {
            "/".to_string()
        } else {
            path.to_string()
        };
        Ok(Target {
            scheme,
            authority: authority.to_string(),
            path,
        })
    }
}
