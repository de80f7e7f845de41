//! Every bench of this package in quick mode, so that `cargo test --workspace` keeps them
//! working: the `restate` bench on the engine over HTTP (its server in a child process) and
//! in-process, Restate itself skipped with the reason in the report unless
//! `ZEROAPP_BENCH_RESTATE=1`; the `scale_out` bench on all three sides (it needs `npm` the
//! first time, `zeroapp_restate::local`).

use zeroapp_benches::harness::{Bench, smoke, smoke_all};
use zeroapp_benches_restate::comparison::Comparison;
use zeroapp_benches_restate::scale_out::ScaleOut;

#[test]
fn every_bench_runs_in_quick_mode() {
    let outcome = smoke_all(
        include_str!("../Cargo.toml"),
        &[
            (Comparison::NAME, smoke::<Comparison>),
            (ScaleOut::NAME, smoke::<ScaleOut>),
        ],
    );
    if let Err(failures) = outcome {
        panic!("{failures}");
    }
}
