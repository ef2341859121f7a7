//! Running `nix`: finding it, per-process timeouts and memory caps, filtering its harmless
//! noise, classifying its failures, and the batched evaluation of many items over a pool
//! (docs/harness.md, "Nix entry points").
//!
//! One `nix eval` process evaluates a whole batch under `catch: true`; an item that fails inside
//! a batch, or every item of a batch whose process died (killed, timed out, garbage on stdout),
//! is re-run alone with `catch: false` so Nix's own message is recovered. Nothing else in the
//! run is lost.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use rayon::prelude::*;
use serde_json::{json, Value};

use crate::error::{Error, Result};

/// Lines Nix prints on every run here that say nothing about the evaluation.
const NOISE: &[&str] = &[
    "warning: the group 'nixbld' specified in 'build-users-group' does not exist",
    "(use '--show-trace' to show detailed location information)",
];

/// Substrings of Nix's stderr that mean an input could not be fetched.
const FETCH_FAILURES: &[&str] = &[
    "unable to download",
    "Couldn't resolve host",
    "Could not resolve host",
    "in offline mode",
    "cannot fetch",
    "unable to fetch",
    "error: cannot connect",
    "does not exist in the Nix store",
];

/// A directory holding a `flake.nix`.
#[derive(Debug, Clone)]
pub struct Flake {
    pub root: PathBuf,
}

impl Flake {
    /// Checks that `dir` is a directory with a `flake.nix` and makes its path absolute.
    pub fn open(dir: &Path) -> Result<Flake> {
        let root = dir
            .canonicalize()
            .map_err(|e| Error::Usage(format!("paranoid checkout {}: {e}", dir.display())))?;
        if !root.join("flake.nix").is_file() {
            return Err(Error::Usage(format!(
                "{} has no flake.nix: point --paranoid (or PARANOID_FLAKE) at the root of a paranoid checkout (or a flake that exports lib.harness)",
                root.display()
            )));
        }
        Ok(Flake { root })
    }

    /// `<root>#<attr>`, the installable Nix is given.
    pub fn attr(&self, attr: &str) -> String {
        format!("{}#{attr}", self.root.display())
    }
}

/// Which NixOS Nix evaluates items against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// The project's offline declaration of the upstream options (`lib.harness.evalBatch`).
    #[default]
    Surface,
    /// Full nixpkgs, `nixosSystem` per item (`lib.harness.evalBatchNixos`).
    Nixos,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Surface => "surface",
            Backend::Nixos => "nixos",
        }
    }
    fn entry_point(self) -> &'static str {
        match self {
            Backend::Surface => "lib.harness.evalBatch",
            Backend::Nixos => "lib.harness.evalBatchNixos",
        }
    }
}

/// One configuration to evaluate (the request item of docs/harness.md).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Item {
    pub id: String,
    pub fixture: Option<String>,
    pub host: Option<String>,
    pub modules: Vec<PathBuf>,
    pub knobs: BTreeMap<String, Value>,
    pub constraint: Option<String>,
    pub without_paranoid: bool,
    pub without_impermanence: bool,
}

impl Item {
    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "fixture": self.fixture,
            "host": self.host,
            // Nix reads them as absolute paths (`/. + p`).
            "modules": self.modules.iter().map(|m| std::path::absolute(m).unwrap_or_else(|_| m.clone()).display().to_string()).collect::<Vec<_>>(),
            "knobs": self.knobs,
            "constraint": self.constraint,
            "withoutParanoid": self.without_paranoid,
            "withoutImpermanence": self.without_impermanence,
        })
    }
}

/// What became of one item.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Projection(Value),
    Failed { message: String },
}

/// How to run the evaluation.
#[derive(Debug, Clone)]
pub struct EvalOptions {
    /// Concurrent `nix` processes (at least 1).
    pub jobs: usize,
    /// Items per `nix` process; 0 picks one from the item count and `jobs`.
    pub batch_size: usize,
    /// Wall-clock limit per `nix` process.
    pub timeout: Duration,
    /// Bound on the resident memory of all `nix` processes together: each gets
    /// `max_memory / jobs` bytes, kept by capping Nix's GC heap (`GC_MAXIMUM_HEAP_SIZE`) and
    /// enforced by killing a process whose RSS goes over (its items are then re-run alone).
    pub max_memory: Option<u64>,
    pub backend: Backend,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            jobs: 2,
            batch_size: 0,
            timeout: Duration::from_secs(300),
            max_memory: None,
            backend: Backend::Surface,
        }
    }
}

