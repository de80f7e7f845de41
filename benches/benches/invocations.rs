//! The engine's invocation throughput and latency against the raw redb ceiling and the disk's
//! fdatasync rate. `cargo bench -p zeroapp-benches --bench invocations` runs it in full and
//! rewrites its section of docs/benchmarks.md; add `-- --test` (or set `BENCH_QUICK=1`) for a
//! quick check that writes nothing.

fn main() -> std::process::ExitCode {
    zeroapp_benches::harness::main::<zeroapp_benches::invocations::Invocations>()
}
