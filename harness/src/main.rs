use std::process::ExitCode;

use clap::{Parser, Subcommand};
use paranoid_harness::{sandbox_cmd, vm_cmd};

/// paranoid-harness: proves the posture of paranoid's NixOS knobs.
#[derive(Parser)]
#[command(name = "paranoid-harness", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Prove the posture with the real daemons in throwaway namespaces (needs root).
    Sandbox(sandbox_cmd::SandboxArgs),
    /// Run the flake's NixOS VM tests (checks.<system>.vm-*) in parallel.
    Vm(vm_cmd::VmArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Sandbox(args) => sandbox_cmd::run(args),
        Command::Vm(args) => vm_cmd::run(args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("paranoid-harness: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
