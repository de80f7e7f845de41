//! A client of a Restate cluster, for programs outside the handlers: calls, sends and attaches
//! through the cluster's ingress, and reads (state, invocations, cancellation) through its
//! admin API, all over HTTP. What `zeroapp_engine::Client` is to the embedded engine.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use zeroapp_engine::{CallError, Target, TerminalError};

/// How long one request to the cluster may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Talks to a Restate cluster's ingress and admin API. Given several nodes' URLs, it moves to
/// the next node when one refuses connections (a node that is down): only then, because a
/// request that reached a node may have taken effect there.
#[derive(Clone)]
pub struct RestateClient {
    ingress: Nodes,
    admin: Nodes,
    http: Client<HttpConnector, Full<Bytes>>,
}

/// The base URLs of one API on several nodes, and the one in use.
#[derive(Clone)]
struct Nodes {
    urls: Vec<String>,
    current: Arc<AtomicUsize>,
}

impl Nodes {
    fn parse(list: &str) -> Self {
        let urls = list
            .split(',')
            .map(|url| url.trim().trim_end_matches('/').to_owned())
            .filter(|url| !url.is_empty())
            .collect();
        Self {
            urls,
            current: Arc::default(),
        }
    }

    /// The URLs to try, the one in use first.
    fn in_order(&self) -> Vec<(usize, &str)> {
        let count = self.urls.len().max(1);
        let start = self.current.load(Ordering::Relaxed);
        (0..self.urls.len())
            .map(|i| (start + i) % count)
            .map(|i| (i, self.urls[i].as_str()))
            .collect()
    }
}

/// Which of the cluster's APIs a request goes to.
#[derive(Clone, Copy)]
enum Api {
    Ingress,
    Admin,
}

/// A node could not be reached: nothing was sent to it.
struct Unreached(String);

/// A reply as received.
struct Reply {
    status: StatusCode,
    body: Bytes,
}

