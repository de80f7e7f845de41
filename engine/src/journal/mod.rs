//! The journal: the durable record of everything an invocation did, and the replay logic that
//! decides, for each operation the handler issues, whether it is already recorded.
//!
//! This module does no I/O. `entry` defines what is recorded and how it is encoded; `replay` is
//! the state machine that matches issued operations against recorded entries; `machine` is the
//! state machine of one attempt of an invocation, around replay.

pub(crate) mod entry;
pub(crate) mod machine;
pub(crate) mod replay;

pub(crate) use entry::{Completion, Entry, Op};
pub(crate) use replay::{Patch, Step};
