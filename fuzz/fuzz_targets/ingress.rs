//! HTTP requests (method, path, query, headers, body) through the real ingress routes of a real
//! engine, opened once per fuzz process in a temporary folder: see
//! `zeroapp_engine::fuzzing::IngressFuzz`.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use tokio::runtime::Runtime;
use zeroapp_engine::fuzzing::IngressFuzz;

struct Harness {
    runtime: Runtime,
    ingress: IngressFuzz,
    _dir: tempfile::TempDir,
}

static HARNESS: LazyLock<Harness> = LazyLock::new(|| {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    // A memory-backed folder when there is one: the engine fsyncs every commit.
    let shm = std::path::Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::tempdir_in(shm)
    } else {
        tempfile::tempdir()
    }
    .expect("a temporary folder");
    let ingress = runtime
        .block_on(IngressFuzz::open(dir.path()))
        .expect("the engine opens");
    Harness {
        runtime,
        ingress,
        _dir: dir,
    }
});

fuzz_target!(|data: &[u8]| {
    let harness = &*HARNESS;
    harness.runtime.block_on(harness.ingress.run(data));
});