impl EvalOptions {
    /// The batch size used for `n` items.
    pub fn effective_batch_size(&self, n: usize) -> usize {
        if self.batch_size > 0 {
            return self.batch_size;
        }
        // One batch per job: Nix's start-up and its first evaluation (~70 ms, parsing every
        // file) are paid once per process, and per-item cost falls as a batch grows (measured:
        // ~32 ms/item at 8 per batch, ~18 ms at 128). Past 128 items, memory grows for no gain.
        let per = n.div_ceil(self.jobs.max(1));
        per.clamp(1, 128)
    }

    fn memory_cap_per_process(&self) -> Option<u64> {
        self.max_memory.map(|m| m / self.jobs.max(1) as u64)
    }
}

// ---------------------------------------------------------------------------------------------
// The pool's bound: more `nix` processes than the machine can run only thrash it.

/// Resident memory one `nix` process is budgeted for when `--max-memory` does not set its
/// share: an uncapped 100-item batch sits at ~450 MiB (measured).
pub const NIX_PROCESS_MEMORY: u64 = 512 << 20;
/// `nix` processes per core: evaluation is CPU-bound, and two per core cover start-up and I/O.
pub const NIX_PER_CORE: usize = 2;

/// How many concurrent jobs this machine takes, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolBound {
    pub max: usize,
    pub cores: usize,
    pub per_core: usize,
    /// Memory available to this process (MemAvailable, lowered by a cgroup limit), if known.
    pub memory: Option<u64>,
    pub per_job: u64,
}

impl PoolBound {
    /// `per_core` jobs per core, and as many jobs of `per_job` bytes as the available memory holds.
    pub fn of_machine(per_core: usize, per_job: u64) -> PoolBound {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        PoolBound::new(cores, available_memory(), per_core, per_job)
    }

    pub fn new(cores: usize, memory: Option<u64>, per_core: usize, per_job: u64) -> PoolBound {
        let by_cores = cores.max(1).saturating_mul(per_core.max(1));
        let by_memory = memory
            .map(|m| (m / per_job.max(1)) as usize)
            .unwrap_or(usize::MAX);
        PoolBound {
            max: by_cores.min(by_memory).max(1),
            cores,
            per_core,
            memory,
            per_job,
        }
    }

    /// `requested` within the bound, and the note to print when it was lowered.
    pub fn apply(&self, requested: usize, what: &str) -> (usize, Option<String>) {
        if requested <= self.max {
            return (requested, None);
        }
        let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
        let memory = match self.memory {
            Some(m) => format!(
                "{:.1} GiB of memory available (room for {} {what} of ~{} MiB)",
                gib(m),
                m / self.per_job.max(1),
                self.per_job >> 20
            ),
            None => "unknown available memory".into(),
        };
        (
            self.max,
            Some(format!(
                "--jobs {requested} capped to {}: this machine has {} cores (at most {} {what} per core) and {memory}",
                self.max, self.cores, self.per_core
            )),
        )
    }
}

/// MemAvailable from /proc/meminfo, lowered to what this process's cgroup (v2) may still use.
pub fn available_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kb: u64 = meminfo
        .lines()
        .find(|l| l.starts_with("MemAvailable:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    let mut avail = kb * 1024;
    let cgroup = std::fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("0::").map(|p| p.trim().to_string()))
        });
    if let Some(path) = cgroup {
        let dir = Path::new("/sys/fs/cgroup").join(path.trim_start_matches('/'));
        let read = |f: &str| {
            std::fs::read_to_string(dir.join(f))
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
        };
        if let (Some(max), Some(current)) = (read("memory.max"), read("memory.current")) {
            avail = avail.min(max.saturating_sub(current));
        }
    }
    Some(avail)
}

// ---------------------------------------------------------------------------------------------
// Interruption: Ctrl-C kills the children this process started (by PID) and lets the caller
// report what finished (the handler and its watchdog are in `crate::interrupt`).

// Counters for reports (what the runner had to do), process-wide.
static PROCESSES: AtomicUsize = AtomicUsize::new(0);
static OVER_MEMORY: AtomicUsize = AtomicUsize::new(0);
static TIMED_OUT: AtomicUsize = AtomicUsize::new(0);
static BATCHES_DIED: AtomicUsize = AtomicUsize::new(0);
static RERUN_ALONE: AtomicUsize = AtomicUsize::new(0);

