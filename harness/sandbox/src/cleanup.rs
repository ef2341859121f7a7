//! Everything a run creates outside its own process is named with the run id and written to
//! the run's journal BEFORE it is created: throwaway users and groups, network namespaces,
//! audit rules, the work directory. RAII guards undo each one on success, failure, panic and
//! Ctrl-C. A run killed with SIGKILL leaves its journal and an unlocked lock file behind; the
//! next run's startup sweep reads that journal and removes exactly what it lists, plus the
//! processes whose environment carries the dead run's id, and never anything else.

use crate::exec::{self, Cancel, Cmd};
use crate::sys;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// Prefix of every name a run gives to a user, group or network namespace.
pub const NAME_PREFIX: &str = "pzs";

/// The default state directory (journals, locks, per-run work directories). Root-owned and
/// not world-writable, so sshd's StrictModes accepts key files below it.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/paranoid-sandbox";

/// A resource a run created, as written in its journal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resource {
    User(String),
    Group(String),
    Netns(String),
    /// An audit rule, as the arguments that added it (`-a always,exit ...`).
    AuditRule(String),
    /// The audit enabled flag before the run changed it.
    AuditEnabled(u8),
    /// The `auditctl` arguments that delete an audit rule the auditd check loaded from a
    /// configuration (it may carry no run id: the journal it is in is the run's).
    AuditRuleUndo(String),
    /// A private audit daemon (its pid, found again through the run marker).
    Dir(PathBuf),
}

impl Resource {
    fn line(&self) -> String {
        match self {
            Resource::User(n) => format!("user {n}"),
            Resource::Group(n) => format!("group {n}"),
            Resource::Netns(n) => format!("netns {n}"),
            Resource::AuditRule(r) => format!("audit-rule {r}"),
            Resource::AuditEnabled(e) => format!("audit-enabled {e}"),
            Resource::AuditRuleUndo(r) => format!("audit-rule-undo {r}"),
            Resource::Dir(p) => format!("dir {}", p.display()),
        }
    }
    fn parse(line: &str) -> Option<Resource> {
        let (kind, rest) = line.split_once(' ')?;
        Some(match kind {
            "user" => Resource::User(rest.into()),
            "group" => Resource::Group(rest.into()),
            "netns" => Resource::Netns(rest.into()),
            "audit-rule" => Resource::AuditRule(rest.into()),
            "audit-enabled" => Resource::AuditEnabled(rest.parse().ok()?),
            "audit-rule-undo" => Resource::AuditRuleUndo(rest.into()),
            "dir" => Resource::Dir(rest.into()),
            _ => return None,
        })
    }
}

/// The run's identity: id, lock (held for the run's life), journal.
pub struct Registry {
    pub run_id: String,
    pub state_dir: PathBuf,
    /// `<state>/<run id>`: everything on disk the run creates lives below it.
    pub work: PathBuf,
    _lock: File,
    journal: Mutex<File>,
}

impl Registry {
    /// Create the run's id, lock, journal and work directory.
    pub fn start(state_dir: &Path) -> io::Result<Registry> {
        let runs = state_dir.join("runs");
        // Never change the mode of a directory we did not create (think `--state-dir /tmp`).
        if !state_dir.exists() {
            fs::create_dir_all(state_dir)?;
            fs::set_permissions(state_dir, fs::Permissions::from_mode(0o755))?;
        }
        if !runs.exists() {
            fs::create_dir_all(&runs)?;
            fs::set_permissions(&runs, fs::Permissions::from_mode(0o700))?;
        }
        let run_id = new_run_id()?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(runs.join(format!("{run_id}.lock")))?;
        if !sys::try_lock(&lock)? {
            return Err(io::Error::other(format!(
                "run id {run_id} is already in use"
            )));
        }
        let journal = OpenOptions::new()
            .create(true)
            .append(true)
            .open(runs.join(format!("{run_id}.journal")))?;
        let work = state_dir.join(&run_id);
        let reg = Registry {
            run_id,
            state_dir: state_dir.to_path_buf(),
            work: work.clone(),
            _lock: lock,
            journal: Mutex::new(journal),
        };
        reg.record(&Resource::Dir(work.clone()))?;
        fs::create_dir_all(&work)?;
        fs::set_permissions(&work, fs::Permissions::from_mode(0o755))?;
        Ok(reg)
    }

    /// Write a resource to the journal (and flush it) before it is created.
    pub fn record(&self, r: &Resource) -> io::Result<()> {
        let mut j = self.journal.lock().unwrap_or_else(|e| e.into_inner());
        writeln!(j, "{}", r.line())?;
        j.sync_data()
    }

