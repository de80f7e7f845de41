//! The one-request HTTP client the cluster talks to its nodes' admin APIs with.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::*;

/// One HTTP/1.1 request on a connection of its own (a JSON body if any), the whole answer read,
/// within [`REQUEST_TIMEOUT`].
pub(super) async fn http(
    method: Method,
    address: &str,
    path: &str,
    body: Option<String>,
) -> Result<(StatusCode, Bytes), String> {
    let request_line = format!("{method} http://{address}{path}");
    let exchange = async move {
        let stream = TcpStream::connect(address)
            .await
            .map_err(|e| format!("cannot connect: {e}"))?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream))
                .await
                .map_err(|e| format!("HTTP handshake failed: {e}"))?;
        tokio::spawn(async move {
            // Ends when the sender is dropped and the answer read, or the server closes; the
            // timeout bounds an exchange abandoned mid-way.
            let _ = tokio::time::timeout(REQUEST_TIMEOUT, connection).await;
        });
        sender
            .ready()
            .await
            .map_err(|e| format!("connection lost: {e}"))?;
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, address);
        if body.is_some() {
            request = request.header(CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| format!("cannot build the request: {e}"))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("cannot read the answer: {e}"))?
            .to_bytes();
        Ok::<_, String>((status, body))
    };
    match tokio::time::timeout(REQUEST_TIMEOUT, exchange).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(error)) => Err(format!("{request_line}: {error}")),
        Err(_) => Err(format!(
            "{request_line}: no answer within {} s",
            REQUEST_TIMEOUT.as_secs()
        )),
    }
}
