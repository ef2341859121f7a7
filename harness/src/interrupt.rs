//! Ctrl-C (SIGINT, SIGTERM, SIGHUP) for every subcommand: stop within two seconds and leave
//! nothing behind (docs/harness.md, "Interruption").
//!
//! The first signal raises a flag the runners poll, kills the `nix` children by PID (see
//! [`crate::nix`]) and runs the hooks of the tiers (the VM runner's own flag); the runner then
//! reports what finished and exits 130. A watchdog makes sure of the two seconds: if the
//! process is still there [`DEADLINE`] after the signal (a long computation that polls no flag,
//! a child that ignores SIGTERM), it kills every process below this one by PID, removes the
//! scratch directory and exits 130 itself. Code that must not be cut short (the sandbox
//! removing its users and namespaces) holds [`hold_exit`] meanwhile. A second signal stops at
//! once.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long the runners get to stop on their own after the first signal.
pub const DEADLINE: Duration = Duration::from_millis(1000);
/// How long a [`hold_exit`] may delay the forced stop (a cleanup that hangs must not hang us).
pub const HOLD_LIMIT: Duration = Duration::from_secs(10);

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static SIGNALS: AtomicUsize = AtomicUsize::new(0);
static HOLDS: AtomicUsize = AtomicUsize::new(0);
static STOPPING: AtomicBool = AtomicBool::new(false);

type Hook = Box<dyn Fn() + Send + Sync>;

fn hooks() -> &'static Mutex<Vec<Hook>> {
    static HOOKS: OnceLock<Mutex<Vec<Hook>>> = OnceLock::new();
    HOOKS.get_or_init(|| Mutex::new(Vec::new()))
}

fn scratch() -> &'static Mutex<Option<PathBuf>> {
    static SCRATCH: OnceLock<Mutex<Option<PathBuf>>> = OnceLock::new();
    SCRATCH.get_or_init(|| Mutex::new(None))
}

fn last_words() -> &'static Mutex<Option<String>> {
    static WORDS: OnceLock<Mutex<Option<String>>> = OnceLock::new();
    WORDS.get_or_init(|| Mutex::new(None))
}

/// True once a signal arrived.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Runs `f` on the first signal, after the flag is raised (from the handler's thread).
pub fn on_interrupt(f: impl Fn() + Send + Sync + 'static) {
    hooks()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(Box::new(f));
}

/// The directory removed when the process is stopped by force (the process's `TMPDIR`).
pub fn set_scratch_dir(dir: Option<PathBuf>) {
    *scratch().lock().unwrap_or_else(|e| e.into_inner()) = dir;
}

/// What a forced stop prints on stdout (the JSON error object under `--format json`).
pub fn set_last_words(stdout: Option<String>) {
    *last_words().lock().unwrap_or_else(|e| e.into_inner()) = stdout;
}

/// While the returned guard lives, a forced stop waits (at most [`HOLD_LIMIT`]).
pub fn hold_exit() -> ExitHold {
    HOLDS.fetch_add(1, Ordering::SeqCst);
    ExitHold(())
}

pub struct ExitHold(());

