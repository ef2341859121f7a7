use std::process::ExitCode;

use clap::{Parser, Subcommand};
use paranoid_harness::error::exit;
use paranoid_harness::sandbox_cmd;

#[derive(Parser)]
#[command(name = "paranoid-harness", version, about = "Evaluates paranoid's NixOS knobs in every combination and proves the posture")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Prove the posture with the real daemons in throwaway namespaces (needs root).
    Sandbox(sandbox_cmd::SandboxArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match cli.command {
        Command::Sandbox(a) => sandbox_cmd::run(a),
    };
    match r {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("paranoid-harness: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

#[allow(dead_code)]
const _: u8 = exit::OK;
