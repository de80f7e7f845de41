//! The engine's HTTP ingress under load: the `invocations` bench's handler called over
//! keep-alive HTTP/1.1 connections on 127.0.0.1, against the same handler called in-process in
//! the same run. `cargo bench -p zeroapp-benches --bench ingress` runs it in full and rewrites
//! its section of docs/benchmarks.md; add `-- --test` (or set `BENCH_QUICK=1`) for a quick
//! check that writes nothing.

use std::process::ExitCode;

use zeroapp_benches::ingress::{BEGIN, END, Settings, counted, overhead, run, section, table};
use zeroapp_benches::report;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let settings = Settings::from_args(&args, std::env::var("BENCH_QUICK").ok().as_deref());
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
    let mode = if settings.quick { "quick" } else { "full" };
    eprintln!("ingress bench, {mode} mode");
    let report = match runtime.block_on(run(&settings, &mut |line| eprintln!("{line}"))) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("bench failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "\n{}\n{}\n\n{}",
        table(&report),
        counted(&report),
        overhead(&report)
    );
    if settings.quick {
        println!("(quick mode: figures not written to docs/benchmarks.md)");
        return ExitCode::SUCCESS;
    }
    let section = section(&report, &report::today(), &report::machine());
    let path = report::doc_path();
    match report::update_section(&path, BEGIN, END, &section) {
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
