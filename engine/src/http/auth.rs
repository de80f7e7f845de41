//! Bearer tokens for the engine's listeners: [`require_bearer`] wraps the ingress or the admin
//! API so that every request must carry `Authorization: Bearer <token>`, compared in constant
//! time; anything else is answered 401 with the JSON error shape, before the request is read
//! any further. A few paths may stay open (the health checks a supervisor polls).

use std::fmt;
use std::sync::Arc;

use hyper::Method;
use hyper::header::{AUTHORIZATION, HeaderValue, WWW_AUTHENTICATE};

use crate::http::Routes;
use crate::http::reply::ApiError;

/// The fewest characters a token may have.
pub const MIN_TOKEN_LEN: usize = 16;

/// A secret that grants access to a listener.
#[derive(Clone)]
pub struct BearerToken(Arc<str>);

impl BearerToken {
    /// A token: at least [`MIN_TOKEN_LEN`] visible ASCII characters (what fits in a header
    /// without quoting). Surrounding whitespace (a file's final newline) is trimmed.
    pub fn new(token: &str) -> Result<Self, String> {
        let token = token.trim();
        if token.len() < MIN_TOKEN_LEN {
            return Err(format!(
                "a token needs at least {MIN_TOKEN_LEN} characters, this one has {}",
                token.len()
            ));
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("a token may hold only visible ASCII characters (no spaces)".to_owned());
        }
        Ok(Self(token.into()))
    }

    /// Whether `presented` is this token ([`same_secret`]).
    fn matches(&self, presented: &[u8]) -> bool {
        same_secret(self.0.as_bytes(), presented)
    }
}

/// Whether two secrets are equal, comparing every byte whatever the first difference, so the
/// time taken tells nothing of how much of a guess was right (only whether its length was).
pub fn same_secret(expected: &[u8], presented: &[u8]) -> bool {
    if presented.len() != expected.len() {
        return false;
    }
    let difference = expected
        .iter()
        .zip(presented)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    std::hint::black_box(difference) == 0
}

impl BearerToken {
    /// The secret itself, to send in a request's `Authorization: Bearer` header.
    pub fn secret(&self) -> &str {
        &self.0
    }

    /// Whether two tokens are the same secret (to refuse one token for two listeners).
    pub fn same_as(&self, other: &BearerToken) -> bool {
        self.matches(other.0.as_bytes())
    }
}

impl fmt::Debug for BearerToken {
    /// Never shows the secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken(…)")
    }
}

/// `routes`, answering only requests that carry `token` (`Authorization: Bearer <token>`);
/// `GET` on a path in `open` passes without it. `source` marks the refusal for Restate's
/// clients (`ingress`), or is `None`.
pub fn require_bearer(
    routes: Routes,
    token: BearerToken,
    open: &'static [&'static str],
    source: Option<&'static str>,
) -> Routes {
    Arc::new(move |request| {
        let is_open = request.method() == Method::GET && open.contains(&request.uri().path());
        let presented = request
            .headers()
            .get(AUTHORIZATION)
            .and_then(|value| value.as_bytes().strip_prefix(b"Bearer "));
        if is_open || presented.is_some_and(|presented| token.matches(presented)) {
            return routes(request);
        }
        let message = if presented.is_some() {
            "the bearer token is not this server's"
        } else {
            "this server needs a token: send Authorization: Bearer <token>"
        };
        let mut error = ApiError::unauthorized(message);
        if let Some(source) = source {
            error = error.with_source(source);
        }
        let mut response = error.into_response();
        response
            .headers_mut()
            .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        Box::pin(std::future::ready(response))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_long_visible_ascii_and_never_shown() {
        assert!(BearerToken::new("short").is_err());
        assert!(BearerToken::new("has a space in it, sixteen+").is_err());
        let token = BearerToken::new("  0123456789abcdef-xyz\n").unwrap_or_else(|e| panic!("{e}"));
        assert!(token.matches(b"0123456789abcdef-xyz"));
        assert!(!token.matches(b"0123456789abcdef-xy"));
        assert!(!token.matches(b"0123456789abcdef-xyZ"));
        assert_eq!(format!("{token:?}"), "BearerToken(…)");
    }
}