/// What the runner did so far in this process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    /// `nix` processes started.
    pub processes: usize,
    /// Killed for going over their share of --max-memory.
    pub over_memory: usize,
    /// Killed at the per-process timeout.
    pub timed_out: usize,
    /// Batches whose process died or answered garbage (their items were re-run alone).
    pub batches_died: usize,
    /// Items re-run alone (failed inside a batch, or their batch died).
    pub rerun_alone: usize,
}

impl Stats {
    pub fn now() -> Stats {
        Stats {
            processes: PROCESSES.load(Ordering::SeqCst),
            over_memory: OVER_MEMORY.load(Ordering::SeqCst),
            timed_out: TIMED_OUT.load(Ordering::SeqCst),
            batches_died: BATCHES_DIED.load(Ordering::SeqCst),
            rerun_alone: RERUN_ALONE.load(Ordering::SeqCst),
        }
    }
    /// What happened since `earlier`.
    pub fn since(self, earlier: Stats) -> Stats {
        Stats {
            processes: self.processes - earlier.processes,
            over_memory: self.over_memory - earlier.over_memory,
            timed_out: self.timed_out - earlier.timed_out,
            batches_died: self.batches_died - earlier.batches_died,
            rerun_alone: self.rerun_alone - earlier.rerun_alone,
        }
    }
}

fn children() -> &'static Mutex<Vec<Arc<duct::Handle>>> {
    static CHILDREN: OnceLock<Mutex<Vec<Arc<duct::Handle>>>> = OnceLock::new();
    CHILDREN.get_or_init(|| Mutex::new(Vec::new()))
}

/// True once Ctrl-C (SIGINT/SIGTERM) was received.
pub fn interrupted() -> bool {
    crate::interrupt::interrupted()
}

/// Marks the run interrupted and kills every running `nix` child. Called by the signal handler.
pub fn interrupt() {
    crate::interrupt::interrupt();
}

/// Kills every running `nix` child of this process (by PID).
pub fn kill_children() {
    let list = children().lock().unwrap_or_else(|e| e.into_inner());
    for h in list.iter() {
        let _ = h.kill();
    }
}

/// Installs the Ctrl-C handler (once per process; see [`crate::interrupt`]).
pub fn install_interrupt_handler() {
    crate::interrupt::install();
}

// ---------------------------------------------------------------------------------------------
// Running one `nix` process.

/// Finds `nix` on PATH.
pub fn find_nix() -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join("nix");
        if is_executable(&candidate) {
            return Ok(candidate);
        }
    }
    Err(Error::MissingTool {
        tool: "nix".into(),
        hint: "Install it (Debian: `apt-get install nix-bin`; elsewhere see nixos.org/download) and make sure it is on PATH.".into(),
    })
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// How a `nix` process ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Ended {
    Exited(i32),
    /// Killed by a signal it did not ask for (OOM killer, someone's `kill`).
    Signalled,
    TimedOut(Duration),
    OverMemory {
        rss: u64,
        cap: u64,
    },
    Interrupted,
}

/// A finished `nix` process: its end, stdout, and stderr without the noise lines.
#[derive(Debug, Clone)]
pub struct NixRun {
    pub ended: Ended,
    pub stdout: Vec<u8>,
    pub stderr: String,
    pub elapsed: Duration,
}

impl NixRun {
    pub fn success(&self) -> bool {
        self.ended == Ended::Exited(0)
    }

    /// A one-paragraph reason for a failed run, for error messages.
    pub fn failure(&self) -> String {
        let what = match &self.ended {
            Ended::Exited(c) => format!("nix exited with status {c}"),
            Ended::Signalled => "nix was killed by a signal".to_string(),
            Ended::TimedOut(t) => format!(
                "nix ran past the {}s timeout and was killed",
                t.as_secs_f32()
            ),
            Ended::OverMemory { rss, cap } => format!(
                "nix used {} MiB, over its {} MiB share of --max-memory, and was killed",
                rss >> 20,
                cap >> 20
            ),
            Ended::Interrupted => "interrupted".to_string(),
        };
        if self.stderr.trim().is_empty() {
            what
        } else {
            format!("{what}:\n{}", self.stderr.trim_end())
        }
    }

    /// Whether stderr says a flake input could not be fetched.
    pub fn fetch_failed(&self) -> bool {
        FETCH_FAILURES.iter().any(|s| self.stderr.contains(s))
    }
}

