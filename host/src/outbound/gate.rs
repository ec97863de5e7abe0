//! The only door out of the sandbox: `wasi:http` requests are checked here,
//! given the instance's credentials here, and recorded here.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{HeaderName, HeaderValue, Request};
use tokio::time::Instant;
use url::Url;
use wasmtime_wasi_http::{
    DEFAULT_FORBIDDEN_HEADERS, Error, ForbiddenHeaderFilter, RequestOptions, WasiBody,
    WasiHttpHooks,
};

use super::client::{self, SendLimits};
use super::pool::ConnectionPool;
use super::tls::TlsConfigs;
use crate::secret::Secret;

/// One outbound request as the host saw it. Never contains a secret: the
/// URL is the plugin's, and the plugin never has the key.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OutboundRecord {
    pub method: String,
    pub url: String,
    pub allowed: bool,
    /// Why a denied request was denied.
    pub denied_because: Option<String>,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub millis: u64,
    /// The host limit this request tripped, e.g. `response-size`.
    pub limit: Option<String>,
    /// Response body bytes received.
    pub bytes: u64,
}

/// Shared between the gate (inside the store) and whoever runs the lookup.
pub type OutboundLog = Arc<Mutex<Vec<OutboundRecord>>>;

/// What the gate needs to know about the instance.
pub struct GatePolicy {
    /// `None` denies every request (e.g. while calling `describe`).
    pub base_url: Option<Url>,
    /// Header name and secret, added to requests to the base URL's origin.
    pub credential: Option<(HeaderName, Secret)>,
    pub verify_ssl: bool,
    /// How many requests this call may make (the plugin's declared cost).
    pub max_requests: u32,
    pub deadline: Instant,
    pub max_response_bytes: u64,
    /// Runs once a connection to the provider is open, just before the
    /// request is written to it (the quota ledger records that a request
    /// was sent); an error stops the request. A provider that could not be
    /// reached received nothing, so it is not run then.
    pub before_send: Option<BeforeSend>,
}

pub type BeforeSend = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

pub struct OutboundGate {
    policy: GatePolicy,
    tls: TlsConfigs,
    pool: ConnectionPool,
    sent: u32,
    log: OutboundLog,
}

/// Connecting should never take long; the rest of the lookup's time is for
/// the provider to answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

impl OutboundGate {
    pub fn new(
        policy: GatePolicy,
        tls: TlsConfigs,
        pool: ConnectionPool,
        log: OutboundLog,
    ) -> Self {
        OutboundGate {
            policy,
            tls,
            pool,
            sent: 0,
            log,
        }
    }

    /// Decides whether `request` may leave; `Err` says why not.
    fn admit(&self, request: &Request<WasiBody>) -> Result<(), String> {
        let Some(base) = &self.policy.base_url else {
            return Err("this call has no network access".into());
        };
        let uri = request.uri();
        if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
            return Err("the URL carries credentials".into());
        }
        let scheme = uri.scheme_str().unwrap_or("");
        let host = uri
            .host()
            .unwrap_or("")
            .trim_start_matches('[')
            .trim_end_matches(']');
        let port = uri.port_u16().or(match scheme {
            "https" => Some(443),
            "http" => Some(80),
            _ => None,
        });
        let base_host = base
            .host_str()
            .unwrap_or("")
            .trim_start_matches('[')
            .trim_end_matches(']');
        let same_origin = scheme.eq_ignore_ascii_case(base.scheme())
            && host.eq_ignore_ascii_case(base_host)
            && port == base.port_or_known_default();
        if !same_origin {
            return Err(format!(
                "{scheme}://{host}:{} is not the instance's origin {}://{base_host}:{}",
                port.map_or("?".into(), |p| p.to_string()),
                base.scheme(),
                base.port_or_known_default().unwrap_or_default()
            ));
        }
        if Instant::now() >= self.policy.deadline {
            return Err("the lookup's deadline has passed".into());
        }
        if self.sent >= self.policy.max_requests {
            return Err(format!(
                "the plugin declared {} request(s) for this call and has used them all",
                self.policy.max_requests
            ));
        }
        Ok(())
    }

    fn record(&self, record: OutboundRecord) -> usize {
        let mut log = self.log.lock().expect("outbound log poisoned");
        log.push(record);
        log.len() - 1
    }
}

