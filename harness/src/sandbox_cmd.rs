//! `paranoid-harness sandbox`: evaluate the chosen permutations with Nix, hand their
//! projections to the sandbox tier (crate paranoid-sandbox), print the report, map the
//! outcome to an exit code (docs/harness.md, docs/sandbox.md).

use crate::catalogue::Catalogue;
use crate::error::{exit, Error, Result};
use crate::nix::{self, EvalOptions, Flake, Item, Outcome};
use crate::plan::{self, RowKind, Strategy};
use clap::{Args, ValueEnum};
use paranoid_sandbox::model::{SkipKind, Status};
use paranoid_sandbox::{report, CheckId, Options, Permutation};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum Format {
    Human,
    Json,
}

/// Prove a configuration's posture with the real daemons (sshd, nix-daemon, mount, nft,
/// systemd-analyze) in throwaway namespaces, users and directories. Needs root.
#[derive(Args, Debug, Clone)]
pub struct SandboxArgs {
    /// A reference host of the flake (lib.hosts), e.g. bastion or meeka. Repeatable.
    #[arg(long, value_name = "NAME")]
    pub host: Vec<String>,
    /// A NixOS module file (a host configuration); several are evaluated together, on top of
    /// --host when one is given.
    #[arg(long, value_name = "FILE")]
    pub module: Vec<PathBuf>,
    /// A projection already evaluated (JSON: one projection, or an evalBatch answer). Repeatable.
    #[arg(long, value_name = "FILE")]
    pub projection: Vec<PathBuf>,
    /// Matrix permutations of the knob catalogue: exhaustive | pairwise | one-at-a-time | random.
    #[arg(long, value_name = "STRATEGY")]
    pub strategy: Option<String>,
    /// Random strategy: how many rows.
    #[arg(long, value_name = "N")]
    pub samples: Option<usize>,
    /// Random strategy: the seed.
    #[arg(long, value_name = "SEED")]
    pub seed: Option<u64>,
    /// Pin a knob in every matrix row (knob=value, value as JSON or a bare string). Repeatable.
    #[arg(long = "set", value_name = "KNOB=VALUE")]
    pub set: Vec<String>,
    /// The paranoid checkout (the directory with paranoid's flake.nix) [default:
    /// $PARANOID_FLAKE, else the nearest checkout above the current directory].
    #[arg(long, value_name = "DIR")]
    pub paranoid: Option<PathBuf>,
    /// Deprecated spelling of --paranoid.
    #[arg(long, value_name = "DIR", hide = true, conflicts_with = "paranoid")]
    pub flake: Option<PathBuf>,
    /// Checks running at the same time (they mostly wait on daemons and timeouts).
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Exit 0 even when a check was skipped (a tool missing, not root...).
    #[arg(long)]
    pub allow_skips: bool,
    /// Comma-separated checks to run: sshd,ssh-audit,nix-daemon,mounts,firewall,units,sudo (and auditd, execwatch).
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub checks: Option<Vec<String>>,
    /// Also run the auditd and execwatch checks (load the configuration's audit rules, narrowed to a probe, into the kernel for a moment).
    #[arg(long)]
    pub with_auditd: bool,
    /// Run checks even on configurations whose NixOS assertions fail (they would not build).
    #[arg(long)]
    pub ignore_assertions: bool,
    /// Where journals and scratch directories live (root-owned); default
    /// $PARANOID_SANDBOX_STATE_DIR or /var/lib/paranoid-sandbox.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Seconds one nix evaluation may take.
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
    /// Only remove what killed runs left behind (their journals name every user, namespace,
    /// rule and directory; their processes carry the run id), then exit.
    #[arg(long)]
    pub sweep: bool,
    /// Human format: print every piece of evidence, not only failures.
    #[arg(long, short)]
    pub verbose: bool,
}

/// Jobs per core and memory per job the sandbox's pool is bounded by.
const SANDBOX_JOBS_PER_CORE: usize = 4;
const SANDBOX_JOB_MEMORY: u64 = 256 << 20;

/// What a user who is not root is told (the tier's exit code is then 7).
pub const NEEDS_ROOT: &str = "the sandbox tier needs root (it creates users, network namespaces and mounts, and starts sshd and nix-daemon): \
     run it as root, e.g. `sudo paranoid-harness sandbox ...`; without root only the checks that need none (units) run and the others are skipped";

fn state_dir(args: &SandboxArgs) -> PathBuf {
    args.state_dir
        .clone()
        .or_else(|| std::env::var_os("PARANOID_SANDBOX_STATE_DIR").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(paranoid_sandbox::cleanup::DEFAULT_STATE_DIR))
}

