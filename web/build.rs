//! Build script of `zeroapp-web`: puts the Datastar browser client at `$OUT_DIR/datastar.js`,
//! where `src/assets.rs` embeds it.
//!
//! The file is third-party code and is never stored in this repository (see
//! `docs/third-party.md`). It is published on crates.io inside the package `rama-http` 0.4.0, so
//! this script has cargo *download* that package (never compile it): it writes a tiny standalone
//! manifest depending on `rama-http = "=0.4.0"` into `$OUT_DIR`, runs `cargo fetch` on it, then
//! reads the file out of the `.crate` archive in `$CARGO_HOME/registry/cache/*/` (or out of the
//! already extracted source in `$CARGO_HOME/registry/src/*/`), and checks its size and SHA-256
//! before writing it. When `cargo fetch` fails (offline) but the archive is already in the cache,
//! the cached copy is used.
//!
//! Everyday builds do no work here: the script re-runs only when this file changes, and even then
//! it stops early when `$OUT_DIR/datastar.js` is already there with the right hash.
//!
//! It also sets `DATASTAR_JS_SHA256` and `DATASTAR_JS_SHA256_8` (the hash and its first 8 hex
//! digits) for the crate's `env!`.

use std::fs;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// The crates.io package that carries the file, and its version (pinned exactly).
const PACKAGE: &str = "rama-http";
const VERSION: &str = "0.4.0";
/// Where the file is inside the package.
const PATH_IN_PACKAGE: &str = "src/service/web/endpoint/response/datastar.js";
/// Datastar 1.0.2's browser client, as published in `rama-http` 0.4.0.
const EXPECTED_LEN: u64 = 34_083;
const EXPECTED_SHA256: &str = "2837d87acf6ee0ba8e4e63765926c25a98d63883b02f88be194a86b81d3fd24a";
/// The name of the checked copy in `$OUT_DIR`.
const OUTPUT_NAME: &str = "datastar.js";
/// How long the inner `cargo fetch` may take before it is given up on (it downloads a few dozen
/// small archives the first time).
const FETCH_TIMEOUT: Duration = Duration::from_secs(600);

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    match run() {
        Ok(()) => {
            println!("cargo:rustc-env=DATASTAR_JS_SHA256={EXPECTED_SHA256}");
            println!(
                "cargo:rustc-env=DATASTAR_JS_SHA256_8={}",
                &EXPECTED_SHA256[..8]
            );
        }
        Err(message) => {
            eprintln!(
                "error: zeroapp-web cannot get the Datastar browser client (datastar.js) from the \
                 crates.io package {PACKAGE} {VERSION}:\n{message}"
            );
            std::process::exit(1);
        }
    }
}

fn run() -> Result<(), String> {
    let out_dir = PathBuf::from(env_var("OUT_DIR")?);
    let dest = out_dir.join(OUTPUT_NAME);
    if fs::read(&dest).is_ok_and(|existing| check(&existing).is_ok()) {
        return Ok(());
    }

    let cargo_home = cargo_home()?;
    let fetched = cargo_fetch(&out_dir, &cargo_home);
    let bytes = match find_in_registry(&cargo_home) {
        Ok(bytes) => bytes,
        Err(not_found) => {
            return Err(match fetched {
                Ok(()) => not_found,
                Err(fetch_error) => format!("{fetch_error}\n{not_found}"),
            });
        }
    };
    if fetched.is_err() {
        println!(
            "cargo:warning=`cargo fetch` of {PACKAGE} {VERSION} failed (offline?); using the copy \
             already in {} (the fetch's output is in {})",
            cargo_home.display(),
            fetch_log(&out_dir).display()
        );
    }

    let partial = out_dir.join(format!("{OUTPUT_NAME}.partial"));
    fs::write(&partial, &bytes).map_err(|e| format!("cannot write {}: {e}", partial.display()))?;
    fs::rename(&partial, &dest).map_err(|e| {
        format!(
            "cannot move {} to {}: {e}",
            partial.display(),
            dest.display()
        )
    })
}

