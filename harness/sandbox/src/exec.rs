//! Running programs: with a timeout, in a network namespace, as a throwaway user, marked with
//! the run id (so a later run can find and end them if this one is killed), and rendered as
//! a command line for the evidence.

use crate::sys;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Environment variable carried by every process a run starts; its value is the run id.
pub const RUN_MARKER: &str = "PARANOID_SANDBOX_RUN";

/// Where a network namespace's handle lives (`ip netns add NAME`).
pub fn netns_path(name: &str) -> PathBuf {
    Path::new("/run/netns").join(name)
}

/// Set by Ctrl-C (or the caller) to stop a run: waiting commands are killed.
#[derive(Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    pub fn new() -> Self {
        Cancel::default()
    }
    pub fn from_flag(flag: Arc<AtomicBool>) -> Self {
        Cancel(flag)
    }
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst)
    }
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// A command to run, described so it can also be shown as evidence.
#[derive(Clone, Debug)]
pub struct Cmd {
    pub program: String,
    pub args: Vec<String>,
    env: Vec<(String, String)>,
    env_clear: bool,
    stdin: Option<Vec<u8>>,
    user: Option<(u32, u32, String)>,
    netns: Option<String>,
    /// A private mount namespace to run in (an open /proc/…/ns/mnt) and how to show it.
    mntns: Option<(Arc<File>, String)>,
    cwd: Option<PathBuf>,
}

impl Cmd {
    pub fn new(program: impl Into<String>) -> Self {
        Cmd {
            program: program.into(),
            args: vec![],
            env: vec![],
            env_clear: false,
            stdin: None,
            user: None,
            netns: None,
            mntns: None,
            cwd: None,
        }
    }
    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.args.push(a.into());
        self
    }
    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, a: I) -> Self {
        self.args.extend(a.into_iter().map(Into::into));
        self
    }
    pub fn env(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }
    /// Start from an empty environment (plus PATH and the run marker).
    pub fn env_clear(mut self) -> Self {
        self.env_clear = true;
        self
    }
    pub fn stdin(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(data.into());
        self
    }
    /// Run as this uid/gid (supplementary groups are dropped by the standard library).
    pub fn as_user(mut self, uid: u32, gid: u32, name: &str) -> Self {
        self.user = Some((uid, gid, name.to_string()));
        self
    }
    /// Run inside the named network namespace (created with `ip netns add`).
    pub fn in_netns(mut self, name: &str) -> Self {
        self.netns = Some(name.to_string());
        self
    }
    /// Run inside a mount namespace (an open /proc/…/ns/mnt handle); `shown` describes it in
    /// the command line of the evidence.
    pub fn in_mount_ns(mut self, ns: Arc<File>, shown: &str) -> Self {
        self.mntns = Some((ns, shown.to_string()));
        self
    }
    pub fn cwd(mut self, dir: &Path) -> Self {
        self.cwd = Some(dir.to_path_buf());
        self
    }

    /// The command as a person would type it (environment assignments shown when set).
    pub fn display(&self) -> String {
        let mut parts = vec![];
        if let Some((_, shown)) = &self.mntns {
            parts.push(shown.clone());
        }
        if let Some(ns) = &self.netns {
            parts.push(format!("ip netns exec {ns}"));
        }
        if let Some((_, _, name)) = &self.user {
            parts.push(format!(
                "setpriv --reuid={name} --regid={name} --clear-groups"
            ));
        }
        let shown_env: Vec<String> = self
            .env
            .iter()
            .filter(|(k, _)| k != "PATH")
            .map(|(k, v)| format!("{k}={}", quote(v)))
            .collect();
        if !shown_env.is_empty() {
            parts.push(format!("env {}", shown_env.join(" ")));
        }
        parts.push(quote(&self.program));
        parts.extend(self.args.iter().map(|a| quote(a)));
        parts.join(" ")
    }

    fn build(&self, run_id: &str) -> Command {
        let mut c = Command::new(&self.program);
        c.args(&self.args);
        if self.env_clear {
            c.env_clear();
            c.env(
                "PATH",
                std::env::var("PATH").unwrap_or_else(|_| "/usr/sbin:/usr/bin:/sbin:/bin".into()),
            );
        }
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c.env(RUN_MARKER, run_id);
        if let Some((uid, gid, _)) = &self.user {
            c.uid(*uid).gid(*gid);
        }
        if let Some(d) = &self.cwd {
            c.current_dir(d);
        }
        c
    }

    /// Spawn with the given stdio. In a mount or network namespace the spawn happens on a short-lived
    /// thread that entered it, so the child (and only the child) lives there.
    pub fn spawn(
        &self,
        run_id: &str,
        stdout: Stdio,
        stderr: Stdio,
        stdin: Stdio,
    ) -> io::Result<Child> {
        let mut c = self.build(run_id);
        c.stdout(stdout).stderr(stderr).stdin(stdin);
        match (&self.netns, &self.mntns) {
            (None, None) => c.spawn(),
            (ns, mnt) => {
                let path = ns.as_ref().map(|n| netns_path(n));
                let mnt = mnt.as_ref().map(|(f, _)| f.clone());
                std::thread::scope(|s| {
                    s.spawn(move || {
                        // Opened first: a private mount namespace made before the network
                        // namespace was added does not see its /run/netns handle.
                        let net = path.map(File::open).transpose()?;
                        if let Some(m) = mnt {
                            sys::enter_mount_ns(&m)?;
                        }
                        if let Some(f) = net {
                            sys::enter_netns_file(&f)?;
                        }
                        c.spawn()
                    })
                    .join()
                    .unwrap_or_else(|_| Err(io::Error::other("spawning thread panicked")))
                })
            }
        }
    }

    /// Run to completion (or until `timeout`), capturing output.
    pub fn run(&self, run_id: &str, timeout: Duration, cancel: &Cancel) -> io::Result<Output> {
        let started = Instant::now();
        let stdin = if self.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        };
        let mut child = self
            .spawn(run_id, Stdio::piped(), Stdio::piped(), stdin)
            .map_err(|e| {
                io::Error::new(e.kind(), format!("cannot start `{}`: {e}", self.program))
            })?;
        if let (Some(data), Some(mut w)) = (self.stdin.clone(), child.stdin.take()) {
            std::thread::spawn(move || {
                let _ = w.write_all(&data);
            });
        }
        let out_rx = reader(child.stdout.take());
        let err_rx = reader(child.stderr.take());
        let mut timed_out = false;
        let status = loop {
            if let Some(st) = child.try_wait()? {
                break st;
            }
            if cancel.is_cancelled() || started.elapsed() >= timeout {
                timed_out = !cancel.is_cancelled();
                let _ = child.kill();
                break child.wait()?;
            }
            std::thread::sleep(Duration::from_millis(3));
        };
        if cancel.is_cancelled() && !timed_out && status.signal() == Some(sys::SIGKILL) {
            return Err(io::Error::new(io::ErrorKind::Interrupted, "interrupted"));
        }
        // A grandchild may hold the pipes open; do not wait for it forever.
        let grace = Duration::from_millis(if timed_out { 200 } else { 2000 });
        let stdout = out_rx.recv_timeout(grace).unwrap_or_default();
        let stderr = err_rx.recv_timeout(grace).unwrap_or_default();
        Ok(Output {
            code: status.code(),
            signal: status.signal(),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
            elapsed: started.elapsed(),
            timed_out,
        })
    }
}