impl Drop for ExitHold {
    fn drop(&mut self) {
        HOLDS.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Called by the main thread before it exits: while a forced stop is under way (its children
/// dying may make the run fail in other ways), the stop's exit 130 is the one that counts.
pub fn park_if_stopping() {
    while STOPPING.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Raises the flag and runs the hooks; what the first signal does before the watchdog starts.
pub fn interrupt() {
    if INTERRUPTED.swap(true, Ordering::SeqCst) {
        return;
    }
    crate::nix::kill_children();
    for h in hooks().lock().unwrap_or_else(|e| e.into_inner()).iter() {
        h();
    }
}

/// Installs the handler for SIGINT, SIGTERM and SIGHUP (once per process).
pub fn install() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let _ = ctrlc::set_handler(|| {
            if SIGNALS.fetch_add(1, Ordering::SeqCst) > 0 {
                stop_now("interrupted twice: stopped at once");
            }
            interrupt();
            let at = Instant::now();
            std::thread::spawn(move || {
                std::thread::sleep(DEADLINE.saturating_sub(at.elapsed()));
                // A cleanup under way finishes first, then the runner gets a moment to report.
                if HOLDS.load(Ordering::SeqCst) > 0 {
                    while HOLDS.load(Ordering::SeqCst) > 0 && at.elapsed() < HOLD_LIMIT {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    std::thread::sleep(Duration::from_millis(300));
                }
                stop_now(
                    "interrupted: the run did not stop by itself within 1 s, so it was stopped",
                );
            });
        });
    });
}

/// Kills every process below this one by PID, removes the scratch directory, says so, and
/// exits 130. It writes with write(2) on non-blocking descriptors and leaves with _exit(2): the
/// thread it stops may hold Rust's stdout lock, blocked on a pipe nobody reads.
pub fn stop_now(why: &str) -> ! {
    STOPPING.store(true, Ordering::SeqCst);
    crate::nix::kill_children();
    kill_descendants();
    if let Some(dir) = scratch().lock().unwrap_or_else(|e| e.into_inner()).take() {
        let _ = std::fs::remove_dir_all(dir);
    }
    if let Some(words) = last_words()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
    {
        write_nonblocking(1, words.as_bytes());
    }
    write_nonblocking(2, format!("paranoid-harness: {why}\n").as_bytes());
    // SAFETY: _exit(2) ends the process at once; nothing of it runs after.
    unsafe { libc::_exit(crate::error::exit::INTERRUPTED as i32) }
}

/// Writes what fits into `fd` now, never waiting on a full pipe. The descriptor's flags are
/// restored after: a terminal's are shared with the shell.
fn write_nonblocking(fd: libc::c_int, mut bytes: &[u8]) {
    // SAFETY: fcntl(2) and write(2) on a descriptor this process has, with a valid buffer.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags >= 0 {
            libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
        }
        while !bytes.is_empty() {
            let n = libc::write(fd, bytes.as_ptr().cast(), bytes.len());
            if n <= 0 {
                break;
            }
            bytes = &bytes[n as usize..];
        }
        if flags >= 0 {
            libc::fcntl(fd, libc::F_SETFL, flags);
        }
    }
}

/// SIGKILL to every descendant of this process. They are stopped first (SIGSTOP), and /proc read
/// again until no new one appears: a process that forks while the tree is read, or whose parent
/// dies first (its children would go to init), cannot slip away.
pub fn kill_descendants() {
    let me = std::process::id();
    let mut stopped: Vec<u32> = vec![];
    for _ in 0..50 {
        let fresh: Vec<u32> = descendants(me)
            .into_iter()
            .filter(|p| !stopped.contains(p))
            .collect();
        if fresh.is_empty() {
            break;
        }
        for pid in fresh {
            paranoid_vm::signal::send(pid, libc::SIGSTOP);
            stopped.push(pid);
        }
    }
    for pid in stopped.iter().rev() {
        paranoid_vm::signal::send(*pid, libc::SIGKILL);
    }
}

/// The PIDs below `root`, parents before children, read from /proc.
pub fn descendants(root: u32) -> Vec<u32> {
    let mut parent_of: Vec<(u32, u32)> = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            if let Some(ppid) = parent_pid(pid) {
                parent_of.push((pid, ppid));
            }
        }
    }
    let mut out = vec![];
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for &(child, _) in parent_of.iter().filter(|(_, pp)| *pp == p) {
            if !out.contains(&child) {
                out.push(child);
                frontier.push(child);
            }
        }
    }
    out
}

/// The parent PID in /proc/PID/stat (the field after the parenthesised command name).
pub fn parent_pid(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descendants_are_found_through_proc() {
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sleep 30 & wait"])
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let found = descendants(std::process::id());
        assert!(found.contains(&child.id()), "{found:?}");
        let grandchildren: Vec<u32> = found
            .iter()
            .copied()
            .filter(|p| parent_pid(*p) == Some(child.id()))
            .collect();
        assert_eq!(grandchildren.len(), 1, "the sleep below sh: {found:?}");
        paranoid_vm::signal::send(grandchildren[0], libc::SIGKILL);
        let _ = child.kill();
        let _ = child.wait();
    }
}
