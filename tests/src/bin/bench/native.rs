//! The baseline: a plain Rust client sending the identical request with
//! the same HTTP stack the host uses (hyper HTTP/1.1 over tokio, idle
//! connections kept alive and reused), and parsing the JSON answer.

use std::sync::Mutex;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

pub struct Native {
    addr: String,
    key: String,
    indicator: String,
    idle: Mutex<Vec<SendRequest<Full<Bytes>>>>,
}

impl Native {
    pub fn new(addr: String, key: &str, indicator: &str) -> Native {
        Native {
            addr,
            key: key.into(),
            indicator: indicator.into(),
            idle: Mutex::new(Vec::new()),
        }
    }

    pub async fn lookup(&self) {
        let mut sender = self.connection().await;
        let body =
            serde_json::json!({"query": "search_ioc", "search_term": self.indicator}).to_string();
        let request = hyper::Request::post("/api/v1/")
            .header("host", &self.addr)
            .header("content-type", "application/json")
            .header("auth-key", &self.key)
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        self.idle.lock().unwrap().push(sender);
        let parsed: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(parsed["query_status"], "ok");
    }

    async fn connection(&self) -> SendRequest<Full<Bytes>> {
        loop {
            let Some(mut sender) = self.idle.lock().unwrap().pop() else {
                break;
            };
            if sender.ready().await.is_ok() {
                return sender;
            }
        }
        let stream = tokio::net::TcpStream::connect(&self.addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(connection);
        sender
    }
}
