//! The ingress: any registered handler over HTTP, on Restate's paths and headers.

use std::sync::Arc;
use std::time::Duration;

use hyper::{Method, StatusCode};

use crate::client::{Client, SendOptions};
use crate::engine::Engine;
use crate::error::CallError;
use crate::http::reply::{self, ApiError, check_json, read_body, with_invocation_id};
use crate::http::{HttpLimits, Request, Response, Routes, decode, query_pairs};
use crate::ids::{InvocationId, ServiceKind, Target, parse_awakeable_id};
use crate::payload::Format;
use crate::service::Workflow;

/// The ingress's routes for `engine`: see docs/ingress.md.
pub fn ingress(engine: &Engine, limits: &HttpLimits) -> Routes {
    let ingress = Arc::new(Ingress {
        client: engine.client(),
        max_body: limits.max_body_bytes,
    });
    Arc::new(move |request| {
        let ingress = ingress.clone();
        Box::pin(async move {
            let method = request.method().clone();
            let path = request.uri().path().to_owned();
            let response = ingress
                .route(request)
                .await
                .unwrap_or_else(|error| error.with_source("ingress").into_response());
            tracing::debug!(%method, %path, status = response.status().as_u16(), "ingress");
            response
        })
    })
}

struct Ingress {
    client: Client,
    max_body: usize,
}

/// A request for a handler, as the path and query describe it.
struct Invoke {
    target: Target,
    send: bool,
}

impl Ingress {
    async fn route(&self, request: Request) -> Result<Response, ApiError> {
        let path = request.uri().path().to_owned();
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        match segments.as_slice() {
            ["restate", rest @ ..] => self.restate(request, rest).await,
            [""] => Err(ApiError::not_found(
                "no route for /; call /{service}/{handler} or /{object}/{key}/{handler}",
            )),
            [service, rest @ ..] => {
                let invoke = self.parse_invoke(service, rest)?;
                self.visible(&invoke.target)?;
                self.invoke(request, invoke).await
            }
            [] => Err(ApiError::not_found("no route")),
        }
    }

    /// Refuses an ingress-private handler: 403, before anything is read or written.
    fn visible(&self, target: &Target) -> Result<(), ApiError> {
        if self.client.is_ingress_private(target) {
            return Err(ApiError::forbidden(format!(
                "{}/{} is private: other handlers call it, the ingress does not",
                target.service, target.handler
            )));
        }
        Ok(())
    }

    fn parse_invoke(&self, service: &str, rest: &[&str]) -> Result<Invoke, ApiError> {
        let bad_path = || {
            ApiError::bad_request(
                "bad path, expected /{service}/{handler} or /{object}/{key}/{handler}, \
                 optionally followed by /send",
            )
        };
        let Some(kind) = self.client.service_kind(service) else {
            return Err(ApiError::not_found(format!(
                "service '{service}' not found"
            )));
        };
        let (key, rest) = match kind {
            ServiceKind::Service => (None, rest),
            ServiceKind::VirtualObject | ServiceKind::Workflow => match rest.split_first() {
                Some((key, rest)) => (Some(decode(key)?), rest),
                None => return Err(bad_path()),
            },
        };
        let (handler, send) = match rest {
            [handler] => (*handler, false),
            [handler, "send"] => (*handler, true),
            _ => return Err(bad_path()),
        };
        let target = match key {
            None => Target::service(service, handler),
            Some(key) => keyed(service, key, handler),
        };
        Ok(Invoke { target, send })
    }

