//! Verifying the domain's database in a stopped data folder: SQLite's own integrity and
//! foreign-key checks, and agreement with the engine: every paid order has its fulfillment
//! workflow, and every fulfillment workflow has its order.

use std::collections::BTreeSet;
use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use crate::fulfillment;
use crate::status::OrderStatus;

/// What a check of `app.sqlite` found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DomainCheck {
    /// Orders in the database.
    pub orders: u64,
    /// What is wrong, one line each; empty when the database is sound and agrees with the
    /// engine.
    pub problems: Vec<String>,
}

/// Checks `app.sqlite` in `dir` without writing to it. `workflows` are the engine's workflows
/// as (name, key), to compare with the orders; `None` skips the comparison (no engine file,
/// as when the handlers run on a Restate cluster).
pub fn check_database(dir: &Path, workflows: Option<&[(String, String)]>) -> DomainCheck {
    let file = crate::DATABASE_FILE;
    let mut report = DomainCheck::default();
    let path = dir.join(file);
    if !path.is_file() {
        report.problems.push(format!("{file}: missing"));
        return report;
    }
    let conn = match Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY) {
        Ok(conn) => conn,
        Err(error) => {
            report
                .problems
                .push(format!("{file}: cannot be opened: {error}"));
            return report;
        }
    };
    if let Err(error) = read(&conn, workflows, &mut report) {
        report.problems.push(format!("{file}: {error}"));
    }
    report
}

fn read(
    conn: &Connection,
    workflows: Option<&[(String, String)]>,
    report: &mut DomainCheck,
) -> Result<(), rusqlite::Error> {
    let file = crate::DATABASE_FILE;
    let mut integrity = conn.prepare("PRAGMA integrity_check")?;
    for row in integrity.query_map([], |row| row.get::<_, String>(0))? {
        let row = row?;
        if row != "ok" {
            report.problems.push(format!("{file}: {row}"));
        }
    }
    let mut foreign = conn.prepare("PRAGMA foreign_key_check")?;
    let broken = foreign.query_map([], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, Option<i64>>(1)?,
            row.get::<_, String>(2)?,
        ))
    })?;
    for row in broken {
        let (table, rowid, parent) = row?;
        let rowid = rowid.map_or_else(|| "?".to_owned(), |r| r.to_string());
        report.problems.push(format!(
            "{file}: {table} row {rowid} refers to a missing {parent} row"
        ));
    }
    let mut orders = conn.prepare("SELECT id, status FROM orders")?;
    let orders: Vec<(String, String)> = orders
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<_, _>>()?;
    report.orders = u64::try_from(orders.len()).unwrap_or(u64::MAX);
    let Some(workflows) = workflows else {
        return Ok(());
    };
    let started: BTreeSet<&str> = workflows
        .iter()
        .filter(|(name, _)| name == fulfillment::NAME)
        .map(|(_, key)| key.as_str())
        .collect();
    let before_payment = [
        OrderStatus::AwaitingPayment.as_str(),
        OrderStatus::PaymentDeclined.as_str(),
    ];
    let mut known = BTreeSet::new();
    for (id, status) in &orders {
        known.insert(id.as_str());
        if !before_payment.contains(&status.as_str()) && !started.contains(id.as_str()) {
            report.problems.push(format!(
                "order {id} is {status} in {file} but the engine has no {} workflow for it",
                fulfillment::NAME
            ));
        }
    }
    for key in started.difference(&known) {
        report.problems.push(format!(
            "the engine has a {} workflow for order {key}, which {file} does not have",
            fulfillment::NAME
        ));
    }
    Ok(())
}
