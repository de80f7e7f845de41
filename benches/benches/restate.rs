//! The engine side by side with a real Restate server: the same workloads (W1–W5) over the
//! same HTTP paths, plus the engine in-process. `cargo bench -p zeroapp-benches --bench restate`
//! runs it in full (fetching Restate from the npm registry and building
//! `benches/restate-services` the first time) and rewrites its section of docs/benchmarks.md
//! and docs/benchmarks/restate.json; add `-- --test` (or set `BENCH_QUICK=1`) for a quick check
//! without Restate that writes nothing (`ZEROAPP_BENCH_RESTATE=1` includes Restate).

use std::process::ExitCode;

use zeroapp_benches::report;
use zeroapp_benches::restate::{Settings, run_until_signal, tables, targets, write, writer_table};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let settings = Settings::from_args(
        &args,
        std::env::var("BENCH_QUICK").ok().as_deref(),
        std::env::var("ZEROAPP_BENCH_RESTATE").ok().as_deref(),
        env!("CARGO_BIN_EXE_zeroapp-bench-server").into(),
    );
    report::bench_main(
        "restate",
        settings.quick,
        async { run_until_signal(&settings, &mut |line| eprintln!("{line}")).await },
        |r| format!("{}{}\n{}", tables(r), writer_table(r), targets(r)),
        write,
    )
}