    async fn invoke(&self, request: Request, invoke: Invoke) -> Result<Response, ApiError> {
        if request.method() != Method::POST && request.method() != Method::GET {
            return Err(ApiError::method_not_allowed("POST"));
        }
        let is_workflow_run = self.client.service_kind(&invoke.target.service)
            == Some(ServiceKind::Workflow)
            && invoke.target.handler == Workflow::RUN;
        let idempotency_key = match request.headers().get("idempotency-key") {
            None => None,
            Some(value) => Some(
                value
                    .to_str()
                    .map_err(|_| ApiError::bad_request("the idempotency-key header is not text"))?
                    .to_owned(),
            ),
        };
        if is_workflow_run && idempotency_key.is_some() {
            return Err(ApiError::bad_request(
                "cannot use the idempotency key with a workflow's run handler: the workflow key \
                 already makes it run once",
            ));
        }
        let delay = query_param(&request, "delay")
            .map(|value| parse_delay(&value))
            .transpose()?;
        if delay.is_some() && !invoke.send {
            return Err(ApiError::bad_request(
                "cannot use the delay query parameter with calls; use /send",
            ));
        }
        let execution_time = match delay {
            None => None,
            Some(delay) => Some(execution_time(self.client.now(), delay).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "bad delay query parameter: {delay:?} from now is past the year 9999"
                ))
            })?),
        };
        let formats = self.client.formats(&invoke.target)?;
        let body = read_body(request, self.max_body).await?;
        if formats.input == Format::Json {
            check_json(&body)?;
        }
        let options = SendOptions {
            idempotency_key,
            delay,
        };
        if !invoke.send {
            if let Some(answer) = self
                .client
                .read_only(&invoke.target, &body, &options)
                .await?
            {
                return Ok(match answer {
                    Ok(output) => success(output, formats.output),
                    Err(terminal) => ApiError::from(CallError::Failed(terminal)).into_response(),
                });
            }
        }
        let accepted = self
            .client
            .submit_raw(invoke.target, body.to_vec(), options)
            .await?;
        if invoke.send {
            let mut answer = serde_json::json!({
                "invocationId": accepted.id.to_string(),
                "status": if accepted.previously_accepted { "PreviouslyAccepted" } else { "Accepted" },
            });
            if let (Some(execution_time), false) = (execution_time, accepted.previously_accepted) {
                answer["executionTime"] = execution_time.into();
            }
            let response = reply::json(StatusCode::ACCEPTED, &answer);
            return Ok(with_invocation_id(response, accepted.id));
        }
        if is_workflow_run && accepted.previously_accepted {
            let error = ApiError::new(409, "the workflow method was already invoked")
                .with_source("invocation");
            return Ok(with_invocation_id(error.into_response(), accepted.id));
        }
        Ok(self.attach(accepted.id, formats.output).await)
    }

    /// The `/restate/…` routes.
    async fn restate(&self, request: Request, rest: &[&str]) -> Result<Response, ApiError> {
        match rest {
            ["health"] => {
                only(&request, &Method::GET)?;
                let services = self.client.public_services();
                Ok(reply::json(
                    StatusCode::OK,
                    &serde_json::json!({ "services": services }),
                ))
            }
            // Restate takes both; its TypeScript client posts to the short one.
            ["awakeables" | "a", id, operation] => {
                only(&request, &Method::POST)?;
                self.complete_awakeable(request, id, operation).await
            }
            ["awakeables", ..] => Err(ApiError::bad_request(
                "bad path, expected /restate/awakeables/{id}/resolve or /reject",
            )),
            ["invocation", id, operation] => {
                only(&request, &Method::GET)?;
                let id: InvocationId = id
                    .parse()
                    .map_err(|e| ApiError::bad_request(format!("bad invocation id: {e}")))?;
                // One read of the record: who may see it, and how it answers. An unknown id
                // passes: the route answers it as unknown.
                let target = self.client.target_of(id)?;
                if let Some(target) = &target {
                    self.visible(target)?;
                }
                self.attach_or_output(id, operation, target.as_ref()).await
            }
            ["invocation", service, handler, key, operation] => {
                only(&request, &Method::GET)?;
                let target = Target::service(*service, *handler);
                self.visible(&target)?;
                let id = self.idempotent(&target, key)?;
                self.attach_or_output(id, operation, Some(&target)).await
            }
            ["invocation", object, object_key, handler, key, operation] => {
                only(&request, &Method::GET)?;
                let target = keyed(object, decode(object_key)?, handler);
                self.visible(&target)?;
                let id = self.idempotent(&target, key)?;
                self.attach_or_output(id, operation, Some(&target)).await
            }
            ["workflow", name, key, operation] => {
                only(&request, &Method::GET)?;
                if self.client.service_kind(name) != Some(ServiceKind::Workflow) {
                    return Err(ApiError::not_found(format!("workflow '{name}' not found")));
                }
                let target = Target::workflow(*name, "", Workflow::RUN);
                self.visible(&target)?;
                let id = self.client.workflow_invocation(name, &decode(key)?)?;
                self.attach_or_output(id, operation, Some(&target)).await
            }
            _ => Err(ApiError::not_found("no such route under /restate")),
        }
    }

    fn idempotent(&self, target: &Target, key: &str) -> Result<InvocationId, ApiError> {
        if self.client.service_kind(&target.service).is_none() {
            return Err(ApiError::not_found(format!(
                "service '{}' not found",
                target.service
            )));
        }
        Ok(self.client.idempotent_invocation(target, &decode(key)?)?)
    }

    /// `target` is the invocation's, if known: its handler says how the output is answered.
    async fn attach_or_output(
        &self,
        id: InvocationId,
        operation: &str,
        target: Option<&Target>,
    ) -> Result<Response, ApiError> {
        let format = self.output_format(target);
        match operation {
            "attach" => Ok(self.attach(id, format).await),
            "output" => match self.client.output_raw(id) {
                Ok(Some(output)) => Ok(with_invocation_id(success(output, format), id)),
                Ok(None) => Err(ApiError::new(
                    reply::NOT_READY,
                    "the invocation exists but has not completed yet",
                )),
                Err(error) => Ok(failure(error, id)),
            },
            _ => Err(ApiError::not_found(
                "no such route; use …/attach or …/output",
            )),
        }
    }

    /// How `target`'s handler answers: JSON unless it is registered with a binary output (an
    /// unknown invocation, or one whose handler is gone, is answered as JSON).
    fn output_format(&self, target: Option<&Target>) -> Format {
        target
            .and_then(|target| self.client.formats(target).ok())
            .map_or(Format::Json, |formats| formats.output)
    }

    /// Waits for the invocation's outcome and answers with it, as a call does.
    async fn attach(&self, id: InvocationId, format: Format) -> Response {
        match self.client.attach_raw(id).await {
            Ok(output) => with_invocation_id(success(output, format), id),
            Err(error) => failure(error, id),
        }
    }

    async fn complete_awakeable(
        &self,
        request: Request,
        id: &str,
        operation: &str,
    ) -> Result<Response, ApiError> {
        if parse_awakeable_id(id).is_none() {
            return Err(ApiError::bad_request(format!(
                "bad awakeable id '{id}': expected awk_ and 56 hex digits"
            )));
        }
        if operation != "resolve" && operation != "reject" {
            return Err(ApiError::not_found(
                "no such route; use /restate/awakeables/{id}/resolve or /reject",
            ));
        }
        let body = read_body(request, self.max_body).await?;
        if operation == "resolve" {
            check_json(&body)?;
            self.client.resolve_awakeable_raw(id, body.to_vec()).await?;
        } else {
            let reason = String::from_utf8_lossy(&body);
            self.client.reject_awakeable(id, &reason).await?;
        }
        Ok(reply::empty(StatusCode::ACCEPTED))
    }
}

