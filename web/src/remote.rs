//! Commands for a running server: `zeroapp invocations`, `awakeables` and `metrics` ask its
//! admin API (or its ingress) over HTTP, with its token, and print a table or, with `--json`,
//! the API's own JSON. Exit codes scripts can rely on: 0 done; 1 the server refused (an unknown
//! or finished invocation, a bad id); 2 the command could not ask (unreachable, refused token,
//! server error).

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, StatusCode};
use serde_json::{Value, json};
use zeroapp_engine::http::BearerToken;

use crate::cli::{
    AdminConnection, AwakeablesAction, AwakeablesArgs, InvocationsAction, InvocationsArgs,
    MetricsArgs,
};
use crate::inspect;
use crate::tokens;

type Error = Box<dyn std::error::Error>;

/// A listener of a running server, with its token.
pub struct Server {
    name: &'static str,
    addr: SocketAddr,
    token: Option<BearerToken>,
}

impl Server {
    /// The admin API that `connection` names, with its token (flag, else the data folder's
    /// `admin.token`).
    pub fn admin(connection: &AdminConnection) -> Result<Self, String> {
        let source = tokens::Source::admin(connection.admin_token.as_deref());
        Ok(Self {
            name: "admin API",
            addr: connection.admin_addr,
            token: tokens::load(&source, &connection.data_dir)?,
        })
    }

    /// One request: the status and the body. An unreachable server is an error.
    pub async fn ask(
        &self,
        method: Method,
        path: &str,
        body: Vec<u8>,
    ) -> Result<(StatusCode, Bytes), Error> {
        let stream = tokio::net::TcpStream::connect(self.addr)
            .await
            .map_err(|e| format!("cannot reach the {} at {}: {e}", self.name, self.addr))?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", self.addr.to_string())
            .header("content-type", "application/json");
        if let Some(token) = &self.token {
            request = request.header("authorization", format!("Bearer {}", token.secret()));
        }
        let response = sender
            .send_request(request.body(Full::new(Bytes::from(body)))?)
            .await?;
        let status = response.status();
        Ok((status, response.into_body().collect().await?.to_bytes()))
    }

    /// [`Server::ask`], read as the API's JSON: `Ok(Ok(body))` when it worked, `Ok(Err(message))`
    /// when the server refused the request itself (4xx but 401/403), `Err` when it could not be
    /// asked (unreachable, a refused token, a server error).
    async fn json(
        &self,
        method: Method,
        path: &str,
        body: Vec<u8>,
    ) -> Result<Result<Value, String>, Error> {
        let (status, answer) = self.ask(method, path, body).await?;
        let value: Value = serde_json::from_slice(&answer)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&answer).into_owned()));
        let message = || {
            value["message"]
                .as_str()
                .map_or_else(|| value.to_string(), str::to_owned)
        };
        if status.is_success() {
            Ok(Ok(value))
        } else if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN)
            || status.is_server_error()
        {
            Err(format!("the {} answered {status}: {}", self.name, message()).into())
        } else {
            Ok(Err(format!("{status}: {}", message())))
        }
    }
}

