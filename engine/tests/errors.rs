//! Errors and retries: retryable errors and panics are retried by replaying; terminal errors
//! end the invocation; `run` retries under its own policy; bad input and unknown targets are
//! reported, never retried.

#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use zeroapp_engine::prelude::*;
use zeroapp_engine::{CallError, InvocationStatus};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_failing_twice_then_succeeding_runs_three_times_and_returns_once() {
    let attempts = Arc::new(AtomicU32::new(0));
    let returned = Arc::new(AtomicU32::new(0));
    let (a, r) = (attempts.clone(), returned.clone());
    let service = Service::new("Flaky").handler("go", move |ctx: Context, (): ()| {
        let (attempts, returned) = (a.clone(), r.clone());
        async move {
            let policy = RetryPolicy::exponential(Duration::from_millis(1)).max_attempts(5);
            let value = ctx
                .run_with("flaky step", policy, move || {
                    let attempts = attempts.clone();
                    async move {
                        match attempts.fetch_add(1, Ordering::SeqCst) {
                            0 | 1 => Err(HandlerError::retryable("not yet")),
                            n => Ok(n),
                        }
                    }
                })
                .await?;
            returned.fetch_add(1, Ordering::SeqCst);
            Ok(value)
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let engine = common::open(common::builder().register(service), dir.path()).await;
    let value: u32 = engine
        .client()
        .call(Target::service("Flaky", "go"), &())
        .await
        .unwrap();
    assert_eq!(value, 2);
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
    assert_eq!(returned.load(Ordering::SeqCst), 1);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_exhausts_its_policy_becomes_a_terminal_error_in_the_journal() {
    let service = Service::new("Doomed").handler("go", |ctx: Context, (): ()| async move {
        let policy = RetryPolicy::exponential(Duration::from_millis(1)).max_attempts(3);
        let result: Result<u32, TerminalError> = ctx
            .run_with("never works", policy, || async {
                Err(HandlerError::retryable("down"))
            })
            .await;
        let error = result.expect_err("the policy gives up");
        Ok(error.message().to_owned())
    });
    let dir = tempfile::tempdir().unwrap();
    let engine = common::open(common::builder().register(service), dir.path()).await;
    let message: String = engine
        .client()
        .call(Target::service("Doomed", "go"), &())
        .await
        .unwrap();
    assert!(message.contains("gave up after 3 attempts"), "{message}");
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_error_is_not_retried_and_reaches_the_caller() {
    let calls = Arc::new(AtomicU32::new(0));
    let c = calls.clone();
    let service = Service::new("Strict").handler("go", move |_ctx: Context, n: i32| {
        let calls = c.clone();
        async move {
            calls.fetch_add(1, Ordering::SeqCst);
            if n < 0 {
                return Err(TerminalError::with_code(400, "negative").into());
            }
            Ok(n)
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let engine = common::open(common::builder().register(service), dir.path()).await;
    let error = engine
        .client()
        .call::<_, i32>(Target::service("Strict", "go"), &-1)
        .await
        .unwrap_err();
    let terminal = error.as_terminal().expect("a terminal error");
    assert_eq!((terminal.code(), terminal.message()), (400, "negative"));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let info = &common::invocations(&engine, "Strict")[0];
    assert_eq!(info.status, InvocationStatus::Failed);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retryable_errors_and_panics_are_retried_by_replay_without_rerunning_finished_steps() {
    let step_runs = Arc::new(AtomicU32::new(0));
    let attempts = Arc::new(AtomicU32::new(0));
    let (s, a) = (step_runs.clone(), attempts.clone());
    let service = Service::new("Shaky").handler("go", move |ctx: Context, (): ()| {
        let (step_runs, attempts) = (s.clone(), a.clone());
        async move {
            let first: u32 = ctx
                .run("once", move || {
                    let step_runs = step_runs.clone();
                    async move { Ok(step_runs.fetch_add(1, Ordering::SeqCst) + 100) }
                })
                .await?;
            match attempts.fetch_add(1, Ordering::SeqCst) {
                0 => return Err(HandlerError::retryable("transient")),
                1 => panic!("boom"),
                _ => {}
            }
            Ok(first)
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let engine = common::open(common::builder().register(service), dir.path()).await;
    let value: u32 = engine
        .client()
        .call(Target::service("Shaky", "go"), &())
        .await
        .unwrap();
    assert_eq!(value, 100);
    assert_eq!(
        step_runs.load(Ordering::SeqCst),
        1,
        "the finished step never ran again"
    );
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
    let info = &common::invocations(&engine, "Shaky")[0];
    assert_eq!(info.failed_attempts, 2);
    assert!(
        info.last_error.as_deref().unwrap_or("").contains("boom"),
        "{info:?}"
    );
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_naming_the_handler_before_anything_is_written() {
    let service =
        Service::new("Typed").handler("double", |_ctx: Context, n: u32| async move { Ok(n * 2) });
    let dir = tempfile::tempdir().unwrap();
    let engine = common::open(common::builder().register(service), dir.path()).await;
    let client = engine.client();
    let error = client
        .call::<_, u32>(Target::service("Typed", "double"), &"not a number")
        .await
        .unwrap_err();
    assert!(
        matches!(&error, CallError::BadInput(m) if m.contains("Typed/double")),
        "{error}"
    );
    let error = client
        .send_raw(Target::service("Typed", "double"), b"{not json".to_vec())
        .await
        .unwrap_err();
    assert!(matches!(error, CallError::BadInput(_)), "{error}");
    let stored = engine
        .list_invocations(&zeroapp_engine::InvocationFilter::default())
        .unwrap();
    assert!(stored.is_empty(), "{stored:?}");
    let doubled: u32 = client
        .call(Target::service("Typed", "double"), &21)
        .await
        .unwrap();
    assert_eq!(doubled, 42);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_targets_and_wrong_keys_fail_at_call_time() {
    let service = Service::new("Svc").handler("h", |_ctx: Context, (): ()| async { Ok(()) });
    let object =
        VirtualObject::new("Obj").exclusive("h", |_ctx: ObjectContext, (): ()| async { Ok(()) });
    let dir = tempfile::tempdir().unwrap();
    let engine = common::open(
        common::builder().register(service).register(object),
        dir.path(),
    )
    .await;
    let client = engine.client();
    let cases = [
        (Target::service("Nope", "h"), "unknown"),
        (Target::service("Svc", "nope"), "unknown"),
        (Target::object("Svc", "k", "h"), "key"),
        (Target::service("Obj", "h"), "key"),
    ];
    for (target, expected) in cases {
        let error = client.call::<_, ()>(target.clone(), &()).await.unwrap_err();
        match (&error, expected) {
            (CallError::UnknownTarget(_), "unknown") | (CallError::BadKey(_), "key") => {}
            _ => panic!("{target}: unexpected {error:?}"),
        }
    }
    assert!(
        engine
            .list_invocations(&Default::default())
            .unwrap()
            .is_empty()
    );
    let unknown = "inv_00000000000fffff".parse().unwrap();
    assert!(matches!(
        client.attach::<()>(unknown).await,
        Err(CallError::UnknownInvocation(_))
    ));
    engine.shutdown().await;
}
