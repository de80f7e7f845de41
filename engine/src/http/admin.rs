//! The admin API: invocations, journals, object state, cancel, kill, purge, health, metrics.

use std::sync::Arc;

use hyper::{Method, StatusCode};
use serde_json::{Value, json};

use crate::client::Client;
use crate::clock::format_time;
use crate::engine::Engine;
use crate::error::{CallError, TerminalError};
use crate::http::reply::{self, ApiError};
use crate::http::{Request, Response, Routes, decode, metrics, query_pairs};
use crate::ids::InvocationId;
use crate::introspect::{InvocationFilter, InvocationInfo, InvocationStatus, JournalEntryInfo};
use crate::runtime::Runtime;

/// How many invocations a listing returns when the request names no limit.
const DEFAULT_LIST_LIMIT: usize = 100;

/// The admin API's routes for `engine`: see docs/ingress.md.
pub fn admin(engine: &Engine) -> Routes {
    let admin = Arc::new(Admin {
        engine: engine.inner().clone(),
        client: engine.client(),
    });
    Arc::new(move |request| {
        let admin = admin.clone();
        Box::pin(async move {
            admin
                .route(request)
                .await
                .unwrap_or_else(ApiError::into_response)
        })
    })
}

struct Admin {
    engine: Arc<Runtime>,
    client: Client,
}

impl Admin {
    async fn route(&self, request: Request) -> Result<Response, ApiError> {
        let path = request.uri().path().to_owned();
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let method = request.method().clone();
        match (segments.as_slice(), &method) {
            (["health"], &Method::GET) => Ok(match self.engine.store.failure() {
                None => reply::json(StatusCode::OK, &json!({"status": "ok"})),
                Some(reason) => reply::json(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &json!({"status": "failed", "code": 503, "message": format!(
                        "the engine's writer stopped: {reason}"
                    )}),
                ),
            }),
            (["metrics"], &Method::GET) => {
                let engine = self.engine.clone();
                let text = blocking(move || metrics::render(&engine)).await??;
                Ok(reply::text(
                    StatusCode::OK,
                    "text/plain; version=0.0.4; charset=utf-8",
                    text,
                ))
            }
            (["invocations"], &Method::GET) => {
                let filter = filter(request.uri().query().unwrap_or(""))?;
                let engine = self.engine.clone();
                let found = blocking(move || engine.list_invocations(&filter)).await??;
                let list: Vec<Value> = found.iter().map(invocation_json).collect();
                Ok(reply::json(StatusCode::OK, &json!({ "invocations": list })))
            }
            (["invocations", id], &Method::GET) => {
                let id = parse_id(id)?;
                let engine = self.engine.clone();
                let client = self.client.clone();
                let (info, journal) = blocking(move || {
                    let info = client.status(id)?;
                    let journal = engine.journal(id)?;
                    Ok::<_, crate::error::StoreError>((info, journal))
                })
                .await??;
                let info =
                    info.ok_or_else(|| ApiError::not_found(format!("invocation {id} not found")))?;
                let body = invocation_detail_json(&info, &journal.unwrap_or_default());
                Ok(reply::json(StatusCode::OK, &body))
            }
            (["invocations", id, action], &Method::PATCH) => self.act(parse_id(id)?, action).await,
            (["invocations", id], &Method::DELETE) => {
                // Restate's older form: DELETE /invocations/{id}?mode=cancel|kill|purge.
                let mode = query_pairs(request.uri().query().unwrap_or(""))
                    .find(|(k, _)| k == "mode")
                    .map_or_else(|| "cancel".to_owned(), |(_, v)| v.to_ascii_lowercase());
                self.act(parse_id(id)?, &mode).await?;
                Ok(reply::empty(StatusCode::ACCEPTED))
            }
            (["objects", name, key, "state"], &Method::GET) => {
                let name = decode(name)?;
                let key = decode(key)?;
                if self.client.service_kind(&name).is_none() {
                    return Err(ApiError::not_found(format!("service '{name}' not found")));
                }
                let engine = self.engine.clone();
                let state = blocking(move || engine.object_state(&name, &key)).await??;
                let state: serde_json::Map<String, Value> = state
                    .into_iter()
                    .map(|(k, v)| (k, json_value(&v)))
                    .collect();
                Ok(reply::json(StatusCode::OK, &json!({ "state": state })))
            }
            (["health" | "metrics" | "invocations"], _)
            | (["invocations", _], _)
            | (["objects", _, _, "state"], _) => Err(ApiError::method_not_allowed("GET")),
            (["invocations", _, _], _) => Err(ApiError::method_not_allowed("PATCH")),
            _ => Err(ApiError::not_found(format!("no admin route {path}"))),
        }
    }