fn env_var(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|e| format!("environment variable {name}: {e}"))
}

/// Cargo's home as cargo itself finds it: `$CARGO_HOME`, else `~/.cargo`. Made absolute, and
/// handed to the inner cargo as is, so that both look at the same place.
fn cargo_home() -> Result<PathBuf, String> {
    let home = match std::env::var_os("CARGO_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => {
            let user_home = std::env::var_os("HOME")
                .or_else(|| std::env::var_os("USERPROFILE"))
                .filter(|v| !v.is_empty())
                .ok_or("neither CARGO_HOME nor HOME (USERPROFILE) is set")?;
            PathBuf::from(user_home).join(".cargo")
        }
    };
    std::path::absolute(&home).map_err(|e| format!("cargo home {}: {e}", home.display()))
}

/// Has cargo download `rama-http` (and, as `cargo fetch` does, what it depends on, for the host
/// platform only) into `cargo_home`'s registry cache. Compiles nothing.
fn cargo_fetch(out_dir: &Path, cargo_home: &Path) -> Result<(), String> {
    let dir = fetch_dir(out_dir);
    fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let manifest = dir.join("Cargo.toml");
    // Its own `[workspace]` table: `OUT_DIR` is inside this workspace's target folder, and
    // without it cargo would look for the package among the outer workspace's members.
    let manifest_text = format!(
        "# Written by zeroapp-web's build.rs, only to have cargo download {PACKAGE} {VERSION}.\n\
         [package]\n\
         name = \"zeroapp-datastar-fetch\"\n\
         version = \"0.0.0\"\n\
         edition = \"2021\"\n\
         publish = false\n\
         \n\
         [lib]\n\
         path = \"lib.rs\"\n\
         \n\
         [dependencies]\n\
         {PACKAGE} = {{ version = \"={VERSION}\", default-features = false }}\n\
         \n\
         [workspace]\n"
    );
    write_file(&manifest, manifest_text.as_bytes())?;
    write_file(&dir.join("lib.rs"), b"")?;

    let cargo = env_var("CARGO")?;
    let host = env_var("HOST")?;
    let log_path = fetch_log(out_dir);
    let log = fs::File::create(&log_path)
        .map_err(|e| format!("cannot create {}: {e}", log_path.display()))?;
    let log_err = log
        .try_clone()
        .map_err(|e| format!("cannot open {}: {e}", log_path.display()))?;
    let mut child = Command::new(&cargo)
        .arg("fetch")
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target")
        .arg(&host)
        .current_dir(&dir)
        .env("CARGO_HOME", cargo_home)
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .env("CARGO_TERM_COLOR", "never")
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .spawn()
        .map_err(|e| format!("cannot run `{cargo} fetch`: {e}"))?;

    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > FETCH_TIMEOUT => {
                // Best effort: it is being given up on either way.
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "`cargo fetch --manifest-path {}` did not finish within {} s (its output is \
                     in {})",
                    manifest.display(),
                    FETCH_TIMEOUT.as_secs(),
                    log_path.display()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(format!("waiting for `cargo fetch`: {e}")),
        }
    };
    if status.success() {
        Ok(())
    } else {
        let output = fs::read_to_string(&log_path).unwrap_or_default();
        Err(format!(
            "`cargo fetch --manifest-path {}` failed ({status}):\n{}",
            manifest.display(),
            output.trim_end()
        ))
    }
}

/// The folder of the standalone manifest that only serves to download the package.
fn fetch_dir(out_dir: &Path) -> PathBuf {
    out_dir.join("datastar-fetch")
}

/// Where the inner `cargo fetch` writes its output.
fn fetch_log(out_dir: &Path) -> PathBuf {
    fetch_dir(out_dir).join("fetch.log")
}