fn describe_uri(request: &Request<WasiBody>) -> String {
    // Query strings are kept: they are the plugin's own, not the host's secret.
    request.uri().to_string()
}

impl WasiHttpHooks for OutboundGate {
    fn forbidden_header_filter(&mut self) -> ForbiddenHeaderFilter {
        let auth = self
            .policy
            .credential
            .as_ref()
            .map(|(name, _)| name.clone());
        Arc::new(move |name| {
            DEFAULT_FORBIDDEN_HEADERS.contains(name) || auth.as_ref() == Some(name)
        })
    }

    fn send_request(
        &mut self,
        mut request: Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<
        dyn Future<
                Output = Result<
                    (
                        http::Response<WasiBody>,
                        Box<dyn Future<Output = Result<(), Error>> + Send>,
                    ),
                    Error,
                >,
            > + Send,
    > {
        let method = request.method().to_string();
        let url = describe_uri(&request);
        if let Err(reason) = self.admit(&request) {
            self.record(OutboundRecord {
                method,
                url,
                allowed: false,
                denied_because: Some(reason),
                status: None,
                error: None,
                millis: 0,
                limit: None,
                bytes: 0,
            });
            return Box::new(async { Err(Error::HttpRequestDenied) });
        }
        self.sent += 1;
        if let Some((name, secret)) = &self.policy.credential {
            match HeaderValue::from_str(secret.expose()) {
                Ok(mut value) => {
                    value.set_sensitive(true);
                    request.headers_mut().insert(name.clone(), value);
                }
                Err(_) => {
                    return Box::new(async {
                        Err(Error::InternalError(Some(
                            "the instance's API key contains characters not allowed in a header"
                                .into(),
                        )))
                    });
                }
            }
        }
        let index = self.record(OutboundRecord {
            method,
            url,
            allowed: true,
            denied_because: None,
            status: None,
            error: None,
            millis: 0,
            limit: None,
            bytes: 0,
        });
        let connect_timeout = options
            .and_then(|o| o.connect_timeout)
            .map_or(CONNECT_TIMEOUT, |t| t.min(CONNECT_TIMEOUT));
        let limits = SendLimits {
            connect_timeout,
            deadline: self.policy.deadline,
            max_response_bytes: self.policy.max_response_bytes,
        };
        let route = client::Route {
            pool: self.pool.clone(),
            tls: self.tls.for_instance(self.policy.verify_ssl),
            verify_ssl: self.policy.verify_ssl,
            before_send: self.policy.before_send.clone(),
        };
        let log = self.log.clone();
        let trip_log = self.log.clone();
        let on_size_limit: client::OnLimit = Arc::new(move || {
            if let Some(entry) = trip_log
                .lock()
                .expect("outbound log poisoned")
                .get_mut(index)
            {
                entry.limit = Some("response-size".into());
            }
        });
        let bytes_log = self.log.clone();
        let on_bytes: client::OnBytes = Arc::new(move |received| {
            if let Some(entry) = bytes_log
                .lock()
                .expect("outbound log poisoned")
                .get_mut(index)
            {
                entry.bytes = received;
            }
        });
        Box::new(async move {
            let started = Instant::now();
            let result = client::send(request, route, limits, on_size_limit, on_bytes).await;
            if let Some(entry) = log.lock().expect("outbound log poisoned").get_mut(index) {
                entry.millis = started.elapsed().as_millis() as u64;
                match &result {
                    Ok((response, _)) => entry.status = Some(response.status().as_u16()),
                    Err(e) => entry.error = Some(e.to_string()),
                }
            }
            result
        })
    }
}

impl GatePolicy {
    /// For calls that must not touch the network, like `describe`.
    pub fn no_network() -> Self {
        GatePolicy {
            base_url: None,
            credential: None,
            verify_ssl: true,
            max_requests: 0,
            deadline: Instant::now() + Duration::from_secs(60),
            max_response_bytes: 0,
            before_send: None,
        }
    }
}
