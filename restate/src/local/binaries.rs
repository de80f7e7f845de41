//! The `restate-server` and `restatectl` binaries, fetched from the npm registry and cached.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, PoisonError};

use super::*;

/// The `restate-server` binary of [`RESTATE_VERSION`] for this platform: fetched with
/// `npm pack` into `<target dir>/restate-server/<version>/package/bin/` the first time,
/// reused afterwards.
///
/// The target dir is `$CARGO_TARGET_DIR` if set (relative to the workspace root if relative),
/// else `target/` in the workspace root. Blocks while fetching (some seconds; 80 MB download).
pub fn restate_server_binary() -> Result<PathBuf, LocalError> {
    fetch_binary("restate-server")
}

/// The `restatectl` binary of [`RESTATE_VERSION`] (the cluster administration tool, which
/// talks to a node's fabric port), fetched and cached like [`restate_server_binary`].
pub fn restatectl_binary() -> Result<PathBuf, LocalError> {
    fetch_binary("restatectl")
}

/// One fetch at a time within this process; across processes, each fetch unpacks into a
/// temporary folder and renames the binary into place, so concurrent fetches are harmless.
pub(super) static FETCHING: Mutex<()> = Mutex::new(());

/// The platform suffix of Restate's npm packages.
pub(super) fn npm_platform() -> Option<&'static str> {
    match (std::env::consts::OS, std::env::consts::ARCH) {
        ("linux", "x86_64") => Some("linux-x64"),
        ("linux", "aarch64") => Some("linux-arm64"),
        ("macos", "x86_64") => Some("darwin-x64"),
        ("macos", "aarch64") => Some("darwin-arm64"),
        _ => None,
    }
}

/// `$CARGO_TARGET_DIR`, or `target/` in the workspace root (the parent of this crate): where
/// fetched tools are cached.
pub fn target_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = manifest.parent().unwrap_or(manifest);
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                root.join(dir)
            }
        }
        _ => root.join("target"),
    }
}

pub(super) fn fetch_binary(name: &str) -> Result<PathBuf, LocalError> {
    // The tarballs hold `package/bin/<name>` (plus LICENSE, NOTICE, README.md and
    // package.json under `package/`); the same layout is kept in the cache.
    let folder = target_dir().join("restate-server").join(RESTATE_VERSION);
    let binary = folder.join("package").join("bin").join(name);
    if binary.is_file() {
        return Ok(binary);
    }
    let _fetching = FETCHING.lock().unwrap_or_else(PoisonError::into_inner);
    if binary.is_file() {
        return Ok(binary);
    }
    let Some(platform) = npm_platform() else {
        return Err(LocalError::Fetch {
            package: format!("@restatedev/{name}@{RESTATE_VERSION}"),
            message: format!(
                "Restate publishes no npm binary for {}/{} (only linux and macos, x64 and arm64)",
                std::env::consts::OS,
                std::env::consts::ARCH
            ),
        });
    };
    let package = format!("@restatedev/{name}-{platform}@{RESTATE_VERSION}");
    let fail = |message: String| LocalError::Fetch {
        package: package.clone(),
        message,
    };
    std::fs::create_dir_all(&folder).map_err(LocalError::io(format!(
        "cannot create {}",
        folder.display()
    )))?;
    let scratch = tempfile::Builder::new()
        .prefix(".fetch-")
        .tempdir_in(&folder)
        .map_err(LocalError::io(format!(
            "cannot create a folder in {}",
            folder.display()
        )))?;
    tracing::info!(%package, "fetching a Restate binary with npm pack");
    let output = Command::new("npm")
        .args(["pack", "--silent", &package, "--pack-destination"])
        .arg(scratch.path())
        .current_dir(scratch.path())
        .stdin(Stdio::null())
        .output()
        .map_err(|e| fail(format!("cannot run npm (is Node.js installed?): {e}")))?;
    if !output.status.success() {
        return Err(fail(format!(
            "npm pack failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    let tarball = std::fs::read_dir(scratch.path())
        .map_err(LocalError::io(format!(
            "cannot list {}",
            scratch.path().display()
        )))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .find(|path| path.extension().is_some_and(|ext| ext == "tgz"))
        .ok_or_else(|| fail("npm pack wrote no .tgz file".to_owned()))?;
    let unpacked = scratch.path().join(name);
    extract(&tarball, &format!("package/bin/{name}"), &unpacked).map_err(fail)?;
    if let Some(bin) = binary.parent() {
        std::fs::create_dir_all(bin)
            .map_err(LocalError::io(format!("cannot create {}", bin.display())))?;
    }
    std::fs::rename(&unpacked, &binary)
        .map_err(LocalError::io(format!("cannot move {name} into place")))?;
    Ok(binary)
}

/// Unpacks the one file `entry` of a `.tgz` to `to`, with its mode (executable) kept.
pub(super) fn extract(tarball: &Path, entry: &str, to: &Path) -> Result<(), String> {
    let file = std::fs::File::open(tarball)
        .map_err(|e| format!("cannot open {}: {e}", tarball.display()))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let entries = archive
        .entries()
        .map_err(|e| format!("cannot read {}: {e}", tarball.display()))?;
    for item in entries {
        let mut item = item.map_err(|e| format!("cannot read {}: {e}", tarball.display()))?;
        let wanted = item.path().is_ok_and(|path| &*path == Path::new(entry));
        if wanted {
            item.unpack(to)
                .map_err(|e| format!("cannot unpack {entry} to {}: {e}", to.display()))?;
            return Ok(());
        }
    }
    Err(format!("{} holds no {entry}", tarball.display()))
}
