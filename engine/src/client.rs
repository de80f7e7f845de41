//! The in-process client: how code outside handlers calls, sends to and attaches to invocations.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::oneshot;

use crate::clock::millis;
use crate::error::{CallError, StoreError, TerminalError};
use crate::handler::{Answers, Callee};
use crate::ids::{InvocationId, ServiceKind, Target, instance_key, parse_awakeable_id};
use crate::introspect::{InvocationFilter, InvocationInfo, JournalEntryInfo, info_of};
use crate::journal::Completion;
use crate::payload::{Decode, Encode};
use crate::runtime::Runtime;
use crate::service::{Formats, Workflow};
use crate::store::command::{Command, Completable, Effects, NewInvocation, Rejected};
use crate::store::records::Outcome;

/// How to submit a request: with an idempotency key, after a delay.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendOptions {
    /// Requests with the same target and key map to one invocation for the engine's retention
    /// period: repeats get its id and result; the same key with another input is a conflict.
    pub idempotency_key: Option<String>,
    /// Start the invocation after this delay (a durable timer).
    pub delay: Option<Duration>,
}

impl SendOptions {
    /// Sets the idempotency key.
    #[must_use]
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// Sets the delay.
    #[must_use]
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }
}

/// What [`Client::submit_raw`] did with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    /// The invocation the request maps to.
    pub id: InvocationId,
    /// Whether the invocation existed before this request: a repeated idempotency key, or a
    /// workflow key that already ran.
    pub previously_accepted: bool,
}

/// A handle for calling handlers from outside. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    engine: Arc<Runtime>,
}

impl Client {
    pub(crate) fn new(engine: Arc<Runtime>) -> Self {
        Self { engine }
    }

    /// Calls a handler with [`SendOptions`] and waits for its output.
    pub async fn call_with<I: Encode + ?Sized, O: Decode>(
        &self,
        target: impl Callee<I> + Answers<O>,
        input: &I,
        options: SendOptions,
    ) -> Result<O, CallError> {
        let input = input.encode().map_err(CallError::Codec)?;
        let output = self
            .call_raw_with(target.into_target(), input, options)
            .await?;
        O::decode(&output).map_err(CallError::Codec)
    }

    /// [`Client::call_with`] with an input and an output that are encoded (JSON, or bytes for
    /// a [`Binary`](crate::Binary)).
    ///
    /// A shared handler of an object or workflow called without an idempotency key first runs
    /// as a *read-only call*: while it only reads committed state and workflow promises, it
    /// answers without becoming a durable invocation (nothing is written, nothing shows in
    /// introspection). Its first operation that would be journaled turns the call into an
    /// ordinary durable invocation, run from the start, before that operation does anything.
    pub async fn call_raw_with(
        &self,
        target: Target,
        input: Vec<u8>,
        options: SendOptions,
    ) -> Result<Vec<u8>, CallError> {
        if let Some(answer) = self.read_only(&target, &input, &options).await? {
            return answer.map_err(CallError::Failed);
        }
        let id = self.send_raw_with(target, input, options).await?;
        self.attach_raw(id).await
    }

    /// The answer of a read-only call (see [`Client::call_raw_with`]); `None` if the call must
    /// run as a durable invocation.
    pub(crate) async fn read_only(
        &self,
        target: &Target,
        input: &[u8],
        options: &SendOptions,
    ) -> Result<Option<Result<Vec<u8>, TerminalError>>, CallError> {
        if options.idempotency_key.is_some() || options.delay.is_some() {
            return Ok(None);
        }
        self.engine.check_open()?;
        let kind = self.engine.registry.resolve_with_input(target, input)?;
        Ok(self.engine.call_read_only(target, kind, input).await?)
    }

    /// Starts an invocation with [`SendOptions`]; returns its id once durably accepted (for a
    /// repeated idempotency key, the id of the first invocation).
    pub async fn send_with<I: Encode + ?Sized>(
        &self,
        target: impl Callee<I>,
        input: &I,
        options: SendOptions,
    ) -> Result<InvocationId, CallError> {
        let input = input.encode().map_err(CallError::Codec)?;
        self.send_raw_with(target.into_target(), input, options)
            .await
    }

