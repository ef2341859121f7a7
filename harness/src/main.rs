//! The command line: parse arguments, call the library, print, map errors to exit codes
//! (docs/harness.md). Logic lives in the library.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use paranoid_harness::catalogue::Catalogue;
use paranoid_harness::error::{exit, Error, Result};
use paranoid_harness::nix::{Backend, EvalOptions, Flake};
use paranoid_harness::plan::{self, Strategy};
use paranoid_harness::{bench, check, eval_cmd, matrix, report, sandbox_cmd, vm_cmd};

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

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Format {
    Human,
    Json,
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

fn parse_bytes(s: &str) -> std::result::Result<u64, String> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let m = match c.to_ascii_uppercase() {
                'K' => 1u64 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                _ => return Err(format!("unknown size suffix in {s}: use K, M or G")),
            };
            (&s[..i], m)
        }
        _ => (s, 1),
    };
    num.parse::<u64>()
        .map(|n| n * mult)
        .map_err(|e| format!("{s}: {e}"))
}

fn find_flake(arg: Option<PathBuf>) -> Result<Flake> {
    if let Some(dir) = arg.or_else(|| std::env::var_os("PARANOID_FLAKE").map(PathBuf::from)) {
        return Flake::open(&dir);
    }
    let cwd =
        std::env::current_dir().map_err(|e| Error::Other(format!("current directory: {e}")))?;
    for dir in cwd.ancestors() {
        if dir.join("flake.nix").is_file() && dir.join("lib/harness.nix").is_file() {
            return Flake::open(dir);
        }
    }
    Err(Error::Usage("no paranoid flake found above the current directory: pass --flake DIR (or set PARANOID_FLAKE)".into()))
}

fn eval_options(pool: &PoolArgs, backend: Backend) -> Result<EvalOptions> {
    if pool.jobs == 0 {
        return Err(Error::Usage(
            "--jobs 0: at least one nix process must run (use --jobs 1 or more)".into(),
        ));
    }
    if pool.timeout == 0 {
        return Err(Error::Usage(
            "--timeout 0: give nix at least a second".into(),
        ));
    }
    if let Some(m) = pool.max_memory {
        let share = m / pool.jobs as u64;
        if share < 64 << 20 {
            return Err(Error::Usage(format!(
                "--max-memory {m} leaves {} MiB per nix process with --jobs {}; one process needs at least 64 MiB (lower --jobs or raise --max-memory)",
                share >> 20,
                pool.jobs
            )));
        }
    }
    Ok(EvalOptions {
        jobs: pool.jobs,
        batch_size: pool.batch_size,
        timeout: Duration::from_secs(pool.timeout),
        max_memory: pool.max_memory,
        backend,
    })
}

fn plan_rows(
    cat: &Catalogue,
    p: &PlanArgs,
) -> Result<(
    Strategy,
    BTreeMap<String, serde_json::Value>,
    Vec<plan::Row>,
)> {
    let strategy = Strategy::parse(&p.strategy, p.samples, p.seed)?;
    let mut pins = BTreeMap::new();
    for s in &p.set {
        let (k, v) = cat.parse_setting(s)?;
        pins.insert(k, v);
    }
    let rows = plan::plan(cat, &strategy, &pins)?;
    Ok((strategy, pins, rows))
}

/// Writes to stdout; a closed pipe (`| head`) is not an error worth a panic.
fn emit(s: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(s.as_bytes()).and_then(|_| out.flush());
}

fn print_json(v: &serde_json::Value) {
    emit(&format!(
        "{}\n",
        serde_json::to_string_pretty(v).unwrap_or_default()
    ));
}

const CATALOGUE_TIMEOUT: Duration = Duration::from_secs(120);

