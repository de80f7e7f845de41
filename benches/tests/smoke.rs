//! Every bench of this package in quick mode, so that `cargo test --workspace` keeps them
//! working: each runs every point briefly and its report passes the bench's own checks
//! (`Bench::check`); figures are not held to the targets. The list must name every bench
//! target of Cargo.toml.

use zeroapp_benches::harness::{Bench, smoke, smoke_all};
use zeroapp_benches::ingress::Ingress;
use zeroapp_benches::invocations::Invocations;
use zeroapp_benches::micro::Micro;
use zeroapp_benches::soak::Soak;
use zeroapp_benches::storefront::Storefront;
use zeroapp_benches::waiting::Waiting;

#[test]
fn every_bench_runs_in_quick_mode() {
    let outcome = smoke_all(
        include_str!("../Cargo.toml"),
        &[
            (Invocations::NAME, smoke::<Invocations>),
            (Waiting::NAME, smoke::<Waiting>),
            (Storefront::NAME, smoke::<Storefront>),
            (Ingress::NAME, smoke::<Ingress>),
            (Micro::NAME, smoke::<Micro>),
            (Soak::NAME, smoke::<Soak>),
        ],
    );
    if let Err(failures) = outcome {
        panic!("{failures}");
    }
}
