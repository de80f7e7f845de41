//! Building responses, reading bodies within limits, and errors as JSON.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full, LengthLimitError, Limited};
use hyper::StatusCode;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};

use crate::error::{CallError, StoreError};
use crate::http::{Body, Request, Response};
use crate::ids::InvocationId;

/// The response header that carries the invocation id, as in Restate.
pub(crate) const INVOCATION_ID_HEADER: &str = "x-restate-id";

/// Restate's status for "the invocation exists but has not completed yet".
pub(crate) const NOT_READY: u16 = 470;

/// An error answered as `{"code": …, "message": …}` with a matching HTTP status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status, and the `code` field of the body.
    pub status: u16,
    /// What went wrong, for a person.
    pub message: String,
    /// Where the error came from, as Restate's `x-restate-error-source` header says it:
    /// `invocation` (the handler's terminal error: a client must not retry it) or `ingress`.
    pub source: Option<&'static str>,
}

impl ApiError {
    /// An error with `status` and `message`.
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            source: None,
        }
    }

    /// The same error, marked as coming from `source` unless it is marked already.
    #[must_use]
    pub fn with_source(mut self, source: &'static str) -> Self {
        self.source.get_or_insert(source);
        self
    }

    /// 400 Bad Request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, message)
    }

    /// 404 Not Found.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, message)
    }

    /// 401 Unauthorized.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(401, message)
    }

    /// 403 Forbidden.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, message)
    }

    /// 405 Method Not Allowed.
    pub fn method_not_allowed(allowed: &str) -> Self {
        Self::new(405, format!("method not allowed; use {allowed}"))
    }

    /// The response: the status (500 if it is not a valid HTTP status) and a JSON body.
    pub fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut body = serde_json::json!({ "code": self.status, "message": self.message });
        if let Some(source) = self.source {
            body["source"] = source.into();
        }
        let mut response = json(status, &body);
        if let Some(source) = self.source {
            response
                .headers_mut()
                .insert("x-restate-error-source", HeaderValue::from_static(source));
        }
        response
    }
}

impl From<CallError> for ApiError {
    fn from(error: CallError) -> Self {
        let status = match &error {
            CallError::Failed(terminal) => {
                return Self::new(terminal.code(), terminal.message()).with_source("invocation");
            }
            CallError::UnknownTarget(_)
            | CallError::UnknownInvocation(_)
            | CallError::UnknownAwakeable(_)
            | CallError::UnknownWorkflow(_) => 404,
            CallError::BadKey(_) | CallError::BadInput(_) | CallError::Codec(_) => 400,
            CallError::Conflict(_) | CallError::AlreadyCompleted(_) => 409,
            CallError::NotFinished(_) => NOT_READY,
            CallError::Store(StoreError::ShutDown | StoreError::ReadOnly) => 503,
            CallError::Store(StoreError::StorageFull(_)) => 507,
            CallError::Store(_) => 500,
        };
        Self::new(status, error.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        CallError::Store(error).into()
    }
}

/// A response with a JSON body.
pub fn json(status: StatusCode, value: &impl serde::Serialize) -> Response {
    // Serializing a `serde_json::Value` or a plain struct cannot fail; an empty object is the
    // fallback all the same.
    let bytes = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    raw_json(status, bytes)
}

/// A response whose body is already JSON.
pub fn raw_json(status: StatusCode, bytes: Vec<u8>) -> Response {
    raw(status, "application/json", bytes)
}

/// A response with `bytes` as its body, of `content_type`.
pub fn raw(status: StatusCode, content_type: &'static str, bytes: Vec<u8>) -> Response {
    let mut response = hyper::Response::new(full(bytes));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// A response with no body.
pub fn empty(status: StatusCode) -> Response {
    let mut response =
        hyper::Response::new(Empty::new().map_err(|never| match never {}).boxed_unsync());
    *response.status_mut() = status;
    response
}

/// A plain-text response.
pub fn text(status: StatusCode, content_type: &'static str, body: String) -> Response {
    let mut response = hyper::Response::new(full(body.into_bytes()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// A response with a static body, such as an embedded file.
pub fn bytes(status: StatusCode, content_type: &'static str, body: &'static [u8]) -> Response {
    let mut response = hyper::Response::new(
        Full::new(Bytes::from_static(body))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn full(bytes: Vec<u8>) -> Body {
    Full::new(Bytes::from(bytes))
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// Adds the `x-restate-id` header.
pub(crate) fn with_invocation_id(mut response: Response, id: InvocationId) -> Response {
    if let Ok(value) = HeaderValue::from_str(&id.to_string()) {
        response.headers_mut().insert(INVOCATION_ID_HEADER, value);
    }
    response
}

/// Reads a request's body, refusing more than `max` bytes with 413 — at once when the
/// `content-length` header announces it, otherwise as soon as the limit is crossed.
pub async fn read_body(request: Request, max: usize) -> Result<Bytes, ApiError> {
    let too_large = || ApiError::new(413, format!("the request body exceeds {max} bytes"));
    let announced = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    match Limited::new(request.into_body(), max).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Err(error) => Err(ApiError::bad_request(format!(
            "cannot read the request body: {error}"
        ))),
    }
}

/// Checks that `body` is JSON (an empty body counts as `null`), naming the problem if not.
pub(crate) fn check_json(body: &[u8]) -> Result<(), ApiError> {
    if body.is_empty() {
        return Ok(());
    }
    serde_json::from_slice::<serde::de::IgnoredAny>(body)
        .map(drop)
        .map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::check_json;
    use crate::clock::format_time;

    #[test]
    fn deep_nesting_does_not_overflow_the_stack() {
        // Valid JSON, checked without recursion; decoding it into a handler's input type then
        // fails at serde_json's recursion limit (128) with a 400.
        let deep = format!("{}1{}", "[".repeat(1 << 20), "]".repeat(1 << 20));
        assert!(check_json(deep.as_bytes()).is_ok());
        assert!(check_json(&deep.as_bytes()[1..]).is_err());
        assert!(check_json(b"[[1]]").is_ok());
        assert!(check_json(b"").is_ok());
        let message = check_json(b"{\"a\": ").unwrap_err().message;
        assert!(message.contains("not valid JSON"), "{message}");
    }

    #[test]
    fn times_rfc3339_cannot_write_are_shown_not_panicked_on() {
        let at = |ms: u64| UNIX_EPOCH + Duration::from_millis(ms);
        assert_eq!(
            format_time(at(1_765_117_786_123)),
            "2025-12-07T14:29:46.123Z"
        );
        assert_eq!(
            format_time(at(253_402_300_799_999)),
            "9999-12-31T23:59:59.999Z"
        );
        assert_eq!(
            format_time(at(253_402_300_800_000)),
            "out of range (253402300800000 ms since 1970)"
        );
        assert_eq!(
            format_time(at(u64::MAX)),
            format!("out of range ({} ms since 1970)", u64::MAX)
        );
        let before = UNIX_EPOCH - Duration::from_millis(5);
        assert_eq!(format_time(before), "out of range (-5 ms since 1970)");
    }
}
