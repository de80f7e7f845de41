//! The engine's HTTP ingress under load: the `invocations` bench's handler called over
//! keep-alive HTTP/1.1 connections on 127.0.0.1, against the same handler called in-process in
//! the same run. `cargo bench -p zeroapp-benches --bench ingress` runs it in full and rewrites
//! its section of docs/benchmarks.md; add `-- --test` (or set `BENCH_QUICK=1`) for a quick
//! check that writes nothing.

use std::process::ExitCode;

use zeroapp_benches::ingress::{BEGIN, END, Settings, counted, overhead, run, section, table};
use zeroapp_benches::report;
use zeroapp_benches::report::Modes;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let settings = Settings::from_args(&args, std::env::var("BENCH_QUICK").ok().as_deref());
    report::bench_main(
        "ingress",
        settings.quick,
        async { run(&settings, &mut |line| eprintln!("{line}")).await },
        |r| format!("{}\n{}\n\n{}", table(r), counted(r), overhead(r)),
        |r, path| {
            let section = section(r, &report::today(), &report::machine());
            report::update_section(path, BEGIN, END, &section)
        },
    )
}
