//! Every context operation, on both backends, from one set of scenarios: the same handlers are
//! registered with the embedded engine (served by its Restate-compatible ingress) and served to
//! a real single-node Restate server (restate-server from npm) through `zeroapp-restate`; the
//! scenarios drive both over HTTP with the same requests and expect the same answers.

#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use zeroapp_engine::http::{self, HttpLimits};
use zeroapp_engine::prelude::*;
use zeroapp_engine::{Definition, Engine};
use zeroapp_restate::Deployment;
use zeroapp_restate::local::Cluster;

/// How many times each test step ran, by name: what a crash or a retry must not repeat.
#[derive(Clone, Default)]
struct Counts(Arc<Mutex<HashMap<String, u32>>>);

impl Counts {
    fn bump(&self, name: &str) -> u32 {
        let mut counts = self.0.lock().unwrap();
        let count = counts.entry(name.to_owned()).or_default();
        *count += 1;
        *count
    }
}

/// The handlers under test. Each backend gets its own `Counts`.
fn definitions(counts: &Counts) -> Vec<Definition> {
    let c = counts.clone();
    let flaky = move |ctx: Context, key: String| {
        let c = c.clone();
        async move {
            // Fails twice with a retryable error, then succeeds: the step is retried.
            let attempts = ctx
                .run_with(
                    "flaky",
                    RetryPolicy::exponential(Duration::from_millis(10)),
                    move || {
                        let c = c.clone();
                        let key = key.clone();
                        async move {
                            let n = c.bump(&key);
                            if n < 3 {
                                Err(HandlerError::retryable(format!("attempt {n} fails")))
                            } else {
                                Ok(n)
                            }
                        }
                    },
                )
                .await?;
            Ok::<_, HandlerError>(attempts)
        }
    };
    let c = counts.clone();
    let gives_up = move |ctx: Context, key: String| {
        let c = c.clone();
        async move {
            let policy = RetryPolicy::exponential(Duration::from_millis(10)).max_attempts(2);
            let outcome: Result<u32, TerminalError> = ctx
                .run_with("always fails", policy, move || {
                    let c = c.clone();
                    let key = key.clone();
                    async move {
                        c.bump(&key);
                        Err::<u32, _>(HandlerError::retryable("down"))
                    }
                })
                .await;
            // The give-up is terminal and journaled: the handler sees it and goes on.
            Ok::<_, HandlerError>(outcome.is_err())
        }
    };
    let c = counts.clone();
    let panics_once = move |_ctx: Context, key: String| {
        let c = c.clone();
        async move {
            if c.bump(&key) == 1 {
                panic!("first attempt panics");
            }
            Ok::<_, HandlerError>("recovered".to_owned())
        }
    };
    let c = counts.clone();
    let deterministic = move |ctx: Context, key: String| {
        let c = c.clone();
        async move {
            let r = ctx.rand_u64().await?;
            let u = ctx.uuid().await?;
            let t = ctx.now().await?;
            let first = format!("{r}/{u}/{t:?}");
            let step = ctx
                .run("remember", move || {
                    let first = first.clone();
                    async move { Ok(first) }
                })
                .await?;
            // The first attempt fails after drawing: the second replays the same draws.
            if c.bump(&key) == 1 {
                return Err(HandlerError::retryable("retry me"));
            }
            Ok::<_, HandlerError>(step == format!("{r}/{u}/{t:?}"))
        }
    };
    let ops = Service::new("Ops")
        .handler("flaky", flaky)
        .handler("gives_up", gives_up)
        .handler("panics_once", panics_once)
        .handler("deterministic", deterministic)
        .handler("terminal", |ctx: Context, (): ()| async move {
            let failed: Result<(), TerminalError> = ctx
                .run("refuse", || async {
                    Err(TerminalError::with_code(418, "no coffee here").into())
                })
                .await;
            Err::<(), HandlerError>(failed.unwrap_err().into())
        })
        .handler("call", |ctx: Context, key: String| async move {
            let total: i64 = ctx.call(Target::object("Counter", &key, "add"), &5).await?;
            Ok::<_, HandlerError>(total)
        })
        .handler("send", |ctx: Context, key: String| async move {
            let id = ctx.send(Target::object("Counter", &key, "add"), &1).await?;
            Ok::<_, HandlerError>(id.starts_with("inv_"))
        })
        .handler("send_after", |ctx: Context, key: String| async move {
            ctx.send_after(
                Target::object("Counter", &key, "add"),
                &100,
                Duration::from_millis(800),
            )
            .await?;
            Ok::<_, HandlerError>(())
        })
        .handler("sleep", |ctx: Context, ms: u64| async move {
            let start = ctx.now().await?;
            ctx.sleep(Duration::from_millis(ms)).await?;
            let end = ctx.now().await?;
            let slept = end.duration_since(start).unwrap_or_default();
            Ok::<_, HandlerError>(u64::try_from(slept.as_millis()).unwrap_or(0))
        })
        .handler("sleep_until", |ctx: Context, ms: u64| async move {
            let deadline = ctx.now().await? + Duration::from_millis(ms);
            ctx.sleep_until(deadline).await?;
            Ok::<_, HandlerError>(ctx.now().await? >= deadline)
        })
        .handler("timeout", |ctx: Context, (): ()| async move {
            let (_id, never) = ctx.awakeable::<String>();
            match ctx.timeout(never, Duration::from_millis(200)).await {
                Ok(_) => Ok::<_, HandlerError>(0),
                Err(e) => Ok(e.code()),
            }
        })
        .handler("all", |ctx: Context, (): ()| async move {
            let sleeps = vec![
                ctx.sleep(Duration::from_millis(50)),
                ctx.sleep(Duration::from_millis(100)),
            ];
            Ok::<_, HandlerError>(ctx.all(sleeps).await?.len())
        });

    let counter = VirtualObject::new("Counter")
        .exclusive("add", |ctx: ObjectContext, n: i64| async move {
            let total = ctx.get::<i64>("total").await?.unwrap_or(0) + n;
            ctx.set("total", &total)?;
            ctx.set("touched", &true)?;
            Ok::<_, HandlerError>(total)
        })
        .exclusive("clear", |ctx: ObjectContext, key: String| async move {
            ctx.clear(&key);
            Ok::<_, HandlerError>(ctx.state_keys().await?)
        })
        .exclusive("clear_all", |ctx: ObjectContext, (): ()| async move {
            ctx.clear_all();
            Ok::<_, HandlerError>(ctx.state_keys().await?)
        })
        .shared("keys", |ctx: SharedObjectContext, (): ()| async move {
            Ok::<_, HandlerError>(ctx.state_keys().await?)
        })
        .shared("total", |ctx: SharedObjectContext, (): ()| async move {
            Ok::<_, HandlerError>(ctx.get::<i64>("total").await?.unwrap_or(0))
        });

    let c = counts.clone();
    let approval = Workflow::new("Approval")
        .run(move |ctx: WorkflowContext, (): ()| {
            let c = c.clone();
            async move {
                let mut saga = Saga::new(&ctx);
                let key = ctx.key().to_owned();
                let result = async {
                    let (k1, k2) = (key.clone(), key.clone());
                    let c1 = c.clone();
                    saga.compensate("undo first", move || {
                        let (c, k) = (c1.clone(), k1.clone());
                        async move {
                            c.bump(&format!("{k}:undo first"));
                            Ok(())
                        }
                    });
                    let c2 = c.clone();
                    saga.compensate("undo second", move || {
                        let (c, k) = (c2.clone(), k2.clone());
                        async move {
                            c.bump(&format!("{k}:undo second"));
                            Ok(())
                        }
                    });
                    let decision = ctx.promise::<bool>("decision");
                    let deadline = ctx.sleep(Duration::from_secs(30));
                    match ctx.select(&[&decision, &deadline]).await? {
                        0 if decision.await? => Ok("approved".to_owned()),
                        0 => Err(TerminalError::with_code(403, "rejected")),
                        _ => Ok("expired".to_owned()),
                    }
                }
                .await;
                Ok::<_, HandlerError>(saga.finish(result).await?)
            }
        })
        .shared(
            "decide",
            |ctx: SharedWorkflowContext, yes: bool| async move {
                ctx.resolve_promise("decision", &yes).await?;
                Ok::<_, HandlerError>(())
            },
        )
        .shared("peek", |ctx: SharedWorkflowContext, (): ()| async move {
            Ok::<_, HandlerError>(ctx.peek_promise::<bool>("decision").await?)
        });

    let waiter = Workflow::new("Waiter")
        .run(|ctx: WorkflowContext, (): ()| async move {
            let (id, value) = ctx.awakeable::<String>();
            ctx.resolve_promise("id", &id).await?;
            ctx.set("id", &id)?;
            Ok::<_, HandlerError>(value.await?)
        })
        .shared("id", |ctx: SharedWorkflowContext, (): ()| async move {
            Ok::<_, HandlerError>(ctx.promise::<String>("id").await?)
        });

    vec![ops.into(), counter.into(), approval.into(), waiter.into()]
}

