//! Durable futures: operations whose result arrives later — a timer, an awakeable, a workflow
//! promise — and that can be awaited alone or raced with [`select`](super::ContextBase::select).

use std::future::{Future, IntoFuture};
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;

use serde::de::DeserializeOwned;

use super::core::{InvocationCore, decode_value};
use crate::error::TerminalError;
use crate::journal::Completion;

/// The result of a durable operation that completes later. Await it for the value; until then
/// it costs a journal entry, and (after the inactivity timeout) no memory at all: the invocation
/// suspends and is replayed when the completion lands.
///
/// Created by [`sleep`](super::ContextBase::sleep), [`awakeable`](super::ContextBase::awakeable)
/// and [`promise`](super::ContextPromises::promise).
#[must_use = "a durable future does nothing unless awaited or raced"]
pub struct DurableFuture<T> {
    core: Arc<InvocationCore>,
    pub(crate) index: u32,
    state: FutureState,
    _value: PhantomData<fn() -> T>,
}

/// What the future knows at creation.
pub(crate) enum FutureState {
    /// Replayed with its completion.
    Recorded(Completion),
    /// The completion is still to come.
    Waiting,
    /// Replay found another operation here (already reported): never completes.
    Broken,
}

impl<T> DurableFuture<T> {
    pub(crate) fn new(core: Arc<InvocationCore>, index: u32, state: FutureState) -> Self {
        Self {
            core,
            index,
            state,
            _value: PhantomData,
        }
    }
}

impl<T: DeserializeOwned + Send + 'static> IntoFuture for DurableFuture<T> {
    type Output = Result<T, TerminalError>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let completion = match self.state {
                FutureState::Recorded(completion) => completion,
                FutureState::Waiting => self.core.completion(self.index).await,
                FutureState::Broken => return std::future::pending().await,
            };
            decode_value(Some(completion), "a durable future's result")
        })
    }
}

mod sealed {
    pub trait Sealed {}
}

/// A durable future of any value type, as [`select`](super::ContextBase::select) takes it.
pub trait Selectable: sealed::Sealed + Sync {
    /// The journal index of the operation, and whether its completion is already recorded.
    #[doc(hidden)]
    fn candidate(&self) -> (u32, bool);
}

impl<T> sealed::Sealed for DurableFuture<T> {}

impl<T> Selectable for DurableFuture<T> {
    fn candidate(&self) -> (u32, bool) {
        match self.state {
            FutureState::Recorded(_) => (self.index, true),
            FutureState::Waiting => (self.index, false),
            FutureState::Broken => (u32::MAX, false),
        }
    }
}