    /// Calls a handler and waits for its output.
    ///
    /// The invocation is durable once created: if this process dies before the result arrives,
    /// the invocation still completes after the next open, and [`Client::attach`] gets it.
    pub async fn call<I: Encode + ?Sized, O: Decode>(
        &self,
        target: impl Callee<I> + Answers<O>,
        input: &I,
    ) -> Result<O, CallError> {
        self.call_with(target, input, SendOptions::default()).await
    }

    /// Starts an invocation and returns its id once it is durably accepted.
    ///
    /// For a workflow's `run`, a key that already ran returns the existing invocation.
    pub async fn send<I: Encode + ?Sized>(
        &self,
        target: impl Callee<I>,
        input: &I,
    ) -> Result<InvocationId, CallError> {
        let input = input.encode().map_err(CallError::Codec)?;
        self.send_raw(target.into_target(), input).await
    }

    /// [`Client::send`] with an input that is already encoded (JSON, or the bytes themselves for
    /// a handler taking [`Binary`](crate::Binary)).
    pub async fn send_raw(
        &self,
        target: Target,
        input: Vec<u8>,
    ) -> Result<InvocationId, CallError> {
        self.send_raw_with(target, input, SendOptions::default())
            .await
    }

    /// [`Client::send_with`] with an input that is already encoded. An input that does not decode
    /// into the handler's input type is refused with [`CallError::BadInput`] before anything is
    /// written.
    pub async fn send_raw_with(
        &self,
        target: Target,
        input: Vec<u8>,
        options: SendOptions,
    ) -> Result<InvocationId, CallError> {
        self.submit_raw(target, input, options)
            .await
            .map(|accepted| accepted.id)
    }

    /// Like [`Client::send_raw_with`], also telling whether the request created the invocation
    /// or mapped to an existing one (a repeated idempotency key, a workflow key that already
    /// ran).
    pub async fn submit_raw(
        &self,
        target: Target,
        input: Vec<u8>,
        options: SendOptions,
    ) -> Result<Accepted, CallError> {
        self.engine.check_open()?;
        let kind = self.engine.registry.resolve_with_input(&target, &input)?;
        let created_ms = self.engine.clock.now_ms();
        let new_id = self.engine.allocate_id();
        let new = NewInvocation {
            id: new_id,
            target,
            kind,
            input,
            waiter: None,
            created_ms,
            idempotency_key: options.idempotency_key,
            start_at_ms: options.delay.map(|d| created_ms.saturating_add(millis(d))),
        };
        let mut effects = self.submit(Command::Create(new)).await?;
        let id = effects.invocation.take().ok_or(StoreError::ShutDown)?;
        Ok(Accepted {
            id: InvocationId(id),
            previously_accepted: id != new_id,
        })
    }

    async fn submit(&self, command: Command) -> Result<Effects, CallError> {
        match self.engine.store.submit(command).await? {
            Ok(effects) => Ok(effects),
            Err(Rejected::IdempotencyConflict(key)) => Err(CallError::Conflict(format!(
                "the idempotency key {key:?} was used with another input"
            ))),
            Err(Rejected::UnknownInvocation(id)) => {
                Err(CallError::UnknownInvocation(InvocationId(id).to_string()))
            }
            Err(Rejected::NotFinished(id)) => {
                Err(CallError::NotFinished(InvocationId(id).to_string()))
            }
            Err(other) => Err(StoreError::Corrupted(other.to_string()).into()),
        }
    }

    /// Resolves an awakeable: the handler awaiting it gets `value`. A malformed, forged or
    /// unknown id is refused before anything is written; so is a second completion, which
    /// leaves the first one in place.
    pub async fn resolve_awakeable<T: Serialize>(
        &self,
        id: &str,
        value: &T,
    ) -> Result<(), CallError> {
        let value = serde_json::to_vec(value).map_err(|e| CallError::Codec(e.to_string()))?;
        self.complete_awakeable(id, Completion::Value(value)).await
    }

    /// [`Client::resolve_awakeable`] with a value that is already JSON.
    pub async fn resolve_awakeable_raw(&self, id: &str, value: Vec<u8>) -> Result<(), CallError> {
        let value = if value.is_empty() {
            b"null".to_vec()
        } else {
            value
        };
        self.complete_awakeable(id, Completion::Value(value)).await
    }

