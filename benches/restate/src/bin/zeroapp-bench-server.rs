//! The `restate` bench's ZeroApp server: an engine with the bench's handlers
//! (`zeroapp_benches_restate::services`) serving its Restate-compatible ingress, in a process
//! of its own so that its memory can be read and it shares the machine with the load generator
//! as a Restate server does.
//!
//! Usage: `zeroapp-bench-server DATA_DIR 127.0.0.1:PORT`. It serves until its standard input
//! closes (the bench holds the other end) or it is killed.

use std::io::Read as _;
use std::process::ExitCode;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use zeroapp_engine::http::{self, HttpLimits};

async fn serve(dir: String, address: String) -> Result<(), String> {
    let engine = zeroapp_benches_restate::services::open_engine(dir.as_ref()).await?;
    let listener = TcpListener::bind(&address)
        .await
        .map_err(|e| format!("cannot listen on {address}: {e}"))?;
    let limits = HttpLimits {
        shutdown_grace: Duration::from_secs(1),
        ..HttpLimits::default()
    };
    let stop = CancellationToken::new();
    let routes = http::ingress(&engine, &limits);
    let server = tokio::spawn(http::serve(listener, routes, limits, stop.clone()));
    // Standard input closing (the bench ended or died) is the signal to stop.
    let _ = tokio::task::spawn_blocking(|| {
        let mut buffer = [0u8; 64];
        while std::io::stdin().read(&mut buffer).is_ok_and(|n| n > 0) {}
    })
    .await;
    stop.cancel();
    let served = server.await;
    engine.shutdown().await;
    match served {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("the ingress failed: {e}")),
        Err(e) => Err(format!("the ingress died: {e}")),
    }
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(dir), Some(address)) = (args.next(), args.next()) else {
        eprintln!("usage: zeroapp-bench-server DATA_DIR 127.0.0.1:PORT");
        return ExitCode::FAILURE;
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start tokio: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(dir, address)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