/// The checked file, from the first copy of `rama-http-0.4.0` under `cargo_home/registry` that
/// has it with the expected hash: `.crate` archives in `cache/*/` first, then extracted sources
/// in `src/*/`.
fn find_in_registry(cargo_home: &Path) -> Result<Vec<u8>, String> {
    let registry = cargo_home.join("registry");
    let archive_name = format!("{PACKAGE}-{VERSION}.crate");
    let source_name = format!("{PACKAGE}-{VERSION}");
    let mut problems = Vec::new();

    for index in subdirectories(&registry.join("cache")) {
        let archive = index.join(&archive_name);
        if !archive.is_file() {
            continue;
        }
        match read_from_archive(&archive).and_then(|bytes| {
            check(&bytes)?;
            Ok(bytes)
        }) {
            Ok(bytes) => return Ok(bytes),
            Err(problem) => problems.push(format!("  {}: {problem}", archive.display())),
        }
    }
    for index in subdirectories(&registry.join("src")) {
        let source = index.join(&source_name);
        if !source.is_dir() {
            continue;
        }
        let file = source.join(PATH_IN_PACKAGE);
        match fs::read(&file)
            .map_err(|e| format!("cannot read it: {e}"))
            .and_then(|bytes| {
                check(&bytes)?;
                Ok(bytes)
            }) {
            Ok(bytes) => return Ok(bytes),
            Err(problem) => problems.push(format!("  {}: {problem}", file.display())),
        }
    }

    if problems.is_empty() {
        Err(format!(
            "{archive_name} is not in {cache}/*/ (nor extracted in {src}/*/). Build once with \
             access to crates.io so cargo can download it, or point CARGO_HOME at a cargo home \
             that has it.",
            cache = registry.join("cache").display(),
            src = registry.join("src").display(),
        ))
    } else {
        Err(format!(
            "no good copy of {PACKAGE}/{PATH_IN_PACKAGE} was found:\n{}",
            problems.join("\n")
        ))
    }
}

/// The folders directly inside `dir`, sorted; none when `dir` cannot be read.
fn subdirectories(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|path| path.is_dir())
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

/// The file's bytes out of a `.crate` archive (a gzipped tar whose entries start with
/// `rama-http-0.4.0/`). Reads at most one byte more than expected, so a wrong entry cannot
/// exhaust memory.
fn read_from_archive(archive: &Path) -> Result<Vec<u8>, String> {
    let wanted = Path::new(&format!("{PACKAGE}-{VERSION}")).join(PATH_IN_PACKAGE);
    let file = fs::File::open(archive).map_err(|e| format!("cannot open it: {e}"))?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(BufReader::new(file)));
    let entries = tar
        .entries()
        .map_err(|e| format!("cannot read it as a gzipped tar: {e}"))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot read it as a gzipped tar: {e}"))?;
        let is_wanted = entry
            .path()
            .map(|path| path == wanted)
            .map_err(|e| format!("bad entry name: {e}"))?;
        if is_wanted {
            let mut bytes = Vec::new();
            entry
                .take(EXPECTED_LEN + 1)
                .read_to_end(&mut bytes)
                .map_err(|e| format!("cannot read {}: {e}", wanted.display()))?;
            return Ok(bytes);
        }
    }
    Err(format!("it has no {}", wanted.display()))
}

/// Ok when `bytes` are the expected file; else says what was expected and what was found.
fn check(bytes: &[u8]) -> Result<(), String> {
    let found = sha256_hex(bytes);
    let len_ok = u64::try_from(bytes.len()).is_ok_and(|len| len == EXPECTED_LEN);
    if len_ok && found == EXPECTED_SHA256 {
        Ok(())
    } else {
        Err(format!(
            "wrong content: expected {EXPECTED_LEN} bytes with sha256 {EXPECTED_SHA256}, found \
             {} bytes with sha256 {found}",
            bytes.len()
        ))
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut hex = String::with_capacity(64);
    for byte in Sha256::digest(bytes) {
        hex.push(char::from(DIGITS[usize::from(byte >> 4)]));
        hex.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    hex
}

fn write_file(path: &Path, contents: &[u8]) -> Result<(), String> {
    fs::write(path, contents)
        .map_err(|e: io::Error| format!("cannot write {}: {e}", path.display()))
}
