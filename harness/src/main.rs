//! The command line: parse arguments, call the library (one function per subcommand, in
//! `commands`, `sandbox_cmd` and `vm_cmd`), map errors to exit codes (docs/harness.md).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use paranoid_harness::cli_support::{paranoid_dir, parse_bytes, Format, PoolOptions};
use paranoid_harness::commands;
use paranoid_harness::error::{exit, Error, Result};
use paranoid_harness::interrupt;
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
    /// The paranoid checkout (the directory with paranoid's flake.nix) [default:
    /// $PARANOID_FLAKE, else the nearest checkout above the current directory].
    #[arg(long, value_name = "DIR")]
    paranoid: Option<PathBuf>,
    /// Deprecated spelling of --paranoid.
    #[arg(long, value_name = "DIR", hide = true, conflicts_with = "paranoid")]
    flake: Option<PathBuf>,
}

impl FlakeArg {
    fn dir(self) -> Option<PathBuf> {
        paranoid_dir(self.paranoid, self.flake)
    }
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
    /// Rows for --strategy random (at least 1).
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
        /// A reference host of paranoid's flake (`lib.hosts`: meeka, bastion).
        #[arg(long, conflicts_with = "module", required_unless_present = "module")]
        host: Option<String>,
        /// A NixOS module file, or a directory with a default.nix (evaluated offline on the
        /// surface, paranoid's modules imported).
        #[arg(long)]
        module: Option<PathBuf>,
        #[command(flatten)]
        flake: FlakeArg,
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
        /// How long the evaluation may take, in seconds.
        #[arg(long, default_value_t = 300, value_name = "SECONDS")]
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
        /// A NixOS module file, or a directory with a default.nix (evaluated offline on the
        /// surface, paranoid's modules imported).
        #[arg(long, conflicts_with = "flake", required_unless_present = "flake")]
        module: Option<PathBuf>,
        /// REF#host: nixosConfigurations.<host> of a flake (needs full nixpkgs).
        #[arg(long, value_name = "REF#HOST")]
        flake: Option<String>,
        /// The paranoid checkout (the directory with paranoid's flake.nix) [default:
        /// $PARANOID_FLAKE, else the nearest checkout above the current directory].
        #[arg(long, value_name = "DIR")]
        paranoid: Option<PathBuf>,
        /// Posture expected where the host leaves an area off.
        #[arg(long, default_value = "paranoid")]
        profile: String,
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
        /// How long the evaluation may take, in seconds.
        #[arg(long, default_value_t = 300, value_name = "SECONDS")]
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
        Command::Knobs { flake, format } => commands::knobs(flake.dir(), format),
        Command::Eval {
            host,
            module,
            flake,
            format,
            timeout,
        } => commands::eval(commands::EvalRequest {
            host,
            module,
            flake: flake.dir(),
            format,
            timeout,
        }),
        Command::Plan {
            plan,
            flake,
            format,
        } => commands::plan(&plan.into(), flake.dir(), format),
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
            flake: flake.dir(),
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
            flake: flake.dir(),
            limit,
            repeat,
            format,
        }),
        Command::Sandbox(args) => sandbox_cmd::run(args),
        Command::Vm(args) => vm_cmd::run(args),
    }
}

impl Command {
    fn name(&self) -> &'static str {
        match self {
            Command::Knobs { .. } => "knobs",
            Command::Eval { .. } => "eval",
            Command::Plan { .. } => "plan",
            Command::Matrix { .. } => "matrix",
            Command::Check { .. } => "check",
            Command::Bench { .. } => "bench",
            Command::Sandbox(_) => "sandbox",
            Command::Vm(_) => "vm",
        }
    }

    /// Whether the command was asked for JSON on stdout (errors are then JSON objects too).
    fn json(&self) -> bool {
        match self {
            Command::Knobs { format, .. }
            | Command::Eval { format, .. }
            | Command::Plan { format, .. }
            | Command::Matrix { format, .. }
            | Command::Check { format, .. }
            | Command::Bench { format, .. } => *format == Format::Json,
            Command::Sandbox(a) => a.format == sandbox_cmd::Format::Json,
            Command::Vm(a) => a.format == vm_cmd::Format::Json,
        }
    }
}

/// `--format json` among raw arguments that did not parse, and the subcommand named, so even a
/// usage error is a JSON object when JSON was asked for.
fn json_in_raw_args(args: &[String]) -> Option<&'static str> {
    const NAMES: [&str; 8] = [
        "knobs", "eval", "plan", "matrix", "check", "bench", "sandbox", "vm",
    ];
    let json = args
        .windows(2)
        .any(|w| w[0] == "--format" && w[1] == "json")
        || args.iter().any(|a| a == "--format=json");
    json.then(|| {
        args.iter()
            .skip(1)
            .find_map(|a| NAMES.iter().find(|n| **n == a.as_str()).copied())
            .unwrap_or("")
    })
}

fn print_stdout(s: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(s.as_bytes()).and_then(|_| out.flush());
}

fn json_error(e: &Error, command: &str) -> String {
    format!(
        "{}\n",
        serde_json::to_string_pretty(&e.to_json(command)).unwrap_or_default()
    )
}

/// A private temporary directory for the run, made the process's `TMPDIR`: every scratch file
/// of the harness and of its `nix` children lands there, and it is removed on every way out
/// (including a forced stop after Ctrl-C).
struct Scratch(Option<tempfile::TempDir>);

impl Scratch {
    fn create() -> Scratch {
        let dir = tempfile::Builder::new()
            .prefix("paranoid-harness-run-")
            .tempdir()
            .ok();
        if let Some(d) = &dir {
            // Still single-threaded here: nothing else reads the environment concurrently.
            std::env::set_var("TMPDIR", d.path());
            interrupt::set_scratch_dir(Some(d.path().to_path_buf()));
        }
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        interrupt::set_scratch_dir(None);
        if let Some(d) = self.0.take() {
            let _ = d.close();
        }
    }
}

fn main() -> ExitCode {
    let raw: Vec<String> = std::env::args().collect();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            if !e.use_stderr() {
                let _ = e.print();
                return ExitCode::from(exit::OK);
            }
            if let Some(command) = json_in_raw_args(&raw) {
                print_stdout(&json_error(&Error::Usage(e.render().to_string()), command));
            }
            let _ = e.print();
            return ExitCode::from(exit::USAGE);
        }
    };
    let command = cli.command.name();
    let json = cli.command.json();
    // The VM tier's logs outlive the run, in the system temp directory; everything else that
    // is scratch lives in the run's own directory (made TMPDIR before any thread starts).
    let _scratch = (!matches!(cli.command, Command::Vm(_))).then(Scratch::create);
    // Every command stops on Ctrl-C within two seconds (crate::interrupt); the VM runner's own
    // handler stands down and takes its flag from ours.
    paranoid_vm::signal::handled_elsewhere();
    interrupt::on_interrupt(paranoid_vm::signal::raise);
    interrupt::install();
    if json {
        interrupt::set_last_words(Some(json_error(
            &Error::Interrupted("interrupted".into()),
            command,
        )));
    }
    let mut result = run(cli);
    interrupt::park_if_stopping();
    interrupt::set_last_words(None);
    // Whatever failed after a signal failed because of it (a killed child, a cut evaluation).
    if let Err(e) = &result {
        if interrupt::interrupted() && !matches!(e, Error::Interrupted(_)) {
            result = Err(Error::Interrupted(format!("interrupted ({e})")));
        }
    }
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            if json {
                print_stdout(&json_error(&e, command));
            }
            eprintln!("paranoid-harness: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
