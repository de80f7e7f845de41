//! The fuzz targets' harnesses (`zeroapp_engine::fuzzing`) on their seed corpus and on every
//! crash the fuzzers found (fuzz/corpus/TARGET/ and fuzz/regressions/TARGET/), so that the
//! harnesses cannot rot and the bugs stay fixed. docs/testing.md, "Fuzzing".

#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing

use std::path::PathBuf;

use zeroapp_engine::fuzzing;

/// Every file of fuzz/corpus/`target` and fuzz/regressions/`target`, by name.
fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let fuzz = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut inputs = Vec::new();
    for folder in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz.join(folder).join(target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            inputs.push((
                format!(
                    "{folder}/{target}/{}",
                    path.file_name().unwrap().to_string_lossy()
                ),
                std::fs::read(&path).unwrap(),
            ));
        }
    }
    inputs.sort();
    inputs
}

#[test]
fn journal_decode_corpus() {
    let inputs = inputs("journal_decode");
    assert!(inputs.len() >= 3, "the seed corpus is missing");
    for (name, data) in inputs {
        eprintln!("{name}");
        fuzzing::journal_decode(&data);
    }
}

#[test]
fn log_recovery_corpus() {
    let inputs = inputs("log_recovery");
    assert!(inputs.len() >= 3, "the seed corpus is missing");
    for (name, data) in inputs {
        eprintln!("{name}");
        fuzzing::log_recovery(&data);
    }
}

#[test]
fn replay_corpus() {
    let inputs = inputs("replay");
    assert!(inputs.len() >= 3, "the seed corpus is missing");
    for (name, data) in inputs {
        eprintln!("{name}");
        fuzzing::replay(&data);
    }
}

#[tokio::test(flavor = "current_thread")]
async fn ingress_corpus() {
    let inputs = inputs("ingress");
    assert!(inputs.len() >= 3, "the seed corpus is missing");
    let dir = tempfile::tempdir().unwrap();
    let ingress = fuzzing::IngressFuzz::open(dir.path()).await.unwrap();
    // What some seeds must answer, so that a harness that skips every request cannot pass.
    let expected: &[(&str, &[u16])] = &[
        ("corpus/ingress/greet", &[200]),
        ("corpus/ingress/health", &[200]),
        ("corpus/ingress/errors", &[405, 404, 400, 422]),
        ("corpus/ingress/counter", &[200, 200, 202]),
        ("corpus/ingress/private", &[403, 403, 403, 200]),
        ("regressions/ingress/delay-past-year-9999", &[400]),
        ("regressions/ingress/delay-overflows-system-time", &[400]),
    ];
    for (name, data) in inputs {
        eprintln!("{name}");
        let statuses = ingress.run(&data).await;
        if let Some((_, want)) = expected.iter().find(|(seed, _)| *seed == name) {
            assert_eq!(statuses, *want, "{name}");
        }
    }
    ingress.shutdown().await;
}