/// `zeroapp invocations …`: true when done, false when the server refused.
pub async fn invocations(args: InvocationsArgs) -> Result<bool, Error> {
    let admin = Server::admin(&args.admin)?;
    let (method, path) = match &args.action {
        InvocationsAction::List {
            status,
            service,
            key,
            limit,
        } => {
            let mut query = format!("limit={limit}");
            for (name, value) in [("status", status), ("service", service), ("key", key)] {
                if let Some(value) = value {
                    query.push_str(&format!("&{name}={}", encode(value)));
                }
            }
            (Method::GET, format!("/invocations?{query}"))
        }
        InvocationsAction::Show { id } => (Method::GET, format!("/invocations/{}", encode(id))),
        InvocationsAction::Cancel { id } => (Method::PATCH, action_path(id, "cancel")),
        InvocationsAction::Kill { id } => (Method::PATCH, action_path(id, "kill")),
        InvocationsAction::Purge { id } => (Method::PATCH, action_path(id, "purge")),
    };
    let answer = match admin.json(method, &path, Vec::new()).await? {
        Ok(answer) => answer,
        Err(refused) => return Ok(refuse(&refused)),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(true);
    }
    match &args.action {
        InvocationsAction::List { .. } => {
            let list = answer["invocations"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            inspect::print_list(&list);
        }
        InvocationsAction::Show { .. } => inspect::print_invocation(&answer),
        InvocationsAction::Cancel { id } => println!("{id}: cancellation requested"),
        InvocationsAction::Kill { id } => println!("{id}: killed"),
        InvocationsAction::Purge { id } => println!("{id}: purged"),
    }
    Ok(true)
}

/// `zeroapp awakeables …`.
pub async fn awakeables(args: AwakeablesArgs) -> Result<bool, Error> {
    let source = tokens::Source::ingress(args.ingress_token.as_deref());
    let ingress = Server {
        name: "ingress",
        addr: args.ingress_addr,
        token: tokens::load(&source, &args.data_dir)?,
    };
    let (id, operation, body) = match &args.action {
        AwakeablesAction::Resolve { id, value } => {
            let value = value.clone().unwrap_or_else(|| "null".to_owned());
            if serde_json::from_str::<Value>(&value).is_err() {
                return Err(
                    format!("the value {value:?} is not JSON (a string needs quotes)").into(),
                );
            }
            (id, "resolve", value.into_bytes())
        }
        AwakeablesAction::Reject { id, reason } => (id, "reject", reason.clone().into_bytes()),
    };
    let path = format!("/restate/awakeables/{}/{operation}", encode(id));
    match ingress.json(Method::POST, &path, body).await? {
        Ok(_) => {
            println!("{id}: {operation}d");
            Ok(true)
        }
        Err(refused) => Ok(refuse(&refused)),
    }
}

/// `zeroapp metrics`.
pub async fn metrics(args: MetricsArgs) -> Result<bool, Error> {
    let admin = Server::admin(&args.admin)?;
    let (status, text) = admin.ask(Method::GET, "/metrics", Vec::new()).await?;
    if !status.is_success() {
        let error: Value = serde_json::from_slice(&text).unwrap_or(Value::Null);
        let message = error["message"].as_str().unwrap_or("no message");
        return Err(format!("the admin API answered {status}: {message}").into());
    }
    let text = String::from_utf8_lossy(&text);
    let value = |name: &str| -> u64 {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0)
    };
    let statuses = [
        "pending",
        "scheduled",
        "running",
        "backing-off",
        "suspended",
        "completed",
        "failed",
    ];
    let by_status: Vec<(&str, u64)> = statuses
        .iter()
        .map(|s| (*s, value(&format!("zeroapp_invocations{{status=\"{s}\"}}"))))
        .collect();
    let others = [
        ("timers pending", value("zeroapp_timers_pending")),
        ("attaches waiting", value("zeroapp_attach_waiting")),
        ("writer commits", value("zeroapp_writer_commits_total")),
        ("writer commands", value("zeroapp_writer_commands_total")),
    ];
    if args.json {
        let invocations: serde_json::Map<String, Value> = by_status
            .iter()
            .map(|(s, n)| ((*s).to_owned(), json!(n)))
            .collect();
        let answer = json!({
            "invocations": invocations,
            "timersPending": others[0].1,
            "attachesWaiting": others[1].1,
            "writerCommits": others[2].1,
            "writerCommands": others[3].1,
        });
        println!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(true);
    }
    println!("invocations");
    for (status, count) in &by_status {
        println!("  {status:<16} {count:>10}");
    }
    for (name, count) in &others {
        println!("{name:<18} {count:>10}");
    }
    Ok(true)
}

fn action_path(id: &str, action: &str) -> String {
    format!("/invocations/{}/{action}", encode(id))
}

/// Says why the server refused; the command then exits 1.
fn refuse(message: &str) -> bool {
    eprintln!("zeroapp: refused: {message}");
    false
}

/// What a path segment or query value must not hold as it is.
const RESERVED: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'&')
    .add(b'+')
    .add(b'/')
    .add(b'=')
    .add(b'?');

/// A path segment or query value, percent-encoded.
fn encode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, RESERVED).to_string()
}
