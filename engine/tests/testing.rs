//! The testing module: a test engine whose virtual clock fires an hour-long sleep at once and
//! whose simulated crash recovers without repeating finished steps; the crash-point checker
//! passing deterministic, idempotent handlers and catching a non-deterministic branch and a
//! non-idempotent step.

#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
#![allow(clippy::disallowed_methods)] // a test waits in real time for what it observes

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use zeroapp_engine::prelude::*;
use zeroapp_engine::testing::{CrashPointError, CrashPoints, CrashReport, Run, Setup, TestEngine};
use zeroapp_engine::{Clock, EngineBuilder};

async fn remind(ctx: Context, hours: u64) -> Result<String, HandlerError> {
    ctx.sleep(Duration::from_secs(hours * 3600)).await?;
    Ok(format!("{hours} hours later"))
}

fn reminders(builder: EngineBuilder) -> EngineBuilder {
    builder.register(Service::new("Reminders").handler("remind", remind))
}

#[tokio::test]
async fn the_virtual_clock_fires_a_long_sleep_at_once() {
    let test = TestEngine::start(reminders).await.unwrap();
    let client = test.client();
    let target = Target::service("Reminders", "remind");
    let id = client.send(target, &5u64).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        client.output_raw(id).unwrap(),
        None,
        "not before the clock moves"
    );

    test.advance(Duration::from_secs(4 * 3600)).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(client.output_raw(id).unwrap(), None, "not an hour early");

    test.advance(Duration::from_secs(3600)).await;
    let out: String = tokio::time::timeout(Duration::from_secs(5), client.attach(id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(out, "5 hours later");
    test.shutdown().await;
}

/// Counts the executions of its `run` closure, then waits for an awakeable.
#[derive(Clone, Default)]
struct Counted {
    executions: Arc<AtomicU64>,
    awakeable: Arc<Mutex<Option<String>>>,
}

impl Setup for Counted {
    fn register(&self, builder: EngineBuilder) -> EngineBuilder {
        let this = self.clone();
        builder.register(
            Service::new("Counted").handler("go", move |ctx: Context, (): ()| {
                let this = this.clone();
                async move {
                    let executions = this.executions.clone();
                    let n: u64 = ctx
                        .run("count", move || {
                            let executions = executions.clone();
                            async move { Ok(executions.fetch_add(1, Ordering::SeqCst) + 1) }
                        })
                        .await?;
                    let (id, answer) = ctx.awakeable::<String>();
                    *this.awakeable.lock().unwrap() = Some(id);
                    let answer = answer.await?;
                    Ok(format!("{answer} after {n} execution(s)"))
                }
            }),
        )
    }
}

#[tokio::test]
async fn a_simulated_crash_recovers_without_repeating_a_finished_step() {
    let setup = Counted::default();
    let mut test = TestEngine::start(setup.clone()).await.unwrap();
    let id = test
        .client()
        .send(Target::service("Counted", "go"), &())
        .await
        .unwrap();
    for _ in 0..500 {
        if setup.awakeable.lock().unwrap().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let before = setup.awakeable.lock().unwrap().take().unwrap();

    test.crash().await.unwrap();
    // Recovery replays the step and creates the same awakeable again.
    for _ in 0..500 {
        if setup.awakeable.lock().unwrap().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let after = setup.awakeable.lock().unwrap().clone().unwrap();
    assert_eq!(before, after);
    let client = test.client();
    client.resolve_awakeable(&after, &"done").await.unwrap();
    let out: String = client.attach(id).await.unwrap();
    assert_eq!(out, "done after 1 execution(s)");
    assert_eq!(setup.executions.load(Ordering::SeqCst), 1);
    test.shutdown().await;
}

/// A deterministic handler using most of the context: steps, state, a call, a timer, random
/// numbers and time.
async fn book(ctx: ObjectContext, nights: u32) -> Result<String, HandlerError> {
    let room: String = ctx
        .run("pick room", || async { Ok("room 12".to_owned()) })
        .await?;
    let stays = ctx.get::<u32>("stays").await?.unwrap_or(0) + 1;
    ctx.set("stays", &stays)?;
    let price: u32 = ctx
        .call(Target::service("Prices", "quote"), &nights)
        .await?;
    ctx.sleep(Duration::from_secs(60)).await?;
    let code = ctx.rand_u64().await? % 10_000;
    let at = ctx.now().await?;
    let confirmation = ctx.uuid().await?;
    Ok(format!(
        "{room} for {nights} nights at {price}, stay {stays}, code {code:04}, at {at:?}, {confirmation}"
    ))
}

async fn quote(ctx: Context, nights: u32) -> Result<u32, HandlerError> {
    Ok(ctx
        .run("tariff", move || async move { Ok(nights * 90) })
        .await?)
}

fn hotel(builder: EngineBuilder) -> EngineBuilder {
    builder
        .register(VirtualObject::new("Hotel").exclusive("book", book))
        .register(Service::new("Prices").handler("quote", quote))
}

#[tokio::test]
async fn a_deterministic_handler_passes_every_crash_point() {
    let report: CrashReport<String> = CrashPoints::new(|| hotel)
        .check(Target::object("Hotel", "ada", "book"), &3u32)
        .await
        .unwrap();
    // pick room, get, set, call, sleep, rand, now, uuid.
    assert_eq!(report.journal.len(), 8, "{:#?}", report.journal);
    assert_eq!(report.crash_points, 9);
    assert_eq!(report.repeated_steps, vec![(0, "pick room".to_owned())]);
    let out = report.outcome.unwrap();
    assert!(
        out.starts_with("room 12 for 3 nights at 270, stay 1, code "),
        "{out}"
    );
}

static EXECUTIONS: AtomicU64 = AtomicU64::new(0);

/// Branches on a counter outside the journal: replay takes another path.
async fn flaky(ctx: Context, (): ()) -> Result<String, HandlerError> {
    let first = EXECUTIONS.fetch_add(1, Ordering::SeqCst) % 2 == 0;
    if first {
        ctx.run("left", || async { Ok(1u32) }).await?;
    } else {
        ctx.run("right", || async { Ok(2u32) }).await?;
    }
    ctx.run("end", || async { Ok(()) }).await?;
    Ok("done".into())
}

#[tokio::test]
async fn the_checker_catches_a_branch_on_state_outside_the_journal() {
    let error = CrashPoints::new(|| {
        |b: EngineBuilder| b.register(Service::new("Flaky").handler("go", flaky))
    })
    .check::<_, String>(Target::service("Flaky", "go"), &())
    .await
    .unwrap_err();
    match &error {
        CrashPointError::Diverged { run, difference } => {
            assert!(matches!(run, Run::CrashedBefore { .. }), "{error}");
            assert!(
                difference.contains("journal mismatch") || difference.contains("journal entry"),
                "{difference}"
            );
        }
        other => panic!("expected a divergence, got {other}"),
    }
}

/// A payment service whose `run` step charges a ledger outside the engine. With `dedupe`, the
/// charge is keyed by the payment id and a second execution changes nothing.
#[derive(Clone)]
struct Payments {
    ledger: Arc<Mutex<Vec<String>>>,
    dedupe: bool,
}

impl Setup for Payments {
    fn register(&self, builder: EngineBuilder) -> EngineBuilder {
        let this = self.clone();
        builder.register(Service::new("Payments").handler(
            "pay",
            move |ctx: Context, payment: String| {
                let this = this.clone();
                async move {
                    let ledger = this.ledger.clone();
                    let dedupe = this.dedupe;
                    let key = payment.clone();
                    let receipt: usize = ctx
                        .run("charge", move || {
                            let (ledger, key) = (ledger.clone(), key.clone());
                            async move {
                                let mut ledger = ledger.lock().unwrap();
                                if !(dedupe && ledger.contains(&key)) {
                                    ledger.push(key);
                                }
                                Ok(1)
                            }
                        })
                        .await?;
                    ctx.run("email", || async { Ok(()) }).await?;
                    Ok(format!("{payment}: receipt {receipt}"))
                }
            },
        ))
    }
}

async fn one_charge(
    test: &TestEngine<Payments>,
    _: &Result<String, TerminalError>,
) -> Result<(), String> {
    let ledger = test.setup().ledger.lock().unwrap().clone();
    if ledger.len() == 1 {
        Ok(())
    } else {
        Err(format!("charged {} times: {ledger:?}", ledger.len()))
    }
}

#[tokio::test]
async fn the_checker_catches_a_step_that_is_not_idempotent() {
    let payments = |dedupe| {
        CrashPoints::with_setup(move |_| async move {
            Ok::<_, String>(Payments {
                ledger: Arc::default(),
                dedupe,
            })
        })
    };
    let target = Target::service("Payments", "pay");

    let error = payments(false)
        .check_with(target.clone(), &"p-1", one_charge)
        .await
        .unwrap_err();
    match &error {
        CrashPointError::Check { run, message } => {
            assert!(
                matches!(run, Run::CrashedBefore { entry: 0, .. }),
                "{error}"
            );
            assert!(message.contains("charged 2 times"), "{message}");
            // The message says the charge was not committed, so it ran twice.
            assert!(
                error.to_string().starts_with(
                    "run crashed before journal entry 0 (run \"charge\" = 1) was committed \
                     (0 entries were): charged 2 times"
                ),
                "{error}"
            );
        }
        other => panic!("expected the check to fail, got {other}"),
    }

    let report = payments(true)
        .check_with(target, &"p-1", one_charge)
        .await
        .unwrap();
    assert_eq!(report.crash_points, 3);
    assert_eq!(
        report.repeated_steps,
        vec![(0, "charge".to_owned()), (1, "email".to_owned())]
    );
}

async fn admin_health(engine: &Engine) -> (u16, String) {
    use http_body_util::BodyExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let limits = zeroapp_engine::http::HttpLimits::default();
    let server = tokio::spawn(zeroapp_engine::http::serve(
        listener,
        zeroapp_engine::http::admin(engine),
        limits,
        stop.clone(),
    ));
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let request = hyper::Request::get("/health")
        .header("host", addr.to_string())
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    stop.cancel();
    let _ = server.await;
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_writer_turns_health_red_and_says_why() {
    let test = TestEngine::start(reminders).await.unwrap();
    let engine = test.engine();
    assert_eq!(engine.failure(), None);
    assert_eq!(admin_health(engine).await.0, 200);

    test.fail_storage();
    let sent = test
        .client()
        .send(Target::service("Reminders", "remind"), &1u64)
        .await;
    assert!(sent.is_err(), "a write after the storage failed: {sent:?}");
    let reason = tokio::time::timeout(Duration::from_secs(5), engine.failed())
        .await
        .expect("the engine reports the failure");
    assert!(reason.contains("injected storage failure"), "{reason}");
    assert_eq!(engine.failure(), Some(reason));
    let (status, body) = admin_health(engine).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("\"failed\"") && body.contains("writer stopped"),
        "{body}"
    );
    test.shutdown().await;
}

/// Fails the first four attempts of its `run` step; the fifth succeeds.
async fn charge(ctx: WorkflowContext, attempts: Arc<AtomicU64>) -> Result<String, HandlerError> {
    let policy = RetryPolicy::exponential(Duration::from_secs(1));
    let receipt = ctx
        .run_with("charge", policy, move || {
            let attempts = attempts.clone();
            async move {
                match attempts.fetch_add(1, Ordering::SeqCst) {
                    0..4 => Err(HandlerError::retryable("the bank is busy")),
                    _ => Ok("receipt-1".to_owned()),
                }
            }
        })
        .await?;
    Ok(receipt)
}

/// A `run` step retried with backoff (1 + 2 + 4 + 8 s) waits on the virtual clock: the
/// workflow finishes as soon as the test lets time skip, not after fifteen real seconds.
#[tokio::test]
async fn a_retried_run_step_waits_on_the_virtual_clock() {
    let attempts = Arc::new(AtomicU64::new(0));
    let counted = attempts.clone();
    let test = TestEngine::start(move |builder: EngineBuilder| {
        let attempts = counted.clone();
        builder.register(
            Workflow::new("Renewal")
                .run(move |ctx: WorkflowContext, (): ()| charge(ctx, attempts.clone())),
        )
    })
    .await
    .unwrap();
    let started = std::time::Instant::now();
    let id = test
        .client()
        .send(Target::workflow("Renewal", "customer-1", "run"), &())
        .await
        .unwrap();
    let receipt: String = test
        .run_until_finished(id, Duration::from_secs(60))
        .await
        .unwrap();
    let wall = started.elapsed();
    let virtual_elapsed = test.clock().now_ms() - zeroapp_engine::testing::START_MS;
    println!("retried run step: {wall:?} of real time, {virtual_elapsed} ms of virtual time");
    assert_eq!(receipt, "receipt-1");
    assert_eq!(attempts.load(Ordering::SeqCst), 5);
    assert!(virtual_elapsed >= 15_000, "{virtual_elapsed} ms");
    assert!(
        wall < Duration::from_secs(15),
        "{wall:?}: the backoff waited in real time"
    );
}

/// Fails its first three attempts with a retryable error: the engine retries the invocation.
async fn flaky_attempts(_ctx: Context, attempts: Arc<AtomicU64>) -> Result<u64, HandlerError> {
    let attempt = attempts.fetch_add(1, Ordering::SeqCst) + 1;
    if attempt <= 3 {
        return Err(HandlerError::retryable(format!("attempt {attempt} failed")));
    }
    Ok(attempt)
}

/// The engine's own retry backoff (an invocation that fails) waits on the virtual clock too;
/// `advance` is what moves it on.
#[tokio::test]
async fn an_invocation_retried_with_backoff_waits_on_the_virtual_clock() {
    let attempts = Arc::new(AtomicU64::new(0));
    let counted = attempts.clone();
    let test = TestEngine::start(move |builder: EngineBuilder| {
        let attempts = counted.clone();
        builder
            .retry_policy(RetryPolicy::exponential(Duration::from_secs(60)))
            .register(
                Service::new("Flaky").handler("go", move |ctx: Context, (): ()| {
                    flaky_attempts(ctx, attempts.clone())
                }),
            )
    })
    .await
    .unwrap();
    let id = test
        .client()
        .send(Target::service("Flaky", "go"), &())
        .await
        .unwrap();
    test.idle().await;
    assert_eq!(
        attempts.load(Ordering::SeqCst),
        1,
        "waits a minute of virtual time"
    );
    test.advance(Duration::from_secs(60)).await;
    assert_eq!(attempts.load(Ordering::SeqCst), 2);
    // Then 120 s and 240 s: skipped by run_until_finished.
    let attempt: u64 = test
        .run_until_finished(id, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(attempt, 4);
}

/// `advance` right after `send`, with no pause: the handler reaches its sleep before time moves,
/// on the default one-thread test runtime, every time.
#[tokio::test]
async fn advance_right_after_send_never_races_the_handler() {
    let test = TestEngine::start(reminders).await.unwrap();
    let client = test.client();
    for round in 0..20 {
        let id = client
            .send(Target::service("Reminders", "remind"), &1u64)
            .await
            .unwrap();
        test.advance(Duration::from_secs(3600)).await;
        assert_eq!(
            client.output_raw(id).unwrap().as_deref(),
            Some(&b"\"1 hours later\""[..]),
            "round {round}"
        );
    }
}
