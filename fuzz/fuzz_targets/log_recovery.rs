//! Arbitrary bytes as the first segment of the engine's write-ahead log, opened, appended to
//! and reopened: see `zeroapp_engine::fuzzing::log_recovery`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| zeroapp_engine::fuzzing::log_recovery(data));
