//! Arbitrary bytes into the journal entry decoder, and entries built from arbitrary bytes
//! through encode and decode: see `zeroapp_engine::fuzzing::journal_decode`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| zeroapp_engine::fuzzing::journal_decode(data));
