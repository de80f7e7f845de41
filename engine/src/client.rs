//! The in-process client: how code outside handlers calls, sends to and attaches to invocations.

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::engine::EngineInner;
use crate::error::{CallError, StoreError};
use crate::ids::{InvocationId, Target};
use crate::introspect::{InvocationInfo, info_of};
use crate::store::writer::{Command, NewInvocation};

/// A handle for calling handlers from outside. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    engine: Arc<EngineInner>,
}

impl Client {
    pub(crate) fn new(engine: Arc<EngineInner>) -> Self {
        Self { engine }
    }

    /// Calls a handler and waits for its output.
    ///
    /// The invocation is durable once created: if this process dies before the result arrives,
    /// the invocation still completes after the next open, and [`Client::attach`] gets it.
    pub async fn call<I: Serialize, O: DeserializeOwned>(
        &self,
        target: Target,
        input: &I,
    ) -> Result<O, CallError> {
        let id = self.send(target, input).await?;
        self.attach(id).await
    }

    /// Starts an invocation and returns its id once it is durably accepted.
    ///
    /// For a workflow's `run`, a key that already ran returns the existing invocation.
    pub async fn send<I: Serialize>(
        &self,
        target: Target,
        input: &I,
    ) -> Result<InvocationId, CallError> {
        let input = serde_json::to_vec(input).map_err(|e| CallError::Codec(e.to_string()))?;
        self.send_raw(target, input).await
    }

    /// [`Client::send`] with an input that is already JSON.
    pub async fn send_raw(
        &self,
        target: Target,
        input: Vec<u8>,
    ) -> Result<InvocationId, CallError> {
        self.engine.check_open()?;
        let kind = self.engine.registry.resolve(&target)?;
        let new = NewInvocation {
            id: self.engine.allocate_id(),
            target,
            kind,
            input,
            waiter: None,
            created_ms: self.engine.clock.now_ms(),
        };
        let mut effects = match self.engine.store.submit(Command::Create(vec![new])).await? {
            Ok(effects) => effects,
            Err(rejected) => return Err(StoreError::Corrupted(rejected.to_string()).into()),
        };
        let id = effects.ids.pop().ok_or(StoreError::ShutDown)?;
        self.engine.apply_effects(effects);
        Ok(InvocationId(id))
    }

    /// Waits for an invocation's output.
    pub async fn attach<O: DeserializeOwned>(&self, id: InvocationId) -> Result<O, CallError> {
        let bytes = self.attach_raw(id).await?;
        let bytes = if bytes.is_empty() {
            b"null".to_vec()
        } else {
            bytes
        };
        serde_json::from_slice(&bytes).map_err(|e| CallError::Codec(e.to_string()))
    }

    /// Waits for an invocation's output as JSON bytes.
    pub async fn attach_raw(&self, id: InvocationId) -> Result<Vec<u8>, CallError> {
        // Watch first, then read: a completion committed after the read is still reported.
        let watcher = self.engine.watch(id.0);
        let record = match self.engine.store.record(id.0) {
            Ok(record) => record,
            Err(error) => {
                drop(watcher);
                self.engine.unwatch_closed(id.0);
                return Err(error.into());
            }
        };
        let Some(record) = record else {
            drop(watcher);
            self.engine.unwatch_closed(id.0);
            return Err(CallError::UnknownInvocation(id.to_string()));
        };
        let outcome = match record.outcome {
            Some(outcome) => {
                drop(watcher);
                self.engine.unwatch_closed(id.0);
                outcome
            }
            None => watcher.await.map_err(|_| StoreError::ShutDown)?,
        };
        outcome.map_err(CallError::Failed)
    }

    /// The output if the invocation has finished, `None` if it is still running.
    pub fn output_raw(&self, id: InvocationId) -> Result<Option<Vec<u8>>, CallError> {
        let record = self
            .engine
            .store
            .record(id.0)?
            .ok_or_else(|| CallError::UnknownInvocation(id.to_string()))?;
        match record.outcome {
            None => Ok(None),
            Some(Ok(bytes)) => Ok(Some(bytes)),
            Some(Err(terminal)) => Err(CallError::Failed(terminal)),
        }
    }

    /// The invocation's status, attempts and result, or `None` if no such invocation exists.
    pub fn status(&self, id: InvocationId) -> Result<Option<InvocationInfo>, StoreError> {
        Ok(self
            .engine
            .store
            .record(id.0)?
            .map(|record| info_of(&self.engine, id.0, record)))
    }
}
