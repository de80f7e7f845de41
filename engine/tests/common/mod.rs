//! Helpers shared by the engine's integration tests.
#![allow(dead_code)]
#![allow(clippy::disallowed_methods)] // a test waits in real time for what it observes

#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "http")]
pub mod ingress_server;
pub mod process;

use std::path::Path;
use std::time::Duration;

use zeroapp_engine::{Engine, EngineBuilder, InvocationFilter, InvocationInfo, RetryPolicy};

/// A builder with fast retries, so tests that fail on purpose do not wait.
pub fn builder() -> EngineBuilder {
    Engine::builder().retry_policy(
        RetryPolicy::exponential(Duration::from_millis(5)).max_delay(Duration::from_millis(50)),
    )
}

/// Opens `builder` on `dir`, panicking with the reason if it fails.
pub async fn open(builder: EngineBuilder, dir: &Path) -> Engine {
    match builder.open(dir).await {
        Ok(engine) => engine,
        Err(e) => panic!("cannot open engine: {e}"),
    }
}

/// Every invocation of `service`.
pub fn invocations(engine: &Engine, service: &str) -> Vec<InvocationInfo> {
    engine
        .list_invocations(&InvocationFilter {
            service: Some(service.to_owned()),
            ..InvocationFilter::default()
        })
        .unwrap()
}

/// Polls `check` until it holds or `timeout` passes.
pub async fn eventually(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    check()
}