    /// Rejects an awakeable: the handler's await fails with a terminal error carrying `reason`.
    pub async fn reject_awakeable(&self, id: &str, reason: &str) -> Result<(), CallError> {
        self.complete_awakeable(id, Completion::Failure(TerminalError::new(reason)))
            .await
    }

    async fn complete_awakeable(&self, id: &str, completion: Completion) -> Result<(), CallError> {
        self.engine.check_open()?;
        let Some((inv, index, secret)) = parse_awakeable_id(id) else {
            return Err(CallError::UnknownAwakeable(id.to_owned()));
        };
        let what = Completable::Awakeable { inv, index, secret };
        self.complete(what, completion, || id.to_owned()).await
    }

    async fn complete(
        &self,
        what: Completable,
        completion: Completion,
        name: impl Fn() -> String,
    ) -> Result<(), CallError> {
        let command = Command::Complete {
            what,
            completion,
            by: None,
            at_ms: self.engine.clock.now_ms(),
        };
        match self.engine.store.submit(command).await? {
            Ok(_) => Ok(()),
            Err(Rejected::UnknownAwakeable) => Err(CallError::UnknownAwakeable(name())),
            Err(Rejected::AlreadyCompleted) => Err(CallError::AlreadyCompleted(name())),
            Err(other) => Err(StoreError::Corrupted(other.to_string()).into()),
        }
    }

    /// Submits a workflow's `run` for `key`. A key that already ran (within the retention
    /// period) is not run again: the existing invocation's id is returned.
    pub async fn submit_workflow<I: Encode + ?Sized>(
        &self,
        workflow: &str,
        key: &str,
        input: &I,
    ) -> Result<InvocationId, CallError> {
        self.send(Target::workflow(workflow, key, Workflow::RUN), input)
            .await
    }

    /// The invocation of a workflow key's `run`, if it was submitted.
    pub fn workflow_invocation(
        &self,
        workflow: &str,
        key: &str,
    ) -> Result<InvocationId, CallError> {
        self.engine
            .store
            .workflow_invocation(&instance_key(workflow, key))?
            .map(InvocationId)
            .ok_or_else(|| CallError::UnknownWorkflow(format!("{workflow}/{key}")))
    }

    /// Waits for the output of a workflow key's `run`.
    pub async fn attach_workflow<O: Decode>(
        &self,
        workflow: &str,
        key: &str,
    ) -> Result<O, CallError> {
        let id = self.workflow_invocation(workflow, key)?;
        self.attach(id).await
    }

    /// The output of a workflow key's `run` if it has finished (encoded), `None` while it runs.
    pub fn workflow_output_raw(
        &self,
        workflow: &str,
        key: &str,
    ) -> Result<Option<Vec<u8>>, CallError> {
        let id = self.workflow_invocation(workflow, key)?;
        self.output_raw(id)
    }

    /// Resolves a workflow's durable promise from outside. The first completion wins; a second
    /// one is refused with [`CallError::AlreadyCompleted`].
    pub async fn resolve_promise<T: Serialize>(
        &self,
        workflow: &str,
        key: &str,
        name: &str,
        value: &T,
    ) -> Result<(), CallError> {
        let value = serde_json::to_vec(value).map_err(|e| CallError::Codec(e.to_string()))?;
        self.complete_promise(workflow, key, name, Completion::Value(value))
            .await
    }

    /// Rejects a workflow's durable promise from outside.
    pub async fn reject_promise(
        &self,
        workflow: &str,
        key: &str,
        name: &str,
        reason: &str,
    ) -> Result<(), CallError> {
        let failure = Completion::Failure(TerminalError::new(reason));
        self.complete_promise(workflow, key, name, failure).await
    }

    async fn complete_promise(
        &self,
        workflow: &str,
        key: &str,
        name: &str,
        completion: Completion,
    ) -> Result<(), CallError> {
        self.engine.check_open()?;
        self.engine
            .registry
            .resolve(&Target::workflow(workflow, key, Workflow::RUN))?;
        let what = Completable::Promise {
            instance: instance_key(workflow, key),
            name: name.to_owned(),
        };
        self.complete(what, completion, || {
            format!("promise {name:?} of {workflow}/{key}")
        })
        .await
    }