    /// Cancel, kill or purge, with Restate's statuses: 404 unknown, 409 already finished (or,
    /// for purge, not finished yet).
    async fn act(&self, id: InvocationId, action: &str) -> Result<Response, ApiError> {
        let status = self
            .client
            .status(id)?
            .ok_or_else(|| ApiError::not_found(format!("invocation {id} not found")))?
            .status;
        match action {
            "cancel" | "kill" if status.is_finished() => Err(ApiError::new(
                409,
                format!("invocation {id} has already completed"),
            )),
            "cancel" => {
                self.client.cancel(id).await?;
                Ok(reply::empty(StatusCode::ACCEPTED))
            }
            "kill" => {
                self.client.kill(id).await?;
                Ok(reply::empty(StatusCode::OK))
            }
            "purge" => match self.client.purge(id).await {
                Ok(()) => Ok(reply::empty(StatusCode::OK)),
                Err(CallError::NotFinished(_)) => Err(ApiError::new(
                    409,
                    format!("invocation {id} has not completed yet"),
                )),
                Err(other) => Err(other.into()),
            },
            other => Err(ApiError::not_found(format!(
                "no action {other:?}; use cancel, kill or purge"
            ))),
        }
    }
}

/// Runs a store scan off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::new(500, format!("introspection failed: {e}")))
}

fn parse_id(id: &str) -> Result<InvocationId, ApiError> {
    id.parse()
        .map_err(|e| ApiError::bad_request(format!("bad invocation id: {e}")))
}

/// `?status=&service=&key=&limit=` as a filter; unknown parameters are refused.
fn filter(query: &str) -> Result<InvocationFilter, ApiError> {
    let mut filter = InvocationFilter {
        limit: Some(DEFAULT_LIST_LIMIT),
        ..InvocationFilter::default()
    };
    for (key, value) in query_pairs(query) {
        match key.as_str() {
            "status" => {
                filter.status = Some(
                    value
                        .parse::<InvocationStatus>()
                        .map_err(ApiError::bad_request)?,
                );
            }
            "service" => filter.service = Some(value),
            "key" => filter.key = Some(value),
            "limit" => {
                filter.limit = Some(value.parse().map_err(|_| {
                    ApiError::bad_request(format!("limit {value:?} is not a number"))
                })?);
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown parameter {other:?}; use status, service, key or limit"
                )));
            }
        }
    }
    Ok(filter)
}

/// An invocation as the admin API shows it (`GET /invocations`, `GET /invocations/{id}`).
pub fn invocation_json(info: &InvocationInfo) -> Value {
    json!({
        "id": info.id.to_string(),
        "target": info.target.to_string(),
        "service": info.target.service,
        "key": info.target.key,
        "handler": info.target.handler,
        "status": info.status.as_str(),
        "failedAttempts": info.failed_attempts,
        "lastError": info.last_error,
        "createdAt": format_time(info.created_at),
        "modifiedAt": format_time(info.modified_at),
        "cancellation": info.cancellation.as_str(),
    })
}

/// An invocation with its `outcome` and `journal`, as `GET /invocations/{id}` shows it.
pub fn invocation_detail_json(info: &InvocationInfo, journal: &[JournalEntryInfo]) -> Value {
    let mut body = invocation_json(info);
    body["outcome"] = outcome_json(info.outcome.as_ref());
    body["journal"] = journal.iter().map(entry_json).collect();
    body
}

/// A journal entry as the admin API shows it; its `result` is `null` while pending,
/// `{"value": …}` or `{"failure": {"code", "message"}}`. The time a `now` entry recorded (ms
/// since 1970) comes with its date: `{"value": 1796675223810, "time": "2026-12-07T…Z"}`.
fn entry_json(entry: &JournalEntryInfo) -> Value {
    let mut result = outcome_json(entry.result.as_ref());
    if let (true, Some(ms)) = (entry.kind == "now", result["value"].as_u64()) {
        result["time"] = format_time(crate::clock::to_system_time(ms)).into();
    }
    json!({
        "index": entry.index,
        "kind": entry.kind,
        "name": entry.name,
        "at": format_time(entry.at),
        "attempt": entry.attempt,
        "result": result,
    })
}

/// `null` while pending, `{"value": …}` or `{"failure": {"code", "message"}}`.
fn outcome_json(outcome: Option<&Result<Vec<u8>, TerminalError>>) -> Value {
    match outcome {
        None => Value::Null,
        Some(Ok(bytes)) => json!({ "value": json_value(bytes) }),
        Some(Err(e)) => json!({ "failure": { "code": e.code(), "message": e.message() } }),
    }
}

/// Stored JSON as a value: `null` for nothing, a string if it is not JSON after all.
fn json_value(bytes: &[u8]) -> Value {
    if bytes.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()))
}
