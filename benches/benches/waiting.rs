//! What waiting costs: a million suspended invocations (memory, data file, resume latency at a
//! steady rate), a restart with 100,000 in flight, 100,000 timers due within a second, and
//! awakeable round trips. `cargo bench -p zeroapp-benches --bench waiting` runs it in full and
//! rewrites its section of docs/benchmarks.md; add `-- --test` (or set `BENCH_QUICK=1`) for a
//! quick check that writes nothing.

use std::process::ExitCode;

use zeroapp_benches::report;
use zeroapp_benches::waiting::{BEGIN, END, Settings, run, section, table, targets};

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
    eprintln!("waiting bench, {mode} mode");
    let report = match runtime.block_on(run(&settings, &mut |line| eprintln!("{line}"))) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("bench failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("\n{}\n{}", table(&report), targets(&report));
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
