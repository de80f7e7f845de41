//! The same handlers embedded, on one Restate node and on a 3-node cluster. `cargo bench -p
//! zeroapp-benches-restate --bench scale_out` runs it in full and rewrites its section of
//! docs/benchmarks.md; add `-- --test` for a quick check that writes nothing.

fn main() -> std::process::ExitCode {
    zeroapp_benches::harness::main::<zeroapp_benches_restate::scale_out::ScaleOut>()
}
