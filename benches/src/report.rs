//! Tables, ratios against the targets, the machine's description, and `docs/benchmarks.md`.

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::engine::{COMMANDS_PER_INVOCATION, STEPS};
use crate::invocations::{RawFigures, Report, Row};

/// The command that runs the bench in full mode and rewrites its section.
pub const COMMAND: &str = "cargo bench -p zeroapp-benches --bench invocations";
/// At concurrency 1, an invocation of the bench may wait for at most this many commits.
pub const COMMITS_TARGET: f64 = 4.0;
/// At concurrency 1, a commit may cost at most this many log appends (write + fdatasync).
pub const STEP_TARGET: f64 = 1.5;
/// At concurrency [`CEILING_AT`], the engine must reach this share of the raw log-file ceiling.
pub const CEILING_TARGET: f64 = 0.5;
/// The concurrency at which [`CEILING_TARGET`] applies.
pub const CEILING_AT: usize = 64;
/// Where the bench's section starts in the document.
pub const BEGIN: &str = "<!-- invocations:begin -->";
/// Where it ends.
pub const END: &str = "<!-- invocations:end -->";

const INTRO: &str = "# Benchmarks\n\n\
The figures below are written by the benchmarks themselves, never typed by hand: a full run \
replaces its section of this file. The machine is small and shared (its disk is virtual), so \
figures move between runs; each is the median of several repetitions, and each comes with the \
ratio to a ceiling measured in the same run.\n";

/// `docs/benchmarks.md` of this repository.
pub fn doc_path() -> PathBuf {
    let benches = Path::new(env!("CARGO_MANIFEST_DIR"));
    benches
        .parent()
        .unwrap_or(benches)
        .join("docs")
        .join("benchmarks.md")
}

/// A bench's settings in its two modes.
pub trait Modes: Sized {
    /// The real run, whose figures are written to `docs/benchmarks.md`.
    fn full() -> Self;

    /// A quick run that proves the bench works; its figures are not written down.
    fn quick() -> Self;

    /// Full mode only under `cargo bench` (which passes `--bench`), unless `--test` is passed
    /// too (`cargo bench -- --test`) or `BENCH_QUICK=1`.
    fn from_args(args: &[String], bench_quick: Option<&str>) -> Self {
        if full_mode(args, bench_quick) {
            Self::full()
        } else {
            Self::quick()
        }
    }
}

/// A duration in milliseconds, two decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// "caller" or "callers", as `n` asks.
pub fn callers(n: usize) -> &'static str {
    if n == 1 { "caller" } else { "callers" }
}

/// The word a target gets: pass or miss.
pub fn verdict(pass: bool) -> &'static str {
    if pass { "**pass**" } else { "**miss**" }
}

/// The figures as three Markdown tables (engine; each raw ceiling and the ratio to it), one row
/// per concurrency.
pub fn table(report: &Report) -> String {
    let mut out = String::from(
        "| callers | engine inv/s | entries/s | inv p50 | inv p99 | commands/commit \
         | writer time/commit |\n|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for row in &report.rows {
        let e = &row.engine;
        let _ = writeln!(
            out,
            "| {} | {:.0} | {:.0} | {} | {} | {:.1} | {} |",
            row.concurrency,
            e.invocations_per_s,
            e.entries_per_s,
            ms(e.p50),
            ms(e.p99),
            e.batch,
            ms(e.commit_time),
        );
    }
    for (name, unit, ceiling, ratio) in [
        (
            "raw",
            "commit",
            (|r: &Row| r.raw) as fn(&Row) -> RawFigures,
            Row::ceiling_ratio as fn(&Row) -> f64,
        ),
        ("raw log", "append", |r: &Row| r.log, Row::log_ratio),
    ] {
        let _ = write!(
            out,
            "\n| callers | {name} entries/s | ack p50 | ack p99 | entries/{unit} | writer time/{unit} \
             | engine ÷ {name} entries/s |\n|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        for row in &report.rows {
            let r = ceiling(row);
            let _ = writeln!(
                out,
                "| {} | {:.0} | {} | {} | {:.1} | {} | {:.0}% |",
                row.concurrency,
                r.entries_per_s,
                ms(r.p50),
                ms(r.p99),
                r.batch,
                ms(r.commit_time),
                ratio(row) * 100.0,
            );
        }
    }
    out.push_str(
        "\n| callers | okaywal entries/s | commit p50 | commit p99 | ÷ raw log entries/s |\n\
         |---:|---:|---:|---:|---:|\n",
    );
    for row in &report.rows {
        if let Some(o) = &row.okaywal {
            let _ = writeln!(
                out,
                "| {} | {:.0} | {} | {} | {:.0}% |",
                row.concurrency,
                o.entries_per_s,
                ms(o.p50),
                ms(o.p99),
                o.entries_per_s / row.log.entries_per_s * 100.0,
            );
        }
    }
    out
}

