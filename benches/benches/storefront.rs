//! The storefront under load: cart adds with sessions over HTTP at 64 shoppers, and one
//! notification broadcast to 1,000 open event streams. `cargo bench -p zeroapp-benches --bench
//! storefront` runs it in full and rewrites its section of docs/benchmarks.md; add `-- --test`
//! (or set `BENCH_QUICK=1`) for a quick check that writes nothing.

use std::process::ExitCode;

use zeroapp_benches::report;
use zeroapp_benches::report::Modes;
use zeroapp_benches::storefront::{BEGIN, END, Settings, run, section};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let settings = Settings::from_args(&args, std::env::var("BENCH_QUICK").ok().as_deref());
    report::bench_main(
        "storefront",
        settings.quick,
        async { run(&settings, &mut |line| eprintln!("{line}")).await },
        |r| section(r, &report::today(), &report::machine()),
        |r, path| {
            let section = section(r, &report::today(), &report::machine());
            report::update_section(path, BEGIN, END, &section)
        },
    )
}
