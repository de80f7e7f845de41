//! Durable futures: operations whose result arrives later — a timer, an awakeable, a workflow
//! promise — and that can be awaited alone or raced with [`select`](super::ContextBase::select).

use std::future::{Future, IntoFuture};
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;

use serde::de::DeserializeOwned;

use super::backend::{Backend, Handle};
use super::decode_value;
use crate::error::TerminalError;

/// The result of a durable operation that completes later. Await it for the value; until then
/// it costs a journal entry, and (after the inactivity timeout) no memory at all: the invocation
/// suspends and is replayed when the completion lands.
///
/// Created by [`sleep`](super::ContextBase::sleep), [`awakeable`](super::ContextBase::awakeable)
/// and [`promise`](super::ContextPromises::promise).
#[must_use = "a durable future does nothing unless awaited or raced"]
pub struct DurableFuture<T> {
    backend: Arc<dyn Backend>,
    handle: Handle,
    _value: PhantomData<fn() -> T>,
}

impl<T> DurableFuture<T> {
    pub(crate) fn new(backend: Arc<dyn Backend>, handle: Handle) -> Self {
        Self {
            backend,
            handle,
            _value: PhantomData,
        }
    }
}

impl<T: DeserializeOwned + Send + 'static> IntoFuture for DurableFuture<T> {
    type Output = Result<T, TerminalError>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        match self.handle.ready {
            Some(outcome) => Box::pin(std::future::ready(decode_value(
                outcome,
                "a durable future's result",
            ))),
            None => {
                let outcome = self.backend.await_handle(self.handle.token);
                Box::pin(async move { decode_value(outcome.await, "a durable future's result") })
            }
        }
    }
}

mod sealed {
    pub trait Sealed {}
}

/// A durable future of any value type, as [`select`](super::ContextBase::select) takes it.
pub trait Selectable: sealed::Sealed + Sync {
    /// The backend's token for the operation, and whether its result is already known.
    #[doc(hidden)]
    fn candidate(&self) -> (u64, bool);
}

impl<T> sealed::Sealed for DurableFuture<T> {}

impl<T> Selectable for DurableFuture<T> {
    fn candidate(&self) -> (u64, bool) {
        (self.handle.token, self.handle.ready.is_some())
    }
}