    /// A name for a namespace, user or group that carries the run id.
    pub fn name(&self, suffix: &str) -> String {
        format!("{NAME_PREFIX}{}{suffix}", self.run_id)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        // Guards have run by now (they borrow the registry); remove what is left on disk.
        let _ = fs::remove_dir_all(&self.work);
        let runs = self.state_dir.join("runs");
        let _ = fs::remove_file(runs.join(format!("{}.journal", self.run_id)));
        let _ = fs::remove_file(runs.join(format!("{}.lock", self.run_id)));
    }
}

fn new_run_id() -> io::Result<String> {
    let mut b = [0u8; 4];
    File::open("/dev/urandom")?.read_exact(&mut b)?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// Is `name` one of ours for run `id` (prefix + id)? Guards never act on anything else.
pub fn belongs_to(name: &str, id: &str) -> bool {
    id.len() == 8
        && id.chars().all(|c| c.is_ascii_hexdigit())
        && name.contains(&format!("{NAME_PREFIX}{id}"))
        || name.starts_with(&format!("{NAME_PREFIX}-{id}-"))
}

/// PIDs of the run's processes, found three ways, because one is not enough: sshd rewrites its
/// argv and environment for its process title, which erases the environment marker.
/// - the environment carries `RUN_MARKER=id` (everything the run spawns);
/// - the command line names the run's work directory `<state>/<id>/` (sshd's `-f` config);
/// - the process lives in one of the run's network namespaces.
pub fn processes_of_run(id: &str, state_dir: &Path) -> Vec<u32> {
    let marker = format!("{}={id}", exec::RUN_MARKER);
    let workdir = format!("{}/{id}/", state_dir.display());
    let netns: Vec<std::ffi::OsString> = fs::read_dir("/run/netns")
        .map(|rd| {
            rd.flatten()
                .filter(|e| belongs_to(&e.file_name().to_string_lossy(), id))
                .filter_map(|e| {
                    fs::metadata(e.path()).ok().map(|m| {
                        format!("net:[{}]", std::os::unix::fs::MetadataExt::ino(&m)).into()
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let me = std::process::id();
    let mut pids = vec![];
    let Ok(rd) = fs::read_dir("/proc") else {
        return pids;
    };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let env = fs::read(e.path().join("environ")).unwrap_or_default();
        let by_env = env.split(|b| *b == 0).any(|v| v == marker.as_bytes());
        let cmdline =
            String::from_utf8_lossy(&fs::read(e.path().join("cmdline")).unwrap_or_default())
                .replace('\0', " ");
        let by_cmdline = cmdline.contains(&workdir);
        let by_netns = fs::read_link(e.path().join("ns/net"))
            .map(|l| netns.contains(&l.into_os_string()))
            .unwrap_or(false);
        if by_env || by_cmdline || by_netns {
            // Zombies are already dead; PID 1 reaps them.
            let state = fs::read_to_string(e.path().join("stat")).unwrap_or_default();
            let zombie = state
                .rsplit_once(')')
                .map(|(_, r)| r.trim_start().starts_with('Z'))
                .unwrap_or(false);
            if !zombie {
                pids.push(pid);
            }
        }
    }
    pids
}

/// Undo one journal entry of run `id`. Errors are returned as text for the sweep report.
pub fn undo(r: &Resource, id: &str, cancel: &Cancel) -> Result<(), String> {
    let t = Duration::from_secs(10);
    let run = |c: Cmd| c.run(id, t, cancel).map_err(|e| e.to_string());
    match r {
        Resource::User(n) if belongs_to(n, id) => {
            if user_exists(n) {
                let o = run(Cmd::new("userdel").args(["-f", n.as_str()]))?;
                if !o.ok() && user_exists(n) {
                    return Err(format!("userdel {n}: {}", o.digest(2)));
                }
            }
            Ok(())
        }
        Resource::Group(n) if belongs_to(n, id) => {
            if group_exists(n) {
                let o = run(Cmd::new("groupdel").arg(n.as_str()))?;
                if !o.ok() && group_exists(n) {
                    return Err(format!("groupdel {n}: {}", o.digest(2)));
                }
            }
            Ok(())
        }
        Resource::Netns(n) if belongs_to(n, id) => {
            if exec::netns_path(n).exists() {
                let o = run(Cmd::new("ip").args(["netns", "del", n.as_str()]))?;
                if !o.ok() && exec::netns_path(n).exists() {
                    return Err(format!("ip netns del {n}: {}", o.digest(2)));
                }
            }
            Ok(())
        }
        Resource::AuditRule(rule) if rule.contains(&format!("{NAME_PREFIX}{id}")) => {
            let args: Vec<String> = rule
                .split_whitespace()
                .map(|a| if a == "-a" { "-d".into() } else { a.into() })
                .collect();
            let listed = run(Cmd::new("auditctl").arg("-l"))?;
            if listed
                .stdout
                .lines()
                .any(|l| l.contains(&format!("{NAME_PREFIX}{id}")))
            {
                let o = run(Cmd::new("auditctl").args(args))?;
                if !o.ok() {
                    return Err(format!("auditctl -d: {}", o.digest(2)));
                }
            }
            Ok(())
        }
        Resource::AuditRuleUndo(args) if args.starts_with("-d ") => {
            let o = run(Cmd::new("auditctl").args(args.split_whitespace()))?;
            // Already gone (the configuration's own `-d` or `-D` deleted it) is done.
            if !o.ok() && !o.all().contains("No such file or directory") {
                return Err(format!("auditctl {args}: {}", o.digest(2)));
            }
            Ok(())
        }
        Resource::AuditEnabled(prev) if *prev <= 1 => {
            let o = run(Cmd::new("auditctl").args(["-e".to_string(), prev.to_string()]))?;
            if !o.ok() {
                return Err(format!("auditctl -e {prev}: {}", o.digest(2)));
            }
            Ok(())
        }
        Resource::Dir(p) if p.file_name().and_then(|f| f.to_str()) == Some(id) => {
            if p.exists() {
                fs::remove_dir_all(p).map_err(|e| format!("rm -r {}: {e}", p.display()))?;
            }
            Ok(())
        }
        other => Err(format!(
            "refusing to undo {other:?}: it does not carry run id {id}"
        )),
    }
}

pub fn user_exists(name: &str) -> bool {
    fs::read_to_string("/etc/passwd")
        .map(|s| s.lines().any(|l| l.split(':').next() == Some(name)))
        .unwrap_or(false)
}

pub fn group_exists(name: &str) -> bool {
    fs::read_to_string("/etc/group")
        .map(|s| s.lines().any(|l| l.split(':').next() == Some(name)))
        .unwrap_or(false)
}

/// End the processes of run `id` (by PID, SIGKILL), a few passes for ones started meanwhile.
pub fn kill_run_processes(id: &str, state_dir: &Path) -> Vec<u32> {
    let mut killed = vec![];
    for _ in 0..3 {
        let pids = processes_of_run(id, state_dir);
        if pids.is_empty() {
            break;
        }
        for pid in pids {
            if sys::signal_pid(pid, sys::SIGKILL).is_ok() {
                killed.push(pid);
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    killed
}

/// Remove the leftovers of runs that died without cleaning up (their lock is free).
/// Returns one line per thing removed, and per thing that could not be.
pub fn sweep(state_dir: &Path, cancel: &Cancel) -> Vec<String> {
    let mut report = vec![];
    let runs = state_dir.join("runs");
    let Ok(rd) = fs::read_dir(&runs) else {
        return report;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(id) = name.strip_suffix(".lock") else {
            continue;
        };
        if id.len() != 8 || !id.chars().all(|c| c.is_ascii_hexdigit()) {
            continue;
        }
        let Ok(lock) = OpenOptions::new().write(true).open(e.path()) else {
            continue;
        };
        if !matches!(sys::try_lock(&lock), Ok(true)) {
            continue; // a live run holds it
        }
        let killed = kill_run_processes(id, state_dir);
        if !killed.is_empty() {
            report.push(format!("run {id}: ended processes {killed:?}"));
        }
        let journal = runs.join(format!("{id}.journal"));
        let entries: Vec<Resource> = fs::read_to_string(&journal)
            .unwrap_or_default()
            .lines()
            .filter_map(Resource::parse)
            .collect();
        // Undo in reverse creation order: rules before the enabled flag, users before groups.
        let mut ok = true;
        for r in entries.iter().rev() {
            match undo(r, id, cancel) {
                Ok(()) => report.push(format!("run {id}: removed {}", r.line())),
                Err(msg) => {
                    ok = false;
                    report.push(format!("run {id}: could not remove {}: {msg}", r.line()))
                }
            }
        }
        if ok {
            let _ = fs::remove_file(&journal);
            let _ = fs::remove_file(e.path());
        }
    }
    report
}

/// A created resource, undone when dropped.
pub struct Guard {
    run_id: String,
    res: Option<Resource>,
}

impl Guard {
    /// Journal `res`, then hand back the guard; create the resource only after this returns.
    pub fn record(reg: &Registry, res: Resource) -> io::Result<Guard> {
        reg.record(&res)?;
        Ok(Guard {
            run_id: reg.run_id.clone(),
            res: Some(res),
        })
    }
    pub fn resource(&self) -> &Resource {
        self.res.as_ref().expect("guard resource")
    }
    /// Undo now, reporting failure (drop also undoes, silently).
    pub fn release(mut self) -> Result<(), String> {
        match self.res.take() {
            Some(r) => undo(&r, &self.run_id, &Cancel::new()),
            None => Ok(()),
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(r) = self.res.take() {
            // A fresh cancel flag: cleanup must finish even after Ctrl-C.
            let _ = undo(&r, &self.run_id, &Cancel::new());
        }
    }
}
