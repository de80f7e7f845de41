//! Identifiers: invocation ids and call targets.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The id of one invocation: `inv_` followed by 16 hex digits.
///
/// Ids are allocated in increasing order, so invocations created together have journal keys
/// that sit together on disk (see docs/journal-format.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct InvocationId(pub(crate) u64);

impl InvocationId {
    /// The id's sequence number.
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for InvocationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "inv_{:016x}", self.0)
    }
}

/// A string is not an invocation id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an invocation id: {0:?} (expected inv_ and 16 hex digits)")]
pub struct ParseIdError(String);

impl FromStr for InvocationId {
    type Err = ParseIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let hex = s
            .strip_prefix("inv_")
            .filter(|h| h.len() == 16)
            .ok_or_else(|| ParseIdError(s.to_owned()))?;
        u64::from_str_radix(hex, 16)
            .map(Self)
            .map_err(|_| ParseIdError(s.to_owned()))
    }
}

/// What kind of thing a registered name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ServiceKind {
    /// Stateless handlers, any number running at once.
    Service,
    /// Keyed handlers with K/V state: one exclusive handler per key at a time.
    VirtualObject,
    /// Keyed: `run` once per key, durable promises, shared handlers.
    Workflow,
}

/// How a handler runs with respect to its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum HandlerKind {
    /// A service handler: no key, no state.
    Stateless,
    /// A virtual object's exclusive handler: queued per key, reads and writes state.
    Exclusive,
    /// A shared handler of an object or workflow: concurrent, reads committed state.
    Shared,
    /// A workflow's `run` handler: once per key, reads and writes state.
    WorkflowRun,
}

/// Where a call goes: a service's handler, or a keyed object's or workflow's handler.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Target {
    /// The service, object or workflow name.
    pub service: String,
    /// The handler name.
    pub handler: String,
    /// The key, for objects and workflows.
    pub key: Option<String>,
}

impl Target {
    /// A service handler.
    pub fn service(service: impl Into<String>, handler: impl Into<String>) -> Self {
        Self {
            service: service.into(),
            handler: handler.into(),
            key: None,
        }
    }

    /// A virtual object's handler on one key.
    pub fn object(
        object: impl Into<String>,
        key: impl Into<String>,
        handler: impl Into<String>,
    ) -> Self {
        Self {
            service: object.into(),
            handler: handler.into(),
            key: Some(key.into()),
        }
    }

    /// A workflow's handler on one key (`run` starts it).
    pub fn workflow(
        workflow: impl Into<String>,
        key: impl Into<String>,
        handler: impl Into<String>,
    ) -> Self {
        Self::object(workflow, key, handler)
    }

    /// The key of the object or workflow instance, as stored: `service/key`.
    pub(crate) fn instance(&self) -> Option<String> {
        self.key.as_ref().map(|k| instance_key(&self.service, k))
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(key) => write!(f, "{}/{}/{}", self.service, key, self.handler),
            None => write!(f, "{}/{}", self.service, self.handler),
        }
    }
}

/// The storage key of an object or workflow instance. Service names contain no `/`, so the
/// first `/` separates name and key.
pub(crate) fn instance_key(service: &str, key: &str) -> String {
    format!("{service}/{key}")
}

/// The id of an awakeable: `awk_` and, in hex, the invocation, its journal index and 128 random
/// bits journaled with the awakeable. Whoever completes it must know all three.
pub(crate) fn awakeable_id(inv: u64, index: u32, secret: u128) -> String {
    format!("awk_{inv:016x}{index:08x}{secret:032x}")
}

/// The parts of an awakeable id, or `None` if it is not one.
pub(crate) fn parse_awakeable_id(id: &str) -> Option<(u64, u32, u128)> {
    let hex = id.strip_prefix("awk_")?;
    if hex.len() != 56 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let inv = u64::from_str_radix(&hex[..16], 16).ok()?;
    let index = u32::from_str_radix(&hex[16..24], 16).ok()?;
    let secret = u128::from_str_radix(&hex[24..], 16).ok()?;
    Some((inv, index, secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn awakeable_ids_round_trip_and_reject_garbage() {
        let id = awakeable_id(7, 3, u128::MAX - 1);
        assert_eq!(id.len(), 60);
        assert_eq!(parse_awakeable_id(&id), Some((7, 3, u128::MAX - 1)));
        for bad in [
            "",
            "awk_",
            "awk_12",
            &id[..59],
            &format!("{id}0"),
            &id.replace("awk_", "inv_"),
        ] {
            assert_eq!(parse_awakeable_id(bad), None, "{bad}");
        }
        assert_eq!(parse_awakeable_id(&format!("awk_{}", "g".repeat(56))), None);
    }

    #[test]
    fn invocation_ids_round_trip_and_reject_garbage() {
        let id = InvocationId(0x1234);
        let text = id.to_string();
        assert_eq!(text, "inv_0000000000001234");
        assert_eq!(text.parse::<InvocationId>(), Ok(id));
        for bad in [
            "",
            "inv_",
            "inv_12",
            "xyz_0000000000001234",
            "inv_000000000000123g",
        ] {
            assert!(bad.parse::<InvocationId>().is_err(), "{bad}");
        }
    }
}
