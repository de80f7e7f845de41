//! Verifying a stopped data file: redb's own integrity check, then every stored record read
//! back and decoded, and the references between tables followed. Nothing is written.

use std::collections::BTreeSet;
use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable};

use super::DATA_FILE;
use super::records::InvocationRecord;
use super::tables::{FORMAT_VERSION, INVOCATIONS, JOURNAL, META, PROMISES, STATE, WORKFLOWS};
use crate::error::{OpenError, StoreError};
use crate::journal::entry::decode;
use crate::journal::{Completion, Entry};

/// What a check of a data file found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Invocation records read.
    pub invocations: u64,
    /// Of them, invocations not finished: a folder stopped (or copied) mid-flight resumes them.
    pub unfinished: u64,
    /// Journal entries read.
    pub journal_entries: u64,
    /// State values read.
    pub state_values: u64,
    /// Every workflow that ever ran, as (workflow name, key).
    pub workflows: Vec<(String, String)>,
    /// What is wrong, one line each; empty when the file is sound.
    pub problems: Vec<String>,
}

/// Checks the engine's data file in `dir`, which no process may have open.
pub(crate) fn check(dir: &Path) -> Result<CheckReport, OpenError> {
    let path = dir.join(DATA_FILE);
    if !path.is_file() {
        return Err(OpenError::Io {
            path,
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no data file"),
        });
    }
    let mut db = super::open_to_read(path)?;
    let mut report = CheckReport::default();
    match db.check_integrity() {
        Ok(true) => {}
        Ok(false) => report
            .problems
            .push(format!("{DATA_FILE}: redb found its B-trees inconsistent")),
        Err(error) => report.problems.push(format!(
            "{DATA_FILE}: redb's integrity check failed: {error}"
        )),
    }
    if let Err(error) = read_everything(&db, &mut report) {
        report
            .problems
            .push(format!("{DATA_FILE}: cannot be read to the end: {error}"));
    }
    Ok(report)
}

/// Reads every table the engine keeps, decoding each value and following references.
fn read_everything(db: &Database, report: &mut CheckReport) -> Result<(), StoreError> {
    let txn = db.begin_read()?;
    let meta = txn.open_table(META)?;
    match meta.get("format_version")?.map(|v| v.value()) {
        Some(FORMAT_VERSION) => {}
        Some(other) => report.problems.push(format!(
            "{DATA_FILE}: format version {other}, this build reads {FORMAT_VERSION}"
        )),
        None => report
            .problems
            .push(format!("{DATA_FILE}: no format version recorded")),
    }

    let invocations = txn.open_table(INVOCATIONS)?;
    let mut ids = BTreeSet::new();
    for row in invocations.iter()? {
        let (key, value) = row?;
        let id = key.value();
        ids.insert(id);
        report.invocations += 1;
        match decode::<InvocationRecord>(value.value()) {
            Ok(record) if !record.status.is_finished() => report.unfinished += 1,
            Ok(_) => {}
            Err(error) => report.problems.push(format!(
                "invocation {}: record damaged: {error}",
                invocation(id)
            )),
        }
    }

    let journal = txn.open_table(JOURNAL)?;
    for row in journal.iter()? {
        let (key, value) = row?;
        let (id, index) = key.value();
        report.journal_entries += 1;
        if !ids.contains(&id) {
            report.problems.push(format!(
                "invocation {}: journal entry {index} without its invocation record",
                invocation(id)
            ));
        }
        if let Err(error) = decode::<Entry>(value.value()) {
            report.problems.push(format!(
                "invocation {}: journal entry {index} damaged: {error}",
                invocation(id)
            ));
        }
    }

    let state = txn.open_table(STATE)?;
    for row in state.iter()? {
        let (key, value) = row?;
        let (instance, name) = key.value();
        report.state_values += 1;
        if let Err(error) = crate::journal::entry::unseal(value.value()) {
            report
                .problems
                .push(format!("state {name:?} of {instance} damaged: {error}"));
        }
    }
    let promises = txn.open_table(PROMISES)?;
    for row in promises.iter()? {
        let (key, value) = row?;
        let (instance, name) = key.value();
        if let Err(error) = decode::<Completion>(value.value()) {
            report.problems.push(format!(
                "workflow {instance}: promise {name:?} damaged: {error}"
            ));
        }
    }
    let workflows = txn.open_table(WORKFLOWS)?;
    // A finished workflow's invocation is purged after the retention period while its key is
    // kept, so a key without its invocation is not damage.
    for row in workflows.iter()? {
        let (key, _) = row?;
        let instance = key.value();
        let (name, workflow_key) = instance.split_once('/').unwrap_or((instance, ""));
        report
            .workflows
            .push((name.to_owned(), workflow_key.to_owned()));
    }
    Ok(())
}

fn invocation(id: u64) -> String {
    crate::ids::InvocationId(id).to_string()
}
