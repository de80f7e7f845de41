//! The engine side by side with Restate 1.7.12 on the same workloads. `cargo bench -p
//! zeroapp-benches-restate --bench restate` runs it in full (fetching `restate-server` from npm
//! the first time) and rewrites its section of docs/benchmarks.md; add `-- --test` for a quick
//! check without Restate that writes nothing.

fn main() -> std::process::ExitCode {
    zeroapp_benches::harness::main::<zeroapp_benches_restate::comparison::Comparison>()
}