fn run(cli: Cli) -> Result<u8> {
    match cli.command {
        Command::Knobs { flake, format } => {
            let flake = find_flake(flake.flake)?;
            let cat = Catalogue::load(&flake, CATALOGUE_TIMEOUT)?;
            match format {
                Format::Json => print_json(&serde_json::to_value(&cat).unwrap_or_default()),
                Format::Human => {
                    emit(&format!(
                        "{:<32} {:<9} {:<30} {:<10} {}\n",
                        "knob", "kind", "values", "off", "profiles"
                    ));
                    for k in &cat.knobs {
                        let values = k
                            .values
                            .iter()
                            .map(plan::plain)
                            .collect::<Vec<_>>()
                            .join("|");
                        let profiles = k
                            .profiles
                            .iter()
                            .filter(|(_, v)| !v.is_null())
                            .map(|(p, v)| format!("{p}={}", plan::plain(v)))
                            .collect::<Vec<_>>()
                            .join(" ");
                        let kind = serde_json::to_value(k.kind)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_string))
                            .unwrap_or_default();
                        emit(&format!(
                            "{:<32} {:<9} {:<30} {:<10} {}\n",
                            k.name,
                            kind,
                            values,
                            k.off.as_ref().map(plan::plain).unwrap_or_default(),
                            profiles
                        ));
                    }
                    emit("\nconstraints (must be refused with [paranoid:<id>]):\n");
                    for c in &cat.constraints {
                        emit(&format!("  {:<28} {}\n", c.id, c.description));
                    }
                }
            }
            Ok(exit::OK)
        }
        Command::Eval {
            host,
            module,
            flake,
            format,
            timeout,
        } => {
            let flake = find_flake(flake.flake)?;
            let target = match (host, module) {
                (Some(h), None) => eval_cmd::EvalTarget::Host(h),
                (None, Some(m)) => eval_cmd::EvalTarget::Module(m),
                _ => {
                    return Err(Error::Usage(
                        "give exactly one of --host or --module".into(),
                    ))
                }
            };
            let p = eval_cmd::evaluate(&flake, &target, Duration::from_secs(timeout))?;
            match format {
                Format::Json => print_json(&p),
                Format::Human => {
                    // The catalogue names the switches; without it the summary still prints.
                    let cat = Catalogue::load(&flake, CATALOGUE_TIMEOUT).ok();
                    emit(&report::eval_human(&p, cat.as_ref()))
                }
            }
            let code = eval_cmd::exit_code(&p);
            if code == exit::ASSERTIONS {
                eprintln!("paranoid-harness: NixOS assertions failed (listed above); a real system would refuse to build");
            }
            Ok(code)
        }
        Command::Plan {
            plan: p,
            flake,
            format,
        } => {
            let flake = find_flake(flake.flake)?;
            let cat = Catalogue::load(&flake, CATALOGUE_TIMEOUT)?;
            let (strategy, pins, rows) = plan_rows(&cat, &p)?;
            let generated: Vec<_> = rows
                .iter()
                .filter(|r| r.kind == plan::RowKind::Generated)
                .map(|r| r.knobs.clone())
                .collect();
            let uncovered = if strategy == Strategy::Pairwise {
                plan::uncovered_pairs(&plan::pairwise_params(&cat, &pins), &generated).len()
            } else {
                0
            };
            match format {
                Format::Json => print_json(
                    &serde_json::json!({ "strategy": strategy.name(), "rows": rows, "uncoveredPairs": uncovered }),
                ),
                Format::Human => {
                    for r in &rows {
                        emit(&format!(
                            "{:<36} {}\n",
                            r.id,
                            r.knobs
                                .iter()
                                .map(|(k, v)| format!("{k}={}", plan::plain(v)))
                                .collect::<Vec<_>>()
                                .join(" ")
                        ));
                    }
                    emit(&format!(
                        "{} rows ({} generated by {}); uncovered pairs: {uncovered}\n",
                        rows.len(),
                        generated.len(),
                        strategy.name()
                    ));
                }
            }
            Ok(if uncovered == 0 {
                exit::OK
            } else {
                exit::FAILED
            })
        }
        Command::Matrix {
            plan: p,
            backend,
            pool,
            flake,
            format,
            junit,
        } => {
            let backend = match backend {
                BackendArg::Surface => Backend::Surface,
                BackendArg::Nixos => Backend::Nixos,
            };
            let eval = eval_options(&pool, backend)?;
            let flake = find_flake(flake.flake)?;
            let cat = Catalogue::load(&flake, CATALOGUE_TIMEOUT)?;
            let (strategy, pins, _) = plan_rows(&cat, &p)?;
            if backend == Backend::Nixos {
                paranoid_harness::nix::probe_nixpkgs(&flake)?;
            }
            let bar = std::io::stderr().is_terminal().then(|| {
                let b = indicatif::ProgressBar::new(0);
                b.set_style(
                    indicatif::ProgressStyle::with_template(
                        "{bar:40} {pos}/{len} rows {per_sec} eta {eta}",
                    )
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                );
                b
            });
            let progress = |e: matrix::ProgressEvent| {
                if let Some(b) = &bar {
                    match e {
                        matrix::ProgressEvent::Planned(n) => b.set_length(n as u64),
                        matrix::ProgressEvent::Done => b.inc(1),
                    }
                }
            };
            let result = matrix::run(
                &flake,
                &cat,
                &matrix::MatrixOptions {
                    strategy,
                    pins,
                    eval,
                },
                &progress,
            )?;
            if let Some(b) = &bar {
                b.finish_and_clear();
            }
            if let Some(path) = junit {
                std::fs::write(&path, report::matrix_junit(&result))
                    .map_err(|e| Error::Other(format!("--junit {}: {e}", path.display())))?;
            }
            match format {
                // Compact: an exhaustive run has tens of thousands of rows.
                Format::Json => emit(&format!("{}\n", report::matrix_json(&result))),
                Format::Human => emit(&report::matrix_human(&result)),
            }
            Ok(if result.interrupted {
                exit::INTERRUPTED
            } else if result.ok() {
                exit::OK
            } else {
                exit::FAILED
            })
        }
        Command::Check {
            module,
            flake,
            paranoid,
            profile,
            format,
            timeout,
        } => {
            let paranoid = find_flake(paranoid)?;
            let target = match (module, flake) {
                (Some(m), None) => check::Target::Module(m),
                (None, Some(f)) => check::Target::parse_flake_host(&f)?,
                _ => {
                    return Err(Error::Usage(
                        "give exactly one of --module FILE or --flake REF#host".into(),
                    ))
                }
            };
            let cat = Catalogue::load(&paranoid, CATALOGUE_TIMEOUT)?;
            let result = check::run(
                &paranoid,
                &cat,
                &target,
                &profile,
                Duration::from_secs(timeout),
            )?;
            match format {
                Format::Json => print_json(&report::check_json(&result)),
                Format::Human => emit(&report::check_human(&result)),
            }
            Ok(if result.violations.is_empty() {
                exit::OK
            } else {
                exit::FAILED
            })
        }
        Command::Bench {
            plan: p,
            pool,
            flake,
            limit,
            repeat,
            format,
        } => {
            let eval = eval_options(&pool, Backend::Surface)?;
            let flake = find_flake(flake.flake)?;
            let cat = Catalogue::load(&flake, CATALOGUE_TIMEOUT)?;
            let (_, _, mut rows) = plan_rows(&cat, &p)?;
            if let Some(n) = limit {
                rows.truncate(n.max(1));
            }
            let r = bench::run(&flake, &rows, matrix::FIXTURE, &eval, repeat)?;
            match format {
                Format::Json => print_json(&serde_json::to_value(&r).unwrap_or_default()),
                Format::Human => emit(&bench::human(&r)),
            }
            Ok(exit::OK)
        }
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