fn reader<R: Read + Send + 'static>(r: Option<R>) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = vec![];
        if let Some(mut r) = r {
            let _ = r.read_to_end(&mut buf);
        }
        let _ = tx.send(buf);
    });
    rx
}

/// Shell-style quoting for display.
pub fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+^[]".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

#[derive(Clone, Debug)]
pub struct Output {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
    pub timed_out: bool,
}

impl Output {
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }
    /// "rc=N" / "killed by signal N" / "timed out after Ns".
    pub fn rc(&self) -> String {
        if self.timed_out {
            format!("timed out after {:.1}s", self.elapsed.as_secs_f64())
        } else if let Some(c) = self.code {
            format!("rc={c}")
        } else {
            format!("killed by signal {}", self.signal.unwrap_or(0))
        }
    }
    /// Both streams, stdout first.
    pub fn all(&self) -> String {
        let mut s = self.stdout.clone();
        if !self.stderr.is_empty() {
            if !s.is_empty() && !s.ends_with('\n') {
                s.push('\n');
            }
            s.push_str(&self.stderr);
        }
        s
    }
    /// The first line of either stream containing `needle`.
    pub fn line_with(&self, needle: &str) -> Option<String> {
        self.all()
            .lines()
            .find(|l| l.contains(needle))
            .map(|l| l.trim().to_string())
    }
    /// A short digest for evidence: rc plus the first few non-empty lines.
    pub fn digest(&self, max_lines: usize) -> String {
        let all = self.all();
        let lines: Vec<&str> = all
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .take(max_lines)
            .collect();
        if lines.is_empty() {
            self.rc()
        } else {
            format!("{}: {}", self.rc(), lines.join(" | "))
        }
    }
}

/// A long-running program (sshd, nix-daemon, ssh-agent) ended by PID when dropped:
/// SIGTERM, a short grace, then SIGKILL. Its output goes to `log`.
pub struct Daemon {
    pub name: String,
    pub child: Child,
    pub log: PathBuf,
}

impl Daemon {
    pub fn start(cmd: &Cmd, run_id: &str, log: &Path) -> io::Result<Daemon> {
        let f = File::create(log)?;
        let f2 = f.try_clone()?;
        let child = cmd.spawn(run_id, Stdio::from(f), Stdio::from(f2), Stdio::null())?;
        Ok(Daemon {
            name: cmd.program.clone(),
            child,
            log: log.to_path_buf(),
        })
    }
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
    /// Still running?
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
    pub fn stop(&mut self) {
        if !self.alive() {
            return;
        }
        let _ = sys::signal_pid(self.child.id(), sys::SIGTERM);
        let deadline = Instant::now() + Duration::from_millis(300);
        while Instant::now() < deadline {
            if !self.alive() {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Look a program up in PATH (only PATH: a tool hidden from PATH counts as not installed).
pub fn which(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        let p = PathBuf::from(program);
        return is_executable(&p).then_some(p);
    }
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(program))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}
