//! The engine's basic costs: journal append, replay of an N-entry journal after a reopen, and
//! many timers firing at once. `cargo bench -p zeroapp-benches --bench micro` runs it in full
//! and rewrites its section of docs/benchmarks.md; add `-- --test` (or set `BENCH_QUICK=1`) for
//! a quick check that writes nothing.

use std::process::ExitCode;

use zeroapp_benches::micro::{BEGIN, END, Settings, run, section, table};
use zeroapp_benches::report;
use zeroapp_benches::report::Modes;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let settings = Settings::from_args(&args, std::env::var("BENCH_QUICK").ok().as_deref());
    report::bench_main(
        "micro",
        settings.quick,
        async { run(&settings, &mut |line| eprintln!("{line}")).await },
        table,
        |r, path| {
            let section = section(r, &report::today(), &report::machine());
            report::update_section(path, BEGIN, END, &section)
        },
    )
}
