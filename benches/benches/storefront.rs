//! The storefront under load: cart adds with sessions over HTTP at 64 shoppers, and one
//! notification broadcast to 1,000 open event streams. `cargo bench -p zeroapp-benches --bench
//! storefront` runs it in full and rewrites its section of docs/benchmarks.md; add `-- --test`
//! (or set `BENCH_QUICK=1`) for a quick check that writes nothing.

use std::process::ExitCode;

use zeroapp_benches::report;
use zeroapp_benches::storefront::{BEGIN, END, Settings, run, section};

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
    eprintln!("storefront bench, {mode} mode");
    let report = match runtime.block_on(run(&settings, &mut |line| eprintln!("{line}"))) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("bench failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    let section = section(&report, &report::today(), &report::machine());
    println!("\n{section}");
    if settings.quick {
        println!("(quick mode: figures not written to docs/benchmarks.md)");
        return ExitCode::SUCCESS;
    }
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
