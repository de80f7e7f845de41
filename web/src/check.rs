//! `zeroapp check`: verifies a data folder no server is using — the engine's file (redb's
//! integrity check, every record and journal entry decoded), the app's database (SQLite's
//! integrity and foreign keys), and that the two agree on which orders have a workflow.

use zeroapp_engine::{DATA_FILE, Engine};

use crate::cli::CheckArgs;

/// Prints what the check found; `Ok(true)` if the folder is sound, `Ok(false)` if problems
/// were found, `Err` if the check could not run (the folder is in use, a file cannot be opened
/// at all).
pub async fn run(args: CheckArgs) -> Result<bool, Box<dyn std::error::Error>> {
    let dir = &args.data_dir;
    let mut problems = Vec::new();
    let workflows = if args.without_engine {
        println!("{DATA_FILE}: not checked (--without-engine)");
        None
    } else if !dir.join(DATA_FILE).exists() {
        problems.push(format!(
            "{DATA_FILE}: missing (restore it from a backup; if the handlers run on a Restate \
             cluster, check with --without-engine)"
        ));
        None
    } else {
        let report = Engine::check(dir).await.map_err(|e| match e {
            zeroapp_engine::OpenError::Locked(_) => {
                format!("cannot check {}: a server is using it", dir.display())
            }
            other => format!("cannot check {}: {other}", dir.display()),
        })?;
        println!(
            "{DATA_FILE}: {} invocations, {} journal entries, {} state values, {} workflows read",
            report.invocations,
            report.journal_entries,
            report.state_values,
            report.workflows.len()
        );
        problems.extend(report.problems);
        if report.unfinished > 0 {
            println!(
                "{DATA_FILE}: {} invocations unfinished (they resume at the next start)",
                report.unfinished
            );
        }
        Some((report.workflows, report.unfinished > 0))
    };
    if let Err(error) = zeroapp_app::folder::identity(dir, !args.without_engine).await {
        problems.push(error.to_string());
    }
    let view = workflows
        .as_ref()
        .map(|(workflows, in_flight)| zeroapp_app::check::EngineView {
            workflows,
            in_flight: *in_flight,
        });
    let domain = zeroapp_app::check::check_database(dir, view);
    println!(
        "{}: {} orders read",
        zeroapp_app::DATABASE_FILE,
        domain.orders
    );
    problems.extend(domain.problems);
    for problem in &problems {
        println!("problem: {problem}");
    }
    if problems.is_empty() {
        println!("{}: sound", dir.display());
    } else {
        println!("{}: {} problem(s)", dir.display(), problems.len());
    }
    Ok(problems.is_empty())
}
