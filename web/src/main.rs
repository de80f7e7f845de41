//! `zeroapp`: the server (`serve`, the default) and an offline look into a data folder
//! (`inspect`).

use clap::Parser;
use zeroapp_web::cli::{Cli, Command};
use zeroapp_web::{inspect, serve};

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
            Command::Serve(args) => serve::run(*args).await,
            Command::Inspect(args) => inspect::run(args).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("zeroapp: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
