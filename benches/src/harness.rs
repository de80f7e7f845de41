//! The one harness every bench runs in: a [`Bench`] says what it measures and how its figures
//! read; [`main`] is the whole of a bench binary, and [`smoke`] is what the smoke test runs for
//! every bench.
//!
//! A bench has two modes. In full mode (only under `cargo bench`) it measures for real and
//! rewrites its section of `docs/benchmarks.md`, between the markers `<!-- NAME:begin -->` and
//! `<!-- NAME:end -->`. In quick mode (`cargo bench -- --test`, `BENCH_QUICK=1`, or the smoke
//! test) every point runs briefly, the report is checked ([`Bench::check`]) and nothing is
//! written down.

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::report;

/// A bench's settings in its two modes.
pub trait Modes: Sized {
    /// The real run, whose figures are written to `docs/benchmarks.md`.
    fn full() -> Self;

    /// A quick run that proves the bench works; its figures are not written down.
    fn quick() -> Self;
}

/// One benchmark.
pub trait Bench {
    /// Its name: the bench target (`cargo bench -p PACKAGE --bench NAME`), the first word of its
    /// section's heading, and its markers in `docs/benchmarks.md`.
    const NAME: &'static str;
    /// The package whose bench target it is.
    const PACKAGE: &'static str = "zeroapp-benches";
    /// How it runs ([`Modes::full`] or [`Modes::quick`]).
    type Settings: Modes;
    /// What one run measured.
    type Report;

    /// Measures every point; `log` hears about progress.
    fn run(
        settings: &Self::Settings,
        log: &mut dyn FnMut(String),
    ) -> impl Future<Output = Result<Self::Report, String>>;

    /// What any run must show, quick ones included (every point measured something, nothing
    /// was lost, the counts the bench assumes hold); checked after every run.
    fn check(settings: &Self::Settings, report: &Self::Report) -> Result<(), String>;

    /// The figures as printed at the end of a run.
    fn summary(report: &Self::Report) -> String;

    /// Its section of `docs/benchmarks.md` without the markers, starting with the heading
    /// `## NAME: …`; `date` and `machine` say when and where it ran.
    fn section(report: &Self::Report, date: &str, machine: &str) -> String;

    /// Writes the report into `doc` (its section, replaced in place); a bench with more to
    /// write (a JSON file) adds it here.
    fn write(report: &Self::Report, doc: &Path) -> io::Result<()> {
        let body = Self::section(report, &report::today(), &report::machine());
        report::update_section(
            doc,
            &begin::<Self>(),
            &end::<Self>(),
            &marked::<Self>(&body),
        )
    }
}

/// The command that runs `B` in full mode.
pub fn command<B: Bench + ?Sized>() -> String {
    format!("cargo bench -p {} --bench {}", B::PACKAGE, B::NAME)
}

/// The marker that opens `B`'s section.
pub fn begin<B: Bench + ?Sized>() -> String {
    format!("<!-- {}:begin -->", B::NAME)
}

/// The marker that closes `B`'s section.
pub fn end<B: Bench + ?Sized>() -> String {
    format!("<!-- {}:end -->", B::NAME)
}

/// `body` between `B`'s markers, as it stands in the document.
pub fn marked<B: Bench + ?Sized>(body: &str) -> String {
    format!("{}\n{}\n{}\n", begin::<B>(), body.trim_end(), end::<B>())
}

/// `docs/benchmarks.md` of this repository.
pub fn doc_path() -> PathBuf {
    let benches = Path::new(env!("CARGO_MANIFEST_DIR"));
    benches
        .parent()
        .unwrap_or(benches)
        .join("docs")
        .join("benchmarks.md")
}

/// Whether a bench binary runs in full: only under `cargo bench` (which passes `--bench`),
/// unless `--test` is passed too (`cargo bench -- --test`) or `BENCH_QUICK=1`.
pub fn full_mode(args: &[String], bench_quick: Option<&str>) -> bool {
    let has = |flag: &str| args.iter().any(|a| a == flag);
    has("--bench") && !has("--test") && bench_quick != Some("1")
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start tokio: {e}"))
}

