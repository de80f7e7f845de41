//! The `datastar_signals` fuzz target's check (`zeroapp_engine::fuzzing::datastar_signals` on
//! [`zeroapp_web::pages::parse_signals`]) over its seed corpus and every crash found
//! (fuzz/corpus/datastar_signals/ and fuzz/regressions/datastar_signals/), so that the harness
//! cannot rot. docs/testing.md, "Fuzzing".

#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing

use std::path::PathBuf;

use zeroapp_engine::fuzzing;
use zeroapp_web::pages::parse_signals;

#[test]
fn datastar_signals_corpus() {
    let fuzz = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut count = 0;
    for folder in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz.join(folder).join("datastar_signals")) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            eprintln!("{}", path.display());
            fuzzing::datastar_signals(&std::fs::read(&path).unwrap(), parse_signals);
            count += 1;
        }
    }
    assert!(count >= 3, "the seed corpus is missing");
}

#[test]
fn signals_are_a_json_object_or_nothing() {
    assert!(parse_signals(b"").unwrap().is_empty());
    assert!(parse_signals(b" \n").unwrap().is_empty());
    assert_eq!(parse_signals(br#"{"qty3": 2}"#).unwrap()["qty3"], 2);
    for refused in [&b"[1]"[..], b"null", b"{", b"\"x\"", b"\xff"] {
        assert_eq!(parse_signals(refused).unwrap_err().status, 400);
    }
}
