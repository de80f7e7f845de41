//! The engine's HTTP ingress under load: the `invocations` bench's handler called over
//! keep-alive HTTP/1.1 connections on 127.0.0.1, against the same handler called in-process in
//! the same run. `cargo bench -p zeroapp-benches --bench ingress` runs it in full and rewrites
//! its section of docs/benchmarks.md; add `-- --test` (or set `BENCH_QUICK=1`) for a quick
//! check that writes nothing.

fn main() -> std::process::ExitCode {
    zeroapp_benches::harness::main::<zeroapp_benches::ingress::Ingress>()
}