    /// A workflow promise's value if it was resolved, `None` if not completed yet.
    pub fn peek_promise<T: DeserializeOwned>(
        &self,
        workflow: &str,
        key: &str,
        name: &str,
    ) -> Result<Option<T>, CallError> {
        match self
            .engine
            .store
            .promise(&instance_key(workflow, key), name)?
        {
            None | Some(Completion::Empty) => Ok(None),
            Some(Completion::Value(bytes)) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| CallError::Codec(e.to_string())),
            Some(Completion::Failure(e)) => Err(CallError::Failed(e)),
        }
    }

    /// Cancels an invocation: its next await fails with a terminal "cancelled" error (code
    /// 409), so its compensations run; the callees it is waiting on are cancelled too. An
    /// invocation that has not started yet ends at once. Cancelling a finished invocation does
    /// nothing.
    pub async fn cancel(&self, id: InvocationId) -> Result<(), CallError> {
        self.engine.check_open()?;
        let command = Command::Cancel {
            inv: id.0,
            at_ms: self.engine.clock.now_ms(),
        };
        self.submit(command).await?;
        Ok(())
    }

    /// Kills an invocation: it stops at once, without running compensations, and fails with
    /// "killed" (code 409); the callees it is waiting on are killed too.
    pub async fn kill(&self, id: InvocationId) -> Result<(), CallError> {
        self.engine.check_open()?;
        let command = Command::Kill {
            inv: id.0,
            at_ms: self.engine.clock.now_ms(),
        };
        self.submit(command).await?;
        Ok(())
    }

    /// Purges a finished invocation now rather than at the end of the retention period: its
    /// record, journal and idempotency key, and for a workflow's `run` the workflow key with its
    /// state and promises, so the key can run again. An unfinished invocation is refused with
    /// [`CallError::NotFinished`].
    pub async fn purge(&self, id: InvocationId) -> Result<(), CallError> {
        self.engine.check_open()?;
        self.submit(Command::Purge { inv: id.0 }).await?;
        Ok(())
    }

    /// The engine clock's time.
    #[cfg(feature = "http")]
    pub(crate) fn now(&self) -> std::time::SystemTime {
        crate::clock::to_system_time(self.engine.clock.now_ms())
    }

    /// Whether the HTTP ingress refuses `target`'s handler (it is ingress-private).
    #[cfg(feature = "http")]
    pub(crate) fn is_ingress_private(&self, target: &Target) -> bool {
        self.engine
            .registry
            .is_ingress_private(&target.service, &target.handler)
    }

    /// The services, objects and workflows the ingress serves something of, sorted.
    #[cfg(feature = "http")]
    pub(crate) fn public_services(&self) -> Vec<String> {
        let registry = &self.engine.registry;
        let mut names = registry.names();
        names.retain(|name| !registry.is_wholly_private(name));
        names
    }

    /// The target of invocation `id`, if there is such an invocation.
    #[cfg(feature = "http")]
    pub(crate) fn target_of(&self, id: InvocationId) -> Result<Option<Target>, CallError> {
        Ok(self.engine.store.record(id.0)?.map(|record| record.target))
    }

    /// The kind of the service, object or workflow registered as `name`.
    pub fn service_kind(&self, name: &str) -> Option<ServiceKind> {
        self.engine.registry.kind_of(name)
    }

    /// How the target's handler takes its input and answers (JSON or bytes), or why it cannot
    /// be called.
    pub fn formats(&self, target: &Target) -> Result<Formats, CallError> {
        self.engine.registry.formats(target)
    }

    /// The names of the registered services, objects and workflows, sorted.
    pub fn services(&self) -> Vec<String> {
        self.engine.registry.names()
    }

    /// The invocation that requests to `target` with idempotency key `key` map to (until it is
    /// purged).
    pub fn idempotent_invocation(
        &self,
        target: &Target,
        key: &str,
    ) -> Result<InvocationId, CallError> {
        self.engine
            .store
            .idempotent_invocation(&target.to_string(), key)?
            .map(InvocationId)
            .ok_or_else(|| CallError::UnknownInvocation(format!("{target} with key {key:?}")))
    }

    /// Waits for an invocation's output.
    pub async fn attach<O: Decode>(&self, id: InvocationId) -> Result<O, CallError> {
        O::decode(&self.attach_raw(id).await?).map_err(CallError::Codec)
    }

    /// Waits for an invocation's output, encoded (JSON, or bytes for a
    /// [`Binary`](crate::Binary) output). The wait is given up with the future:
    /// an HTTP client that disconnects releases its place among the invocation's watchers at
    /// once, not when the invocation ends.
    pub async fn attach_raw(&self, id: InvocationId) -> Result<Vec<u8>, CallError> {
        // Watch first, then read: a completion committed after the read is still reported.
        let mut watching = Watching {
            engine: &self.engine,
            id: id.0,
            outcome: Some(self.engine.watch(id.0)),
        };
        let record = self
            .engine
            .store
            .record(id.0)?
            .ok_or_else(|| CallError::UnknownInvocation(id.to_string()))?;
        let outcome = match record.outcome {
            Some(outcome) => outcome,
            None => watching.wait().await?,
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

    /// Invocations matching `filter`, oldest first (as [`Engine::list_invocations`], for code
    /// that holds only a client). Reads the store: call it off the async runtime's threads
    /// (`spawn_blocking`) when the list may be long.
    ///
    /// [`Engine::list_invocations`]: crate::Engine::list_invocations
    pub fn list_invocations(
        &self,
        filter: &InvocationFilter,
    ) -> Result<Vec<InvocationInfo>, StoreError> {
        self.engine.list_invocations(filter)
    }

    /// One invocation's journal, or `None` if there is no such invocation (as
    /// [`Engine::journal`], for code that holds only a client).
    ///
    /// [`Engine::journal`]: crate::Engine::journal
    pub fn journal(&self, id: InvocationId) -> Result<Option<Vec<JournalEntryInfo>>, StoreError> {
        self.engine.journal(id)
    }

    /// Copies the engine's data file, while it serves, to `dest` (a file that must not exist):
    /// the file as of one commit, with every commit before it — what a crash at that moment
    /// would leave, so an engine opened on the copy recovers as after a crash. Writes pause for
    /// the length of the copy. Returns the copy's size in bytes.
    ///
    /// A program that keeps other data beside the engine must copy it *after* this returns:
    /// then every step the copy has journaled finished its own writes before, and the steps
    /// after the copy's moment replay on the copy (they must be idempotent, as after a crash).
    pub async fn back_up(&self, dest: impl AsRef<Path>) -> Result<u64, StoreError> {
        self.engine.store.back_up(dest.as_ref().to_owned()).await
    }

    /// One committed state value (JSON) of an object or workflow instance, read without an
    /// invocation: nothing is written, so it is answered while the disk is full, and it costs a
    /// trip through the writer's queue and one point lookup. It sees every state write a
    /// handler made before this call (committed, or refused and to be made again by a retry) —
    /// as a shared handler invoked at this moment would.
    pub async fn state<T: DeserializeOwned>(
        &self,
        service: &str,
        key: &str,
        name: &str,
    ) -> Result<Option<T>, CallError> {
        self.engine.check_open()?;
        let _ = self.engine.store.submit(Command::Barrier).await?;
        self.engine
            .state_value(service, key, name)?
            .map(|bytes| {
                serde_json::from_slice(&bytes).map_err(|e| CallError::Codec(e.to_string()))
            })
            .transpose()
    }
}

/// An `attach` waiting for an invocation's outcome. However the wait ends — answered, failed,
/// or dropped with its caller's future — its watcher leaves the invocation's list.
struct Watching<'a> {
    engine: &'a Runtime,
    id: u64,
    outcome: Option<oneshot::Receiver<Outcome>>,
}

impl Watching<'_> {
    async fn wait(&mut self) -> Result<Outcome, StoreError> {
        match self.outcome.as_mut() {
            Some(outcome) => outcome.await.map_err(|_| StoreError::ShutDown),
            None => Err(StoreError::ShutDown),
        }
    }
}

impl Drop for Watching<'_> {
    fn drop(&mut self) {
        drop(self.outcome.take());
        self.engine.unwatch_closed(self.id);
    }
}
