//! The engine's modules form layers, and a module may use only its own layer and those below:
//!
//! 1. **core** — ids, errors, journal entries and replay, retry policies, the `Clock` trait: no
//!    tokio, no redb;
//! 2. **store** — the redb file: tables, commands, the state transitions, the writer thread;
//! 3. **face** — what handler code sees: the contexts over the `Backend` seam, and service
//!    definitions;
//! 4. **runtime** — running invocations: the runtime, the invoker, the embedded backend, timers,
//!    the clocks;
//! 5. **api** — `EngineBuilder`, `Engine`, `Client`, introspection;
//! 6. **edges** — HTTP, testing, fuzzing, and the crate root.
//!
//! This test reads every source file and fails on a `crate::` path into a higher layer (and on
//! tokio or redb in the core), naming the file and the path: the layering of
//! docs/architecture.md cannot erode unnoticed.

#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing

use std::path::{Path, PathBuf};

/// Layers from the bottom up, each with the module paths (relative to `src/`) it holds.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "core",
        &[
            "ids", "error", "journal", "payload", "retry", "clock", "counted",
        ],
    ),
    ("store", &["store"]),
    ("face", &["context", "service", "handler"]),
    ("runtime", &["runtime"]),
    ("api", &["engine", "client", "introspect", "replay_check"]),
    ("edges", &["http", "testing", "fuzzing", "lib"]),
];

/// The layer of a module path such as `store/transition/cancel` or `store::command::Command`.
fn layer_of(path: &[&str]) -> Option<usize> {
    let first = *path.first()?;
    LAYERS
        .iter()
        .position(|(_, modules)| modules.contains(&first))
}

fn sources(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// The code of a file without its `//` comments (doc comments included).
fn code(text: &str) -> String {
    text.lines()
        .map(|line| match line.find("//") {
            Some(at) if !line[..at].contains('"') => &line[..at],
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every module path the code names after `crate::`: `crate::a::b` gives `a`; a group
/// `crate::{a::X, b::{Y, Z}}` gives `a` and `b`.
fn crate_paths(code: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let end = group
                .char_indices()
                .find(|&(_, c)| {
                    match c {
                        '{' => depth += 1,
                        '}' => depth -= 1,
                        _ => {}
                    }
                    depth == 0
                })
                .map_or(group.len(), |(i, _)| i);
            let mut depth = 0;
            let mut item = String::new();
            for c in group[..end].chars().chain([',']) {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        found.push(std::mem::take(&mut item).trim().to_owned());
                        continue;
                    }
                    _ => {}
                }
                item.push(c);
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            found.push(name);
        }
    }
    found.retain(|p| !p.is_empty());
    found
}

#[test]
fn no_module_uses_a_layer_above_its_own() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    files.sort();
    let mut violations = Vec::new();
    let mut unplaced = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap().with_extension("");
        let module: Vec<&str> = relative
            .iter()
            .map(|part| part.to_str().unwrap())
            .filter(|part| *part != "mod")
            .collect();
        let Some(own) = layer_of(&module) else {
            unplaced.push(relative.display().to_string());
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        let code = code(&text);
        for path in crate_paths(&code) {
            let parts: Vec<&str> = path.split("::").collect();
            if let Some(used) = layer_of(&parts) {
                if used > own {
                    violations.push(format!(
                        "{} ({}) uses crate::{path} ({})",
                        relative.display(),
                        LAYERS[own].0,
                        LAYERS[used].0
                    ));
                }
            }
        }
        if own == 0 && (code.contains("tokio::") || code.contains("redb::")) {
            violations.push(format!("{} (core) uses tokio or redb", relative.display()));
        }
    }
    assert!(
        unplaced.is_empty(),
        "modules in no layer (add them to LAYERS and docs/architecture.md): {unplaced:?}"
    );
    assert!(
        violations.is_empty(),
        "imports from a layer above:\n{}",
        violations.join("\n")
    );
    assert!(files.len() > 30, "only {} files found", files.len());
}

/// The checker itself: it sees plain paths, groups and nested groups.
#[test]
fn crate_paths_are_read_from_plain_and_grouped_uses() {
    let code = "use crate::store::Store;\nuse crate::{engine::Engine, runtime::{Runtime, clocks}};\nlet x = crate::client::Client::new();";
    let paths = crate_paths(code);
    assert_eq!(
        paths,
        [
            "store::Store",
            "engine::Engine",
            "runtime::{Runtime, clocks}",
            "client::Client::new"
        ]
    );
    assert_eq!(layer_of(&["runtime", "{Runtime, clocks}"]), Some(3));
    assert_eq!(layer_of(&["nowhere"]), None);
}
