//! Login and logout: plain HTML forms (they work before the Datastar client loads), the same
//! session logic as `/api/login`.

use hyper::StatusCode;
use zeroapp_engine::http::{self, ApiError, Request, Response};

use super::{html, layout, redirect};
use crate::identity;
use crate::shared::Shared;

/// `GET /login`: the form; someone already logged in goes to the dashboard.
pub async fn form(shared: &Shared, request: &Request) -> Result<Response, ApiError> {
    if identity::identify(&shared.app, request).await?.is_some() {
        return Ok(redirect("/"));
    }
    Ok(html(StatusCode::OK, layout::login(None, "")))
}

/// `POST /login` with `user` and `password` (form-encoded): the session cookie and 303 to `/`,
/// or the form again with the error (401).
pub async fn submit(shared: &Shared, request: Request) -> Result<Response, ApiError> {
    identity::same_origin(&request)?;
    let body = http::read_body(request, shared.limits.max_body_bytes).await?;
    let body = String::from_utf8_lossy(&body).into_owned();
    let (mut user, mut password) = (String::new(), String::new());
    for (key, value) in http::query_pairs(&body) {
        match key.as_str() {
            "user" => user = value,
            "password" => password = value,
            _ => {}
        }
    }
    match identity::open_session(&shared.app, &user, &password).await {
        Ok((_, session)) => Ok(identity::set_session_cookie(redirect("/"), &session.token)),
        // The name stays in its field: only the password is typed again.
        Err(error) if error.status == 401 => Ok(html(
            StatusCode::UNAUTHORIZED,
            layout::login(Some("Unknown user or wrong password."), &user),
        )),
        Err(error) => Err(error),
    }
}

/// `POST /logout`: ends the session, clears the cookie, 303 to `/login`.
pub async fn logout(shared: &Shared, request: Request) -> Result<Response, ApiError> {
    identity::end_session(&shared.app, &request).await?;
    Ok(identity::clear_session_cookie(redirect("/login")))
}