/// A successful outcome: 200 with the output in its format, or an empty body for a handler with
/// no output (as Restate answers it; its clients read `undefined`).
fn success(output: Vec<u8>, format: Format) -> Response {
    if output.is_empty() {
        reply::empty(StatusCode::OK)
    } else {
        reply::raw(StatusCode::OK, format.content_type(), output)
    }
}

/// A failed outcome: the error's code as the status, with the invocation id if there is such
/// an invocation.
fn failure(error: CallError, id: InvocationId) -> Response {
    let unknown = matches!(error, CallError::UnknownInvocation(_));
    let response = ApiError::from(error).into_response();
    if unknown {
        response
    } else {
        with_invocation_id(response, id)
    }
}

/// Refuses any method but `method` with 405 and an `allow` header.
fn only(request: &Request, method: &Method) -> Result<(), ApiError> {
    if request.method() == method {
        Ok(())
    } else {
        Err(ApiError::method_not_allowed(method.as_str()))
    }
}

/// The target of a keyed handler (object or workflow).
fn keyed(service: &str, key: String, handler: &str) -> Target {
    Target {
        service: service.to_owned(),
        handler: handler.to_owned(),
        key: Some(key),
    }
}

/// The value of query parameter `name` (matched without regard to case).
fn query_param(request: &Request, name: &str) -> Option<String> {
    query_pairs(request.uri().query()?)
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value)
}

