//! Restate's official TypeScript ingress client (`@restatedev/restate-sdk-clients`, pinned in
//! `conformance/package.json`), unchanged, against the engine's ingress — and the same script
//! against a real restate-server serving the same handlers written on Restate's own Rust SDK: a
//! conformance oracle. Every answer the engine gives is compared with Restate's (statuses,
//! bodies, the headers clients read, idempotency and attach behaviour); a difference fails the
//! test unless docs/ingress.md lists it as deliberate ("Where ZeroApp differs"), and a listed
//! difference that no longer differs fails it too, so the list stays true.
//!
//! Needs `node` and `npm` (the client is installed with `npm ci` into the target folder once)
//! and the npm registry on the first run (restate-server too, as `zeroapp_restate::local`
//! fetches it).

#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use serde_json::Value;
use tokio_util::sync::CancellationToken;
use zeroapp_engine::http::{self, HttpLimits};
use zeroapp_engine::prelude::*;
use zeroapp_restate::local::{Cluster, RESTATE_VERSION, target_dir};

/// The handlers the script calls, on the engine.
mod engine_side {
    use super::*;

    async fn greet(_: Context, name: String) -> Result<String, HandlerError> {
        Ok(format!("Hello, {name}!"))
    }

    async fn nothing(_: Context, (): ()) -> Result<(), HandlerError> {
        Ok(())
    }

    async fn reverse(_: Context, input: Binary) -> Result<Binary, HandlerError> {
        let mut bytes = input.0;
        bytes.reverse();
        Ok(Binary(bytes))
    }

    async fn fail(_: Context, code: u16) -> Result<(), HandlerError> {
        Err(TerminalError::with_code(code, format!("refused with {code}")).into())
    }

    async fn add(ctx: ObjectContext, amount: i64) -> Result<i64, HandlerError> {
        let total = ctx.get::<i64>("total").await?.unwrap_or(0) + amount;
        ctx.set("total", &total)?;
        Ok(total)
    }

    async fn get(ctx: SharedObjectContext, (): ()) -> Result<i64, HandlerError> {
        Ok(ctx.get::<i64>("total").await?.unwrap_or(0))
    }

    async fn signup(ctx: WorkflowContext, email: String) -> Result<String, HandlerError> {
        let answer: String = ctx.promise("confirm").await?;
        Ok(format!("{email}: {answer}"))
    }

    async fn confirm(ctx: SharedWorkflowContext, answer: String) -> Result<(), HandlerError> {
        ctx.resolve_promise("confirm", &answer).await?;
        Ok(())
    }

    async fn wait(ctx: Context, mailbox: String) -> Result<String, HandlerError> {
        let (id, value) = ctx.awakeable::<String>();
        ctx.send(Target::object("Mailbox", &mailbox, "put"), &id)
            .await?;
        Ok(value.await?)
    }

    async fn put(ctx: ObjectContext, id: String) -> Result<(), HandlerError> {
        ctx.set("id", &id)?;
        Ok(())
    }

    async fn read(ctx: SharedObjectContext, (): ()) -> Result<String, HandlerError> {
        Ok(ctx.get::<String>("id").await?.unwrap_or_default())
    }

    pub fn engine() -> EngineBuilder {
        Engine::builder()
            .register(
                Service::new("Greeter")
                    .handler("greet", greet)
                    .handler("nothing", nothing)
                    .handler("reverse", reverse)
                    .handler("fail", fail),
            )
            .register(
                VirtualObject::new("Counter")
                    .exclusive("add", add)
                    .shared("get", get),
            )
            .register(
                Workflow::new("Signup")
                    .run(signup)
                    .shared("confirm", confirm),
            )
            .register(Service::new("Waiter").handler("wait", wait))
            .register(
                VirtualObject::new("Mailbox")
                    .exclusive("put", put)
                    .shared("get", read),
            )
    }

    use zeroapp_engine::EngineBuilder;
}

/// The same handlers, written on Restate's Rust SDK.
mod restate_side {
    use restate_sdk::prelude::*;

    pub struct Greeter;

    #[restate_sdk::service]
    impl Greeter {
        #[handler]
        async fn greet(&self, _: Context<'_>, name: String) -> HandlerResult<String> {
            Ok(format!("Hello, {name}!"))
        }

        // The engine's `()` input is JSON `null` (or no body): `Json<()>` here.
        #[handler]
        async fn nothing(&self, _: Context<'_>, _: Json<()>) -> HandlerResult<()> {
            Ok(())
        }

