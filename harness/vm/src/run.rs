//! Running the plan: one `nix-store --realise` per check on a bounded pool, each in a process
//! group of its own, with a wall-time limit, retries for flaky checks and a log per check.
//! Never formats anything for people: progress goes out as [`Event`]s, the result as a
//! [`RunReport`].

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::discover::{Check, Plan};
use crate::nix::{render, Nix};
use crate::{signal, Config, Result, VmError};

/// Lines of a failed attempt's log quoted in reports.
pub const TAIL_LINES: usize = 40;
const POLL: Duration = Duration::from_millis(50);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Passed,
    Failed,
    TimedOut,
    /// This machine cannot build it (missing system feature, no KVM); never started.
    Refused,
    /// Stopped by Ctrl-C while running.
    Interrupted,
    /// Never started because of Ctrl-C.
    NotRun,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Passed => "passed",
            Status::Failed => "failed",
            Status::TimedOut => "timed-out",
            Status::Refused => "refused",
            Status::Interrupted => "interrupted",
            Status::NotRun => "not-run",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    pub status: Status,
    pub seconds: f64,
    /// `nix-store`'s exit code (100: the build failed); `None` when a signal ended it.
    pub exit: Option<i32>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckResult {
    pub name: String,
    pub status: Status,
    pub flaky: bool,
    pub attempts: Vec<Attempt>,
    /// Wall time of all attempts together.
    pub seconds: f64,
    pub drv_path: PathBuf,
    pub features: Vec<String>,
    pub log: Option<PathBuf>,
    pub out_path: Option<PathBuf>,
    /// The driver's JUnit report inside the output, when it wrote one.
    pub junit: Option<PathBuf>,
    /// Why it was refused, timed out or failed, in one line.
    pub reason: Option<String>,
    /// The end of the last attempt's log, for anything but a pass.
    pub log_tail: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunReport {
    pub flake: String,
    pub system: String,
    pub log_dir: PathBuf,
    pub jobs: usize,
    pub wall_seconds: f64,
    pub interrupted: bool,
    pub checks: Vec<CheckResult>,
}

impl RunReport {
    pub fn count(&self, status: Status) -> usize {
        self.checks.iter().filter(|c| c.status == status).count()
    }
}

/// Progress, as it happens (the CLI prints one line per event).
#[derive(Debug, Clone)]
pub enum Event {
    Planned {
        flake: String,
        system: String,
        checks: usize,
        runnable: usize,
        jobs: usize,
        log_dir: PathBuf,
    },
    Refused {
        name: String,
        reason: String,
    },
    Started {
        name: String,
        attempt: u32,
        attempts: u32,
    },
    Retrying {
        name: String,
        attempt: u32,
        attempts: u32,
        status: Status,
        seconds: f64,
    },
    Finished {
        name: String,
        status: Status,
        seconds: f64,
        attempt: u32,
        log: PathBuf,
        reason: Option<String>,
    },
}

/// Runs every runnable check of `plan`.
pub fn run(
    config: &Config,
    _nix: &Nix,
    plan: Plan,
    on_event: &(dyn Fn(&Event) + Sync),
) -> Result<RunReport> {
    signal::install();
    let log_dir = prepare_log_dir(config.log_dir.as_deref())?;
    let started = Instant::now();

    let runnable: Vec<&Check> = plan.checks.iter().filter(|c| c.refusal.is_none()).collect();
    on_event(&Event::Planned {
        flake: plan.flake.clone(),
        system: plan.system.clone(),
        checks: plan.checks.len(),
        runnable: runnable.len(),
        jobs: config.jobs,
        log_dir: log_dir.clone(),
    });
    for c in plan.checks.iter() {
        if let Some(reason) = &c.refusal {
            on_event(&Event::Refused {
                name: c.name.clone(),
                reason: reason.clone(),
            });
        }
    }

    let next = AtomicUsize::new(0);
    let slots: Mutex<Vec<Option<CheckResult>>> = Mutex::new(vec![None; runnable.len()]);
    std::thread::scope(|scope| {
        for _ in 0..config.jobs.min(runnable.len()) {
            scope.spawn(|| loop {
                if signal::interrupted() {
                    break;
                }
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(check) = runnable.get(i) else { break };
                let result = run_check(config, check, &log_dir, on_event);
                if let Some(slot) = slots.lock().expect("result slots").get_mut(i) {
                    *slot = Some(result);
                }
            });
        }
    });

    let mut done = slots.into_inner().expect("result slots").into_iter();
    let checks = plan
        .checks
        .iter()
        .map(|c| match &c.refusal {
            Some(reason) => skeleton(c, Status::Refused, Some(reason.clone())),
            None => done.next().flatten().unwrap_or_else(|| {
                skeleton(
                    c,
                    Status::NotRun,
                    Some("interrupted before it started".into()),
                )
            }),
        })
        .collect();

    Ok(RunReport {
        flake: plan.flake,
        system: plan.system,
        log_dir,
        jobs: config.jobs,
        wall_seconds: started.elapsed().as_secs_f64(),
        interrupted: signal::interrupted(),
        checks,
    })
}

fn skeleton(c: &Check, status: Status, reason: Option<String>) -> CheckResult {
    CheckResult {
        name: c.name.clone(),
        status,
        flaky: c.flaky,
        attempts: Vec::new(),
        seconds: 0.0,
        drv_path: c.drv_path.clone(),
        features: c.features.clone(),
        log: None,
        out_path: None,
        junit: None,
        reason,
        log_tail: Vec::new(),
    }
}

/// The log directory: the one asked for, or a fresh one under the system temp dir.
fn prepare_log_dir(wanted: Option<&Path>) -> Result<PathBuf> {
    if let Some(dir) = wanted {
        fs::create_dir_all(dir).map_err(|e| {
            VmError::Other(format!(
                "cannot create the log directory {}: {e}",
                dir.display()
            ))
        })?;
        return dir
            .canonicalize()
            .map_err(|e| VmError::Other(format!("log directory {}: {e}", dir.display())));
    }
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    for n in 0..1000 {
        let dir =
            std::env::temp_dir().join(format!("paranoid-vm-{stamp}-{}-{n}", std::process::id()));
        match fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(VmError::Other(format!(
                    "cannot create a log directory in {}: {e}",
                    std::env::temp_dir().display()
                )))
            }
        }
    }
    Err(VmError::Other(
        "cannot find a free log directory name".into(),
    ))
}