/// The whole of a bench binary: picks the mode from the command line, runs `B` (its progress
/// on stderr, stopped cleanly by SIGINT or SIGTERM), checks and prints the report, and in full
/// mode writes it into `docs/benchmarks.md`. The exit code says whether all of it worked.
pub fn main<B: Bench>() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let full = full_mode(&args, std::env::var("BENCH_QUICK").ok().as_deref());
    let settings = if full {
        B::Settings::full()
    } else {
        B::Settings::quick()
    };
    eprintln!(
        "{} bench, {} mode",
        B::NAME,
        if full { "full" } else { "quick" }
    );
    let measured = runtime().and_then(|runtime| {
        runtime.block_on(until_signal(B::run(&settings, &mut |line| {
            eprintln!("{line}");
        })))
    });
    let report = match measured.and_then(|r| B::check(&settings, &r).map(|()| r)) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("bench failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("\n{}", B::summary(&report));
    if !full {
        println!("(quick mode: figures not written to docs/benchmarks.md)");
        return ExitCode::SUCCESS;
    }
    let path = doc_path();
    match B::write(&report, &path) {
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

/// Runs `B` in quick mode as [`main`] does and checks what it gives: the report passes
/// [`Bench::check`], the summary says something, and the section has its heading and, written
/// twice into a scratch document, stands there once. The smoke test calls this for every bench.
pub fn smoke<B: Bench>() -> Result<(), String> {
    let settings = B::Settings::quick();
    let report = runtime()?.block_on(B::run(&settings, &mut |line| {
        eprintln!("[{}] {line}", B::NAME);
    }))?;
    B::check(&settings, &report)?;
    if B::summary(&report).trim().is_empty() {
        return Err("the summary is empty".to_owned());
    }
    let section = B::section(&report, "2000-01-01", "a test machine");
    if !section.starts_with(&format!("## {}: ", B::NAME)) {
        return Err(format!("the section's heading is not `## {}: …`", B::NAME));
    }
    let scratch = tempfile::tempdir().map_err(|e| format!("no temporary folder: {e}"))?;
    let doc = scratch.path().join("benchmarks.md");
    for _ in 0..2 {
        B::write(&report, &doc).map_err(|e| format!("cannot write the section: {e}"))?;
    }
    let text = std::fs::read_to_string(&doc).map_err(|e| format!("cannot read it back: {e}"))?;
    if text.matches(&begin::<B>()).count() != 1 || text.matches(&end::<B>()).count() != 1 {
        return Err("written twice, the section does not stand once".to_owned());
    }
    Ok(())
}

/// The names of the bench targets (`[[bench]]`) in the package manifest `manifest`: what the
/// smoke test must cover.
pub fn bench_targets(manifest: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut in_bench = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_bench = line == "[[bench]]";
        } else if let Some(value) = line.strip_prefix("name").map(str::trim_start)
            && in_bench
            && let Some(name) = value.strip_prefix('=')
        {
            names.push(name.trim().trim_matches('"').to_owned());
        }
    }
    names
}

/// A bench the smoke test runs: its name and [`smoke`] for it.
pub type Smoke = (&'static str, fn() -> Result<(), String>);

/// The smoke test of a package: `benches` must name every bench target of `manifest` (so none
/// is left out), and each runs in quick mode through [`smoke`]; every failure is reported, not
/// only the first.
pub fn smoke_all(manifest: &str, benches: &[Smoke]) -> Result<(), String> {
    let mut targets = bench_targets(manifest);
    let mut listed: Vec<String> = benches.iter().map(|(name, _)| (*name).to_owned()).collect();
    targets.sort();
    listed.sort();
    if targets != listed {
        return Err(format!(
            "the smoke test lists {listed:?}, the manifest's bench targets are {targets:?}"
        ));
    }
    let failures: Vec<String> = benches
        .iter()
        .filter_map(|(name, smoke)| {
            let started = std::time::Instant::now();
            let outcome = smoke();
            eprintln!("{name}: {:?} in {:.1?}", outcome.is_ok(), started.elapsed());
            outcome.err().map(|e| format!("{name}: {e}"))
        })
        .collect();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n"))
    }
}

/// `bench`, stopped early by SIGINT or SIGTERM: `bench` is dropped, so whatever it started
/// and guards (child processes, servers) is stopped before the error is returned.
pub async fn until_signal<R>(bench: impl Future<Output = Result<R, String>>) -> Result<R, String> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate =
        signal(SignalKind::terminate()).map_err(|e| format!("cannot listen for SIGTERM: {e}"))?;
    tokio::select! {
        report = bench => report,
        _ = tokio::signal::ctrl_c() => Err("interrupted (SIGINT); child processes stopped".to_owned()),
        _ = terminate.recv() => Err("terminated (SIGTERM); child processes stopped".to_owned()),
    }
}

/// `Ok(())` if `holds`, else the error `what`: the checks' one idiom.
pub fn ensure(holds: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if holds { Ok(()) } else { Err(what()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_targets_are_read_from_the_manifest() {
        let manifest = "[package]\nname = \"p\"\n\n[[bench]]\nname = \"a\"\nharness = false\n\n\
                        [dependencies]\nname = \"no\"\n\n[[bench]]\nharness = false\nname=\"b\"\n";
        assert_eq!(bench_targets(manifest), ["a", "b"]);
        let missing = smoke_all(manifest, &[("a", || Ok(()))]).unwrap_err();
        assert!(missing.contains("[\"a\", \"b\"]"), "{missing}");
        let failed = smoke_all(manifest, &[("a", || Ok(())), ("b", || Err("broke".into()))]);
        assert_eq!(failed.unwrap_err(), "b: broke");
    }

    #[test]
    fn only_cargo_bench_runs_in_full() {
        let args = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert!(full_mode(&args(&["x", "--bench"]), None));
        assert!(!full_mode(&args(&["x", "--bench", "--test"]), None));
        assert!(!full_mode(&args(&["x", "--bench"]), Some("1")));
        assert!(!full_mode(&args(&["x"]), None));
    }
}
