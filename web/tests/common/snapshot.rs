//! Snapshots of both databases of a data folder, to show that a request changed nothing: every
//! row of every SQLite table, and the engine's invocations and object state (admin API).

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::types::ValueRef;
use serde_json::{Value, json};

/// Every row of every table of the SQLite file, as text, rows sorted, by table name.
pub fn sqlite(path: &Path) -> BTreeMap<String, Vec<String>> {
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut dump = BTreeMap::new();
    for table in tables {
        let mut statement = conn.prepare(&format!("SELECT * FROM \"{table}\"")).unwrap();
        let width = statement.column_count();
        let mut rows: Vec<String> = statement
            .query_map([], |row| {
                let cells: Vec<String> = (0..width)
                    .map(|i| {
                        row.get_ref(i).map(|v| match v {
                            ValueRef::Text(t) => format!("{:?}", String::from_utf8_lossy(t)),
                            other => format!("{other:?}"),
                        })
                    })
                    .collect::<Result<_, _>>()?;
                Ok(cells.join(" | "))
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        rows.sort();
        dump.insert(table, rows);
    }
    dump
}

/// The engine as its admin API shows it: every invocation (id → status, target, last
/// modification) and the state of the given objects and workflows (`(name, key)`).
pub fn engine(admin: &str, objects: &[(&str, &str)]) -> EngineSnapshot {
    let listing = super::request(admin, "GET", "/invocations?limit=1000000", &[], b"");
    assert_eq!(listing.status, 200, "{}", listing.body);
    let invocations = listing.json()["invocations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|inv| {
            (
                inv["id"].as_str().unwrap().to_owned(),
                json!({
                    "target": inv["target"],
                    "status": inv["status"],
                    "modifiedAt": inv["modifiedAt"],
                }),
            )
        })
        .collect();
    let state = objects
        .iter()
        .map(|(name, key)| {
            let path = format!("/objects/{name}/{key}/state");
            let reply = super::request(admin, "GET", &path, &[], b"");
            assert_eq!(reply.status, 200, "{path}: {}", reply.body);
            (format!("{name}/{key}"), reply.json()["state"].clone())
        })
        .collect();
    EngineSnapshot { invocations, state }
}

/// What [`engine`] saw.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineSnapshot {
    pub invocations: BTreeMap<String, Value>,
    pub state: BTreeMap<String, Value>,
}

impl EngineSnapshot {
    /// Invocations in `self` that `before` did not have, with their status and target.
    pub fn new_since(&self, before: &EngineSnapshot) -> Vec<(String, Value)> {
        self.invocations
            .iter()
            .filter(|(id, _)| !before.invocations.contains_key(*id))
            .map(|(id, v)| (id.clone(), v.clone()))
            .collect()
    }
}