/// When a send delayed by `delay` starts, in RFC 3339; `None` if that is past what RFC 3339 can
/// write (the year 9999) or what `SystemTime` can hold. `?delay=P9999999D` used to panic here
/// after the invocation was created (found by fuzz/fuzz_targets/ingress.rs).
fn execution_time(now: std::time::SystemTime, delay: Duration) -> Option<String> {
    use std::fmt::Write;
    let mut text = String::new();
    write!(
        text,
        "{}",
        humantime::format_rfc3339_millis(now.checked_add(delay)?)
    )
    .ok()?;
    Some(text)
}

/// Parses `?delay=`: a friendly duration (`10s`, `500ms`, `1h 30m`) or an ISO 8601 one
/// (`PT10S`, `P1DT2H`).
fn parse_delay(value: &str) -> Result<Duration, ApiError> {
    let bad = |why: &str| {
        ApiError::bad_request(format!(
            "bad delay query parameter {value:?}: {why}; use e.g. 10s, 500ms, 1h 30m or PT10S"
        ))
    };
    let trimmed = value.trim();
    if let Some(iso) = trimmed
        .strip_prefix('P')
        .or_else(|| trimmed.strip_prefix('p'))
    {
        return parse_iso8601(iso).ok_or_else(|| bad("not an ISO 8601 duration"));
    }
    humantime::parse_duration(trimmed).map_err(|e| bad(&e.to_string()))
}

/// The part of an ISO 8601 duration after `P`: days, then `T` and hours, minutes, seconds
/// (fractions allowed on seconds). Years, months and weeks have no fixed length and are refused.
fn parse_iso8601(rest: &str) -> Option<Duration> {
    let (date, time) = match rest.split_once(['T', 't']) {
        Some((date, time)) => (date, Some(time)),
        None => (rest, None),
    };
    let mut total = Duration::ZERO;
    let mut any = false;
    let mut add = |part: &str, units: &[(char, f64)]| -> Option<()> {
        let mut number = String::new();
        for c in part.chars() {
            if c.is_ascii_digit() || c == '.' || c == ',' {
                number.push(if c == ',' { '.' } else { c });
                continue;
            }
            let seconds = units
                .iter()
                .find(|(unit, _)| unit.eq_ignore_ascii_case(&c))?
                .1;
            let value: f64 = number.parse().ok()?;
            total = total.checked_add(Duration::try_from_secs_f64(value * seconds).ok()?)?;
            number.clear();
            any = true;
        }
        number.is_empty().then_some(())
    };
    add(date, &[('D', 86_400.0)])?;
    if let Some(time) = time {
        if time.is_empty() {
            return None;
        }
        add(time, &[('H', 3_600.0), ('M', 60.0), ('S', 1.0)])?;
    }
    any.then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_in_both_notations() {
        let ok = |s: &str| parse_delay(s).ok();
        assert_eq!(ok("10s"), Some(Duration::from_secs(10)));
        assert_eq!(ok("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(ok("1h 30m"), Some(Duration::from_secs(5400)));
        assert_eq!(ok("PT10S"), Some(Duration::from_secs(10)));
        assert_eq!(ok("PT1.5S"), Some(Duration::from_millis(1500)));
        assert_eq!(ok("P1DT2H"), Some(Duration::from_secs(93_600)));
        assert_eq!(ok("PT"), None);
        assert_eq!(ok("P"), None);
        assert_eq!(ok("P1M"), None, "months have no fixed length");
        assert_eq!(ok("1000"), None, "a number needs a unit");
        assert_eq!(ok("soon"), None);
    }

    #[test]
    fn delays_past_the_year_9999_have_no_execution_time() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let ok = |s: &str| execution_time(now, parse_delay(s).unwrap());
        assert_eq!(ok("PT1S").as_deref(), Some("2023-11-14T22:13:21.000Z"));
        assert_eq!(ok("P9999999D"), None);
        assert_eq!(ok("P150000000000000D"), None, "overflows SystemTime");
    }
}
