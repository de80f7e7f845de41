//! An HTTP/1.1 load generator: [`closed_loop`] POSTs one body to one path of a server, from
//! `concurrency` workers that each own one keep-alive connection and wait for each answer (body
//! included) before sending the next request.
//!
//! Nothing here knows the engine: a [`HttpTarget`] is a base URL, a path and a body, so the same
//! load can be aimed at the engine's ingress in this process or at a Restate server elsewhere
//! (`HttpTarget::post_json("http://127.0.0.1:8080", "/Bench/three_steps", "\"in\"")`).
//! Only `http://` is spoken (no TLS), over hyper's client connection
//! (`hyper::client::conn::http1`) on a `tokio::net::TcpStream` with `TCP_NODELAY`.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::load::{Outcome, Sample, Window, Worker, closed_loop_workers};

/// What to request: `POST {base_url}{path}` with a JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpTarget {
    /// Where the server listens: `http://host:port`, optionally followed by a path prefix.
    pub base_url: String,
    /// The path requested below the base URL, starting with `/`: `/Bench/three_steps`.
    pub path: String,
    /// The body of every request, sent as `content-type: application/json`.
    pub body: Bytes,
    /// If set, a 200 answer must carry exactly this body, or the run fails: it proves that the
    /// server did the work measured.
    pub expect: Option<Bytes>,
    /// Extra request headers, such as a session cookie.
    pub headers: Vec<(String, String)>,
}

impl HttpTarget {
    /// `POST {base_url}{path}` with `body`, any 200 answer accepted.
    pub fn post_json(
        base_url: impl Into<String>,
        path: impl Into<String>,
        body: impl Into<Bytes>,
    ) -> Self {
        Self {
            base_url: base_url.into(),
            path: path.into(),
            body: body.into(),
            expect: None,
            headers: Vec::new(),
        }
    }

    /// The same target, sending `name: value` with every request.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The same target, whose 200 answers must carry exactly `body`.
    pub fn expecting(self, body: impl Into<Bytes>) -> Self {
        Self {
            expect: Some(body.into()),
            ..self
        }
    }
}

/// Where to connect, and the request line's target and `Host` header.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Endpoint {
    /// `host:port`, as `TcpStream::connect` takes it.
    address: String,
    /// The `Host` header.
    host: HeaderValue,
    /// The request's target in origin form: the base URL's path prefix, then the path.
    uri: Uri,
}

impl Endpoint {
    fn of(target: &HttpTarget) -> Result<Self, String> {
        let bad = |why: &str| format!("bad base URL {:?}: {why}", target.base_url);
        let base: Uri = target.base_url.parse().map_err(|e| bad(&format!("{e}")))?;
        if base.scheme_str() != Some("http") {
            return Err(bad("only http:// is supported"));
        }
        let authority = base.authority().ok_or_else(|| bad("no host"))?;
        let port = authority.port_u16().unwrap_or(80);
        let address = format!("{}:{port}", authority.host());
        let host = HeaderValue::from_str(authority.as_str()).map_err(|e| bad(&format!("{e}")))?;
        if !target.path.starts_with('/') {
            return Err(format!("the path {:?} must start with /", target.path));
        }
        let uri = format!("{}{}", base.path().trim_end_matches('/'), target.path)
            .parse()
            .map_err(|e| format!("bad path {:?}: {e}", target.path))?;
        Ok(Self { address, host, uri })
    }
}

/// One keep-alive HTTP/1.1 connection that sends any request (method, path, headers, JSON body)
/// and reads the whole answer; the transport under [`Connection`], and what workloads of several
/// requests per operation use directly.
pub struct HttpConnection {
    address: String,
    host: HeaderValue,
    sender: SendRequest<Full<Bytes>>,
}

impl HttpConnection {
    /// Connects to `address` (`host:port`).
    pub async fn open(address: &str) -> Result<Self, String> {
        let host = HeaderValue::from_str(address).map_err(|e| format!("bad address: {e}"))?;
        Self::open_as(address, host).await
    }

    async fn open_as(address: &str, host: HeaderValue) -> Result<Self, String> {
        let sender = connect(address).await?;
        Ok(Self {
            address: address.to_owned(),
            host,
            sender,
        })
    }

    /// `POST path` with a JSON body.
    pub async fn post(&mut self, path: &str, body: &str) -> Result<(StatusCode, Bytes), String> {
        let body = Bytes::copy_from_slice(body.as_bytes());
        self.request(Method::POST, path, &[], body).await
    }

