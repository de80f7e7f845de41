//! Journal entries: one per context operation, keyed by (invocation, index) in the store.

use serde::{Deserialize, Serialize};

use crate::error::{StoreError, TerminalError};
use crate::ids::Target;

/// One journaled operation and, once known, its result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Entry {
    /// What the handler asked for.
    pub(crate) op: Op,
    /// When it was recorded (ms since the epoch).
    pub(crate) at_ms: u64,
    /// The invocation attempt that recorded it (1-based).
    pub(crate) attempt: u32,
    /// Its result. `None` while a completion (a call's result, a timer, an awakeable) is awaited.
    pub(crate) completion: Option<Completion>,
}

/// The operations a handler can issue. Replay compares the variant and the identifying fields
/// (names, keys, targets) of the recorded and the issued operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Op {
    /// A named side effect (`ctx.run`).
    Run { name: String },
    /// Reading one state key.
    GetState { key: String },
    /// Listing the state keys.
    GetStateKeys,
    /// Writing one state key (the value lives in the state table, written atomically with this).
    SetState { key: String },
    /// Removing one state key.
    ClearState { key: String },
    /// Removing all state of the object or workflow.
    ClearAllState,
    /// A request-response call; `callee` is the invocation it created.
    Call { target: Target, callee: u64 },
    /// A one-way send; `callee` is the invocation it created.
    Send { target: Target, callee: u64 },
    /// A random `u64`.
    Rand,
    /// A random UUID.
    Uuid,
    /// The current time.
    Now,
    /// A durable timer; completes once the clock reaches `wake_at_ms`.
    Sleep { wake_at_ms: u64 },
    /// An awakeable; `secret` is the random part of its id.
    Awakeable { secret: u128 },
    /// Completing an awakeable (by id) from a handler.
    CompleteAwakeable { id: String },
    /// Awaiting one of the workflow's durable promises.
    GetPromise { name: String },
    /// Reading a durable promise without waiting.
    PeekPromise { name: String },
    /// Completing a durable promise.
    CompletePromise { name: String },
    /// Racing the operations at these indices; the completion is the position of the winner.
    Select { of: Vec<u32> },
    /// A version marker (`ctx.patched`): the invocation reached `name` with the code that has
    /// it. Appended last among the variants, so that journals written before it still decode.
    Patch { name: String },
}

impl Op {
    /// Whether a recorded operation is the one the handler issued now. What is chosen at
    /// execution time (the callee of a call, a timer's deadline, an awakeable's secret) is not
    /// part of the identity.
    pub(crate) fn matches(&self, issued: &Op) -> bool {
        match (self, issued) {
            (Op::Call { target: a, .. }, Op::Call { target: b, .. })
            | (Op::Send { target: a, .. }, Op::Send { target: b, .. }) => a == b,
            (Op::Sleep { .. }, Op::Sleep { .. }) | (Op::Awakeable { .. }, Op::Awakeable { .. }) => {
                true
            }
            (a, b) => a == b,
        }
    }