/// Drops the lines Nix prints on every run here (the missing nixbld group, dirty git tree,
/// download retries) and keeps everything else, in order.
pub fn clean_stderr(raw: &str) -> String {
    raw.lines()
        .filter(|l| {
            let t = l.trim();
            let noise = NOISE.contains(&t)
                || (t.starts_with("warning: Git tree '") && t.ends_with("' is dirty"))
                || (t.starts_with("warning: error: unable to download") && t.contains("retrying"));
            !noise
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Where nixpkgs may have to be downloaded: give up after one attempt of a few seconds
/// instead of retrying for minutes (Nix's defaults), so "unreachable" is said promptly.
pub fn fail_fast_args() -> Vec<String> {
    [
        "--option",
        "connect-timeout",
        "5",
        "--option",
        "download-attempts",
        "1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The common arguments of every `nix` call: the experimental features, and the store when
/// this user evaluates in a private one ([`crate::store`]).
pub fn base_args() -> Vec<String> {
    base_args_for(crate::store::store())
}

/// [`base_args`] for a given store.
pub fn base_args_for(store: &crate::store::Store) -> Vec<String> {
    let mut args = vec![
        "--extra-experimental-features".into(),
        "nix-command flakes".into(),
    ];
    args.extend(crate::store::args(store));
    args
}

/// Runs `nix args...` with a wall-clock limit and an optional resident-memory cap, polling it
/// so Ctrl-C, the timeout and the cap can stop it by PID.
pub fn run_nix(args: &[String], timeout: Duration, mem_cap: Option<u64>) -> Result<NixRun> {
    let nix = find_nix()?;
    if interrupted() {
        return Ok(NixRun {
            ended: Ended::Interrupted,
            stdout: vec![],
            stderr: String::new(),
            elapsed: Duration::ZERO,
        });
    }
    let started = Instant::now();
    let mut cmd = duct::cmd(&nix, args);
    if let Some(cap) = mem_cap {
        // Nix's garbage collector (Boehm) grows its heap lazily: a 100-item batch sits at
        // ~450 MiB resident, mostly garbage, yet runs as fast in a 64 MiB heap (measured). So
        // the bound is first kept by capping the heap, leaving ~32 MiB for the rest of the
        // process; the RSS watchdog below is the backstop.
        let heap = cap.saturating_sub(32 << 20).max(16 << 20);
        cmd = cmd.env("GC_MAXIMUM_HEAP_SIZE", heap.to_string());
    }
    let handle = cmd
        .stdin_null()
        .stdout_capture()
        .stderr_capture()
        .unchecked()
        .start()
        .map_err(|e| Error::Other(format!("could not start {}: {e}", nix.display())))?;
    PROCESSES.fetch_add(1, Ordering::SeqCst);
    let handle = Arc::new(handle);
    children()
        .lock()
        .expect("children lock")
        .push(handle.clone());
    let pids = handle.pids();
    let mut forced: Option<Ended> = None;
    // A waiter thread reports the exit at once; this thread only watches the clock, the memory
    // and Ctrl-C in between. (Polling with sleeps would add up to a poll interval to every
    // process, which is most unfair to the one-process-per-permutation baseline of `bench`.)
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = {
        let handle = handle.clone();
        std::thread::spawn(move || {
            let _ = tx.send(handle.wait().cloned());
        })
    };
    let output = loop {
        match rx.recv_timeout(Duration::from_millis(20)) {
            Ok(result) => break result,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                break Err(std::io::Error::other(
                    "the waiter thread ended without an answer",
                ))
            }
        }
        if forced.is_none() {
            if interrupted() {
                forced = Some(Ended::Interrupted);
            } else if started.elapsed() > timeout {
                forced = Some(Ended::TimedOut(timeout));
            } else if let Some(cap) = mem_cap {
                let rss: u64 = pids.iter().filter_map(|p| rss_bytes(*p)).sum();
                if rss > cap {
                    forced = Some(Ended::OverMemory { rss, cap });
                }
            }
            if forced.is_some() {
                let _ = handle.kill();
            }
        }
    };
    let _ = waiter.join();
    children()
        .lock()
        .expect("children lock")
        .retain(|h| !Arc::ptr_eq(h, &handle));
    let output = output.map_err(|e| Error::Other(format!("waiting for {}: {e}", nix.display())))?;
    match forced {
        Some(Ended::OverMemory { .. }) => OVER_MEMORY.fetch_add(1, Ordering::SeqCst),
        Some(Ended::TimedOut(_)) => TIMED_OUT.fetch_add(1, Ordering::SeqCst),
        _ => 0,
    };
    let ended = match forced {
        Some(f) => f,
        None => match output.status.code() {
            Some(c) => Ended::Exited(c),
            None => {
                if interrupted() {
                    Ended::Interrupted
                } else {
                    Ended::Signalled
                }
            }
        },
    };
    Ok(NixRun {
        ended,
        stdout: output.stdout,
        stderr: clean_stderr(&String::from_utf8_lossy(&output.stderr)),
        elapsed: started.elapsed(),
    })
}

fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Whether a failed run says something about the whole run (inputs, the store), not one item.
fn run_level_failure(run: &NixRun) -> bool {
    run.fetch_failed() || crate::store::denied(&run.stderr)
}

/// Turns a failed run that was not about one item into the run-level error it means.
fn classify_run_failure(run: &NixRun, backend: Backend, context: &str) -> Error {
    if crate::store::denied(&run.stderr) {
        let first = run
            .stderr
            .lines()
            .find(|l| l.trim_start().starts_with("error:"))
            .unwrap_or("")
            .trim()
            .to_string();
        return Error::Environment(format!(
            "Nix may not use its store here, so it cannot evaluate {context} ({first}). {}",
            crate::store::WHAT_IS_NEEDED
        ));
    }
    if run.fetch_failed() {
        let first = run
            .stderr
            .lines()
            .find(|l| l.starts_with("error:"))
            .unwrap_or("")
            .to_string();
        return match backend {
            Backend::Nixos => Error::Environment(format!(
                "the nixos backend needs the flake's pinned nixpkgs, which cannot be fetched here ({first}). \
                 Use `--backend surface` (offline), or run where nixpkgs is reachable or already in the Nix store."
            )),
            Backend::Surface => Error::InputsUnresolvable(format!(
                "the flake's pinned inputs cannot be resolved while evaluating {context}: {first}\n\
                 Go online (github.com), or seed the Nix store with the locked inputs from local git copies: \
                 `.ci/seed-inputs nixpkgs-lib=/path/to/nixpkgs.lib impermanence=/path/to/impermanence` (see the README).{}",
                match crate::store::store() {
                    crate::store::Store::Private(dir) => format!(
                        " This user evaluates in the private store {}, which is seeded from /nix/store: seed /nix/store as root, and the inputs are copied from there.",
                        dir.display()
                    ),
                    crate::store::Store::System => String::new(),
                }
            )),
        };
    }
    if run.ended == Ended::Interrupted {
        return Error::Interrupted(format!("interrupted while evaluating {context}"));
    }
    Error::NixEval {
        context: context.to_string(),
        message: run.failure(),
    }
}

/// `nix eval --json <flake>#<attr>`: a value of the flake, parsed.
pub fn eval_attr(flake: &Flake, attr: &str, timeout: Duration) -> Result<Value> {
    eval_attr_applied(flake, attr, None, timeout)
}

/// `nix eval --json <flake>#<attr> [--apply <function>]`, parsed.
pub fn eval_attr_applied(
    flake: &Flake,
    attr: &str,
    apply: Option<&str>,
    timeout: Duration,
) -> Result<Value> {
    crate::store::prepare(&flake.root)?;
    let mut args = base_args();
    args.extend(["eval".into(), "--json".into(), flake.attr(attr)]);
    if let Some(f) = apply {
        args.extend(["--apply".into(), f.into()]);
    }
    let run = run_nix(&args, timeout, None)?;
    if !run.success() {
        return Err(classify_run_failure(
            &run,
            Backend::Surface,
            &flake.attr(attr),
        ));
    }
    serde_json::from_slice(&run.stdout).map_err(|e| Error::NixEval {
        context: flake.attr(attr),
        message: format!(
            "nix printed something that is not JSON ({e}): {}",
            preview(&run.stdout)
        ),
    })
}

fn preview(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(bytes);
    let s = s.trim();
    if s.chars().count() > 200 {
        format!("{}…", s.chars().take(200).collect::<String>())
    } else {
        s.to_string()
    }
}

// ---------------------------------------------------------------------------------------------
// Batches.

/// Writes a request file and evaluates it in one `nix eval` process.
pub fn run_request(
    flake: &Flake,
    items: &[Item],
    catch: bool,
    opts: &EvalOptions,
) -> Result<NixRun> {
    crate::store::prepare(&flake.root)?;
    let dir = tempfile::Builder::new()
        .prefix("paranoid-harness-")
        .tempdir()
        .map_err(|e| Error::Other(format!("temporary directory: {e}")))?;
    let req_path = dir.path().join("request.json");
    let request = json!({
        "backend": opts.backend.name(),
        "catch": catch,
        "items": items.iter().map(Item::to_json).collect::<Vec<_>>(),
    });
    let mut f = std::fs::File::create(&req_path)
        .map_err(|e| Error::Other(format!("{}: {e}", req_path.display())))?;
    f.write_all(request.to_string().as_bytes())
        .map_err(|e| Error::Other(format!("{}: {e}", req_path.display())))?;
    drop(f);
    let mut args = base_args();
    args.extend([
        "eval".into(),
        "--json".into(),
        "--impure".into(),
        flake.attr(opts.backend.entry_point()),
        "--apply".into(),
        format!(
            "f: f (builtins.fromJSON (builtins.readFile {}))",
            nix_string(&req_path.display().to_string())
        ),
    ]);
    if opts.backend == Backend::Nixos {
        // Fail fast instead of retrying downloads for minutes when nixpkgs is unreachable.
        args.extend(fail_fast_args());
    }
    run_nix(&args, opts.timeout, opts.memory_cap_per_process())
}

fn nix_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' | '\\' | '$' => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Parses a batch answer: `[ { id, ok, projection? } ]`, one per requested id.
fn parse_answer(
    stdout: &[u8],
    items: &[Item],
) -> std::result::Result<BTreeMap<String, Option<Value>>, String> {
    let v: Value = serde_json::from_slice(stdout).map_err(|e| {
        format!(
            "nix printed something that is not JSON ({e}): {}",
            preview(stdout)
        )
    })?;
    let arr = v
        .as_array()
        .ok_or_else(|| format!("nix's answer is not a list: {}", preview(stdout)))?;
    let mut out = BTreeMap::new();
    for entry in arr {
        let id = entry.get("id").and_then(Value::as_str).ok_or_else(|| {
            format!(
                "an answer entry has no id: {}",
                preview(entry.to_string().as_bytes())
            )
        })?;
        let ok = entry
            .get("ok")
            .and_then(Value::as_bool)
            .ok_or_else(|| format!("answer for {id} has no ok flag"))?;
        let projection = if ok {
            Some(
                entry
                    .get("projection")
                    .cloned()
                    .ok_or_else(|| format!("answer for {id} is ok but has no projection"))?,
            )
        } else {
            None
        };
        out.insert(id.to_string(), projection);
    }
    for item in items {
        if !out.contains_key(&item.id) {
            return Err(format!("nix's answer lacks item {}", item.id));
        }
    }
    Ok(out)
}

/// Evaluates one item alone with `catch: false`, so a failure carries Nix's message.
pub fn evaluate_alone(flake: &Flake, item: &Item, opts: &EvalOptions) -> Result<Outcome> {
    let run = run_request(flake, std::slice::from_ref(item), false, opts)?;
    if run.ended == Ended::Interrupted {
        return Err(Error::Interrupted(format!(
            "interrupted while evaluating {}",
            item.id
        )));
    }
    if run.success() {
        match parse_answer(&run.stdout, std::slice::from_ref(item)) {
            Ok(mut answer) => {
                if let Some(Some(p)) = answer.remove(&item.id) {
                    return Ok(Outcome::Projection(p));
                }
                return Ok(Outcome::Failed {
                    message: "nix answered ok: false without an error".into(),
                });
            }
            Err(e) => return Ok(Outcome::Failed { message: e }),
        }
    }
    if run_level_failure(&run) {
        return Err(classify_run_failure(&run, opts.backend, &item.id));
    }
    Ok(Outcome::Failed {
        message: run.failure(),
    })
}

/// Evaluates `items` in batches over `opts.jobs` processes. `on_done` is called as each item
/// finishes (from pool threads). Returns every finished item in input order; after Ctrl-C
/// (see [`interrupted`]) the unfinished ones are missing. Errors only for what sinks the whole
/// run: `nix` missing, inputs unresolvable, bad options.
pub fn evaluate(
    flake: &Flake,
    items: Vec<Item>,
    opts: &EvalOptions,
    on_done: &(dyn Fn(&str, &Outcome) + Sync),
) -> Result<Vec<(String, Outcome)>> {
    let order: BTreeMap<String, usize> = items
        .iter()
        .enumerate()
        .map(|(i, it)| (it.id.clone(), i))
        .collect();
    let mut all = evaluate_inner(flake, items, opts, on_done, true)?;
    all.sort_by_key(|(id, _)| order[id]);
    Ok(all)
}

/// Like [`evaluate`], but keeps nothing: `on_done` sees each outcome and it is dropped (for
/// plans too large to hold every projection). Returns how many items finished.
pub fn evaluate_streaming(
    flake: &Flake,
    items: Vec<Item>,
    opts: &EvalOptions,
    on_done: &(dyn Fn(&str, &Outcome) + Sync),
) -> Result<usize> {
    let counter = std::sync::atomic::AtomicUsize::new(0);
    let count = |id: &str, o: &Outcome| {
        counter.fetch_add(1, Ordering::SeqCst);
        on_done(id, o)
    };
    evaluate_inner(flake, items, opts, &count, false)?;
    Ok(counter.load(Ordering::SeqCst))
}

fn evaluate_inner(
    flake: &Flake,
    items: Vec<Item>,
    opts: &EvalOptions,
    on_done: &(dyn Fn(&str, &Outcome) + Sync),
    keep: bool,
) -> Result<Vec<(String, Outcome)>> {
    if opts.jobs == 0 {
        return Err(Error::Usage("--jobs must be at least 1".into()));
    }
    // A Flake built by hand skips Flake::open's check.
    Flake::open(&flake.root)?;
    find_nix()?;
    let mut seen = std::collections::BTreeSet::new();
    for item in &items {
        if !seen.insert(item.id.as_str()) {
            return Err(Error::Usage(format!("item id {} appears twice", item.id)));
        }
    }
    if items.is_empty() {
        return Ok(vec![]);
    }
    let size = opts.effective_batch_size(items.len());
    let batches: Vec<Vec<Item>> = items.chunks(size).map(|c| c.to_vec()).collect();
    // Never more threads than batches, nor than the cores can use (the command line caps
    // --jobs with a note first; this keeps library callers from thrashing the machine too).
    let threads = opts
        .jobs
        .min(batches.len())
        .min(
            PoolBound::new(
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1),
                None,
                NIX_PER_CORE,
                NIX_PROCESS_MEMORY,
            )
            .max,
        )
        .max(1);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("nix-{i}"))
        .build()
        .map_err(|e| Error::Other(format!("thread pool: {e}")))?;
    let results: Vec<Result<Vec<(String, Outcome)>>> = pool.install(|| {
        batches
            .into_par_iter()
            .with_max_len(1)
            .map(|b| evaluate_batch(flake, b, opts, on_done, keep))
            .collect()
    });
    let mut all = Vec::new();
    let mut first_err = None;
    for r in results {
        match r {
            Ok(v) => all.extend(v),
            Err(Error::Interrupted(_)) => {}
            Err(e) => {
                if first_err.is_none() {
                    first_err = Some(e);
                }
            }
        }
    }
    if let Some(e) = first_err {
        return Err(e);
    }
    Ok(all)
}

fn evaluate_batch(
    flake: &Flake,
    batch: Vec<Item>,
    opts: &EvalOptions,
    on_done: &(dyn Fn(&str, &Outcome) + Sync),
    keep: bool,
) -> Result<Vec<(String, Outcome)>> {
    let mut done = Vec::new();
    let mut finish = |id: &str, o: Outcome| {
        on_done(id, &o);
        if keep {
            done.push((id.to_string(), o));
        }
    };
    if interrupted() {
        return Ok(vec![]);
    }
    let run = run_request(flake, &batch, true, opts)?;
    let mut retry: Vec<&Item> = Vec::new();
    let mut batch_note: Option<String> = None;
    match run.success().then(|| parse_answer(&run.stdout, &batch)) {
        Some(Ok(mut answer)) => {
            for item in &batch {
                match answer.remove(&item.id).flatten() {
                    Some(p) => finish(&item.id, Outcome::Projection(p)),
                    None => retry.push(item),
                }
            }
        }
        other => {
            if run.ended == Ended::Interrupted {
                return Ok(vec![]);
            }
            if run_level_failure(&run) {
                return Err(classify_run_failure(
                    &run,
                    opts.backend,
                    &format!("a batch of {} items", batch.len()),
                ));
            }
            BATCHES_DIED.fetch_add(1, Ordering::SeqCst);
            batch_note = Some(match other {
                Some(Err(garbage)) => garbage,
                _ => run.failure(),
            });
            retry.extend(batch.iter());
        }
    }
    // Alone, with catch = false: Nix's own message. When the whole batch died, an item that
    // now succeeds was innocent; one that fails also carries why its batch died.
    for item in retry {
        if interrupted() {
            break;
        }
        RERUN_ALONE.fetch_add(1, Ordering::SeqCst);
        let o = match evaluate_alone(flake, item, opts) {
            Ok(Outcome::Failed { message }) if batch.len() > 1 && batch_note.is_some() => {
                Outcome::Failed {
                    message: format!(
                        "{message}\n(its batch of {} items had died: {})",
                        batch.len(),
                        first_line(batch_note.as_deref().unwrap_or(""))
                    ),
                }
            }
            Ok(o) => o,
            Err(Error::Interrupted(_)) => break,
            Err(e) => return Err(e),
        };
        finish(&item.id, o);
    }
    Ok(done)
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

/// Whether the flake's pinned nixpkgs can be had (in the store, or fetched within seconds);
/// the nixos backend says so up front (exit 7) instead of hanging on downloads.
pub fn probe_nixpkgs(flake: &Flake) -> Result<()> {
    crate::store::prepare(&flake.root)?;
    let mut args = base_args();
    args.extend(["eval".into(), "--impure".into()]);
    args.extend(fail_fast_args());
    args.extend([
        "--expr".into(),
        format!(
            "(builtins.getFlake {}).inputs.nixpkgs.outPath",
            nix_string(&flake.root.display().to_string())
        ),
    ]);
    let run = run_nix(&args, Duration::from_secs(120), None)?;
    if run.success() {
        return Ok(());
    }
    let first = run
        .stderr
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or("")
        .trim()
        .to_string();
    Err(Error::Environment(format!(
        "the nixos backend needs the flake's pinned nixpkgs, which is not available here ({}). \
         Use `--backend surface` (offline), or run where nixpkgs can be fetched or is already in the Nix store.",
        if first.is_empty() { run.failure() } else { first }
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_is_dropped_and_errors_kept() {
        let raw = "warning: the group 'nixbld' specified in 'build-users-group' does not exist\n\
                   warning: Git tree '/x' is dirty\n\
                   error: undefined variable 'foo'\n\
                   (use '--show-trace' to show detailed location information)\n";
        assert_eq!(clean_stderr(raw), "error: undefined variable 'foo'\n");
    }

    #[test]
    fn default_batch_size_keeps_every_job_busy() {
        let o = EvalOptions {
            jobs: 2,
            ..Default::default()
        };
        assert_eq!(o.effective_batch_size(100), 50);
        assert_eq!(o.effective_batch_size(1), 1);
        assert_eq!(o.effective_batch_size(10_000), 128);
        let o = EvalOptions { batch_size: 7, ..o };
        assert_eq!(o.effective_batch_size(100), 7);
    }

    #[test]
    fn answers_missing_an_item_are_rejected() {
        let items = vec![
            Item {
                id: "a".into(),
                ..Default::default()
            },
            Item {
                id: "b".into(),
                ..Default::default()
            },
        ];
        let r = parse_answer(br#"[{"id":"a","ok":true,"projection":{}}]"#, &items);
        assert!(r.unwrap_err().contains("lacks item b"));
        let r = parse_answer(b"hello", &items);
        assert!(r.unwrap_err().contains("not JSON"));
        let ok = parse_answer(
            br#"[{"id":"a","ok":true,"projection":{}},{"id":"b","ok":false}]"#,
            &items,
        )
        .unwrap();
        assert!(ok["b"].is_none());
    }

    #[test]
    fn the_pool_is_bounded_by_cores_and_memory() {
        let b = PoolBound::new(2, Some(20 << 30), NIX_PER_CORE, NIX_PROCESS_MEMORY);
        assert_eq!(b.max, 4, "2 cores, 2 per core");
        assert_eq!(b.apply(3, "nix processes"), (3, None));
        let (jobs, note) = b.apply(100_000, "nix processes");
        assert_eq!(jobs, 4);
        let note = note.unwrap();
        assert!(
            note.contains("--jobs 100000 capped to 4")
                && note.contains("2 cores")
                && note.contains("20.0 GiB")
                && note.contains("room for 40 nix processes of ~512 MiB"),
            "{note}"
        );
        let tight = PoolBound::new(64, Some(1 << 30), NIX_PER_CORE, NIX_PROCESS_MEMORY);
        assert_eq!(tight.max, 2, "memory for two processes");
        let none = PoolBound::new(8, Some(1 << 20), NIX_PER_CORE, NIX_PROCESS_MEMORY);
        assert_eq!(none.max, 1, "always at least one");
        assert!(available_memory().is_some_and(|m| m > 0));
    }

    #[test]
    fn nix_strings_are_escaped() {
        assert_eq!(nix_string(r#"/tmp/a"b$c\d"#), r#""/tmp/a\"b\$c\\d""#);
    }
}