/// A check name as a file name.
pub fn file_stem(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn run_check(
    config: &Config,
    check: &Check,
    log_dir: &Path,
    on_event: &(dyn Fn(&Event) + Sync),
) -> CheckResult {
    let attempts_allowed = if check.flaky { 1 + config.retries } else { 1 };
    let stem = file_stem(&check.name);
    let log = log_dir.join(format!("{stem}.log"));
    let root = log_dir.join(format!("{stem}.result"));
    let mut result = skeleton(check, Status::Failed, None);
    result.log = Some(log.clone());

    for attempt in 1..=attempts_allowed {
        on_event(&Event::Started {
            name: check.name.clone(),
            attempt,
            attempts: attempts_allowed,
        });
        let outcome = attempt_once(config, check, &log, &root, attempt, attempts_allowed);
        result.seconds += outcome.attempt.seconds;
        result.status = outcome.attempt.status;
        result.reason = outcome.reason;
        result.log_tail = outcome.tail;
        result.attempts.push(outcome.attempt.clone());
        if outcome.attempt.status == Status::Passed {
            result.out_path = fs::read_link(&root).ok();
            result.junit = result
                .out_path
                .as_ref()
                .map(|o| o.join("junit.xml"))
                .filter(|j| j.is_file());
            result.log_tail.clear();
            break;
        }
        if outcome.attempt.status == Status::Interrupted || attempt == attempts_allowed {
            break;
        }
        on_event(&Event::Retrying {
            name: check.name.clone(),
            attempt,
            attempts: attempts_allowed,
            status: outcome.attempt.status,
            seconds: outcome.attempt.seconds,
        });
    }
    on_event(&Event::Finished {
        name: check.name.clone(),
        status: result.status,
        seconds: result.seconds,
        attempt: result.attempts.len() as u32,
        log,
        reason: result.reason.clone(),
    });
    result
}

struct Outcome {
    attempt: Attempt,
    reason: Option<String>,
    tail: Vec<String>,
}

fn attempt_once(
    config: &Config,
    check: &Check,
    log: &Path,
    root: &Path,
    attempt: u32,
    attempts: u32,
) -> Outcome {
    let fail = |reason: String, seconds: f64| Outcome {
        attempt: Attempt {
            status: Status::Failed,
            seconds,
            exit: None,
        },
        reason: Some(reason),
        tail: Vec::new(),
    };
    let mut file = match OpenOptions::new().create(true).append(true).open(log) {
        Ok(f) => f,
        Err(e) => return fail(format!("cannot open the log {}: {e}", log.display()), 0.0),
    };
    let offset = file.metadata().map(|m| m.len()).unwrap_or(0);

    let mut cmd = Command::new("nix-store");
    cmd.arg("--realise")
        .arg(&check.drv_path)
        .arg("--add-root")
        .arg(root);
    let _ = writeln!(
        file,
        "=== paranoid-harness vm: {} attempt {attempt}/{attempts}: {}",
        check.name,
        render(&cmd)
    );
    let (stdout, stderr) = match (file.try_clone(), file.try_clone()) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => {
            return fail(format!("cannot share the log with nix-store: {e}"), 0.0)
        }
    };
    cmd.stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .process_group(0);

    let started = Instant::now();
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return fail(format!("cannot start `{}`: {e}", render(&cmd)), 0.0),
    };
    let (status, exit) = supervise(&mut child, config.timeout, config.grace, started);
    let seconds = started.elapsed().as_secs_f64();

    let reason = match status {
        Status::Passed => None,
        Status::TimedOut => Some(format!(
            "timed out after {}s (--timeout); the build was stopped",
            config.timeout.as_secs()
        )),
        Status::Interrupted => Some("interrupted; the build was stopped".to_string()),
        _ => Some(match exit {
            Some(100) => "the build failed (nix-store exit 100)".to_string(),
            Some(code) => format!("nix-store exited with {code}"),
            None => "nix-store was killed by a signal".to_string(),
        }),
    };
    let _ = writeln!(
        file,
        "=== paranoid-harness vm: {} attempt {attempt}/{attempts}: {} after {seconds:.1}s{}",
        check.name,
        status.as_str(),
        exit.map(|c| format!(" (exit {c})")).unwrap_or_default()
    );
    let tail = if status == Status::Passed {
        Vec::new()
    } else {
        tail_since(log, offset, TAIL_LINES)
    };
    Outcome {
        attempt: Attempt {
            status,
            seconds,
            exit,
        },
        reason,
        tail,
    }
}

