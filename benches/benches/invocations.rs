//! The engine's invocation throughput and latency against the raw redb ceiling and the disk's
//! fdatasync rate. `cargo bench -p zeroapp-benches --bench invocations` runs it in full and
//! rewrites its section of docs/benchmarks.md; add `-- --test` (or set `BENCH_QUICK=1`) for a
//! quick check that writes nothing.

use std::process::ExitCode;

use zeroapp_benches::invocations::{Settings, run};
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
    eprintln!("invocations bench, {mode} mode");
    let report = match runtime.block_on(run(&settings, &mut |line| eprintln!("{line}"))) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("bench failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "\n{}\n{}\n",
        report::table(&report),
        report::counted(&report)
    );
    println!("{}", report::ratios(&report));
    if settings.quick {
        println!("(quick mode: figures not written to docs/benchmarks.md)");
        return ExitCode::SUCCESS;
    }
    let section = report::section(&report, &report::today(), &report::machine());
    let path = report::doc_path();
    match report::update_doc(&path, &section) {
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
