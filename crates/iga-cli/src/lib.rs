#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub mod app;
pub mod cli;
pub mod commands;
pub mod config;
pub mod connectors;
pub mod demo;
pub mod directives;
pub mod inbox;

use clap::Parser;

/// Entry point of the `iga` binary: parse the command line, run the command, print
/// an error naming its place on failure, and return the exit code.
pub fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("IGA_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .with_writer(std::io::stderr)
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(commands::dispatch(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::from(e.code)
        }
    }
}
