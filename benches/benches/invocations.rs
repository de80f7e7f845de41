//! The engine's invocation throughput and latency against the raw redb ceiling and the disk's
//! fdatasync rate. `cargo bench -p zeroapp-benches --bench invocations` runs it in full and
//! rewrites its section of docs/benchmarks.md; add `-- --test` (or set `BENCH_QUICK=1`) for a
//! quick check that writes nothing.

use std::process::ExitCode;

use zeroapp_benches::invocations::{Settings, run};
use zeroapp_benches::report;
use zeroapp_benches::report::Modes;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let settings = Settings::from_args(&args, std::env::var("BENCH_QUICK").ok().as_deref());
    report::bench_main(
        "invocations",
        settings.quick,
        async { run(&settings, &mut |line| eprintln!("{line}")).await },
        |r| {
            format!(
                "{}\n{}\n\n{}",
                report::table(r),
                report::counted(r),
                report::ratios(r)
            )
        },
        |r, path| {
            report::update_doc(
                path,
                &report::section(r, &report::today(), &report::machine()),
            )
        },
    )
}
