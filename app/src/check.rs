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

/// What the engine's file says, to compare the orders with.
#[derive(Debug, Clone, Copy)]
pub struct EngineView<'a> {
    /// Every workflow that ran, as (name, key).
    pub workflows: &'a [(String, String)],
    /// Whether some invocations are unfinished: a folder stopped by a crash, or copied while
    /// serving, where a paid order's checkout may not have started its workflow yet (it will,
    /// on the next start).
    pub in_flight: bool,
}

/// Checks `app.sqlite` in `dir` without writing to it, comparing its orders with `engine`;
/// `None` skips the comparison (no engine file, as when the handlers run on a Restate cluster).
pub fn check_database(dir: &Path, engine: Option<EngineView<'_>>) -> DomainCheck {
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
    if let Err(error) = read(&conn, engine, &mut report) {
        report.problems.push(format!("{file}: {error}"));
    }
    report
}

fn read(
    conn: &Connection,
    engine: Option<EngineView<'_>>,
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
    let Some(engine) = engine else {
        return Ok(());
    };
    let started: BTreeSet<&str> = engine
        .workflows
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
        let paid = !before_payment.contains(&status.as_str());
        if paid && !started.contains(id.as_str()) && !engine.in_flight {
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