fn row(report: &Report, concurrency: usize) -> Option<&Row> {
    report.rows.iter().find(|r| r.concurrency == concurrency)
}

/// The ratios against the targets, as a Markdown list with a pass/miss word each.
pub fn ratios(report: &Report) -> String {
    let sync = report.sync;
    let mut out = format!(
        "- fdatasync (4 KiB write + `sync_data`): p50 {}, {:.0} syncs/s.\n",
        ms(sync.p50),
        sync.per_s
    );
    if let Some(one) = row(report, 1) {
        let append = one.log.p50;
        let _ = writeln!(
            out,
            "- At 1 caller, one log append + fdatasync (the raw log file's ack p50) = {}.",
            ms(append)
        );
        // With one caller every commit is on the invocation's path: commands ÷ commands per
        // commit, as the writer counted them.
        let commits = one.engine.commands_per_invocation / one.engine.batch.max(1.0);
        let _ = writeln!(
            out,
            "- At 1 caller, commits on an invocation's path (writer commands ÷ commands per \
             commit, counted) = **{commits:.2}**; target ≤ {COMMITS_TARGET}: {}.",
            verdict(commits <= COMMITS_TARGET + 0.005),
        );
        for (what, per) in [("commit", commits), ("`run` step", STEPS as f64)] {
            let cost = one.engine.p50.div_f64(per.max(1.0));
            let ratio = cost.as_secs_f64() / append.as_secs_f64();
            let _ = writeln!(
                out,
                "- At 1 caller, invocation p50 ÷ {per:.2} (per {what}) = {} = **{ratio:.2}×** one \
                 log append; target ≤ {STEP_TARGET}×: {}.",
                ms(cost),
                verdict(ratio <= STEP_TARGET),
            );
        }
        let redb = one.raw.p50.as_secs_f64() / append.as_secs_f64();
        let _ = writeln!(
            out,
            "- For scale, at 1 caller one bare durable redb commit (raw redb ack p50) = {} = \
             {redb:.2}× one log append.",
            ms(one.raw.p50),
        );
    }
    for row in &report.rows {
        let ratio = row.log_ratio();
        let target = if row.concurrency == CEILING_AT {
            format!(
                "; target ≥ {:.0}%: {}",
                CEILING_TARGET * 100.0,
                verdict(ratio >= CEILING_TARGET)
            )
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "- At {} {}, engine entries/s ÷ raw log-file entries/s = **{:.0}%**{target} \
             (÷ raw redb: {:.0}%).",
            row.concurrency,
            callers(row.concurrency),
            ratio * 100.0,
            row.ceiling_ratio() * 100.0,
        );
    }
    out
}

/// Counted (not assumed) journal entries and writer commands per invocation, over all points.
pub fn counted(report: &Report) -> String {
    let range = |f: fn(&Row) -> f64| {
        let values = report.rows.iter().map(f);
        let lo = values.clone().fold(f64::INFINITY, f64::min);
        let hi = values.fold(f64::NEG_INFINITY, f64::max);
        if (hi - lo).abs() < 0.005 {
            format!("{lo:.2}")
        } else {
            format!("{lo:.2}–{hi:.2}")
        }
    };
    format!(
        "Counted per invocation at every point: {} journal entries, {} writer commands.",
        range(|r| r.engine.entries_per_invocation),
        range(|r| r.engine.commands_per_invocation),
    )
}

