//! Ten minutes of W1 at 64 callers with a one-minute retention, the data folder and the memory
//! sampled. `cargo bench -p zeroapp-benches --bench soak` runs it in full and rewrites its
//! section of docs/benchmarks.md; add `-- --test` (or set `BENCH_QUICK=1`) for a quick check of
//! three seconds that writes nothing.

fn main() -> std::process::ExitCode {
    zeroapp_benches::harness::main::<zeroapp_benches::soak::Soak>()
}