/// Waits for the build; stops it (SIGTERM to its PID, SIGKILL after `grace`) on timeout or Ctrl-C.
fn supervise(
    child: &mut Child,
    timeout: Duration,
    grace: Duration,
    started: Instant,
) -> (Status, Option<i32>) {
    loop {
        match child.try_wait() {
            Ok(Some(st)) => {
                return (
                    if st.success() {
                        Status::Passed
                    } else {
                        Status::Failed
                    },
                    st.code(),
                )
            }
            Ok(None) => {}
            Err(_) => return (Status::Failed, None),
        }
        if signal::interrupted() {
            let st = stop(child, grace);
            return (Status::Interrupted, st.and_then(|s| s.code()));
        }
        if started.elapsed() >= timeout {
            let st = stop(child, grace);
            return (Status::TimedOut, st.and_then(|s| s.code()));
        }
        std::thread::sleep(POLL);
    }
}

/// Nix handles SIGTERM by killing its builder and exiting; SIGKILL is the last resort.
fn stop(child: &mut Child, grace: Duration) -> Option<ExitStatus> {
    signal::send(child.id(), libc::SIGTERM);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(st)) = child.try_wait() {
            return Some(st);
        }
        std::thread::sleep(POLL);
    }
    let _ = child.kill();
    child.wait().ok()
}

/// The last `n` lines written to `log` after byte `offset`.
fn tail_since(log: &Path, offset: u64, n: usize) -> Vec<String> {
    let mut text = String::new();
    let read = File::open(log).and_then(|mut f| {
        f.seek(SeekFrom::Start(offset))?;
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes)?;
        text = String::from_utf8_lossy(&bytes).into_owned();
        Ok(())
    });
    if read.is_err() {
        return Vec::new();
    }
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| l.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_stems_are_safe() {
        assert_eq!(file_stem("vm-ssh"), "vm-ssh");
        assert_eq!(file_stem("vm-a/b c"), "vm-a_b_c");
    }

    #[test]
    fn tail_reads_only_the_last_attempt() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("x.log");
        fs::write(&log, "first\nattempt\n").unwrap();
        let offset = fs::metadata(&log).unwrap().len();
        let mut f = OpenOptions::new().append(true).open(&log).unwrap();
        for i in 0..50 {
            writeln!(f, "line {i}").unwrap();
        }
        let tail = tail_since(&log, offset, 3);
        assert_eq!(tail, vec!["line 47", "line 48", "line 49"]);
        assert!(tail_since(&log, offset, 100)
            .iter()
            .all(|l| l.starts_with("line")));
    }
}
