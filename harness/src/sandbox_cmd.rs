//! `paranoid-harness sandbox`: evaluate the chosen permutations with Nix, hand their
//! projections to the sandbox tier (crate paranoid-sandbox), print the report, map the
//! outcome to an exit code (docs/harness.md, docs/sandbox.md).

use crate::error::{exit, Error, Result};
use clap::{Args, ValueEnum};
use paranoid_sandbox::model::{SkipKind, Status};
use paranoid_sandbox::{report, CheckId, Options, Permutation};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
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
    /// The paranoid flake (a directory with flake.nix); default $PARANOID_FLAKE, or the nearest
    /// flake.nix above the current directory.
    #[arg(long, value_name = "DIR")]
    pub flake: Option<PathBuf>,
    /// Checks running at the same time (they mostly wait on daemons and timeouts).
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Exit 0 even when a check was skipped (a tool missing, not root...).
    #[arg(long)]
    pub allow_skips: bool,
    /// Comma-separated checks to run: sshd,ssh-audit,nix-daemon,mounts,firewall,units (and auditd).
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub checks: Option<Vec<String>>,
    /// Also run the auditd check (loads a uid-scoped execve rule into the kernel for a moment).
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

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: std::os::raw::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

fn state_dir(args: &SandboxArgs) -> PathBuf {
    args.state_dir
        .clone()
        .or_else(|| std::env::var_os("PARANOID_SANDBOX_STATE_DIR").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(paranoid_sandbox::cleanup::DEFAULT_STATE_DIR))
}

pub fn run(args: SandboxArgs) -> Result<u8> {
    if args.sweep {
        if !paranoid_sandbox::sys::is_root() {
            return Err(Error::Environment("--sweep needs root: it removes users, network namespaces and processes".into()));
        }
        let swept = paranoid_sandbox::cleanup::sweep(&state_dir(&args), &paranoid_sandbox::Cancel::new());
        for l in &swept {
            println!("{l}");
        }
        if swept.is_empty() {
            println!("nothing left behind by killed runs in {}", state_dir(&args).display());
        }
        return Ok(if swept.iter().any(|l| l.contains("could not")) { exit::FAILED } else { exit::OK });
    }
    let checks = parse_checks(&args)?;
    if args.jobs == Some(0) {
        return Err(Error::Usage("--jobs must be at least 1".into()));
    }
    let matrix = args.strategy.is_some() || args.samples.is_some() || args.seed.is_some() || !args.set.is_empty();
    if args.host.is_empty() && args.module.is_empty() && args.projection.is_empty() && !matrix {
        return Err(Error::Usage("say what to sandbox: --host NAME, --module FILE, --projection FILE or matrix options (--strategy pairwise)".into()));
    }
    let started = Instant::now();
    let mut perms = vec![];
    for f in &args.projection {
        perms.extend(read_projection_file(f)?);
    }
    let needs_nix = !args.host.is_empty() || !args.module.is_empty() || matrix;
    if needs_nix {
        let flake = find_flake(args.flake.as_deref())?;
        let items = items_for(&args, matrix, &flake)?;
        perms.extend(evaluate(&flake, items, Duration::from_secs(args.timeout))?);
    }
    let eval_ms = started.elapsed().as_millis();
    let (runnable, blocked): (Vec<Permutation>, Vec<Permutation>) =
        perms.into_iter().partition(|p| args.ignore_assertions || p.assertions().is_empty());
    // A configuration the user named that would not build is an error (exit 6, as `eval`);
    // matrix rows that must be refused (constraints) are expected to fail their assertions.
    let named_blocked = blocked.iter().any(|p| !p.source.starts_with("matrix "));

    let cancel = paranoid_sandbox::Cancel::from_flag(Arc::new(AtomicBool::new(false)));
    paranoid_sandbox::sys::on_sigint(on_sigint);
    {
        let c = cancel.clone();
        std::thread::spawn(move || loop {
            if INTERRUPTED.load(Ordering::SeqCst) {
                c.cancel();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        });
    }
    let jobs = args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get() * 2).unwrap_or(4).max(4));
    let opts = Options {
        jobs,
        checks,
        state_dir: state_dir(&args),
        cancel,
    };
    let progress = args.format == Format::Human && std::io::stderr().is_terminal();
    let on_done = |p: &Permutation, r: &paranoid_sandbox::CheckResult| {
        if progress {
            eprintln!("  {} {} {} ({} ms)", p.id, r.check, r.status.name(), r.duration_ms);
        }
    };
    let mut report = paranoid_sandbox::run(&runnable, &opts, &on_done).map_err(|e| Error::Environment(e.to_string()))?;
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
    if code == exit::OK && named_blocked {
        eprintln!("paranoid-harness: the configuration fails NixOS assertions (listed above), so it would not build; nothing was sandboxed");
        return Ok(exit::ASSERTIONS);
    }
    Ok(code)
}

