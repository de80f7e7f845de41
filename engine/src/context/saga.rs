//! Sagas: compensations registered as a handler goes, run in reverse order when it fails.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use super::ContextBase;
use super::backend::{Backend, RunAction};
use crate::error::{HandlerError, TerminalError};
use crate::handler::Callee;
use crate::ids::Target;
use crate::payload::Encode;
use crate::retry::RetryPolicy;

type Undo =
    Box<dyn FnMut() -> Pin<Box<dyn Future<Output = Result<(), HandlerError>> + Send>> + Send>;

/// How a compensation undoes its step.
enum Compensation {
    /// A closure, run as a durable `run` step.
    Run(Undo),
    /// A durable call to another handler (its input already JSON, or the encoding error).
    Call(Target, Result<Vec<u8>, TerminalError>),
}

/// Compensations for the steps a handler has taken, run in reverse (LIFO) order on a terminal
/// failure or a cancellation.
///
/// Register a compensation *before* the step it undoes, so that a step which did its effect but
/// crashed before journaling is undone too; compensations must therefore tolerate undoing
/// something that did not happen. Each compensation runs as a durable `run` step, retried under
/// the saga's policy; one that still fails is journaled as failed, the others still run, and the
/// handler's error names it.
///
/// ```
/// use zeroapp_engine::prelude::*;
///
/// async fn book(ctx: WorkflowContext, trip: String) -> Result<(), HandlerError> {
///     let mut saga = Saga::new(&ctx);
///     let result = async {
///         saga.compensate("cancel hotel", || async { Ok(()) });
///         ctx.run("book hotel", || async { Ok(()) }).await?;
///         saga.compensate("cancel flight", || async { Ok(()) });
///         ctx.run("book flight", || async { Ok(()) }).await?;
///         Ok(())
///     }
///     .await;
///     Ok(saga.finish(result).await?)
/// }
/// ```
pub struct Saga {
    backend: Arc<dyn Backend>,
    policy: RetryPolicy,
    compensations: Vec<(String, Compensation)>,
}

impl Saga {
    /// An empty saga for the handler whose context this is. Compensations are retried up to 10
    /// times, backing off from 100 ms to 10 s.
    pub fn new(ctx: &impl ContextBase) -> Self {
        Self {
            backend: ctx.backend().clone(),
            policy: RetryPolicy::exponential(Duration::from_millis(100))
                .max_delay(Duration::from_secs(10))
                .max_attempts(10),
            compensations: Vec::new(),
        }
    }

    /// Uses another retry policy for the compensations.
    #[must_use]
    pub fn with_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Registers a compensation, journaled as a `run` step named `name` when it runs.
    pub fn compensate<F, Fut>(&mut self, name: &str, mut undo: F)
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        let boxed: Undo = Box::new(move || Box::pin(undo()));
        self.compensations
            .push((name.to_owned(), Compensation::Run(boxed)));
    }

    /// Registers a compensation that calls another handler (a durable call, journaled like
    /// [`ContextBase::call`]): for undoing through a service that owns the effect, such as
    /// cancelling a shipment through the shipping service. The callee's failure counts as the
    /// compensation failing; the callee's own retries are its business.
    pub fn compensate_call<I: Encode + ?Sized>(
        &mut self,
        name: &str,
        target: impl Callee<I>,
        input: &I,
    ) {
        let target = target.into_target();
        let input = input.encode().map_err(|e| {
            TerminalError::with_code(
                400,
                format!("the input for {target} cannot be encoded: {e}"),
            )
        });
        self.compensations
            .push((name.to_owned(), Compensation::Call(target, input)));
    }

    /// The names of the registered compensations, in registration order.
    pub fn registered(&self) -> Vec<&str> {
        self.compensations.iter().map(|(n, _)| n.as_str()).collect()
    }

    /// Runs every compensation, last registered first. Fails, naming them, if any still failed
    /// after its retries.
    pub async fn compensate_all(self) -> Result<(), TerminalError> {
        let mut failed = Vec::new();
        for (name, compensation) in self.compensations.into_iter().rev() {
            let outcome = match compensation {
                Compensation::Run(mut undo) => {
                    let action: RunAction = Box::new(move || {
                        let step = undo();
                        Box::pin(async move { step.await.map(|()| b"null".to_vec()) })
                    });
                    self.backend
                        .clone()
                        .run(name.clone(), self.policy.clone(), action)
                        .await
                        .map(drop)
                }
                Compensation::Call(target, input) => match input {
                    Ok(input) => self.backend.clone().call(target, input).await.map(drop),
                    Err(error) => Err(error),
                },
            };
            if let Err(error) = outcome {
                tracing::error!(compensation = %name, %error, "compensation failed");
                failed.push(format!("{name:?} ({})", error.message()));
            }
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(TerminalError::new(format!(
                "compensations failed: {}",
                failed.join(", ")
            )))
        }
    }

    /// Passes an `Ok` through; on a terminal error (a cancellation included), runs the
    /// compensations and returns the error, extended with any compensation that failed.
    pub async fn finish<T>(self, result: Result<T, TerminalError>) -> Result<T, TerminalError> {
        let Err(error) = result else {
            return result;
        };
        match self.compensate_all().await {
            Ok(()) => Err(error),
            Err(failed) => Err(TerminalError::with_code(
                error.code(),
                format!("{}; {}", error.message(), failed.message()),
            )),
        }
    }
}
