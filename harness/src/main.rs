//! The command line: parse arguments, call the library (one function per subcommand, in
//! `commands`, `sandbox_cmd` and `vm_cmd`), map errors to exit codes (docs/harness.md).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use paranoid_harness::cli_support::{parse_bytes, Format, PoolOptions};
use paranoid_harness::commands;
use paranoid_harness::error::{exit, Result};
use paranoid_harness::nix::Backend;
use paranoid_harness::plan::PlanSpec;
use paranoid_harness::{sandbox_cmd, vm_cmd};

#[derive(Parser)]
#[command(
    name = "paranoid-harness",
    version,
    about = "Evaluates paranoid's NixOS knobs in every combination and proves the posture"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum BackendArg {
    Surface,
    Nixos,
}

#[derive(clap::Args)]
struct FlakeArg {
    /// The paranoid flake (a directory with flake.nix); default: the nearest one above the
    /// current directory, or $PARANOID_FLAKE.
    #[arg(long, value_name = "DIR")]
    flake: Option<PathBuf>,
}

#[derive(clap::Args)]
struct PoolArgs {
    /// Concurrent nix processes.
    #[arg(long, default_value_t = 2)]
    jobs: usize,
    /// Permutations per nix process (0: chosen from the plan size and --jobs).
    #[arg(long, default_value_t = 0)]
    batch_size: usize,
    /// Bound on the resident memory of all nix processes together, in bytes (K/M/G suffixes
    /// allowed); each process may use its --jobs share before it is killed and its items re-run alone.
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    max_memory: Option<u64>,
    /// Seconds one nix process may run.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
}

#[derive(clap::Args)]
struct PlanArgs {
    #[arg(long, default_value = "pairwise", value_parser = ["exhaustive", "pairwise", "one-at-a-time", "random"])]
    strategy: String,
    /// Rows for --strategy random.
    #[arg(long)]
    samples: Option<usize>,
    #[arg(long)]
    seed: Option<u64>,
    /// Pin a knob in every row: --set ssh.enable=true (repeatable).
    #[arg(long = "set", value_name = "KNOB=VALUE")]
    set: Vec<String>,
}

#[derive(Subcommand)]
enum Command {
    /// The knob catalogue read from the flake.
    Knobs {
        #[command(flatten)]
        flake: FlakeArg,
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
    },
    /// Evaluate a reference host or a module file and print its projection.
    Eval {
        #[arg(long, conflicts_with = "module", required_unless_present = "module")]
        host: Option<String>,
        #[arg(long)]
        module: Option<PathBuf>,
        #[command(flatten)]
        flake: FlakeArg,
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
        #[arg(long, default_value_t = 300)]
        timeout: u64,
    },
    /// Print a plan's rows (and prove pairwise coverage) without evaluating anything.
    Plan {
        #[command(flatten)]
        plan: PlanArgs,
        #[command(flatten)]
        flake: FlakeArg,
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
    },
    /// Evaluate a plan of knob permutations and check every invariant on every row.
    Matrix {
        #[command(flatten)]
        plan: PlanArgs,
        #[arg(long, value_enum, default_value = "surface")]
        backend: BackendArg,
        #[command(flatten)]
        pool: PoolArgs,
        #[command(flatten)]
        flake: FlakeArg,
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
        /// Also write a JUnit report (one testcase per row).
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
    },
    /// Check someone's host against the invariants; exit 0 only when clean.
    Check {
        /// A NixOS module file (evaluated offline on the surface, paranoid's modules imported).
        #[arg(long, conflicts_with = "flake", required_unless_present = "flake")]
        module: Option<PathBuf>,
        /// REF#host: nixosConfigurations.<host> of a flake (needs full nixpkgs).
        #[arg(long, value_name = "REF#HOST")]
        flake: Option<String>,
        /// The paranoid flake (default as for --flake of the other commands).
        #[arg(long, value_name = "DIR")]
        paranoid: Option<PathBuf>,
        /// Posture expected where the host leaves an area off.
        #[arg(long, default_value = "paranoid")]
        profile: String,
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
        #[arg(long, default_value_t = 300)]
        timeout: u64,
    },
    /// One nix process per permutation vs batched over the pool, side by side.
    Bench {
        #[command(flatten)]
        plan: PlanArgs,
        #[command(flatten)]
        pool: PoolArgs,
        #[command(flatten)]
        flake: FlakeArg,
        /// Use only the first N rows of the plan.
        #[arg(long)]
        limit: Option<usize>,
        /// Runs of each path; the fastest is reported (the machine may be shared).
        #[arg(long, default_value_t = 3)]
        repeat: usize,
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
    },
    /// Posture checks with the real programs (sandbox tier).
    Sandbox(sandbox_cmd::SandboxArgs),
    /// NixOS VM tests (VM tier).
    Vm(vm_cmd::VmArgs),
}

impl From<PlanArgs> for PlanSpec {
    fn from(p: PlanArgs) -> PlanSpec {
        PlanSpec {
            strategy: p.strategy,
            samples: p.samples,
            seed: p.seed,
            set: p.set,
        }
    }
}

impl From<PoolArgs> for PoolOptions {
    fn from(p: PoolArgs) -> PoolOptions {
        PoolOptions {
            jobs: p.jobs,
            batch_size: p.batch_size,
            max_memory: p.max_memory,
            timeout: p.timeout,
        }
    }
}

impl From<BackendArg> for Backend {
    fn from(b: BackendArg) -> Backend {
        match b {
            BackendArg::Surface => Backend::Surface,
            BackendArg::Nixos => Backend::Nixos,
        }
    }
}

/// One library call per subcommand; each returns the exit code of its finished run.
fn run(cli: Cli) -> Result<u8> {
    match cli.command {
        Command::Knobs { flake, format } => commands::knobs(flake.flake, format),
        Command::Eval {
            host,
            module,
            flake,
            format,
            timeout,
        } => commands::eval(commands::EvalRequest {
            host,
            module,
            flake: flake.flake,
            format,
            timeout,
        }),
        Command::Plan {
            plan,
            flake,
            format,
        } => commands::plan(&plan.into(), flake.flake, format),
        Command::Matrix {
            plan,
            backend,
            pool,
            flake,
            format,
            junit,
        } => commands::matrix(commands::MatrixRequest {
            plan: plan.into(),
            backend: backend.into(),
            pool: pool.into(),
            flake: flake.flake,
            format,
            junit,
        }),
        Command::Check {
            module,
            flake,
            paranoid,
            profile,
            format,
            timeout,
        } => commands::check(commands::CheckRequest {
            module,
            flake,
            paranoid,
            profile,
            format,
            timeout,
        }),
        Command::Bench {
            plan,
            pool,
            flake,
            limit,
            repeat,
            format,
        } => commands::bench(commands::BenchRequest {
            plan: plan.into(),
            pool: pool.into(),
            flake: flake.flake,
            limit,
            repeat,
            format,
        }),
        Command::Sandbox(args) => sandbox_cmd::run(args),
        Command::Vm(args) => vm_cmd::run(args),
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            });
        }
    };
    // The sandbox and VM tiers install their own Ctrl-C handling.
    if !matches!(cli.command, Command::Sandbox(_) | Command::Vm(_)) {
        paranoid_harness::nix::install_interrupt_handler();
    }
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("paranoid-harness: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