/// 130 interrupted; 1 any failure; 3/7 a skip (tool missing / environment) unless allowed; 0.
pub fn exit_code(r: &paranoid_sandbox::RunReport, allow_skips: bool) -> u8 {
    let any = |s: Status| r.permutations.iter().flat_map(|p| &p.checks).any(|c| c.status == s);
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
                        CheckId::ALL.iter().map(|c| c.name()).collect::<Vec<_>>().join(",")
                    ))
                })
            })
            .collect::<Result<_>>()?,
    };
    if args.with_auditd && !checks.contains(&CheckId::Auditd) {
        checks.push(CheckId::Auditd);
    }
    if checks.is_empty() {
        return Err(Error::Usage("--checks is empty".into()));
    }
    Ok(checks)
}

fn find_flake(given: Option<&Path>) -> Result<PathBuf> {
    let dir = match given {
        Some(d) => d.to_path_buf(),
        None => match std::env::var_os("PARANOID_FLAKE") {
            Some(d) => PathBuf::from(d),
            None => {
                let cwd = std::env::current_dir().map_err(|e| Error::Usage(format!("no current directory: {e}")))?;
                cwd.ancestors()
                    .find(|d| d.join("flake.nix").is_file())
                    .map(Path::to_path_buf)
                    .ok_or_else(|| Error::Usage("no flake.nix above the current directory; pass --flake DIR".into()))?
            }
        },
    };
    if !dir.join("flake.nix").is_file() {
        return Err(Error::Usage(format!("{} has no flake.nix; pass --flake with paranoid's checkout", dir.display())));
    }
    dir.canonicalize().map_err(|e| Error::Usage(format!("{}: {e}", dir.display())))
}

/// One evaluation request item (docs/harness.md).
#[derive(Clone, Debug)]
struct Item {
    id: String,
    source: String,
    json: Value,
}

fn items_for(args: &SandboxArgs, matrix: bool, _flake: &Path) -> Result<Vec<Item>> {
    let mut modules = vec![];
    for m in &args.module {
        let abs = m.canonicalize().map_err(|e| Error::Usage(format!("--module {}: {e}", m.display())))?;
        modules.push(abs.to_string_lossy().into_owned());
    }
    let mut items = vec![];
    if args.host.is_empty() && !modules.is_empty() {
        items.push(Item {
            id: "module".into(),
            source: format!("module {}", args.module.iter().map(|m| m.display().to_string()).collect::<Vec<_>>().join(" ")),
            json: json!({ "id": "module", "modules": modules }),
        });
    }
    for h in &args.host {
        let source = if modules.is_empty() {
            format!("host {h}")
        } else {
            format!("host {h} + module {}", args.module.iter().map(|m| m.display().to_string()).collect::<Vec<_>>().join(" "))
        };
        items.push(Item { id: h.clone(), source, json: json!({ "id": h, "host": h, "modules": modules }) });
    }
    if matrix {
        return Err(Error::Usage(
            "matrix options need the plan module of the harness core, which is not merged into this branch yet".into(),
        ));
    }
    Ok(items)
}

/// Evaluate items with one batched `nix eval` (`lib.harness.evalBatch`); items that fail are
/// re-run alone without `catch` to recover Nix's message.
fn evaluate(flake: &Path, items: Vec<Item>, timeout: Duration) -> Result<Vec<Permutation>> {
    if items.is_empty() {
        return Ok(vec![]);
    }
    let answer = eval_batch(flake, &items.iter().map(|i| i.json.clone()).collect::<Vec<_>>(), true, timeout)?;
    let mut by_id: BTreeMap<String, Value> = BTreeMap::new();
    for a in answer.as_array().cloned().unwrap_or_default() {
        if let Some(id) = a.get("id").and_then(Value::as_str) {
            by_id.insert(id.to_string(), a);
        }
    }
    let mut out = vec![];
    for it in items {
        let a = by_id.get(&it.id);
        match a.filter(|a| a.get("ok") == Some(&Value::Bool(true))).and_then(|a| a.get("projection")) {
            Some(p) => out.push(Permutation { id: it.id.clone(), source: it.source.clone(), projection: p.clone() }),
            None => {
                // Nix's own message: evaluate alone without tryEval.
                let e = eval_batch(flake, std::slice::from_ref(&it.json), false, timeout);
                let message = match e {
                    Err(Error::NixEval { message, .. }) => message,
                    Err(other) => return Err(other),
                    Ok(_) => "evaluation failed inside tryEval (an assertion or throw)".into(),
                };
                return Err(Error::NixEval { context: it.source.clone(), message });
            }
        }
    }
    Ok(out)
}

