use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    health_agent::cli::run(health_agent::cli::Cli::parse())
}
