//! Arbitrary bytes into the storefront's Datastar signal parsing: see
//! `zeroapp_web::pages::parse_signals` and `zeroapp_engine::fuzzing::datastar_signals`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| zeroapp_engine::fuzzing::datastar_signals(
    data,
    zeroapp_web::pages::parse_signals
));