        #[handler]
        async fn reverse(&self, _: Context<'_>, input: Vec<u8>) -> HandlerResult<Vec<u8>> {
            let mut bytes = input;
            bytes.reverse();
            Ok(bytes)
        }

        #[handler]
        async fn fail(&self, _: Context<'_>, code: u16) -> HandlerResult<()> {
            Err(TerminalError::new_with_code(code, format!("refused with {code}")).into())
        }
    }

    pub struct Counter;

    #[restate_sdk::object]
    impl Counter {
        #[handler]
        async fn add(&self, ctx: ObjectContext<'_>, amount: i64) -> HandlerResult<i64> {
            let total = ctx.get::<i64>("total").await?.unwrap_or(0) + amount;
            ctx.set("total", total);
            Ok(total)
        }

        #[handler]
        async fn get(&self, ctx: SharedObjectContext<'_>, _: Json<()>) -> HandlerResult<i64> {
            Ok(ctx.get::<i64>("total").await?.unwrap_or(0))
        }
    }

    pub struct Signup;

    #[restate_sdk::workflow]
    impl Signup {
        #[handler]
        async fn run(&self, ctx: WorkflowContext<'_>, email: String) -> HandlerResult<String> {
            let answer: String = ctx.promise("confirm").await?;
            Ok(format!("{email}: {answer}"))
        }

        #[handler]
        async fn confirm(
            &self,
            ctx: SharedWorkflowContext<'_>,
            answer: String,
        ) -> HandlerResult<()> {
            ctx.resolve_promise::<String>("confirm", answer);
            Ok(())
        }
    }

    pub struct Waiter;

    #[restate_sdk::service]
    impl Waiter {
        #[handler]
        async fn wait(&self, ctx: Context<'_>, mailbox: String) -> HandlerResult<String> {
            let (id, value) = ctx.awakeable::<String>();
            ctx.object_client::<MailboxClient>(mailbox).put(id).send();
            Ok(value.await?)
        }
    }

    pub struct Mailbox;

    #[restate_sdk::object]
    impl Mailbox {
        #[handler]
        async fn put(&self, ctx: ObjectContext<'_>, id: String) -> HandlerResult<()> {
            ctx.set("id", id);
            Ok(())
        }

        #[handler]
        async fn get(&self, ctx: SharedObjectContext<'_>, _: Json<()>) -> HandlerResult<String> {
            Ok(ctx.get::<String>("id").await?.unwrap_or_default())
        }
    }

    pub fn endpoint() -> restate_sdk::endpoint::Endpoint {
        restate_sdk::endpoint::Endpoint::builder()
            .bind(Greeter)
            .bind(Counter)
            .bind(Signup)
            .bind(Waiter)
            .bind(Mailbox)
            .build()
    }
}

/// The folder of this test's Node files.
fn sources() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("conformance")
}

/// One install at a time within this process.
static INSTALLING: Mutex<()> = Mutex::new(());

