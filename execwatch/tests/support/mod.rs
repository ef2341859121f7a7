//! Live-test support: the real kernel's audit, changed only under a cross-process lock and put
//! back exactly as found (enabled flag, our own rules, a private auditd we started), throwaway
//! users, and the watcher started with its journal output on a datagram socket we bind.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::io::AsRawFd;
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

pub use paranoid_execwatch::alert::parse_journal_datagram;

/// The lock every test (and the sandbox's auditd checks) holds while it changes audit state.
pub const AUDIT_LOCK: &str = "/run/lock/paranoid-audit.lock";

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_paranoid-execwatch")
}

pub fn run(cmd: &str, args: &[&str]) -> (bool, String) {
    let o = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd}: {e} (apt-get install auditd util-linux)"));
    let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    (o.status.success(), text)
}

fn status_field(text: &str, k: &str) -> Option<u32> {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{k} ")))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// (enabled, pid) from `auditctl -s`.
pub fn audit_status() -> (u32, u32) {
    let (ok, s) = run("auditctl", &["-s"]);
    assert!(ok, "auditctl -s failed: {s}");
    (
        status_field(&s, "enabled").unwrap_or_else(|| panic!("auditctl -s: no enabled line: {s}")),
        status_field(&s, "pid").unwrap_or(0),
    )
}

pub fn audit_rules() -> String {
    run("auditctl", &["-l"]).1
}

/// These tests need root and a kernel with audit. Anything else is a loud failure, never a pass.
pub fn require_live() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        panic!("the live execwatch tests need root (the kernel audit subsystem); run the README test command as root");
    }
    let o = Command::new("auditctl").arg("-s").output();
    match o {
        Err(e) => panic!("auditctl is not installed ({e}): apt-get install auditd"),
        Ok(o) if !o.status.success() => panic!(
            "the kernel audit subsystem is unavailable here: auditctl -s says {}",
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        _ => {}
    }
}

/// An exclusive flock on AUDIT_LOCK, held while it lives.
pub struct AuditLock(File);