/// An HTTP/1 client of an ingress.
struct Ingress {
    address: String,
    client: Client<hyper_util::client::legacy::connect::HttpConnector, Full<bytes::Bytes>>,
}

struct Reply {
    status: StatusCode,
    body: Value,
    text: String,
}

impl Ingress {
    fn new(address: String) -> Self {
        Self {
            address,
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    async fn request(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let request = Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", self.address))
            .header("content-type", "application/json")
            .body(Full::from(body))
            .unwrap();
        let response = tokio::time::timeout(Duration::from_secs(60), self.client.request(request))
            .await
            .unwrap_or_else(|_| panic!("{path} did not answer in 60 s"))
            .unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply { status, body, text }
    }

    async fn post(&self, path: &str, body: Value) -> Reply {
        self.request(Method::POST, path, Some(body)).await
    }

    /// Calls and expects 200, returning the JSON answer.
    async fn ok(&self, path: &str, body: Value) -> Value {
        let reply = self.post(path, body).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.text);
        reply.body
    }

    /// Polls `path` until `check` accepts its answer.
    async fn until(&self, path: &str, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let reply = self.post(path, Value::Null).await;
            if reply.status == StatusCode::OK && check(&reply.body) {
                return reply.body;
            }
            assert!(Instant::now() < deadline, "{path}: {}", reply.text);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The scenarios, each named; the same for both backends. `tag` keeps keys apart.
async fn scenarios(ingress: &Ingress, counts: &Counts, tag: &str) {
    // run: retried until it succeeds; a policy that gives up journals a terminal failure.
    assert_eq!(
        ingress
            .ok("/Ops/flaky", json!(format!("{tag}-flaky")))
            .await,
        json!(3)
    );
    assert_eq!(
        ingress
            .ok("/Ops/gives_up", json!(format!("{tag}-up")))
            .await,
        json!(true)
    );
    assert_eq!(
        counts.bump(&format!("{tag}-up")),
        3,
        "two attempts, then it gave up"
    );

    // A terminal error stays terminal and keeps its code.
    let refused = ingress.post("/Ops/terminal", Value::Null).await;
    assert!(
        refused.text.contains("no coffee here") && refused.text.contains("418"),
        "terminal: {} {}",
        refused.status,
        refused.text
    );

    // A panic and a retryable handler error are retried.
    let panicked = ingress
        .ok("/Ops/panics_once", json!(format!("{tag}-panic")))
        .await;
    assert_eq!(panicked, json!("recovered"));

    // rand, uuid and now replay the same values after a retry.
    let same = ingress
        .ok("/Ops/deterministic", json!(format!("{tag}-det")))
        .await;
    assert_eq!(same, json!(true));

    // State: get, set, keys, clear, clear_all.
    let key = format!("{tag}-counter");
    assert_eq!(
        ingress.ok(&format!("/Counter/{key}/add"), json!(2)).await,
        json!(2)
    );
    assert_eq!(
        ingress.ok(&format!("/Counter/{key}/add"), json!(3)).await,
        json!(5)
    );
    let keys = ingress
        .ok(&format!("/Counter/{key}/keys"), Value::Null)
        .await;
    assert_eq!(keys, json!(["total", "touched"]));
    let keys = ingress
        .ok(&format!("/Counter/{key}/clear"), json!("touched"))
        .await;
    assert_eq!(keys, json!(["total"]));
    let keys = ingress
        .ok(&format!("/Counter/{key}/clear_all"), Value::Null)
        .await;
    assert_eq!(keys, json!([]));

    // call, send, send_after.
    let key = format!("{tag}-calls");
    assert_eq!(ingress.ok("/Ops/call", json!(key)).await, json!(5));
    assert_eq!(ingress.ok("/Ops/send", json!(key)).await, json!(true));
    ingress
        .until(&format!("/Counter/{key}/total"), |v| *v == json!(6))
        .await;
    let sent = Instant::now();
    ingress.ok("/Ops/send_after", json!(key)).await;
    ingress
        .until(&format!("/Counter/{key}/total"), |v| *v == json!(106))
        .await;
    assert!(
        sent.elapsed() >= Duration::from_millis(700),
        "a delayed send ran early"
    );

    // sleep, sleep_until, timeout, all.
    let slept = ingress.ok("/Ops/sleep", json!(300)).await;
    assert!(slept.as_u64().unwrap() >= 300, "slept {slept} ms");
    assert_eq!(
        ingress.ok("/Ops/sleep_until", json!(200)).await,
        json!(true)
    );
    assert_eq!(ingress.ok("/Ops/timeout", Value::Null).await, json!(408));
    assert_eq!(ingress.ok("/Ops/all", Value::Null).await, json!(2));

    // Workflow promises and select: approved; rejected (compensations in reverse order);
    // a second decision is a conflict (409); peek.
    let approved = format!("{tag}-approved");
    ingress
        .post(&format!("/Approval/{approved}/run/send"), Value::Null)
        .await;
    assert_eq!(
        ingress
            .ok(&format!("/Approval/{approved}/peek"), Value::Null)
            .await,
        Value::Null
    );
    ingress
        .ok(&format!("/Approval/{approved}/decide"), json!(true))
        .await;
    let again = ingress
        .post(&format!("/Approval/{approved}/decide"), json!(false))
        .await;
    assert_eq!(
        again.status.as_u16(),
        409,
        "second decision: {}",
        again.text
    );
    assert_eq!(
        ingress
            .ok(&format!("/Approval/{approved}/peek"), Value::Null)
            .await,
        json!(true)
    );
    let outcome = ingress
        .request(
            Method::GET,
            &format!("/restate/workflow/Approval/{approved}/attach"),
            None,
        )
        .await;
    assert_eq!(outcome.body, json!("approved"), "{}", outcome.text);

    let rejected = format!("{tag}-rejected");
    ingress
        .post(&format!("/Approval/{rejected}/run/send"), Value::Null)
        .await;
    ingress
        .ok(&format!("/Approval/{rejected}/decide"), json!(false))
        .await;
    let outcome = ingress
        .request(
            Method::GET,
            &format!("/restate/workflow/Approval/{rejected}/attach"),
            None,
        )
        .await;
    assert!(outcome.text.contains("rejected"), "{}", outcome.text);
    assert_eq!(counts.bump(&format!("{rejected}:undo second")), 2);
    assert_eq!(counts.bump(&format!("{rejected}:undo first")), 2);

    // Awakeables: resolved and rejected from outside.
    for (name, how, expect) in [("yes", "resolve", true), ("no", "reject", false)] {
        let key = format!("{tag}-{name}");
        ingress
            .post(&format!("/Waiter/{key}/run/send"), Value::Null)
            .await;
        let id = ingress.ok(&format!("/Waiter/{key}/id"), Value::Null).await;
        let id = id.as_str().unwrap().to_owned();
        let body = if how == "resolve" {
            json!("hello")
        } else {
            json!("nope")
        };
        let completed = ingress
            .post(&format!("/restate/awakeables/{id}/{how}"), body)
            .await;
        assert!(completed.status.is_success(), "{how}: {}", completed.text);
        let outcome = ingress
            .request(
                Method::GET,
                &format!("/restate/workflow/Waiter/{key}/attach"),
                None,
            )
            .await;
        assert_eq!(outcome.status == StatusCode::OK, expect, "{}", outcome.text);
        if expect {
            assert_eq!(outcome.body, json!("hello"));
        } else {
            assert!(outcome.text.contains("nope"), "{}", outcome.text);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_behaves_the_same_on_both_backends() {
    // The embedded engine, through its Restate-compatible ingress.
    let dir = tempfile::tempdir().unwrap();
    let counts = Counts::default();
    let engine = definitions(&counts)
        .into_iter()
        .fold(Engine::builder(), |b, d| b.register(d))
        .open(dir.path())
        .await
        .unwrap();
    let stop = CancellationToken::new();
    let limits = HttpLimits::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let server = tokio::spawn(http::serve(
        listener,
        http::ingress(&engine, &limits),
        limits,
        stop.clone(),
    ));
    let started = Instant::now();
    scenarios(&Ingress::new(address), &counts, "embedded").await;
    eprintln!(
        "embedded engine: every scenario passed in {:?}",
        started.elapsed()
    );
    stop.cancel();
    server.await.unwrap().unwrap();
    engine.shutdown().await;

    // The same definitions on a real Restate server.
    let counts = Counts::default();
    let cluster = Cluster::single().await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = listener.local_addr().unwrap();
    let deployment = definitions(&counts)
        .into_iter()
        .fold(Deployment::new(), |d, def| d.register(def));
    let stop = CancellationToken::new();
    let serving = tokio::spawn(deployment.serve(listener, stop.clone().cancelled_owned()));
    cluster
        .register(&format!("http://{endpoint}/"))
        .await
        .unwrap();
    let started = Instant::now();
    scenarios(
        &Ingress::new(cluster.ingress_address(0)),
        &counts,
        "restate",
    )
    .await;
    eprintln!("restate: every scenario passed in {:?}", started.elapsed());
    stop.cancel();
    serving.await.unwrap().unwrap();
}