fn encode_path(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

fn target_path(target: &Target) -> String {
    match &target.key {
        None => format!(
            "/{}/{}",
            encode_path(&target.service),
            encode_path(&target.handler)
        ),
        Some(key) => format!(
            "/{}/{}/{}",
            encode_path(&target.service),
            encode_path(key),
            encode_path(&target.handler)
        ),
    }
}

/// A SQL string literal.
fn sql_text(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn codec(error: impl std::fmt::Display) -> CallError {
    CallError::Codec(error.to_string())
}

impl RestateClient {
    /// A client of the cluster whose ingress and admin API are at these base URLs
    /// (`http://host:port`), each one node's or a comma-separated list of several nodes'.
    pub fn new(ingress_urls: &str, admin_urls: &str) -> Self {
        Self {
            ingress: Nodes::parse(ingress_urls),
            admin: Nodes::parse(admin_urls),
            http: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// Sends a request to `path` of `api` on the node in use, or on the next ones while nodes
    /// refuse connections.
    async fn request(
        &self,
        method: Method,
        api: Api,
        path: String,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> Result<Reply, CallError> {
        let nodes = match api {
            Api::Ingress => &self.ingress,
            Api::Admin => &self.admin,
        };
        let mut refused = Vec::new();
        for (index, base) in nodes.in_order() {
            let url = format!("{base}{path}");
            match self
                .send_once(method.clone(), &url, body.clone(), headers)
                .await
            {
                Err(Unreached(error)) => refused.push(error),
                Ok(reply) => {
                    nodes.current.store(index, Ordering::Relaxed);
                    return reply;
                }
            }
        }
        Err(unavailable(format!(
            "no node answered: {}",
            refused.join("; ")
        )))
    }

    /// One attempt on one node: `Err` only if the node could not be reached at all.
    async fn send_once(
        &self,
        method: Method,
        url: &str,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> Result<Result<Reply, CallError>, Unreached> {
        let mut request = Request::builder()
            .method(method)
            .uri(url)
            .header("content-type", "application/json")
            .header("accept", "application/json");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = match request.body(Full::from(body)) {
            Ok(request) => request,
            Err(error) => return Ok(Err(codec(error))),
        };
        let response = match tokio::time::timeout(REQUEST_TIMEOUT, self.http.request(request)).await
        {
            Err(_) => {
                let message = format!("{url} did not answer in {REQUEST_TIMEOUT:?}");
                return Ok(Err(unavailable(message)));
            }
            Ok(Err(error)) if error.is_connect() => {
                return Err(Unreached(format!("{url}: {error}")));
            }
            Ok(Err(error)) => return Ok(Err(unavailable(format!("{url}: {error}")))),
            Ok(Ok(response)) => response,
        };
        let status = response.status();
        Ok(match response.into_body().collect().await {
            Ok(body) => Ok(Reply {
                status,
                body: body.to_bytes(),
            }),
            Err(error) => Err(unavailable(format!("{url}: {error}"))),
        })
    }

    /// The reply's body if it is a success; otherwise the error it carries.
    fn success(reply: Reply) -> Result<Bytes, CallError> {
        if reply.status.is_success() {
            return Ok(reply.body);
        }
        let parsed: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
        let message = parsed.get("message").and_then(Value::as_str).map_or_else(
            || String::from_utf8_lossy(&reply.body).into_owned(),
            str::to_owned,
        );
        let code = parsed
            .get("code")
            .and_then(Value::as_u64)
            .and_then(|c| u16::try_from(c).ok())
            .unwrap_or(reply.status.as_u16());
        Err(CallError::Failed(TerminalError::with_code(code, message)))
    }

    /// Calls a handler with JSON bytes and returns its JSON output.
    pub async fn call_raw(&self, target: &Target, input: Vec<u8>) -> Result<Vec<u8>, CallError> {
        let reply = self
            .request(Method::POST, Api::Ingress, target_path(target), input, &[])
            .await?;
        Self::success(reply).map(Vec::from)
    }

    /// Calls a handler and waits for its result.
    pub async fn call<I: Serialize, O: DeserializeOwned>(
        &self,
        target: &Target,
        input: &I,
    ) -> Result<O, CallError> {
        let input = serde_json::to_vec(input).map_err(codec)?;
        let output = self.call_raw(target, input).await?;
        decode(&output)
    }

    /// Sends a one-way request (after `delay` if given; with an idempotency key if given) and
    /// returns the invocation's id.
    pub async fn send<I: Serialize>(
        &self,
        target: &Target,
        input: &I,
        delay: Option<Duration>,
        idempotency_key: Option<&str>,
    ) -> Result<String, CallError> {
        let input = serde_json::to_vec(input).map_err(codec)?;
        let mut url = format!("{}/send", target_path(target));
        if let Some(delay) = delay {
            url.push_str(&format!("?delay={}ms", delay.as_millis()));
        }
        let headers: Vec<(&str, &str)> = idempotency_key
            .map(|key| ("idempotency-key", key))
            .into_iter()
            .collect();
        let reply = self
            .request(Method::POST, Api::Ingress, url, input, &headers)
            .await?;
        let accepted: Value = decode(&Self::success(reply)?)?;
        accepted
            .get("invocationId")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| codec(format!("no invocationId in {accepted}")))
    }

    /// Waits for an invocation's result.
    pub async fn attach<O: DeserializeOwned>(&self, id: &str) -> Result<O, CallError> {
        let url = format!("/restate/invocation/{}/attach", encode_path(id));
        let reply = self
            .request(Method::GET, Api::Ingress, url, Vec::new(), &[])
            .await?;
        decode(&Self::success(reply)?)
    }

    /// Waits for the result of a workflow's `run`, by key.
    pub async fn attach_workflow<O: DeserializeOwned>(
        &self,
        workflow: &str,
        key: &str,
    ) -> Result<O, CallError> {
        let url = format!(
            "/restate/workflow/{}/{}/attach",
            encode_path(workflow),
            encode_path(key)
        );
        let reply = self
            .request(Method::GET, Api::Ingress, url, Vec::new(), &[])
            .await?;
        decode(&Self::success(reply)?)
    }

    /// Resolves an awakeable with `value`.
    pub async fn resolve_awakeable<T: Serialize>(
        &self,
        id: &str,
        value: &T,
    ) -> Result<(), CallError> {
        let body = serde_json::to_vec(value).map_err(codec)?;
        let url = format!("/restate/awakeables/{}/resolve", encode_path(id));
        Self::success(
            self.request(Method::POST, Api::Ingress, url, body, &[])
                .await?,
        )
        .map(drop)
    }

    /// Rejects an awakeable: its await fails with `reason`.
    pub async fn reject_awakeable(&self, id: &str, reason: &str) -> Result<(), CallError> {
        let url = format!("/restate/awakeables/{}/reject", encode_path(id));
        let body = reason.as_bytes().to_vec();
        let headers = [("content-type", "text/plain")];
        Self::success(
            self.request(Method::POST, Api::Ingress, url, body, &headers)
                .await?,
        )
        .map(drop)
    }

    /// Runs a read-only SQL query on the cluster's introspection tables (`state`,
    /// `sys_invocation`, `sys_journal`, …) through the admin API; its rows.
    pub async fn query(&self, sql: &str) -> Result<Vec<Value>, CallError> {
        let body = serde_json::to_vec(&serde_json::json!({ "query": sql })).map_err(codec)?;
        let reply = self
            .request(Method::POST, Api::Admin, "/query".to_owned(), body, &[])
            .await?;
        let answer: Value = decode(&Self::success(reply)?)?;
        match answer.get("rows") {
            Some(Value::Array(rows)) => Ok(rows.clone()),
            _ => Err(codec(format!("no rows in the query's answer: {answer}"))),
        }
    }

    /// A committed state value of an object or workflow, read without an invocation.
    pub async fn state<T: DeserializeOwned>(
        &self,
        service: &str,
        key: &str,
        name: &str,
    ) -> Result<Option<T>, CallError> {
        let sql = format!(
            "SELECT value_utf8 FROM state WHERE service_name = {} AND service_key = {} AND key = {}",
            sql_text(service),
            sql_text(key),
            sql_text(name)
        );
        let rows = self.query(&sql).await?;
        let Some(text) = rows
            .first()
            .and_then(|row| row.get("value_utf8"))
            .and_then(Value::as_str)
        else {
            return Ok(None);
        };
        serde_json::from_str(text).map(Some).map_err(codec)
    }

    /// The ids of the invocations of `service` (and `handler`, `key` if given), oldest first.
    pub async fn invocations(
        &self,
        service: &str,
        handler: Option<&str>,
        key: Option<&str>,
    ) -> Result<Vec<String>, CallError> {
        let mut sql = format!(
            "SELECT id FROM sys_invocation WHERE target_service_name = {}",
            sql_text(service)
        );
        if let Some(handler) = handler {
            sql.push_str(&format!(" AND target_handler_name = {}", sql_text(handler)));
        }
        if let Some(key) = key {
            sql.push_str(&format!(" AND target_service_key = {}", sql_text(key)));
        }
        sql.push_str(" ORDER BY created_at");
        let rows = self.query(&sql).await?;
        Ok(rows
            .iter()
            .filter_map(|row| row.get("id").and_then(Value::as_str).map(str::to_owned))
            .collect())
    }

    /// The names of an invocation's journal entries, in order: a step's name, a call's or
    /// send's target (`Service/handler`), otherwise the entry's type.
    pub async fn journal_names(&self, id: &str) -> Result<Vec<String>, CallError> {
        let text = |row: &Value, column: &str| {
            row.get(column)
                .and_then(Value::as_str)
                .filter(|text| !text.is_empty())
                .map(str::to_owned)
        };
        // The journal does not name a call's target: its callees do, in the order it made them.
        let sql = format!(
            "SELECT target FROM sys_invocation WHERE invoked_by_id = {} ORDER BY created_at",
            sql_text(id)
        );
        let mut callees = self.query(&sql).await?.into_iter();
        let sql = format!(
            "SELECT entry_type, name FROM sys_journal WHERE id = {} ORDER BY index",
            sql_text(id)
        );
        let rows = self.query(&sql).await?;
        Ok(rows
            .iter()
            .map(|row| {
                let kind = text(row, "entry_type").unwrap_or_default();
                let callee = if kind == "Command: Call" || kind == "Command: OneWayCall" {
                    callees.next().and_then(|callee| text(&callee, "target"))
                } else {
                    None
                };
                text(row, "name").or(callee).unwrap_or(kind)
            })
            .collect())
    }

    /// Registers (or re-registers, replacing it) the deployment reachable at `uri` with the
    /// cluster's admin API; the names of the services it serves.
    pub async fn register_deployment(&self, uri: &str) -> Result<Vec<String>, CallError> {
        let body =
            serde_json::to_vec(&serde_json::json!({ "uri": uri, "force": true })).map_err(codec)?;
        let reply = self
            .request(
                Method::POST,
                Api::Admin,
                "/deployments".to_owned(),
                body,
                &[],
            )
            .await?;
        let answer: Value = decode(&Self::success(reply)?)?;
        Ok(answer
            .get("services")
            .and_then(Value::as_array)
            .map(|services| {
                services
                    .iter()
                    .filter_map(|s| s.get("name").and_then(Value::as_str).map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Cancels an invocation: its next await fails, its compensations run.
    pub async fn cancel(&self, id: &str) -> Result<(), CallError> {
        let path = format!("/invocations/{}/cancel", encode_path(id));
        let reply = self
            .request(Method::PATCH, Api::Admin, path, Vec::new(), &[])
            .await?;
        Self::success(reply).map(drop)
    }
}

fn unavailable(message: String) -> CallError {
    CallError::Failed(TerminalError::with_code(503, message))
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CallError> {
    let bytes = if bytes.is_empty() {
        b"null".as_slice()
    } else {
        bytes
    };
    serde_json::from_slice(bytes).map_err(codec)
}
