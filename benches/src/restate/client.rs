//! One keep-alive HTTP/1.1 connection that sends any request (method, path, JSON body) and reads
//! the whole answer: what a workload that takes several requests per operation needs (W3, W4).
//! The same transport as [`crate::http_load`]: hyper's client connection over a `TcpStream`
//! with `TCP_NODELAY`, plain `http://` only.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// A connection to one server (`127.0.0.1:port`).
pub struct HttpConnection {
    address: String,
    host: HeaderValue,
    sender: SendRequest<Full<Bytes>>,
}

impl HttpConnection {
    /// Connects to `address` (`host:port`).
    pub async fn open(address: &str) -> Result<Self, String> {
        let host = HeaderValue::from_str(address).map_err(|e| format!("bad address: {e}"))?;
        let sender = connect(address).await?;
        Ok(Self {
            address: address.to_owned(),
            host,
            sender,
        })
    }

    /// `POST path` with a JSON body.
    pub async fn post(&mut self, path: &str, body: &str) -> Result<(StatusCode, Bytes), String> {
        self.request(Method::POST, path, Bytes::copy_from_slice(body.as_bytes()))
            .await
    }

    /// `GET path`.
    pub async fn get(&mut self, path: &str) -> Result<(StatusCode, Bytes), String> {
        self.request(Method::GET, path, Bytes::new()).await
    }

    /// Sends one request and reads the whole answer. A connection the server closed between
    /// two requests is opened again first; one that fails during a request is an error.
    pub async fn request(
        &mut self,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> Result<(StatusCode, Bytes), String> {
        if self.sender.is_closed() {
            self.sender = connect(&self.address).await?;
        }
        self.sender
            .ready()
            .await
            .map_err(|e| format!("connection to {} lost: {e}", self.address))?;
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, self.host.clone());
        if !body.is_empty() {
            request = request.header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        let request = request
            .body(Full::new(body))
            .map_err(|e| format!("cannot build a request for {path}: {e}"))?;
        let response = self
            .sender
            .send_request(request)
            .await
            .map_err(|e| format!("request to {} failed: {e}", self.address))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("cannot read an answer's body: {e}"))?
            .to_bytes();
        Ok((status, body))
    }
}

async fn connect(address: &str) -> Result<SendRequest<Full<Bytes>>, String> {
    let stream = TcpStream::connect(address)
        .await
        .map_err(|e| format!("cannot connect to {address}: {e}"))?;
    stream
        .set_nodelay(true)
        .map_err(|e| format!("cannot set TCP_NODELAY: {e}"))?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake with {address} failed: {e}"))?;
    tokio::spawn(async move {
        // Ends when the sender is dropped or the server closes.
        let _ = connection.await;
    });
    Ok(sender)
}