/// The client script, with the official client installed next to it (`npm ci` from the
/// committed lock file, into the target folder; redone when the lock file changes).
fn installed_client() -> PathBuf {
    let _installing = INSTALLING.lock().unwrap_or_else(PoisonError::into_inner);
    let folder = target_dir().join("conformance-client");
    std::fs::create_dir_all(&folder).unwrap();
    let lock = std::fs::read(sources().join("package-lock.json")).unwrap();
    let installed = folder.join("node_modules").join(".installed-lock.json");
    if std::fs::read(&installed).ok().as_deref() != Some(&lock[..]) {
        for file in ["package.json", "package-lock.json"] {
            std::fs::copy(sources().join(file), folder.join(file)).unwrap();
        }
        let output = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--ignore-scripts"])
            .current_dir(&folder)
            .output()
            .unwrap_or_else(|e| panic!("cannot run npm (is it installed?): {e}"));
        assert!(
            output.status.success(),
            "npm ci failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        std::fs::write(&installed, &lock).unwrap();
    }
    std::fs::copy(sources().join("client.mjs"), folder.join("client.mjs")).unwrap();
    folder.join("client.mjs")
}

/// Runs the client script against the ingress at `url`; its transcript.
async fn transcript(url: &str) -> Vec<Value> {
    let script = tokio::task::spawn_blocking(installed_client).await.unwrap();
    let output = tokio::time::timeout(
        Duration::from_secs(180),
        tokio::process::Command::new("node")
            .arg(&script)
            .arg(url)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap_or_else(|_| panic!("the client script did not finish in 180 s against {url}"))
    .unwrap_or_else(|e| panic!("cannot run node (is it installed?): {e}"));
    assert!(
        output.status.success(),
        "the client script failed against {url}:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let transcript: Value = serde_json::from_slice(&output.stdout).unwrap();
    transcript["steps"].as_array().unwrap().clone()
}

/// Runs the script against the engine's ingress.
async fn engine_transcript() -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine_side::engine().open(dir.path()).await.unwrap();
    let stop = CancellationToken::new();
    let limits = HttpLimits::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(http::serve(
        listener,
        http::ingress(&engine, &limits),
        limits,
        stop.clone(),
    ));
    let steps = transcript(&format!("http://{address}")).await;
    stop.cancel();
    server.await.unwrap().unwrap();
    engine.shutdown().await;
    steps
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_client_works_against_the_engine() {
    let steps = engine_transcript().await;
    let failed: Vec<&Value> = steps.iter().filter(|s| s["ok"] != true).collect();
    eprintln!(
        "official client against the engine: {} of {} steps pass",
        steps.len() - failed.len(),
        steps.len()
    );
    assert!(
        failed.is_empty(),
        "steps that did not answer as expected:\n{}",
        serde_json::to_string_pretty(&failed).unwrap()
    );
}

/// The deliberate differences: the rows of the table in docs/ingress.md's "Where ZeroApp differs"
/// section whose first cell names a step of the script (in backticks).
fn deliberate_differences() -> Vec<String> {
    let docs =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/ingress.md"))
            .unwrap();
    let section = docs
        .split("## Where ZeroApp differs from Restate")
        .nth(1)
        .expect("docs/ingress.md has its differences section");
    let section = section.split("\n## ").next().unwrap_or(section);
    section
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split_once('`'))
        .map(|(step, _)| step.to_owned())
        .collect()
}

/// Where two JSON values differ, as `path: restate … / zeroapp …` lines.
fn differences(path: &str, restate: &Value, zeroapp: &Value, out: &mut Vec<String>) {
    match (restate, zeroapp) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let (a, b) = (
                    a.get(key).unwrap_or(&Value::Null),
                    b.get(key).unwrap_or(&Value::Null),
                );
                differences(&format!("{path}.{key}"), a, b, out);
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (a, b)) in a.iter().zip(b).enumerate() {
                differences(&format!("{path}[{i}]"), a, b, out);
            }
        }
        (a, b) if a != b => out.push(format!("{path}: Restate {a} / ZeroApp {b}")),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_answers_as_restate_does() {
    let zeroapp = engine_transcript().await;

    let cluster = Cluster::single().await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let serving = tokio::spawn(
        restate_sdk::http_server::HttpServer::new(restate_side::endpoint())
            .serve_with_cancel(listener, stop.clone().cancelled_owned()),
    );
    cluster
        .register(&format!("http://{endpoint}/"))
        .await
        .unwrap();
    let restate = transcript(&cluster.ingress_url(0)).await;
    stop.cancel();
    serving.await.unwrap();

    let deliberate = deliberate_differences();
    for step in &deliberate {
        assert!(
            zeroapp.iter().any(|s| s["step"] == step.as_str()),
            "docs/ingress.md lists a difference in {step:?}, which the script has no step for"
        );
    }
    let mut unexpected = Vec::new();
    let mut listed_but_equal = Vec::new();
    assert_eq!(restate.len(), zeroapp.len(), "both ran every step");
    for (restate, zeroapp) in restate.iter().zip(&zeroapp) {
        let step = restate["step"].as_str().unwrap();
        let mut found = Vec::new();
        for part in ["outcome", "exchanges"] {
            differences(part, &restate[part], &zeroapp[part], &mut found);
        }
        let listed = deliberate.iter().any(|d| d == step);
        for difference in &found {
            eprintln!(
                "{} {step}: {difference}",
                if listed { "deliberate" } else { "DRIFT" }
            );
        }
        match (listed, found.is_empty()) {
            (false, false) => unexpected.push(format!("{step}:\n  {}", found.join("\n  "))),
            (true, true) => listed_but_equal.push(step.to_owned()),
            _ => {}
        }
    }
    eprintln!(
        "conformance: {} steps, {} answer as Restate does, {} differ as docs/ingress.md says",
        zeroapp.len(),
        zeroapp.len() - unexpected.len() - deliberate.len() + listed_but_equal.len(),
        deliberate.len() - listed_but_equal.len()
    );
    assert!(
        unexpected.is_empty(),
        "the engine answers differently from Restate {}, and docs/ingress.md does not list it:\n{}",
        RESTATE_VERSION,
        unexpected.join("\n")
    );
    assert!(
        listed_but_equal.is_empty(),
        "docs/ingress.md lists differences that are gone: {listed_but_equal:?}"
    );
}