/// The date today (UTC), as YYYY-MM-DD.
pub fn today() -> String {
    #[allow(
        clippy::disallowed_methods,
        reason = "a bench report's date, not replayed code"
    )]
    let now = SystemTime::now();
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (y, m, d) = civil_from_days(i64::try_from(secs / 86_400).unwrap_or(0));
    format!("{y:04}-{m:02}-{d:02}")
}

/// Days since 1970-01-01 to (year, month, day); Howard Hinnant's algorithm.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// CPUs, memory, kernel, and the file system of the temporary folder, from /proc.
pub fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| field(&s, "model name"))
        .map_or_else(String::new, |m| format!(" ({m})"));
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| field(&s, "MemTotal"))
        .and_then(|m| m.trim_end_matches(" kB").trim().parse::<f64>().ok())
        .map_or_else(
            || "unknown memory".to_owned(),
            |kb| format!("{:.1} GiB RAM", kb / 1_048_576.0),
        );
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or_else(|_| "unknown".to_owned(), |s| s.trim().to_owned());
    let tmp = std::env::temp_dir();
    let fs = file_system(&tmp).unwrap_or_else(|| "unknown".to_owned());
    format!(
        "{cpus} CPUs{model}, {memory}, Linux {kernel}; temporary files in {} ({fs})",
        tmp.display()
    )
}

fn field(text: &str, name: &str) -> Option<String> {
    text.lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(key, _)| key.trim() == name)
        .map(|(_, value)| value.trim().to_owned())
}

/// The type of the file system mounted deepest above `path`, from /proc/mounts.
fn file_system(path: &Path) -> Option<String> {
    let mounts = std::fs::read_to_string("/proc/mounts").ok()?;
    mounts
        .lines()
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            let (_, point, kind) = (parts.next()?, parts.next()?, parts.next()?);
            path.starts_with(point)
                .then(|| (point.len(), kind.to_owned()))
        })
        .max_by_key(|(len, _)| *len)
        .map(|(_, kind)| kind)
}

/// The bench's whole section of `docs/benchmarks.md`, markers included.
pub fn section(report: &Report, date: &str, machine: &str) -> String {
    let s = &report.settings;
    format!(
        "{BEGIN}\n\
## invocations: a handler with three `run` steps\n\n\
Command: `{COMMAND}` (a quick check of a few seconds: add `-- --test`).\n\
Run on {date}: {machine}. Each point runs {:.1} s after {:.1} s of warm-up; every figure is \
the median of {} repetitions.\n\n\
* **engine**: N tasks in the same process each call `Bench/three_steps` through \
`Client::call`, one call at a time. An invocation is {STEPS} journal entries (one per `run` \
step, each returning a small string) and {COMMANDS_PER_INVOCATION} writer commands (create, \
{STEPS} appends, finish). A step's result commits while the handler goes on; the next step's \
closure waits for it, so the last step's result and the finish can share a commit. Entries/s = \
invocations/s × entries per invocation. Commands/commit is the writer's average group-commit \
batch (`Engine::writer_statistics`).\n\
* **raw redb** and **raw log**: the ceilings. One writer thread takes every pending append \
from a channel, makes them durable at once, then acks each; N tasks each append a {}-byte \
value and wait for the ack. *Raw redb* inserts them under a growing u64 key in one durable \
redb transaction (what the engine did before its log); *raw log* writes them as checksummed \
records to a pre-written log file in one write, then one `fdatasync` (what the engine's log \
does, with nothing else). As an invocation commits {COMMANDS_PER_INVOCATION} commands for \
{STEPS} entries, engine ÷ raw is at most {STEPS}/{COMMANDS_PER_INVOCATION} when both writers \
are bound by commits of the same size.\n\
* **okaywal**: the candidate measured against writing our own log, at 1 and 64 callers: the \
`okaywal` crate (0.3), each append an entry of one chunk committed on a blocking thread (durable \
when `commit` returns; the crate groups concurrent commits into one sync).\n\
* **fdatasync**: 4 KiB rewritten at offset 0 of a pre-written file, then `sync_data`, in a \
loop for {:.1} s.\n\n\
{}\n{}\n\n\
### Against the targets\n\n{}\
{END}\n",
        s.window.measure.as_secs_f64(),
        s.window.warmup.as_secs_f64(),
        s.repetitions,
        crate::raw::ENTRY_BYTES,
        s.sync_for.as_secs_f64(),
        table(report),
        counted(report),
        ratios(report),
    )
}

