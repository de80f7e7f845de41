//! The same ZeroApp handlers on the embedded engine, on one Restate node and on a 3-node
//! Restate cluster (served by `zeroapp_restate::Deployment`), W1 and W3 at 1, 16 and 64
//! callers. `cargo bench -p zeroapp-benches --bench scale_out` runs it in full (fetching
//! Restate from the npm registry the first time) and rewrites its section of
//! docs/benchmarks.md; add `-- --test` (or set `BENCH_QUICK=1`) for a quick check that writes
//! nothing.

use std::process::ExitCode;

use zeroapp_benches::report;
use zeroapp_benches::scale_out::{Settings, run_until_signal, summary, tables, write};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let settings = Settings::from_args(
        &args,
        std::env::var("BENCH_QUICK").ok().as_deref(),
        env!("CARGO_BIN_EXE_zeroapp-bench-server").into(),
    );
    report::bench_main(
        "scale_out",
        settings.quick,
        async { run_until_signal(&settings, &mut |line| eprintln!("{line}")).await },
        |r| format!("{}{}", tables(r), summary(r)),
        write,
    )
}