impl AuditLock {
    pub fn take() -> AuditLock {
        std::fs::create_dir_all("/run/lock").expect("/run/lock");
        let f = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(AUDIT_LOCK)
            .unwrap_or_else(|e| panic!("cannot open {AUDIT_LOCK}: {e}"));
        let until = Instant::now() + Duration::from_secs(900);
        loop {
            // SAFETY: valid fd.
            if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
                return AuditLock(f);
            }
            assert!(Instant::now() < until, "{AUDIT_LOCK} held by another process for 15 minutes");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

const AUDITD_CONF: &str = "local_events = yes
write_logs = yes
log_file = @DIR@/audit.log
log_group = root
log_format = ENRICHED
flush = INCREMENTAL_ASYNC
freq = 50
max_log_file = 512
num_logs = 1
priority_boost = 0
name_format = NONE
max_log_file_action = IGNORE
space_left = 2
space_left_action = IGNORE
admin_space_left = 1
admin_space_left_action = IGNORE
disk_full_action = IGNORE
disk_error_action = IGNORE
use_libwrap = no
tcp_listen_queue = 5
tcp_max_per_addr = 1
tcp_client_max_idle = 0
transport = TCP
distribute_network = no
q_depth = 2000
overflow_action = IGNORE
max_restarts = 10
plugin_dir = @DIR@/plugins.d
end_of_event_timeout = 2
";

/// Audit state under our control for one test: locked, then put back on drop. If no audit
/// daemon is registered, a private auditd (config and log in a temp dir) runs for the test,
/// as on a paranoid host, where auditd runs beside the watcher.
pub struct AuditSession {
    pub dir: tempfile::TempDir,
    enabled_before: u32,
    rules_before: String,
    pub auditd: Option<Child>,
    _lock: AuditLock,
}

impl AuditSession {
    pub fn start() -> AuditSession {
        require_live();
        let lock = AuditLock::take();
        let (enabled, pid) = audit_status();
        assert!(enabled != 2, "the kernel's audit rules are locked (enabled 2) until reboot: these tests cannot change them");
        let dir = tempfile::Builder::new().prefix("pexw-").tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let rules_before = audit_rules();
        let mut s = AuditSession { dir, enabled_before: enabled, rules_before, auditd: None, _lock: lock };
        if pid == 0 {
            s.start_auditd();
        }
        s
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn start_auditd(&mut self) {
        let conf_dir = self.path("auditd");
        std::fs::create_dir_all(conf_dir.join("plugins.d")).unwrap();
        std::fs::write(
            conf_dir.join("auditd.conf"),
            AUDITD_CONF.replace("@DIR@", &conf_dir.to_string_lossy()),
        )
        .unwrap();
        std::fs::set_permissions(conf_dir.join("auditd.conf"), std::fs::Permissions::from_mode(0o640)).unwrap();
        let child = Command::new("auditd")
            .args(["-n", "-c"])
            .arg(&conf_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(conf_dir.join("auditd.err")).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start auditd: {e} (apt-get install auditd)"));
        let pid = child.id();
        self.auditd = Some(child);
        let until = Instant::now() + Duration::from_secs(5);
        while audit_status().1 != pid {
            assert!(
                Instant::now() < until,
                "the private auditd (pid {pid}) did not register with the kernel: {}",
                std::fs::read_to_string(conf_dir.join("auditd.err")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn auditd_log(&self) -> PathBuf {
        self.path("auditd/audit.log")
    }

    pub fn set_enabled(&self, v: u32) {
        assert!(v <= 1, "never -e 2");
        let (ok, out) = run("auditctl", &["-e", &v.to_string()]);
        assert!(ok, "auditctl -e {v}: {out}");
    }
}

impl Drop for AuditSession {
    fn drop(&mut self) {
        if let Some(mut c) = self.auditd.take() {
            // SAFETY: a pid we spawned, a plain signal.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let until = Instant::now() + Duration::from_secs(10);
            while Instant::now() < until && c.try_wait().ok().flatten().is_none() {
                std::thread::sleep(Duration::from_millis(20));
            }
            if c.try_wait().ok().flatten().is_none() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        let _ = run("auditctl", &["-e", &self.enabled_before.to_string()]);
        let after = audit_rules();
        if after != self.rules_before && !std::thread::panicking() {
            panic!("audit rules differ from before the test:\nbefore: {}\nafter: {after}", self.rules_before);
        }
    }
}

/// One rule of ours: `-a always,exit -F arch=b64 -S execve -S execveat -F uid=<uid> -k <key>`,
/// removed exactly on drop (if the test has not removed it itself).
pub struct ExecRule {
    pub args: Vec<String>,
    pub key: String,
}

impl ExecRule {
    pub fn add(uid: u32, key: &str) -> ExecRule {
        let args: Vec<String> = ["always,exit", "-F", "arch=b64", "-S", "execve", "-S", "execveat", "-F"]
            .iter()
            .map(|s| s.to_string())
            .chain([format!("uid={uid}"), "-k".into(), key.into()])
            .collect();
        let mut a = vec!["-a".to_string()];
        a.extend(args.iter().cloned());
        let (ok, out) = run("auditctl", &a.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(ok, "auditctl {a:?}: {out}");
        ExecRule { args, key: key.into() }
    }

    pub fn delete(&self) -> (bool, String) {
        let mut a = vec!["-d".to_string()];
        a.extend(self.args.iter().cloned());
        run("auditctl", &a.iter().map(String::as_str).collect::<Vec<_>>())
    }
}

impl Drop for ExecRule {
    fn drop(&mut self) {
        if audit_rules().contains(&format!("key={}", self.key)) {
            let _ = self.delete();
        }
    }
}

pub fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b))
        .unwrap();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A throwaway system user, deleted on drop.
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

impl User {
    pub fn create() -> User {
        let name = format!("pexw{}", random_hex(4));
        // useradd fails (exit 10) while another program holds /etc/passwd's lock: wait for it.
        let until = Instant::now() + Duration::from_secs(300);
        loop {
            let (ok, out) = run("useradd", &["-M", "-N", "-g", "nogroup", "-d", "/nonexistent", "-s", "/bin/sh", &name]);
            if ok {
                break;
            }
            assert!(out.contains("cannot lock") && Instant::now() < until, "useradd {name}: {out}");
            std::thread::sleep(Duration::from_millis(500));
        }
        let uid = run("id", &["-u", &name]).1.trim().parse().unwrap();
        let gid = run("id", &["-g", &name]).1.trim().parse().unwrap();
        User { name, uid, gid }
    }

    /// Run `prog args` as this user with login uid `auid` (what pam_loginuid sets at login),
    /// from `cwd`. Returns the child (pid known before it execs).
    pub fn spawn(&self, auid: u32, prog: &str, args: &[&str], cwd: &Path) -> Child {
        let (uid, gid) = (self.uid, self.gid);
        let loginuid = format!("{auid}");
        let mut c = Command::new(prog);
        c.args(args).current_dir(cwd).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        // SAFETY: only async-signal-safe calls (open, write, close, setgroups, setgid, setuid)
        // between fork and exec; the buffers were allocated before the fork.
        unsafe {
            c.pre_exec(move || {
                let fd = libc::open(c"/proc/self/loginuid".as_ptr(), libc::O_WRONLY);
                if fd < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let n = libc::write(fd, loginuid.as_ptr() as *const libc::c_void, loginuid.len());
                libc::close(fd);
                if n < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::setgroups(0, std::ptr::null()) != 0 || libc::setgid(gid) != 0 || libc::setuid(uid) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        c.spawn().unwrap_or_else(|e| panic!("cannot run {prog} as {}: {e}", self.name))
    }
}

impl Drop for User {
    fn drop(&mut self) {
        let until = Instant::now() + Duration::from_secs(300);
        loop {
            let (ok, out) = run("userdel", &[&self.name]);
            if ok || !out.contains("cannot lock") || Instant::now() > until {
                return;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

/// A copy of /bin/true at `path`, executable by anyone.
pub fn foreign_binary(path: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::set_permissions(path.parent().unwrap(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::copy("/bin/true", path).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

pub type Entry = BTreeMap<String, String>;

/// The watcher under test: its journal entries arrive on a datagram socket bound by the test,
/// its JSON lines on stdout.
pub struct Watcher {
    pub child: Child,
    journal: UnixDatagram,
    pub lines: Receiver<String>,
    pub seen: Vec<Entry>,
}

/// The Debian host's own programs are not foreign here (on NixOS they are in the store).
pub const HOST_ALLOW: &[&str] = &["/usr", "/bin", "/sbin", "/lib", "/lib64"];

impl Watcher {
    pub fn start(dir: &Path, key: &str, extra: &[&str]) -> Watcher {
        let sock = dir.join(format!("journal-{}.sock", random_hex(3)));
        let journal = UnixDatagram::bind(&sock).unwrap();
        // Room for a flood's worth of entries while the test reads.
        let _ = set_rcvbuf(&journal, 8 << 20);
        let mut args: Vec<String> = vec![
            "--json".into(),
            "--journal-socket".into(),
            sock.to_string_lossy().into(),
            "--key".into(),
            key.into(),
        ];
        for a in HOST_ALLOW {
            args.push("--allow".into());
            args.push(a.to_string());
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut child = Command::new(bin())
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the watcher");
        let out = child.stdout.take().unwrap();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    return;
                }
            }
        });
        let mut w = Watcher { child, journal, lines: rx, seen: vec![] };
        let started = w
            .wait_for(Duration::from_secs(10), |e| e.get("EXECWATCH_EVENT").map(String::as_str) == Some("started"))
            .unwrap_or_else(|| panic!("the watcher did not start: {:?}", w.child.try_wait()));
        assert_eq!(started["PRIORITY"], "6");
        w
    }

    /// Next journal entry, or None after `timeout`.
    pub fn next(&mut self, timeout: Duration) -> Option<Entry> {
        self.journal.set_read_timeout(Some(timeout.max(Duration::from_millis(1)))).unwrap();
        let mut buf = vec![0u8; 1 << 17];
        match self.journal.recv(&mut buf) {
            Ok(n) => {
                let e: Entry = parse_journal_datagram(&buf[..n]).into_iter().collect();
                self.seen.push(e.clone());
                Some(e)
            }
            Err(_) => None,
        }
    }

    /// The first entry (from now on) matching `pred`.
    pub fn wait_for(&mut self, timeout: Duration, pred: impl Fn(&Entry) -> bool) -> Option<Entry> {
        let until = Instant::now() + timeout;
        while Instant::now() < until {
            if let Some(e) = self.next(until - Instant::now()) {
                if pred(&e) {
                    return Some(e);
                }
            }
        }
        None
    }

    /// SIGTERM (by pid), then wait.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        // SAFETY: a pid we spawned, a plain signal.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let until = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            if Instant::now() > until {
                let _ = self.child.kill();
                return self.child.wait().unwrap();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.stop();
        }
    }
}

fn set_rcvbuf(s: &UnixDatagram, bytes: i32) -> std::io::Result<()> {
    // SAFETY: valid fd, an int option.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            &bytes as *const _ as *const libc::c_void,
            std::mem::size_of::<i32>() as u32,
        )
    };
    if rc == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
}

pub fn is_kind(e: &Entry, kind: &str) -> bool {
    e.get("EXECWATCH_KIND").map(String::as_str) == Some(kind)
}

pub fn finding(e: &Entry) -> &str {
    e.get("EXECWATCH_FINDING").map(String::as_str).unwrap_or("")
}
