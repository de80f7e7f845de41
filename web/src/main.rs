//! `zeroapp`: opens the engine on the data folder and keeps it running until Ctrl-C.
//!
//! The storefront, the ingress and the admin API arrive with their own issues.

use std::path::PathBuf;

use zeroapp_engine::Engine;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let data_dir =
        std::env::var_os("ZEROAPP_DATA_DIR").map_or_else(|| PathBuf::from("data"), PathBuf::from);
    let engine = zeroapp_app::register(Engine::builder())
        .open(&data_dir)
        .await?;
    println!(
        "zeroapp: engine open on {} (press Ctrl-C to stop)",
        data_dir.join(zeroapp_engine::DATA_FILE).display()
    );
    tokio::signal::ctrl_c().await?;
    engine.shutdown().await;
    println!("zeroapp: stopped");
    Ok(())
}
