//! The engine's documentation builds without a warning: every public item documented
//! (`missing_docs` is denied in the crate), no broken intra-doc link, no bad code block — with
//! every cargo feature, so the HTTP and testing modules are checked too.

use std::path::Path;
use std::process::Command;

#[test]
fn cargo_doc_is_clean_with_every_feature() {
    let engine = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = engine.parent().unwrap_or(engine);
    // A target folder of its own: the one of the running `cargo test` may be locked.
    let target = root.join("target").join("doc-check");
    let output = Command::new(env!("CARGO"))
        .args([
            "doc",
            "--no-deps",
            "--locked",
            "-p",
            "zeroapp-engine",
            "--all-features",
        ])
        .env("RUSTDOCFLAGS", "-D warnings")
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(root)
        .output();
    let output = match output {
        Ok(output) => output,
        Err(error) => panic!("cannot run cargo doc: {error}"),
    };
    assert!(
        output.status.success(),
        "cargo doc failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
