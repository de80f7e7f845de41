//! `zeroapp replay-check`: the gate before a deployment. It replays the journals of a data folder
//! no server is using (every unfinished invocation, and those finished recently), or of a file
//! written by `--export`, against this build's handlers, without side effects, and lists every
//! invocation whose journal this build would no longer match (docs/guide.md §12).

use std::error::Error;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::json;
use zeroapp_app::{App, AppConfig};
use zeroapp_engine::{DATA_FILE, Engine, OpenError, RecordedInvocation};

use crate::cli::ReplayCheckArgs;

/// The export file's format version.
const EXPORT_FORMAT: u64 = 1;

/// Prints what the gate found; `Ok(true)` if every invocation replays, `Ok(false)` if some would
/// break (listed), `Err` if the check could not run.
pub async fn run(args: ReplayCheckArgs) -> Result<bool, Box<dyn Error>> {
    let (source, recorded) = match &args.from {
        Some(file) => (file.display().to_string(), import(file)?),
        None => {
            let dir = &args.data_dir;
            let recorded = Engine::read_recorded(dir, args.finished_within)
                .await
                .map_err(|e| match e {
                    OpenError::Locked(_) => format!(
                        "cannot read {}: a server is using it (check a copy made with `zeroapp \
                         backup`)",
                        dir.display()
                    ),
                    other => format!("cannot read {}: {other}", dir.display()),
                })?;
            (dir.join(DATA_FILE).display().to_string(), recorded)
        }
    };
    if let Some(file) = &args.export {
        let export = Export {
            format: EXPORT_FORMAT,
            invocations: recorded,
        };
        std::fs::write(file, serde_json::to_vec_pretty(&export)?)
            .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
        println!(
            "{} invocations from {source} written to {}",
            export.invocations.len(),
            file.display()
        );
        return Ok(true);
    }
    // This build's handlers, on a scratch database: replaying runs none of their steps.
    let scratch = tempfile::tempdir()?;
    let app = App::open(scratch.path(), AppConfig::default()).await?;
    let report = app
        .definitions()
        .into_iter()
        .fold(Engine::builder(), |builder, definition| {
            builder.register(definition)
        })
        .check_replay(&recorded)
        .await?;
    if args.json {
        let findings: Vec<_> = report
            .incompatible
            .iter()
            .map(|f| {
                json!({
                    "invocation": f.invocation.to_string(),
                    "target": f.target.to_string(),
                    "status": f.status,
                    "entry": f.entry,
                    "expected": f.expected,
                    "found": f.found,
                })
            })
            .collect();
        let out = json!({ "source": source, "checked": report.checked, "incompatible": findings });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(report.is_compatible());
    }
    println!(
        "{source}: {} invocations replayed against this build",
        report.checked
    );
    for finding in &report.incompatible {
        println!("incompatible: {finding}");
    }
    if report.is_compatible() {
        println!("every invocation replays: this build can take over the folder");
    } else {
        println!(
            "{} of {} would no longer replay: keep the old path behind ctx.patched, or let them \
             finish before deploying (docs/guide.md, section 12)",
            report.incompatible.len(),
            report.checked
        );
    }
    Ok(report.is_compatible())
}

/// What `--export` writes. Not through `serde_json::Value`: awakeable secrets are 128-bit
/// numbers, which only the typed path writes and reads.
#[derive(Serialize, Deserialize)]
struct Export {
    format: u64,
    invocations: Vec<RecordedInvocation>,
}

/// The export's format alone, read first so that another version is named, not misread.
#[derive(Deserialize)]
struct Format {
    format: u64,
}

/// The invocations of a file `--export` wrote.
fn import(file: &Path) -> Result<Vec<RecordedInvocation>, Box<dyn Error>> {
    let bytes = std::fs::read(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let not_export =
        |e: serde_json::Error| format!("{} is not an export of journals: {e}", file.display());
    let Format { format } = serde_json::from_slice(&bytes).map_err(not_export)?;
    if format != EXPORT_FORMAT {
        return Err(format!(
            "{} has export format {format}, this build reads format {EXPORT_FORMAT}",
            file.display()
        )
        .into());
    }
    let export: Export = serde_json::from_slice(&bytes).map_err(not_export)?;
    Ok(export.invocations)
}
