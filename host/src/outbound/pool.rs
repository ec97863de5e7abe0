//! Connections the host keeps between lookups, so a batch pays for TCP
//! (and TLS) set-up once per origin instead of once per request: idle
//! HTTP/1.1 connections, one request at a time each, and HTTP/2
//! connections shared by every request to their origin. The pool belongs
//! to the host: a plugin asks for a request and never sees, chooses or
//! keeps a connection.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hyper::client::conn::{http1, http2};
use tokio::time::Instant;
use wasmtime_wasi_http::WasiBody;

/// Connections are only shared by requests that would have opened the
/// same one: same scheme, host, port and certificate checking.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct PoolKey {
    pub https: bool,
    pub host: String,
    pub port: u16,
    pub verify_ssl: bool,
}

/// Servers commonly drop idle keep-alive connections after 5 to 60 s; a
/// connection idle longer than this is more likely dead than useful.
const IDLE_TIMEOUT: Duration = Duration::from_secs(20);
/// Enough for the highest `--concurrency`; beyond it idle sockets are
/// closed rather than hoarded.
const MAX_IDLE_PER_ORIGIN: usize = 256;

struct Idle {
    sender: http1::SendRequest<WasiBody>,
    since: Instant,
}

/// How many connections were opened and how many requests rode on an
/// existing one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PoolStats {
    pub opened: u64,
    pub reused: u64,
    /// Of `opened`, how many speak HTTP/2 (negotiated by TLS ALPN).
    pub http2: u64,
}

#[derive(Clone, Default)]
pub struct ConnectionPool {
    idle: Arc<Mutex<HashMap<PoolKey, Vec<Idle>>>>,
    /// One multiplexed connection per origin that offered HTTP/2.
    shared: Arc<Mutex<HashMap<PoolKey, http2::SendRequest<WasiBody>>>>,
    opened: Arc<AtomicU64>,
    http2: Arc<AtomicU64>,
    reused: Arc<AtomicU64>,
}

impl ConnectionPool {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn stats(&self) -> PoolStats {
        PoolStats {
            opened: self.opened.load(Ordering::Relaxed),
            reused: self.reused.load(Ordering::Relaxed),
            http2: self.http2.load(Ordering::Relaxed),
        }
    }

    /// The most recently used live connection for `key`, if any. Closed
    /// and stale ones found on the way are dropped (which closes them).
    pub(crate) fn checkout(&self, key: &PoolKey) -> Option<http1::SendRequest<WasiBody>> {
        let mut idle = self.idle.lock().expect("connection pool poisoned");
        let list = idle.get_mut(key)?;
        while let Some(candidate) = list.pop() {
            if !candidate.sender.is_closed() && candidate.since.elapsed() < IDLE_TIMEOUT {
                return Some(candidate.sender);
            }
        }
        None
    }

    /// Gives back a connection whose last response was read to the end.
    pub(crate) fn checkin(&self, key: PoolKey, sender: http1::SendRequest<WasiBody>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().expect("connection pool poisoned");
        let list = idle.entry(key).or_default();
        list.retain(|c| !c.sender.is_closed() && c.since.elapsed() < IDLE_TIMEOUT);
        if list.len() < MAX_IDLE_PER_ORIGIN {
            list.push(Idle {
                sender,
                since: Instant::now(),
            });
        }
    }

    /// The HTTP/2 connection to `key`'s origin, if one is open.
    pub(crate) fn shared(&self, key: &PoolKey) -> Option<http2::SendRequest<WasiBody>> {
        let mut shared = self.shared.lock().expect("connection pool poisoned");
        match shared.get(key) {
            Some(sender) if !sender.is_closed() => Some(sender.clone()),
            Some(_) => {
                shared.remove(key);
                None
            }
            None => None,
        }
    }

    pub(crate) fn forget_shared(&self, key: &PoolKey) {
        let mut shared = self.shared.lock().expect("connection pool poisoned");
        shared.remove(key);
    }

    pub(crate) fn share(&self, key: PoolKey, sender: http2::SendRequest<WasiBody>) {
        self.http2.fetch_add(1, Ordering::Relaxed);
        let mut shared = self.shared.lock().expect("connection pool poisoned");
        shared.insert(key, sender);
    }

    pub(crate) fn note_opened(&self) {
        self.opened.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn note_reused(&self) {
        self.reused.fetch_add(1, Ordering::Relaxed);
    }
}
