//! Who is asking: a session cookie or an API token, never a bare user header; and the checks
//! that keep cross-site requests out.

use hyper::header::{AUTHORIZATION, COOKIE, HOST, HeaderValue, ORIGIN, SET_COOKIE};
use zeroapp_app::App;
use zeroapp_app::db::auth::NewSession;
use zeroapp_app::db::catalog::User;
use zeroapp_engine::http::{self, ApiError, Request, Response};

use crate::shared::db_failure;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "zeroapp_session";

/// How long a session lasts.
pub const SESSION_TTL_MS: i64 = 7 * 24 * 60 * 60 * 1000;

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The user.
    pub user: User,
    /// The session token, when the caller came with a session cookie (for logout).
    pub session_token: Option<String>,
    /// The session's CSRF token (created with it at login), when the caller came with a session
    /// cookie: its pages carry it, and every page command must send it back.
    pub csrf_token: Option<String>,
}

impl Identity {
    /// 403 unless the user is an admin.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.user.is_admin {
            Ok(())
        } else {
            Err(ApiError::forbidden("this needs an admin"))
        }
    }
}

/// The value of cookie `name`, if the request carries it.
pub fn cookie(request: &Request, name: &str) -> Option<String> {
    request
        .headers()
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

/// Who is asking: `Authorization: Bearer <API token>` or the session cookie. `None` if neither
/// names a user (missing, unknown or expired).
pub async fn identify(app: &App, request: &Request) -> Result<Option<Identity>, ApiError> {
    let bearer = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    if let Some(token) = bearer {
        let user = app.api_token_user(&token).await.map_err(db_failure)?;
        return Ok(user.map(|user| Identity {
            user,
            session_token: None,
            csrf_token: None,
        }));
    }
    let Some(token) = cookie(request, SESSION_COOKIE) else {
        return Ok(None);
    };
    let found = app.session(&token).await.map_err(db_failure)?;
    Ok(found.map(|session| Identity {
        user: session.user,
        session_token: Some(token),
        csrf_token: Some(session.csrf_token),
    }))
}

/// Like [`identify`], but 401 when nobody is logged in.
pub async fn require(app: &App, request: &Request) -> Result<Identity, ApiError> {
    identify(app, request)
        .await?
        .ok_or_else(|| ApiError::unauthorized("log in first (session cookie or Bearer API token)"))
}

/// Ends the caller's session, if it came with one (after the same-origin check); the caller
/// then clears the cookie in its answer.
pub async fn end_session(app: &App, request: &Request) -> Result<(), ApiError> {
    same_origin(request)?;
    if let Some(token) = identify(app, request).await?.and_then(|w| w.session_token) {
        app.log_out(&token).await.map_err(db_failure)?;
    }
    Ok(())
}

/// The header a page command may carry its CSRF token in, instead of the `csrf` signal.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Refuses (403) a page command of a session that does not send the session's CSRF token, in
/// the `csrf` signal its page carries (Datastar posts the signals) or in the
/// [`CSRF_HEADER`]. A caller with an API token and no cookie needs none: no browser sends it
/// by itself.
pub fn require_csrf(
    who: &Identity,
    request_header: Option<&str>,
    signal: Option<&str>,
) -> Result<(), ApiError> {
    let Some(expected) = &who.csrf_token else {
        return Ok(());
    };
    let sent = request_header.or(signal);
    let matches = sent.is_some_and(|sent| http::same_secret(expected.as_bytes(), sent.as_bytes()));
    match (sent, matches) {
        (_, true) => Ok(()),
        (None, _) => Err(ApiError::forbidden(
            "this command needs the page's CSRF token: reload the page",
        )),
        (Some(_), false) => Err(ApiError::forbidden(
            "the CSRF token is not this session's: reload the page",
        )),
    }
}

/// Refuses a state-changing request from another site: when the browser says where the request
/// comes from (`Origin`), it must be this server. With the session cookie's SameSite=Strict,
/// this keeps cross-site forms and scripts out.
pub fn same_origin(request: &Request) -> Result<(), ApiError> {
    let Some(origin) = request.headers().get(ORIGIN) else {
        return Ok(());
    };
    let host = request.headers().get(HOST).and_then(|h| h.to_str().ok());
    let origin_host = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .map(|(_, rest)| rest.trim_end_matches('/'));
    match (origin_host, host) {
        (Some(origin), Some(host)) if origin == host => Ok(()),
        _ => Err(ApiError::forbidden("cross-site request refused")),
    }
}

/// Adds the session cookie: HttpOnly, SameSite=Strict, for the whole site.
pub fn set_session_cookie(mut response: Response, token: &str) -> Response {
    let cookie = format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
        SESSION_TTL_MS / 1000
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(SET_COOKIE, value);
    }
    response
}

/// Removes the session cookie.
pub fn clear_session_cookie(mut response: Response) -> Response {
    let cookie = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(SET_COOKIE, value);
    }
    response
}

/// Checks a user's password and opens a session (the login of the API and of the login page);
/// 401 on an unknown user or a wrong password.
pub async fn open_session(
    app: &App,
    user: &str,
    password: &str,
) -> Result<(User, NewSession), ApiError> {
    app.log_in(user, password, SESSION_TTL_MS)
        .await
        .map_err(db_failure)?
        .ok_or_else(|| ApiError::unauthorized("unknown user or wrong password"))
}