pub fn run(args: SandboxArgs) -> Result<u8> {
    if args.sweep {
        if !paranoid_sandbox::sys::is_root() {
            return Err(Error::Environment(
                "--sweep needs root: it removes users, network namespaces and processes".into(),
            ));
        }
        let swept =
            paranoid_sandbox::cleanup::sweep(&state_dir(&args), &paranoid_sandbox::Cancel::new());
        for l in &swept {
            println!("{l}");
        }
        if swept.is_empty() {
            println!(
                "nothing left behind by killed runs in {}",
                state_dir(&args).display()
            );
        }
        return Ok(if swept.iter().any(|l| l.contains("could not")) {
            exit::FAILED
        } else {
            exit::OK
        });
    }
    let checks = parse_checks(&args)?;
    if args.jobs == Some(0) {
        return Err(Error::Usage("--jobs must be at least 1".into()));
    }
    if args.samples == Some(0) {
        return Err(Error::Usage(
            "--samples 0: a random plan needs at least one row (--samples 1 or more)".into(),
        ));
    }
    let matrix = args.strategy.is_some()
        || args.samples.is_some()
        || args.seed.is_some()
        || !args.set.is_empty();
    if args.host.is_empty() && args.module.is_empty() && args.projection.is_empty() && !matrix {
        return Err(Error::Usage(
            "say what to sandbox: --host NAME, --module FILE, --projection FILE or matrix options (--strategy pairwise)".into(),
        ));
    }
    nix::install_interrupt_handler();
    if !paranoid_sandbox::sys::is_root() {
        eprintln!("paranoid-harness sandbox: not root: {NEEDS_ROOT}");
    }
    let started = Instant::now();
    let mut perms = vec![];
    for f in &args.projection {
        perms.extend(read_projection_file(f)?);
    }
    let mut unevaluated: Vec<(String, String, String)> = vec![];
    let needs_nix = !args.host.is_empty() || !args.module.is_empty() || matrix;
    if needs_nix {
        let flake = crate::cli_support::find_flake(crate::cli_support::paranoid_dir(
            args.paranoid.clone(),
            args.flake.clone(),
        ))?;
        let eval = EvalOptions {
            jobs: 2,
            timeout: Duration::from_secs(args.timeout),
            ..Default::default()
        };
        let mut sources: BTreeMap<String, String> = BTreeMap::new();
        let mut items = named_items(&args, &mut sources)?;
        if matrix {
            items.extend(matrix_items(&args, &flake, &eval, &mut sources)?);
        }
        for (id, outcome) in nix::evaluate(&flake, items, &eval, &|_, _| {})? {
            let source = sources.get(&id).cloned().unwrap_or_else(|| id.clone());
            match outcome {
                Outcome::Projection(p) => perms.push(Permutation {
                    id,
                    source,
                    projection: p,
                }),
                Outcome::Failed { message } if source.starts_with("matrix ") => {
                    unevaluated.push((id, source, message))
                }
                Outcome::Failed { message } => {
                    if args.host.contains(&id) {
                        crate::eval_cmd::unknown_host(&flake, &id, eval.timeout)?;
                    }
                    return Err(Error::NixEval {
                        context: source,
                        message,
                    });
                }
            }
        }
        if nix::interrupted() {
            return Err(Error::Interrupted(
                "interrupted while evaluating the permutations".into(),
            ));
        }
    }
    let eval_ms = started.elapsed().as_millis();
    let (runnable, blocked): (Vec<Permutation>, Vec<Permutation>) = perms
        .into_iter()
        .partition(|p| args.ignore_assertions || p.assertions().is_empty());
    // A configuration the user named that would not build is an error (exit 6, as `eval`);
    // matrix rows that must be refused (constraints) are expected to fail their assertions.
    let named_blocked = blocked.iter().any(|p| !p.source.starts_with("matrix "));

    let cancel = paranoid_sandbox::Cancel::from_flag(Arc::new(AtomicBool::new(false)));
    {
        // Ctrl-C (the harness's handler) stops the checks: their waits end, their guards clean up.
        let c = cancel.clone();
        std::thread::spawn(move || loop {
            if nix::interrupted() {
                c.cancel();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        });
    }
    let jobs = args.jobs.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get() * 2)
            .unwrap_or(4)
            .max(4)
    });
    // Each job runs daemons (sshd, nix-daemon) in namespaces of its own: bounded like nix's pool.
    let (jobs, note) = nix::PoolBound::of_machine(SANDBOX_JOBS_PER_CORE, SANDBOX_JOB_MEMORY)
        .apply(jobs, "sandbox jobs");
    if let Some(note) = note {
        eprintln!("paranoid-harness: {note}");
    }
    let opts = Options {
        jobs,
        checks,
        state_dir: state_dir(&args),
        cancel,
    };
    let progress = args.format == Format::Human && std::io::stderr().is_terminal();
    let on_done = |p: &Permutation, r: &paranoid_sandbox::CheckResult| {
        if progress {
            eprintln!(
                "  {} {} {} ({} ms)",
                p.id,
                r.check,
                r.status.name(),
                r.duration_ms
            );
        }
    };
    let mut report = {
        // Ctrl-C ends the checks; their guards then remove the users, namespaces and
        // directories, which the forced stop waits for (crate::interrupt).
        let _hold = crate::interrupt::hold_exit();
        paranoid_sandbox::run(&runnable, &opts, &on_done)
            .map_err(|e| Error::Environment(e.to_string()))?
    };
    for p in blocked {
        report.permutations.push(paranoid_sandbox::model::PermutationReport {
            id: p.id.clone(),
            source: p.source.clone(),
            assertions: p.assertions(),
            checks: opts
                .checks
                .iter()
                .map(|c| {
                    paranoid_sandbox::CheckResult::not_applicable(
                        *c,
                        "the configuration fails NixOS assertions, so it would not build (use --ignore-assertions to sandbox it anyway)",
                    )
                })
                .collect(),
        });
    }
    for (id, source, message) in &unevaluated {
        report
            .permutations
            .push(paranoid_sandbox::model::PermutationReport {
                id: id.clone(),
                source: source.clone(),
                assertions: vec![format!(
                    "did not evaluate: {}",
                    message.lines().next().unwrap_or(message)
                )],
                checks: opts
                    .checks
                    .iter()
                    .map(|c| {
                        paranoid_sandbox::CheckResult::not_applicable(
                            *c,
                            "the permutation did not evaluate",
                        )
                    })
                    .collect(),
            });
    }
    report.counts = paranoid_sandbox::RunReport::count(&report.permutations);
    match args.format {
        Format::Json => {
            let mut v = serde_json::to_value(&report).map_err(|e| Error::Other(e.to_string()))?;
            v["evaluationMs"] = json!(eval_ms);
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        }
        Format::Human => {
            print!("{}", report::human(&report, args.verbose));
            println!("(evaluation: {:.1} s)", eval_ms as f64 / 1000.0);
        }
    }
    let code = exit_code(&report, args.allow_skips);
    if code == exit::ENVIRONMENT && !paranoid_sandbox::sys::is_root() {
        eprintln!("paranoid-harness sandbox: exit 7: checks were skipped because this is not root; {NEEDS_ROOT}");
    }
    if code == exit::OK && !unevaluated.is_empty() {
        eprintln!(
            "paranoid-harness: {} matrix permutation(s) did not evaluate (listed above)",
            unevaluated.len()
        );
        return Ok(exit::NIX_EVAL);
    }
    if code == exit::OK && named_blocked {
        eprintln!(
            "paranoid-harness: the configuration fails NixOS assertions (listed above), so it would not build; nothing was sandboxed"
        );
        return Ok(exit::ASSERTIONS);
    }
    Ok(code)
}

