//! The storefront under load: cart adds with sessions over HTTP at 64 shoppers, and one
//! notification broadcast to 1,000 open event streams. `cargo bench -p zeroapp-benches --bench
//! storefront` runs it in full and rewrites its section of docs/benchmarks.md; add `-- --test`
//! (or set `BENCH_QUICK=1`) for a quick check that writes nothing.

fn main() -> std::process::ExitCode {
    zeroapp_benches::harness::main::<zeroapp_benches::storefront::Storefront>()
}
