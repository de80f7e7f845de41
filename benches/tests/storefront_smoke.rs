//! The storefront bench in quick mode, so that it cannot rot: every point runs and measures
//! something, with no error and no missed delivery.

#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing

use zeroapp_benches::report::Modes;
use zeroapp_benches::storefront::{Settings, run, section};

#[test]
fn quick_run_measures_cart_adds_and_a_broadcast() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let settings = Settings::quick();
    let report = runtime.block_on(run(&settings, &mut |_| {})).unwrap();
    assert!(report.cart_per_s > 0.0);
    assert_eq!(report.cart_errors, 0);
    assert_eq!(report.missed, 0);
    assert!(report.broadcast_p50 <= report.broadcast_p99);
    let text = section(&report, "2000-01-01", "a test machine");
    assert!(
        text.contains("cart add") && text.contains("broadcast"),
        "{text}"
    );
}