    /// A short name of the operation's kind, for introspection and error messages.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Op::Run { .. } => "run",
            Op::GetState { .. } => "get_state",
            Op::GetStateKeys => "get_state_keys",
            Op::SetState { .. } => "set_state",
            Op::ClearState { .. } => "clear_state",
            Op::ClearAllState => "clear_all_state",
            Op::Call { .. } => "call",
            Op::Send { .. } => "send",
            Op::Rand => "rand",
            Op::Uuid => "uuid",
            Op::Now => "now",
            Op::Sleep { .. } => "sleep",
            Op::Awakeable { .. } => "awakeable",
            Op::CompleteAwakeable { .. } => "complete_awakeable",
            Op::GetPromise { .. } => "get_promise",
            Op::PeekPromise { .. } => "peek_promise",
            Op::CompletePromise { .. } => "complete_promise",
            Op::Select { .. } => "select",
            Op::Patch { .. } => "patch",
        }
    }

    /// The operation's name: the step name, state key or target, if it has one.
    pub(crate) fn name(&self) -> Option<String> {
        match self {
            Op::Run { name } => Some(name.clone()),
            Op::GetState { key } | Op::SetState { key } | Op::ClearState { key } => {
                Some(key.clone())
            }
            Op::Call { target, .. } | Op::Send { target, .. } => Some(target.to_string()),
            Op::GetPromise { name }
            | Op::PeekPromise { name }
            | Op::CompletePromise { name }
            | Op::Patch { name } => Some(name.clone()),
            Op::CompleteAwakeable { id } => Some(id.clone()),
            Op::Sleep { wake_at_ms } => Some(format!("until {wake_at_ms}")),
            Op::Select { of } => Some(format!("{of:?}")),
            Op::GetStateKeys
            | Op::ClearAllState
            | Op::Rand
            | Op::Uuid
            | Op::Now
            | Op::Awakeable { .. } => None,
        }
    }

    /// `kind("name")`, for messages.
    pub(crate) fn describe(&self) -> String {
        match self.name() {
            Some(name) => format!("{}({name:?})", self.kind()),
            None => self.kind().to_owned(),
        }
    }
}

/// The result of an operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum Completion {
    /// A value, JSON-encoded.
    Value(Vec<u8>),
    /// No value: a unit result or an absent state key.
    Empty,
    /// A terminal failure.
    Failure(TerminalError),
}

const CONFIG: bincode::config::Configuration = bincode::config::standard();

/// The length of the checksum that ends every stored record.
pub(crate) const CHECKSUM_LEN: usize = 4;

/// The checksum of a record's payload: CRC-32 (IEEE), little-endian.
pub(crate) fn checksum(payload: &[u8]) -> [u8; CHECKSUM_LEN] {
    crc32fast::hash(payload).to_le_bytes()
}

/// Encodes any record for the store: bincode (standard configuration: little-endian varints),
/// then the payload's checksum, so that bytes damaged on disk are told apart from a record
/// that decodes to something else (a code change).
pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Encoding into a Vec fails only for types serde cannot describe; ours are all plain data.
    seal(&bincode::serde::encode_to_vec(value, CONFIG).unwrap_or_default())
}

/// `payload` followed by its checksum: how every stored value is written (records through
/// [`encode`], state values as they are).
pub(crate) fn seal(payload: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(payload.len() + CHECKSUM_LEN);
    bytes.extend_from_slice(payload);
    bytes.extend_from_slice(&checksum(payload));
    bytes
}

/// The payload of a value written by [`seal`], if its checksum matches; damage otherwise.
pub(crate) fn unseal(bytes: &[u8]) -> Result<&[u8], StoreError> {
    let Some(split) = bytes.len().checked_sub(CHECKSUM_LEN) else {
        return Err(StoreError::Corrupted(format!(
            "a {}-byte value is shorter than its checksum",
            bytes.len()
        )));
    };
    let (payload, sum) = bytes.split_at(split);
    if checksum(payload) != sum {
        return Err(StoreError::Corrupted(
            "checksum mismatch: the stored bytes were damaged".to_owned(),
        ));
    }
    Ok(payload)
}

/// Decodes a record written by [`encode`].
///
/// Corrupted bytes must give an error, never a huge allocation: bincode sizes a string's buffer
/// from its length prefix before reading it, so eleven bytes claiming a 6 EB string aborted the
/// process (found by fuzz/fuzz_targets/journal_decode.rs). bincode bounds what one decode may
/// claim only by a limit fixed at compile time, so the limit here is the smallest of a ladder of
/// them that is at least 16 × the input: one input byte never decodes into more than 16 claimed
/// bytes (a one-byte varint `u128`), so no valid record is refused, and no length prefix can
/// claim more than 64 × the input.
///
/// The checksum is verified first: a mismatch is reported as damage, not decoded.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    let bytes = unseal(bytes)?;
    let budget = bytes.len().saturating_mul(16);
    macro_rules! within_the_smallest_limit {
        ($($bits:literal)*) => {
            $(
                if budget <= 1 << $bits {
                    return decode_within::<T, { 1 << $bits }>(bytes);
                }
            )*
        };
    }
    within_the_smallest_limit!(12 14 16 18 20 22 24 26 28 30 32 34 36 38 40);
    decode_within::<T, { usize::MAX }>(bytes)
}

