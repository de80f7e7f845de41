//! The replay machine driven by random issue / commit / crash / code-change sequences against a
//! reference model: see `zeroapp_engine::fuzzing::replay`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| zeroapp_engine::fuzzing::replay(data));
