//! `zeroapp`: the server (`serve`, the default), an offline look into a data folder
//! (`inspect`), and its verification (`check`).

use clap::Parser;
use zeroapp_web::cli::{Cli, Command};
use zeroapp_web::{backup, check, inspect, remote, replay_check, serve};

/// The server allocates with mimalloc: under load, glibc's allocator took a third of the
/// engine's writer thread (docs/architecture.md, "A log in front of redb").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve(Box::new(cli.serve)));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("zeroapp: cannot start the async runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match command {
            Command::Serve(args) => serve::run(*args).await.map(|()| true),
            Command::Inspect(args) => inspect::run(args).await.map(|()| true),
            Command::Check(args) => check::run(args).await,
            Command::Backup(args) => backup::run(args).await.map(|()| true),
            Command::Invocations(args) => remote::invocations(args).await,
            Command::Awakeables(args) => remote::awakeables(args).await,
            Command::Metrics(args) => remote::metrics(args).await,
            Command::ReplayCheck(args) => replay_check::run(args).await,
        }
    });
    match result {
        Ok(true) => std::process::ExitCode::SUCCESS,
        // `check` or `replay-check` found problems (it listed them), or the server refused a
        // command (it said why).
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(error) => {
            eprintln!("zeroapp: {error}");
            std::process::ExitCode::from(2)
        }
    }
}
