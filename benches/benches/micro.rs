//! The engine's basic costs: journal append, replay of an N-entry journal after a reopen, and
//! many timers firing at once. `cargo bench -p zeroapp-benches --bench micro` runs it in full
//! and rewrites its section of docs/benchmarks.md; add `-- --test` (or set `BENCH_QUICK=1`) for
//! a quick check that writes nothing.

fn main() -> std::process::ExitCode {
    zeroapp_benches::harness::main::<zeroapp_benches::micro::Micro>()
}