/// 130 interrupted; 1 any failure; 3/7 a skip (tool missing / environment) unless allowed; 0.
pub fn exit_code(r: &paranoid_sandbox::RunReport, allow_skips: bool) -> u8 {
    let any = |s: Status| {
        r.permutations
            .iter()
            .flat_map(|p| &p.checks)
            .any(|c| c.status == s)
    };
    if r.interrupted {
        exit::INTERRUPTED
    } else if any(Status::Fail) {
        exit::FAILED
    } else if !allow_skips && any(Status::Skipped) {
        match r.first_skip() {
            Some(SkipKind::MissingTool) => exit::MISSING_TOOL,
            _ => exit::ENVIRONMENT,
        }
    } else {
        exit::OK
    }
}

fn parse_checks(args: &SandboxArgs) -> Result<Vec<CheckId>> {
    let mut checks: Vec<CheckId> = match &args.checks {
        None => CheckId::DEFAULT.to_vec(),
        Some(list) => list
            .iter()
            .filter(|s| !s.is_empty())
            .map(|s| {
                CheckId::parse(s.trim()).ok_or_else(|| {
                    Error::Usage(format!(
                        "unknown check `{s}`; valid: {}",
                        CheckId::ALL
                            .iter()
                            .map(|c| c.name())
                            .collect::<Vec<_>>()
                            .join(",")
                    ))
                })
            })
            .collect::<Result<_>>()?,
    };
    if args.with_auditd {
        for c in [CheckId::Auditd, CheckId::Execwatch] {
            if !checks.contains(&c) {
                checks.push(c);
            }
        }
    }
    if checks.is_empty() {
        return Err(Error::Usage("--checks is empty".into()));
    }
    Ok(checks)
}

