//! State operations: reads through the attempt's own uncommitted writes, and writes journaled
//! with their entry (without waiting for the commit).

use std::sync::Arc;

use super::{InvocationCore, decode_value, outcome};
use crate::error::TerminalError;
use crate::journal::machine::Overlaid;
use crate::journal::{Completion, Op, Step};
use crate::runtime::invoker::Fatal;
use crate::store::command::{Action, StateOp};

impl InvocationCore {
    pub(super) async fn get_state(
        self: Arc<Self>,
        key: String,
    ) -> Result<Option<Vec<u8>>, TerminalError> {
        let instance = self.instance();
        let store = &self.engine.store;
        let completion = self
            .immediate(Op::GetState { key: key.clone() }, |_| {
                let overlaid = self.live.machine().overlaid(&key);
                let value = match overlaid {
                    Overlaid::Written(value) => Ok(value),
                    Overlaid::ClearedAll => Ok(None),
                    Overlaid::Untouched => store.state_get(&instance, &key),
                };
                match value {
                    Ok(Some(bytes)) => Ok(Completion::Value(bytes)),
                    Ok(None) => Ok(Completion::Empty),
                    Err(e) => Err(Fatal::Store(e.to_string())),
                }
            })
            .await;
        match completion {
            Completion::Empty => Ok(None),
            other => outcome(Some(other), &format!("state {key:?}")).map(Some),
        }
    }

    pub(super) async fn state_keys(self: Arc<Self>) -> Result<Vec<String>, TerminalError> {
        let instance = self.instance();
        let store = &self.engine.store;
        let completion = self
            .immediate(Op::GetStateKeys, |_| {
                match self.committed_keys(store, &instance) {
                    Ok(committed) => {
                        let keys = self.live.machine().keys_over(committed);
                        serde_json::to_vec(&keys)
                            .map(Completion::Value)
                            .map_err(|e| Fatal::Store(e.to_string()))
                    }
                    Err(e) => Err(Fatal::Store(e.to_string())),
                }
            })
            .await;
        decode_value(outcome(Some(completion), "state keys"), "state keys")
    }

    pub(super) fn committed_keys(
        &self,
        store: &crate::store::Store,
        instance: &str,
    ) -> Result<std::collections::BTreeSet<String>, crate::error::StoreError> {
        if self.live.machine().cleared_all() {
            return Ok(std::collections::BTreeSet::new());
        }
        Ok(store
            .state_all(instance)?
            .into_iter()
            .map(|(k, _)| k)
            .collect())
    }

    pub(super) fn set_state(&self, key: &str, value: Option<Vec<u8>>) {
        self.live.machine().write_state(key, value.clone());
        let instance = self.instance();
        let (op, state) = match value {
            Some(value) => (
                Op::SetState {
                    key: key.to_owned(),
                },
                StateOp::Set {
                    instance,
                    key: key.to_owned(),
                    value,
                },
            ),
            None => (
                Op::ClearState {
                    key: key.to_owned(),
                },
                StateOp::Clear {
                    instance,
                    key: key.to_owned(),
                },
            ),
        };
        self.write_state(op, state);
    }

    pub(super) fn clear_all_state(&self) {
        self.live.machine().clear_all_state();
        let instance = self.instance();
        self.write_state(Op::ClearAllState, StateOp::ClearAll { instance });
    }

    pub(super) fn write_state(&self, op: Op, state: StateOp) {
        match self.issue(&op) {
            Step::Replayed(..) => {}
            Step::Live(index) => {
                self.append_detached(
                    index,
                    self.entry(op, Some(Completion::Empty)),
                    vec![Action::State(state)],
                );
            }
            // The handler cannot be stopped from a synchronous call: report, and the invoker
            // drops the handler at its next await.
            step @ Step::Mismatch { .. } => self.report_mismatch(step),
        }
    }
}