/// [`decode`] refusing to claim more than `LIMIT` bytes.
fn decode_within<T: serde::de::DeserializeOwned, const LIMIT: usize>(
    bytes: &[u8],
) -> Result<T, StoreError> {
    bincode::serde::decode_from_slice(bytes, CONFIG.with_limit::<LIMIT>())
        .map(|(value, _)| value)
        .map_err(|e| StoreError::Corrupted(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_garbage_is_an_error() {
        let entry = Entry {
            op: Op::Call {
                target: Target::object("Counter", "a", "add"),
                callee: 7,
            },
            at_ms: 1_700_000_000_000,
            attempt: 2,
            completion: Some(Completion::Failure(TerminalError::with_code(404, "nope"))),
        };
        let bytes = encode(&entry);
        assert_eq!(decode::<Entry>(&bytes).unwrap(), entry);
        assert!(decode::<Entry>(&[0xff, 0xff, 0xff]).is_err());
        assert!(decode::<Entry>(&bytes[..bytes.len() / 2]).is_err());
    }

    #[test]
    fn a_flipped_byte_is_damage_not_another_value() {
        // A journaled `false` that became `fal3e` on disk: decodable by bincode as another
        // string, caught by the checksum.
        let entry = Entry {
            op: Op::Run {
                name: "approve?".into(),
            },
            at_ms: 1_700_000_000_000,
            attempt: 1,
            completion: Some(Completion::Value(b"false".to_vec())),
        };
        let mut bytes = encode(&entry);
        let at = bytes.windows(5).position(|w| w == b"false").unwrap();
        bytes[at + 3] = b'3';
        let error = decode::<Entry>(&bytes).unwrap_err().to_string();
        assert!(error.contains("checksum mismatch"), "{error}");
    }

    #[test]
    fn a_corrupted_length_is_an_error_not_an_allocation() {
        // CompleteAwakeable { id } whose id claims 0xc9fe_edfe_... bytes (fuzz/regressions/).
        let bytes = [0x0d, 0xfd, 0xc9, 0xfe, 0xed, 0x01, 0x06, 0x01, 0x01, 0x61];
        assert!(decode::<Entry>(&bytes).is_err());
        // Records whose bytes claim the most (one-byte varints decoding into a u128 and u64s)
        // and large ones still decode.
        let entry = Entry {
            op: Op::Awakeable { secret: 1 },
            at_ms: 0,
            attempt: 0,
            completion: Some(Completion::Empty),
        };
        assert_eq!(decode::<Entry>(&encode(&entry)).unwrap(), entry);
        let big = Entry {
            op: Op::Run {
                name: "x".repeat(100_000),
            },
            at_ms: 1,
            attempt: 1,
            completion: Some(Completion::Value(vec![7; 300_000])),
        };
        assert_eq!(decode::<Entry>(&encode(&big)).unwrap(), big);
    }

    #[test]
    fn a_call_matches_whatever_callee_it_created() {
        let recorded = Op::Call {
            target: Target::service("S", "h"),
            callee: 1,
        };
        let issued = Op::Call {
            target: Target::service("S", "h"),
            callee: 0,
        };
        assert!(recorded.matches(&issued));
        let other = Op::Call {
            target: Target::service("S", "other"),
            callee: 0,
        };
        assert!(!recorded.matches(&other));
    }

    #[test]
    fn awakeable_secrets_survive_the_codec() {
        let entry = Entry {
            op: Op::Awakeable {
                secret: u128::MAX - 7,
            },
            at_ms: 1,
            attempt: 1,
            completion: None,
        };
        assert_eq!(decode::<Entry>(&encode(&entry)).unwrap(), entry);
    }
}
