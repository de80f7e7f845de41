//! Testing a workflow with the engine's `testing` feature, against a fake outside world: a
//! subscription renewal charges a card through a fake payment provider, then waits a week for
//! the customer's confirmation.
//!
//! * A virtual clock: the week passes in milliseconds.
//! * Outside input while the workflow waits: the test's `Setup` confirms when the engine is idle.
//! * The crash-point checker: the renewal is crashed before each journal entry in turn and must
//!   end the same, with one charge, every time; with a provider that ignores the idempotency key
//!   the checker finds the double charge that a crash makes.
//!
//! Run it: `cargo run --example testing`; its checks also run with the tests.

use std::error::Error;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use zeroapp_engine::prelude::*;
use zeroapp_engine::testing::{CrashPointError, CrashPoints, Setup, TestEngine};

/// Renews the subscription of the workflow's key for the given price in cents.
const RENEW: WorkflowHandler<u64, String> = WorkflowHandler::run("Renewal");
/// The customer's answer to a renewal.
const CONFIRM: WorkflowHandler<bool, ()> = WorkflowHandler::new("Renewal", "confirm");

/// The fake payment provider: it remembers every charge. A real provider takes an idempotency
/// key and charges a key once; `careless` forgets to, as a buggy integration would.
#[derive(Clone, Default)]
struct FakePayments {
    charges: Arc<Mutex<Vec<String>>>,
    careless: bool,
}

impl FakePayments {
    fn charge(&self, key: &str, cents: u64) -> String {
        let mut charges = self.charges.lock().unwrap_or_else(PoisonError::into_inner);
        if self.careless || !charges.iter().any(|c| c == key) {
            charges.push(key.to_owned());
        }
        format!("charged {cents} cents")
    }

    fn count(&self) -> usize {
        self.charges
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

async fn renew(
    payments: FakePayments,
    ctx: WorkflowContext,
    cents: u64,
) -> Result<String, HandlerError> {
    let key = format!("renewal-{}", ctx.key());
    let receipt = ctx
        .run("charge", move || {
            let (payments, key) = (payments.clone(), key.clone());
            async move { Ok(payments.charge(&key, cents)) }
        })
        .await?;
    let answer = ctx.promise::<bool>("answer");
    let week = ctx.sleep(Duration::from_secs(7 * 24 * 3600));
    let outcome = match ctx.select(&[&answer, &week]).await? {
        0 if answer.await? => "confirmed",
        0 => "declined",
        _ => "no answer within a week",
    };
    Ok(format!("{receipt}, {outcome}"))
}

/// Idempotent, as a customer-facing API should be: a repeated answer (a retry after a lost
/// reply) changes nothing and succeeds.
async fn confirm(ctx: SharedWorkflowContext, yes: bool) -> Result<(), HandlerError> {
    match ctx.resolve_promise("answer", &yes).await {
        Err(error) if error.code() == TerminalError::CONFLICT => Ok(()),
        other => Ok(other?),
    }
}

/// A test's world: the fake provider, and the customer's answer to give once the renewal waits.
#[derive(Default)]
struct World {
    payments: FakePayments,
    answer: Option<bool>,
    answered: AtomicBool,
}

impl Setup for World {
    fn register(&self, builder: EngineBuilder) -> EngineBuilder {
        let renewal = Workflow::new("Renewal")
            .run(with_state(self.payments.clone(), renew))
            .shared(CONFIRM, confirm);
        builder.register(renewal)
    }

    // Called whenever the engine is idle while the test waits for the renewal: the customer
    // answers, until heard (a crash can drop the request on its way; then it is sent again).
    // `false`, nothing delivered, lets the clock jump ahead instead.
    async fn when_idle(&self, client: &Client) -> Result<bool, String> {
        let Some(yes) = self.answer else {
            return Ok(false);
        };
        if self.answered.load(Ordering::SeqCst) {
            return Ok(false);
        }
        client
            .call(CONFIRM.key("ada"), &yes)
            .await
            .map_err(|e| e.to_string())?;
        self.answered.store(true, Ordering::SeqCst);
        Ok(true)
    }
}

/// Runs a renewal to its end; the week, if nobody answers, passes on the virtual clock.
async fn renewal(world: World) -> Result<String, Box<dyn Error>> {
    let test = TestEngine::start(world).await?;
    let id = test.client().send(RENEW.key("ada"), &999).await?;
    let outcome = test.run_until_finished(id, Duration::from_secs(10)).await?;
    test.shutdown().await;
    Ok(outcome)
}

/// Crashes the renewal before each of its journal entries in turn; every run must end the same,
/// having charged once.
async fn check_crash_points(careless: bool) -> Result<u32, CrashPointError> {
    let checker = CrashPoints::new(move || World {
        payments: FakePayments {
            careless,
            ..FakePayments::default()
        },
        answer: Some(true),
        ..World::default()
    });
    let report =
        checker
            .check_with(
                RENEW.key("ada"),
                &999,
                async |test: &TestEngine<World>, _outcome: &Result<String, TerminalError>| {
                    match test.setup().payments.count() {
                        1 => Ok(()),
                        n => Err(format!("charged {n} times")),
                    }
                },
            )
            .await?;
    Ok(report.crash_points)
}

async fn demo() -> Result<(), Box<dyn Error>> {
    println!("nobody answers: {}", renewal(World::default()).await?);
    let confirmed = World {
        answer: Some(true),
        ..World::default()
    };
    println!("the customer confirms: {}", renewal(confirmed).await?);
    println!(
        "crash points, each ending with one charge: {}",
        check_crash_points(false).await?
    );
    match check_crash_points(true).await {
        Err(error) => println!("a careless provider: {error}"),
        Ok(_) => return Err("the checker missed the double charge".into()),
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    demo().await
}

#[tokio::test]
async fn a_week_passes_on_the_virtual_clock() -> Result<(), Box<dyn Error>> {
    let outcome = renewal(World::default()).await?;
    assert_eq!(outcome, "charged 999 cents, no answer within a week");
    Ok(())
}

#[tokio::test]
async fn the_customer_answers_while_the_renewal_waits() -> Result<(), Box<dyn Error>> {
    let world = World {
        answer: Some(true),
        ..World::default()
    };
    assert_eq!(renewal(world).await?, "charged 999 cents, confirmed");
    Ok(())
}

#[tokio::test]
async fn every_crash_point_charges_once() -> Result<(), Box<dyn Error>> {
    // charge, answer, sleep, select: four entries, five crash points.
    assert_eq!(check_crash_points(false).await?, 5);
    Ok(())
}

#[tokio::test]
async fn the_checker_finds_a_double_charge() {
    let error = check_crash_points(true).await.err().map(|e| e.to_string());
    assert_eq!(
        error.as_deref(),
        Some(
            "run crashed before journal entry 0 (run \"charge\" = \"charged 999 cents\") was \
             committed (0 entries were): charged 2 times"
        )
    );
}
