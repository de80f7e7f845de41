//! What waiting costs: a million suspended invocations (memory, data file, resume latency at a
//! steady rate), a restart with 100,000 in flight, 100,000 timers due within a second, and
//! awakeable round trips. `cargo bench -p zeroapp-benches --bench waiting` runs it in full and
//! rewrites its section of docs/benchmarks.md; add `-- --test` (or set `BENCH_QUICK=1`) for a
//! quick check that writes nothing.

fn main() -> std::process::ExitCode {
    zeroapp_benches::harness::main::<zeroapp_benches::waiting::Waiting>()
}
