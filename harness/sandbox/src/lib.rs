//! Sandbox tier: checks a rendered configuration with the real programs (issue 4). Each
//! evaluated permutation's projection (docs/harness.md) is judged by sshd, ssh, ssh-audit,
//! nix-daemon, mount, nft, systemd-analyze, sudo's and doas's parsers and auditd in throwaway namespaces, users and directories;
//! `run` schedules the checks over `--jobs` workers and returns a `RunReport` that the
//! reporters (`report`) print. See docs/sandbox.md.

pub mod checks;
pub mod cleanup;
pub mod context;
pub mod exec;
pub mod model;
pub mod net;
pub mod projection;
pub mod sys;

pub use model::{CheckId, CheckResult, RunReport, Status};
pub use projection::Permutation;
pub mod report;

use checks::ssh::SshShared;
use cleanup::Registry;
use context::{Ctx, Tools};
pub use exec::Cancel;
use model::PermutationReport;
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

/// How to run the sandbox tier.
#[derive(Clone)]
pub struct Options {
    /// Checks running at the same time (each mostly waits on daemons and timeouts).
    pub jobs: usize,
    pub checks: Vec<CheckId>,
    /// Journals, locks and per-run work directories (root-owned, not world-writable).
    pub state_dir: PathBuf,
    pub cancel: Cancel,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            jobs: 4,
            checks: CheckId::DEFAULT.to_vec(),
            state_dir: PathBuf::from(cleanup::DEFAULT_STATE_DIR),
            cancel: Cancel::new(),
        }
    }
}

/// Why a run could not start at all.
#[derive(Debug)]
pub enum SetupError {
    /// The state directory cannot be used (not root, read-only...).
    Environment(String),
}

impl std::fmt::Display for SetupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SetupError::Environment(m) => f.write_str(m),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TaskKind {
    /// sshd and ssh-audit share one live server.
    Ssh,
    Single(CheckId),
}

/// Run the wanted checks on every permutation. `on_done` is called as each check finishes
/// (for progress output); the returned report holds everything, in input order.
pub fn run(
    perms: &[Permutation],
    opts: &Options,
    on_done: &(dyn Fn(&Permutation, &CheckResult) + Sync),
) -> Result<RunReport, SetupError> {
    let started = Instant::now();
    let state_dir = if sys::is_root() {
        opts.state_dir.clone()
    } else {
        // Unprivileged: only checks that need no root can run; keep their scratch private.
        std::env::temp_dir().join(format!("paranoid-sandbox-{}", std::process::id()))
    };
    let swept = if sys::is_root() {
        cleanup::sweep(&state_dir, &opts.cancel)
    } else {
        vec![]
    };
    let reg = Registry::start(&state_dir).map_err(|e| {
        SetupError::Environment(format!(
            "cannot use the state directory {}: {e}",
            state_dir.display()
        ))
    })?;
    let tools = Tools::detect(&reg.run_id, &opts.cancel);
    let ctx = Ctx::new(reg, opts.cancel.clone(), tools);
    let shared = SshShared::default();

    let mut tasks: VecDeque<(usize, TaskKind)> = VecDeque::new();
    let wants = |c: CheckId| opts.checks.contains(&c);
    // Longest first: the ssh probes, then the firewall's drop timeouts.
    for (i, _) in perms.iter().enumerate() {
        if wants(CheckId::Sshd) || wants(CheckId::SshAudit) {
            tasks.push_back((i, TaskKind::Ssh));
        }
    }
    for c in [
        CheckId::Firewall,
        CheckId::NixDaemon,
        CheckId::Mounts,
        CheckId::Units,
        CheckId::Sudo,
        CheckId::Auditd,
        CheckId::Execwatch,
    ] {
        if wants(c) {
            for (i, _) in perms.iter().enumerate() {
                tasks.push_back((i, TaskKind::Single(c)));
            }
        }
    }
    let queue = Mutex::new(tasks);
    let results: Mutex<Vec<(usize, CheckResult)>> = Mutex::new(vec![]);
    let jobs = opts.jobs.max(1);
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| loop {
                if ctx.cancel.is_cancelled() {
                    break;
                }
                let next = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front();
                let Some((i, kind)) = next else { break };
                let p = &perms[i];
                let out = catch_unwind(AssertUnwindSafe(|| run_task(&ctx, &shared, p, kind, opts)));
                let out = out.unwrap_or_else(|panic| {
                    let msg = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_else(|| "unknown panic".into());
                    task_checks(kind, opts)
                        .into_iter()
                        .map(|c| {
                            let mut r = model::Recorder::new(c);
                            r.fail("internal error (panic) in the check", msg.clone());
                            r.finish("", 0)
                        })
                        .collect()
                });
                for r in out {
                    on_done(p, &r);
                    results
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push((i, r));
                }
            });
        }
    });
    let mut by_perm: Vec<Vec<CheckResult>> = vec![vec![]; perms.len()];
    for (i, r) in results.into_inner().unwrap_or_else(|e| e.into_inner()) {
        by_perm[i].push(r);
    }
    let permutations: Vec<PermutationReport> = perms
        .iter()
        .zip(by_perm)
        .map(|(p, mut checks)| {
            checks.sort_by_key(|c| c.check);
            PermutationReport {
                id: p.id.clone(),
                source: p.source.clone(),
                assertions: p.assertions(),
                checks,
            }
        })
        .collect();
    let interrupted = ctx.cancel.is_cancelled();
    let tools = ctx.tools.versions.clone();
    let run_id = ctx.run_id().to_string();
    drop(ctx); // every guard runs here: users, namespaces, the work directory
    if !sys::is_root() {
        let _ = std::fs::remove_dir_all(&state_dir);
    }
    Ok(RunReport {
        schema: 1,
        run_id,
        tools,
        counts: RunReport::count(&permutations),
        permutations,
        duration_ms: started.elapsed().as_millis() as u64,
        jobs,
        interrupted,
        swept,
    })
}

fn task_checks(kind: TaskKind, opts: &Options) -> Vec<CheckId> {
    match kind {
        TaskKind::Ssh => [CheckId::Sshd, CheckId::SshAudit]
            .into_iter()
            .filter(|c| opts.checks.contains(c))
            .collect(),
        TaskKind::Single(c) => vec![c],
    }
}

fn run_task(
    ctx: &Ctx,
    shared: &SshShared,
    p: &Permutation,
    kind: TaskKind,
    opts: &Options,
) -> Vec<CheckResult> {
    match kind {
        TaskKind::Ssh => checks::ssh::run(
            ctx,
            shared,
            p,
            opts.checks.contains(&CheckId::Sshd),
            opts.checks.contains(&CheckId::SshAudit),
        ),
        TaskKind::Single(CheckId::NixDaemon) => vec![checks::nix_daemon::run(ctx, p)],
        TaskKind::Single(CheckId::Mounts) => vec![checks::mounts::run(ctx, p)],
        TaskKind::Single(CheckId::Firewall) => vec![checks::firewall::run(ctx, p)],
        TaskKind::Single(CheckId::Units) => vec![checks::units::run(ctx, p)],
        TaskKind::Single(CheckId::Sudo) => vec![checks::sudo::run(ctx, p)],
        TaskKind::Single(CheckId::Auditd) => vec![checks::auditd::run(ctx, p)],
        TaskKind::Single(CheckId::Execwatch) => vec![checks::execwatch::run(ctx, p)],
        TaskKind::Single(c @ (CheckId::Sshd | CheckId::SshAudit)) => {
            checks::ssh::run(ctx, shared, p, c == CheckId::Sshd, c == CheckId::SshAudit)
        }
    }
}