/// Replaces the text between [`BEGIN`] and [`END`] in the file at `path` with `section`
/// (appending it if the markers are missing); creates the file with an introduction first if
/// it does not exist.
pub fn update_doc(path: &Path, section: &str) -> io::Result<()> {
    update_section(path, BEGIN, END, section)
}

/// Replaces the text between the markers `begin` and `end` in the file at `path` with `section`
/// (appending it if the markers are missing); creates the file with an introduction first if
/// it does not exist. Every bench owns one such section.
pub fn update_section(path: &Path, begin: &str, end: &str, section: &str) -> io::Result<()> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => INTRO.to_owned(),
        Err(e) => return Err(e),
    };
    let span = text
        .find(begin)
        .and_then(|start| Some((start, start + text[start..].find(end)? + end.len())));
    let updated = match span {
        Some((from, to)) => {
            let rest = text[to..].strip_prefix('\n').unwrap_or(&text[to..]);
            format!("{}{section}{rest}", &text[..from])
        }
        None => format!("{}\n\n{section}", text.trim_end_matches('\n')),
    };
    std::fs::write(path, updated)
}

/// The life of a bench binary once it knows its mode: start tokio, run `bench` (its progress on
/// stderr), print `summary` of the report, and in full mode (not `quick`) write the report into
/// docs/benchmarks.md with `write` (given the file's path). The exit code says whether all of it
/// worked.
pub fn bench_main<R>(
    name: &str,
    quick: bool,
    bench: impl std::future::Future<Output = Result<R, String>>,
    summary: impl FnOnce(&R) -> String,
    write: impl FnOnce(&R, &Path) -> io::Result<()>,
) -> std::process::ExitCode {
    use std::process::ExitCode;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start tokio: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mode = if quick { "quick" } else { "full" };
    eprintln!("{name} bench, {mode} mode");
    let report = match runtime.block_on(bench) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("bench failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("\n{}", summary(&report));
    if quick {
        println!("(quick mode: figures not written to docs/benchmarks.md)");
        return ExitCode::SUCCESS;
    }
    let path = doc_path();
    match write(&report, &path) {
        Ok(()) => {
            println!("wrote {}", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cannot write {}: {e}", path.display());
            ExitCode::FAILURE
        }
    }
}

/// `bench`, stopped early by SIGINT or SIGTERM: `bench` is dropped, so whatever it started
/// and guards (child processes, servers) is stopped before the error is returned.
pub async fn until_signal<R>(
    bench: impl std::future::Future<Output = Result<R, String>>,
) -> Result<R, String> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate =
        signal(SignalKind::terminate()).map_err(|e| format!("cannot listen for SIGTERM: {e}"))?;
    tokio::select! {
        report = bench => report,
        _ = tokio::signal::ctrl_c() => Err("interrupted (SIGINT); child processes stopped".to_owned()),
        _ = terminate.recv() => Err("terminated (SIGTERM); child processes stopped".to_owned()),
    }
}

/// Whether a bench binary runs in full: only under `cargo bench` (which passes `--bench`),
/// unless `--test` is passed too (`cargo bench -- --test`) or `BENCH_QUICK=1`.
pub fn full_mode(args: &[String], bench_quick: Option<&str>) -> bool {
    let has = |flag: &str| args.iter().any(|a| a == flag);
    has("--bench") && !has("--test") && bench_quick != Some("1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_454), (2026, 1, 1));
    }

    #[test]
    fn the_section_is_created_then_replaced_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.md");
        update_doc(&path, &format!("{BEGIN}\none\n{END}\n")).unwrap();
        let first = std::fs::read_to_string(&path).unwrap();
        assert!(first.starts_with("# Benchmarks"));
        std::fs::write(&path, format!("{first}\n## other\n")).unwrap();
        update_doc(&path, &format!("{BEGIN}\ntwo\n{END}\n")).unwrap();
        let second = std::fs::read_to_string(&path).unwrap();
        assert!(second.contains("two") && !second.contains("one"));
        assert!(second.ends_with("{END}\n\n## other\n".replace("{END}", END).as_str()));
        assert_eq!(second.matches(BEGIN).count(), 1);
    }
}
