//! Asking a cluster through `restatectl`: which partitions have a leader, and where.

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

use super::*;

/// How many partitions have a leader: `[{"led":24}]`.
pub(super) const LED_QUERY: &str = "SELECT COUNT(DISTINCT partition_id) AS led FROM partition_state \
                         WHERE effective_mode = 'Leader'";

/// How many partitions each node leads, by name: `[{"name":"n1","leaders":8}, …]`. The
/// `partition_state` table has a row per partition processor (leader or follower) and node;
/// `nodes` maps node ids to names.
pub(super) const LEADERS_QUERY: &str = "SELECT n.name AS name, COUNT(DISTINCT p.partition_id) AS leaders \
                             FROM partition_state p JOIN nodes n \
                             ON p.plain_node_id = n.plain_node_id \
                             WHERE p.effective_mode = 'Leader' GROUP BY n.name";

/// `restatectl --address <address> <args>`; its stdout if it succeeded. `NO_COLOR` keeps ANSI
/// codes out of its output (it colors even when not on a terminal); `sql` prints its result on
/// stdout and `N rows. Query took …` on stderr.
pub(super) fn run_restatectl(
    restatectl: &Path,
    address: &str,
    args: &[&str],
) -> Result<String, LocalError> {
    let output = Command::new(restatectl)
        .arg("--address")
        .arg(address)
        .args(["--connect-timeout", "2000", "--request-timeout", "10000"])
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("RESTATECTL_ADDRESS")
        .stdin(Stdio::null())
        .output()
        .map_err(LocalError::io(format!(
            "cannot run {}",
            restatectl.display()
        )))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if output.status.success() {
        Ok(stdout)
    } else {
        Err(LocalError::Restatectl {
            args: args.join(" "),
            message: format!("failed ({})", output.status),
            output: format!("{stdout}{}", String::from_utf8_lossy(&output.stderr)),
        })
    }
}

/// The number in `[{"led":N}]`.
pub(super) fn parse_led(output: &str) -> Result<u64, String> {
    let rows: Value = serde_json::from_str(output.trim())
        .map_err(|e| format!("restatectl printed no JSON ({e}): {output}"))?;
    rows.get(0)
        .and_then(|row| row.get("led"))
        .and_then(Value::as_u64)
        .ok_or_else(|| format!("restatectl printed no count: {output}"))
}

/// The rows of [`LEADERS_QUERY`]: (node name, partitions led).
pub(super) fn parse_leaders(output: &str) -> Result<Vec<(String, u64)>, String> {
    let rows: Value = serde_json::from_str(output.trim()).map_err(|e| format!("not JSON: {e}"))?;
    let rows = rows.as_array().ok_or("not a JSON array")?;
    rows.iter()
        .map(|row| {
            let name = row.get("name").and_then(Value::as_str);
            let leaders = row.get("leaders").and_then(Value::as_u64);
            match (name, leaders) {
                (Some(name), Some(leaders)) => Ok((name.to_owned(), leaders)),
                _ => Err(format!("a row without a name and a count: {row}")),
            }
        })
        .collect()
}

/// The index of the node leading the most partitions among the running ones (the lowest index
/// among equals); `n1` is node 0.
pub(super) fn most_leaders(
    rows: &[(String, u64)],
    nodes: usize,
    running: impl Fn(usize) -> bool,
) -> Option<usize> {
    let mut best: Option<(u64, usize)> = None;
    for (name, leaders) in rows {
        let Some(node) = name
            .strip_prefix('n')
            .and_then(|number| number.parse::<usize>().ok())
            .and_then(|number| number.checked_sub(1))
        else {
            continue;
        };
        if node >= nodes || !running(node) {
            continue;
        }
        if best.is_none_or(|(most, first)| *leaders > most || (*leaders == most && node < first)) {
            best = Some((*leaders, node));
        }
    }
    best.map(|(_, node)| node)
}