/// Items for --host / --module: one per host (with the modules on top), or one for the modules.
fn named_items(args: &SandboxArgs, sources: &mut BTreeMap<String, String>) -> Result<Vec<Item>> {
    let mut modules = vec![];
    for m in &args.module {
        modules.push(
            m.canonicalize()
                .map_err(|e| Error::Usage(format!("--module {}: {e}", m.display())))?,
        );
    }
    let shown = args
        .module
        .iter()
        .map(|m| m.display().to_string())
        .collect::<Vec<_>>()
        .join(" ");
    let mut items = vec![];
    if args.host.is_empty() && !modules.is_empty() {
        sources.insert("module".into(), format!("module {shown}"));
        items.push(Item {
            id: "module".into(),
            modules: modules.clone(),
            ..Default::default()
        });
    }
    for h in &args.host {
        let source = if modules.is_empty() {
            format!("host {h}")
        } else {
            format!("host {h} + module {shown}")
        };
        sources.insert(h.clone(), source);
        items.push(Item {
            id: h.clone(),
            host: Some(h.clone()),
            modules: modules.clone(),
            ..Default::default()
        });
    }
    Ok(items)
}

/// Items for the matrix options: the harness's plan over the catalogue, on the matrix fixture.
fn matrix_items(
    args: &SandboxArgs,
    flake: &Flake,
    eval: &EvalOptions,
    sources: &mut BTreeMap<String, String>,
) -> Result<Vec<Item>> {
    let cat = Catalogue::load(flake, eval.timeout)?;
    let strategy = Strategy::parse(
        args.strategy
            .as_deref()
            .unwrap_or(if args.samples.is_some() {
                "random"
            } else {
                "pairwise"
            }),
        args.samples,
        args.seed,
    )?;
    let mut pins = BTreeMap::new();
    for s in &args.set {
        let (k, v) = cat.parse_setting(s)?;
        pins.insert(k, v);
    }
    let rows = plan::plan(&cat, &strategy, &pins)?;
    let off = plan::all_off(&cat);
    Ok(rows
        .into_iter()
        .map(|row| {
            let on: Vec<String> = row
                .knobs
                .iter()
                .filter(|(k, v)| off.get(*k) != Some(*v))
                .map(|(k, v)| format!("{k}={}", plan::plain(v)))
                .collect();
            let kind = match &row.kind {
                RowKind::Constraint(c) => format!("constraint {c}"),
                RowKind::Profile(p) => format!("profile {p}"),
                RowKind::SwitchAlone(s) => format!("alone {s}"),
                RowKind::AreaKnob(s) => format!("area knob {s}"),
                RowKind::AllOff => "all off".into(),
                RowKind::AllOn => "all on".into(),
                RowKind::Generated => strategy.name().into(),
            };
            sources.insert(
                row.id.clone(),
                format!("matrix {} ({kind}) {{{}}}", row.id, on.join(", ")),
            );
            Item {
                id: row.id.clone(),
                fixture: Some("matrix".into()),
                knobs: row.knobs.clone(),
                constraint: row.constraint.clone(),
                without_impermanence: row.without_impermanence,
                ..Default::default()
            }
        })
        .collect())
}

/// A projection file: one projection object, or an evalBatch answer (a list of items).
fn read_projection_file(f: &Path) -> Result<Vec<Permutation>> {
    let text = std::fs::read_to_string(f)
        .map_err(|e| Error::Usage(format!("--projection {}: {e}", f.display())))?;
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| Error::Usage(format!("--projection {}: not JSON: {e}", f.display())))?;
    let stem = f
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "projection".into());
    let one = |id: String, p: Value| -> Result<Permutation> {
        if p.get("schema").and_then(Value::as_u64) != Some(1) || p.get("rendered").is_none() {
            return Err(Error::Usage(format!(
                "--projection {}: not a schema-1 projection (docs/harness.md)",
                f.display()
            )));
        }
        Ok(Permutation {
            id,
            source: format!("projection {}", f.display()),
            projection: p,
        })
    };
    match v {
        Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, it)| {
                let id = it
                    .get("id")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("{stem}-{i}"));
                let p = it.get("projection").cloned().ok_or_else(|| {
                    Error::Usage(format!(
                        "--projection {}: item {id} has no projection",
                        f.display()
                    ))
                })?;
                one(id, p)
            })
            .collect(),
        p => Ok(vec![one(stem, p)?]),
    }
}