    /// `GET path`.
    pub async fn get(&mut self, path: &str) -> Result<(StatusCode, Bytes), String> {
        self.request(Method::GET, path, &[], Bytes::new()).await
    }

    /// Sends one request (a non-empty body as `application/json`) and reads the whole answer. A
    /// connection the server closed between two requests is opened again first; one that fails
    /// during a request is an error.
    pub async fn request(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(String, String)],
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
        for (name, value) in headers {
            request = request.header(name.as_str(), value.as_str());
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

/// Opens a keep-alive connection; a task drives it until its sender is dropped.
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
        // Ends when the sender is dropped or the server closes; a request in flight then
        // reports the error.
        let _ = connection.await;
    });
    Ok(sender)
}

/// One keep-alive connection to a target, one request at a time: a [`Worker`].
pub struct Connection {
    http: HttpConnection,
    path: String,
    body: Bytes,
    expect: Option<Bytes>,
    headers: Vec<(String, String)>,
}

impl Connection {
    /// Connects to `target`'s server.
    pub async fn open(target: &HttpTarget) -> Result<Self, String> {
        let endpoint = Endpoint::of(target)?;
        Ok(Self {
            http: HttpConnection::open_as(&endpoint.address, endpoint.host).await?,
            path: endpoint.uri.to_string(),
            body: target.body.clone(),
            expect: target.expect.clone(),
            headers: target.headers.clone(),
        })
    }

    /// Sends the request and reads the whole answer: its status and body.
    pub async fn post(&mut self) -> Result<(StatusCode, Bytes), String> {
        self.http
            .request(Method::POST, &self.path, &self.headers, self.body.clone())
            .await
    }
}

impl Worker for Connection {
    /// 200 is [`Outcome::Done`] (if its body is the one expected; a different body fails the
    /// run); any other status is [`Outcome::Error`].
    async fn call(&mut self) -> Result<Outcome, String> {
        let (status, body) = self.post().await?;
        if status != StatusCode::OK {
            return Ok(Outcome::Error);
        }
        match &self.expect {
            Some(expected) if *expected != body => Err(format!(
                "unexpected answer {:?}, expected {:?}",
                String::from_utf8_lossy(&body),
                String::from_utf8_lossy(expected)
            )),
            _ => Ok(Outcome::Done),
        }
    }
}

/// Opens `concurrency` connections to `target`'s server, then sends requests on each, one at a
/// time, for `window.warmup + window.measure` (see [`closed_loop_workers`]). A 200 answer counts
/// in [`Sample::completed`], any other in [`Sample::errors`]; a connection that fails, or a 200
/// with a body other than [`HttpTarget::expect`], fails the run.
pub async fn closed_loop(
    target: &HttpTarget,
    concurrency: usize,
    window: Window,
) -> Result<Sample, String> {
    let targets = vec![target.clone(); concurrency.max(1)];
    closed_loop_each(&targets, window).await
}

/// Like [`closed_loop`] with one connection per target (each with its own headers, say its own
/// session): the concurrency is `targets.len()`.
pub async fn closed_loop_each(targets: &[HttpTarget], window: Window) -> Result<Sample, String> {
    let mut connections = Vec::with_capacity(targets.len());
    for target in targets {
        connections.push(Connection::open(target).await?);
    }
    closed_loop_workers(window, connections).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_base_url_gives_the_address_host_and_path() {
        let target = HttpTarget::post_json("http://127.0.0.1:8080", "/Bench/three_steps", "1");
        let endpoint = Endpoint::of(&target).unwrap();
        assert_eq!(endpoint.address, "127.0.0.1:8080");
        assert_eq!(endpoint.host, "127.0.0.1:8080");
        assert_eq!(endpoint.uri, "/Bench/three_steps");

        let prefixed = HttpTarget::post_json("http://localhost/restate/", "/S/h", "1");
        let endpoint = Endpoint::of(&prefixed).unwrap();
        assert_eq!(endpoint.address, "localhost:80");
        assert_eq!(endpoint.uri, "/restate/S/h");

        let v6 = HttpTarget::post_json("http://[::1]:9080", "/S/h", "1");
        assert_eq!(Endpoint::of(&v6).unwrap().address, "[::1]:9080");
    }

    #[test]
    fn only_plain_http_with_an_absolute_path() {
        assert!(Endpoint::of(&HttpTarget::post_json("https://x:1", "/a", "1")).is_err());
        assert!(Endpoint::of(&HttpTarget::post_json("127.0.0.1:1", "/a", "1")).is_err());
        assert!(Endpoint::of(&HttpTarget::post_json("http://x:1", "a", "1")).is_err());
    }
}
