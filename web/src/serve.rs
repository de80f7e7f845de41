//! `zeroapp serve`: the engine, its ingress and admin API, until SIGINT or SIGTERM.

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use zeroapp_app::App;
use zeroapp_engine::Engine;
use zeroapp_engine::http::{self, HttpLimits, Routes};

use crate::cli::ServeArgs;
use crate::server;

/// Opens the engine, serves until a stop signal, then shuts down in order: stop accepting, let
/// requests in flight finish (bounded), flush the engine's writer.
pub async fn run(args: ServeArgs) -> Result<(), Box<dyn std::error::Error>> {
    init_logging(&args.log_level);
    let app = App::open(&args.data_dir, args.app_config())
        .await
        .map_err(|e| {
            format!(
                "cannot open the app's database in {}: {e}",
                args.data_dir.display()
            )
        })?;
    let engine = app
        .register(Engine::builder())
        .open(&args.data_dir)
        .await
        .map_err(|e| format!("cannot open the engine in {}: {e}", args.data_dir.display()))?;
    let limits = HttpLimits {
        max_body_bytes: args.max_body_bytes,
        max_connections: args.max_connections,
        shutdown_grace: args.shutdown_grace,
        ..HttpLimits::default()
    };
    let stop = CancellationToken::new();
    let ingress = listen(
        "ingress",
        args.ingress_addr,
        http::ingress(&engine, &limits),
        &limits,
        &stop,
    )
    .await?;
    let admin = listen(
        "admin",
        args.admin_addr,
        http::admin(&engine),
        &limits,
        &stop,
    )
    .await?;
    let callback_secret = zeroapp_app::payment_signature::load_or_create_secret(&args.data_dir)
        .map_err(|e| format!("cannot read or create the payment callback key: {e}"))?;
    let storefront = server::routes(server::Shared {
        app: app.clone(),
        client: engine.client(),
        limits: limits.clone(),
        callback_secret,
    });
    let storefront = listen("storefront", args.addr, storefront, &limits, &stop).await?;
    println!(
        "zeroapp: serving data folder {} (stop with Ctrl-C or SIGTERM)",
        args.data_dir.display()
    );

    wait_for_stop_signal().await?;
    tracing::info!(
        "stopping: no new connections; requests in flight get {:?}",
        limits.shutdown_grace
    );
    stop.cancel();
    for server in [storefront, ingress, admin] {
        match server.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::error!(%error, "server failed"),
            Err(error) => tracing::error!(%error, "server task failed"),
        }
    }
    engine.shutdown().await;
    println!("zeroapp: stopped");
    Ok(())
}

/// Binds `addr` and serves `routes` there in the background until `stop`.
async fn listen(
    name: &'static str,
    addr: SocketAddr,
    routes: Routes,
    limits: &HttpLimits,
    stop: &CancellationToken,
) -> Result<tokio::task::JoinHandle<std::io::Result<()>>, Box<dyn std::error::Error>> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen for the {name} on {addr}: {e}"))?;
    let bound = listener.local_addr()?;
    println!("zeroapp: {name} listening on http://{bound}");
    tracing::info!(%bound, "{name} listening");
    Ok(tokio::spawn(http::serve(
        listener,
        routes,
        limits.clone(),
        stop.clone(),
    )))
}

async fn wait_for_stop_signal() -> std::io::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result,
        _ = terminate.recv() => Ok(()),
    }
}

fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(default))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