fn eval_batch(flake: &Path, items: &[Value], catch: bool, timeout: Duration) -> Result<Value> {
    let req = std::env::temp_dir().join(format!("paranoid-sandbox-req-{}-{}.json", std::process::id(), paranoid_sandbox::context::random_hex(8)));
    std::fs::write(&req, json!({ "catch": catch, "items": items }).to_string()).map_err(|e| Error::Other(format!("{}: {e}", req.display())))?;
    let nix = paranoid_sandbox::exec::which("nix")
        .ok_or_else(|| Error::MissingTool { tool: "nix".into(), hint: "Install it: apt-get install nix-bin".into() })?;
    let apply = format!("f: f (builtins.fromJSON (builtins.readFile \"{}\"))", req.display());
    let mut child = Command::new(nix)
        .args(["--extra-experimental-features", "nix-command flakes", "eval", "--json", "--impure"])
        .arg(format!("{}#lib.harness.evalBatch", flake.display()))
        .args(["--apply", &apply])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| Error::Other(format!("cannot start nix: {e}")))?;
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    let so = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(o) = out.as_mut() {
            let _ = std::io::Read::read_to_string(o, &mut s);
        }
        s
    });
    let se = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(o) = err.as_mut() {
            let _ = std::io::Read::read_to_string(o, &mut s);
        }
        s
    });
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().map_err(|e| Error::Other(e.to_string()))? {
            break Some(s);
        }
        if t0.elapsed() > timeout || INTERRUPTED.load(Ordering::SeqCst) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let _ = std::fs::remove_file(&req);
    let stdout = so.join().unwrap_or_default();
    let stderr: String = se
        .join()
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.contains("the group 'nixbld' specified in 'build-users-group' does not exist"))
        .collect::<Vec<_>>()
        .join("\n");
    match status {
        None if INTERRUPTED.load(Ordering::SeqCst) => Err(Error::Other("interrupted during evaluation".into())),
        None => Err(Error::NixEval { context: "the sandbox permutations".into(), message: format!("nix eval timed out after {} s", timeout.as_secs()) }),
        Some(s) if !s.success() => {
            if stderr.contains("unable to download") || stderr.contains("Could not resolve host") {
                return Err(Error::InputsUnresolvable(format!("the flake's inputs cannot be fetched here: {stderr}")));
            }
            Err(Error::NixEval { context: "the sandbox permutations".into(), message: stderr })
        }
        Some(_) => serde_json::from_str(&stdout).map_err(|e| Error::NixEval { context: "the sandbox permutations".into(), message: format!("nix printed something that is not JSON ({e})") }),
    }
}

/// A projection file: one projection object, or an evalBatch answer (a list of items).
fn read_projection_file(f: &Path) -> Result<Vec<Permutation>> {
    let text = std::fs::read_to_string(f).map_err(|e| Error::Usage(format!("--projection {}: {e}", f.display())))?;
    let v: Value = serde_json::from_str(&text).map_err(|e| Error::Usage(format!("--projection {}: not JSON: {e}", f.display())))?;
    let stem = f.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "projection".into());
    let one = |id: String, p: Value| -> Result<Permutation> {
        if p.get("schema").and_then(Value::as_u64) != Some(1) || p.get("rendered").is_none() {
            return Err(Error::Usage(format!("--projection {}: not a schema-1 projection (docs/harness.md)", f.display())));
        }
        Ok(Permutation { id, source: format!("projection {}", f.display()), projection: p })
    };
    match v {
        Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, it)| {
                let id = it.get("id").and_then(Value::as_str).map(str::to_string).unwrap_or_else(|| format!("{stem}-{i}"));
                let p = it.get("projection").cloned().ok_or_else(|| Error::Usage(format!("--projection {}: item {id} has no projection", f.display())))?;
                one(id, p)
            })
            .collect(),
        p => Ok(vec![one(stem, p)?]),
    }
}
