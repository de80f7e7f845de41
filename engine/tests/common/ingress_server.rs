//! The ingress and admin API of an engine on 127.0.0.1, with the handlers the HTTP tests call
//! (`ingress.rs`, `ingress_access.rs`).

#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use zeroapp_engine::http::{self, HttpLimits};
use zeroapp_engine::prelude::*;

use super::http::Reply;

/// How many times `Greeter/count` ran its step, over all tests of this binary.
pub static COUNTED: AtomicU64 = AtomicU64::new(0);

async fn greet(_ctx: Context, name: String) -> Result<String, HandlerError> {
    Ok(format!("Hello, {name}!"))
}

async fn count(ctx: Context, name: String) -> Result<String, HandlerError> {
    let n = ctx
        .run("count", || async {
            Ok(COUNTED.fetch_add(1, Ordering::SeqCst) + 1)
        })
        .await?;
    Ok(format!("{name} #{n}"))
}

async fn refuse(_ctx: Context, (): ()) -> Result<(), HandlerError> {
    Err(TerminalError::with_code(422, "not today").into())
}

/// Bytes in, bytes out: the bytes reversed, by way of a call to `Greeter/mirror` (so a call
/// between handlers carries bytes as they are too).
async fn reverse(ctx: Context, input: Binary) -> Result<Binary, HandlerError> {
    let mirrored: Binary = ctx
        .call(Target::service("Greeter", "mirror"), &input)
        .await?;
    Ok(mirrored)
}

async fn mirror(_ctx: Context, input: Binary) -> Result<Binary, HandlerError> {
    let mut bytes = input.0;
    bytes.reverse();
    Ok(Binary(bytes))
}

/// Bytes in, JSON out.
async fn size(_ctx: Context, input: Binary) -> Result<usize, HandlerError> {
    Ok(input.0.len())
}

async fn nap(ctx: Context, ms: u64) -> Result<String, HandlerError> {
    ctx.sleep(Duration::from_millis(ms)).await?;
    Ok(format!("slept {ms} ms"))
}

async fn add(ctx: ObjectContext, amount: i64) -> Result<i64, HandlerError> {
    let total = ctx.get::<i64>("total").await?.unwrap_or(0) + amount;
    ctx.set("total", &total)?;
    Ok(total)
}

async fn total(ctx: SharedObjectContext, (): ()) -> Result<i64, HandlerError> {
    Ok(ctx.get::<i64>("total").await?.unwrap_or(0))
}

/// Publishes an awakeable's id in its state, then waits for it.
async fn wait(ctx: ObjectContext, (): ()) -> Result<String, HandlerError> {
    let (id, value) = ctx.awakeable::<String>();
    ctx.set("awakeable", &id)?;
    Ok(format!("got {}", value.await?))
}

async fn approval(ctx: WorkflowContext, order: String) -> Result<String, HandlerError> {
    let approved: bool = ctx.promise("decision").await?;
    Ok(format!(
        "{order} {}",
        if approved { "approved" } else { "rejected" }
    ))
}

async fn decide(ctx: SharedWorkflowContext, approved: bool) -> Result<(), HandlerError> {
    ctx.resolve_promise("decision", &approved).await?;
    Ok(())
}

pub fn builder() -> zeroapp_engine::EngineBuilder {
    super::builder()
        .register(
            Service::new("Greeter")
                .handler("greet", greet)
                .handler("count", count)
                .handler("refuse", refuse)
                .handler("reverse", reverse)
                .handler("mirror", mirror)
                .handler("size", size)
                .handler("nap", nap),
        )
        .register(
            VirtualObject::new("Counter")
                .exclusive("add", add)
                .shared("total", total),
        )
        .register(VirtualObject::new("Waiter").exclusive("wait", wait))
        .register(
            Workflow::new("Approval")
                .run(approval)
                .shared("decide", decide),
        )
        .register(
            Service::new("Vault")
                .handler("open", open)
                .ingress_private(),
        )
        .register(Service::new("Front").handler("knock", knock))
        .register(
            VirtualObject::new("Account")
                .exclusive("deposit", add)
                .shared("audit", total)
                .ingress_private_handler("audit"),
        )
        .register(Workflow::new("Secret").run(approval).ingress_private())
}

/// Private: only other handlers (and the in-process client) may open the vault.
async fn open(_ctx: Context, who: String) -> Result<String, HandlerError> {
    Ok(format!("vault opened for {who}"))
}

/// Public: calls the private vault.
async fn knock(ctx: Context, who: String) -> Result<String, HandlerError> {
    Ok(ctx.call(Target::service("Vault", "open"), &who).await?)
}

pub struct Server {
    pub engine: Engine,
    pub ingress: SocketAddr,
    pub admin: SocketAddr,
    pub stop: CancellationToken,
    pub servers: Vec<JoinHandle<std::io::Result<()>>>,
    pub _dir: tempfile::TempDir,
}

impl Server {
    pub async fn start(limits: HttpLimits) -> Self {
        Self::start_with(limits, None).await
    }

    /// With `tokens`, the ingress and the admin API each need their own.
    pub async fn start_with(limits: HttpLimits, tokens: Option<(&str, &str)>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let engine = super::open(builder(), dir.path()).await;
        let stop = CancellationToken::new();
        let mut servers = Vec::new();
        let mut addrs = Vec::new();
        let mut ingress = http::ingress(&engine, &limits);
        let mut admin = http::admin(&engine);
        if let Some((ingress_token, admin_token)) = tokens {
            let token = |t: &str| http::BearerToken::new(t).unwrap();
            ingress = http::require_bearer(
                ingress,
                token(ingress_token),
                &["/restate/health"],
                Some("ingress"),
            );
            admin = http::require_bearer(admin, token(admin_token), &["/health"], None);
        }
        for routes in [ingress, admin] {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            addrs.push(listener.local_addr().unwrap());
            servers.push(tokio::spawn(http::serve(
                listener,
                routes,
                limits.clone(),
                stop.clone(),
            )));
        }
        Self {
            engine,
            ingress: addrs[0],
            admin: addrs[1],
            stop,
            servers,
            _dir: dir,
        }
    }

    pub async fn stop(self) {
        self.stop.cancel();
        for server in self.servers {
            server.await.unwrap().unwrap();
        }
        self.engine.shutdown().await;
    }

    /// Invocations and journal entries stored: what bad input must leave unchanged.
    pub fn written(&self) -> (usize, u64) {
        let all = self
            .engine
            .list_invocations(&zeroapp_engine::InvocationFilter::default())
            .unwrap();
        (all.len(), self.engine.journal_entries_stored().unwrap())
    }
}

pub fn small_limits() -> HttpLimits {
    HttpLimits {
        max_body_bytes: 1024,
        ..HttpLimits::default()
    }
}

pub fn assert_invocation_id(reply: &Reply) -> String {
    let id = reply.header("x-restate-id").expect("x-restate-id header");
    assert!(id.starts_with("inv_") && id.len() == 20, "{id}");
    id
}
