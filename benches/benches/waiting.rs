//! What waiting costs: a million suspended invocations (memory, data file, resume latency at a
//! steady rate), a restart with 100,000 in flight, 100,000 timers due within a second, and
//! awakeable round trips. `cargo bench -p zeroapp-benches --bench waiting` runs it in full and
//! rewrites its section of docs/benchmarks.md; add `-- --test` (or set `BENCH_QUICK=1`) for a
//! quick check that writes nothing.

use std::process::ExitCode;

use zeroapp_benches::report;
use zeroapp_benches::report::Modes;
use zeroapp_benches::waiting::{BEGIN, END, Settings, run, section, table, targets};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let settings = Settings::from_args(&args, std::env::var("BENCH_QUICK").ok().as_deref());
    report::bench_main(
        "waiting",
        settings.quick,
        async { run(&settings, &mut |line| eprintln!("{line}")).await },
        |r| format!("{}\n{}", table(r), targets(r)),
        |r, path| {
            let section = section(r, &report::today(), &report::machine());
            report::update_section(path, BEGIN, END, &section)
        },
    )
}
