//! Robustness (issue 11, item 3): a bounded pool, every command stopped by a real signal within
//! 2 s with nothing left behind, and evaluation without root.

mod common;
mod sandbox_support;

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::repo;
use paranoid_harness::interrupt::descendants;
use serde_json::Value;

fn bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("paranoid-harness")
}

/// A child's stdout and stderr, drained on threads so a full pipe never blocks it.
struct Running {
    child: Child,
    out: std::thread::JoinHandle<Vec<u8>>,
    err: std::thread::JoinHandle<Vec<u8>>,
}

fn spawn(cmd: &mut Command) -> Running {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the harness");
    let drain = |mut r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut v = vec![];
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    Running { child, out, err }
}

impl Running {
    /// Waits at most `limit`; kills (by PID) and fails past it.
    fn wait(mut self, limit: Duration) -> (Option<i32>, Vec<u8>, String) {
        let started = Instant::now();
        let status = loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                break st;
            }
            if started.elapsed() > limit {
                // Leave the machine as found, failing or not: its processes, deepest first.
                for p in descendants(self.child.id()).into_iter().rev() {
                    kill_quietly(p);
                }
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("still running after {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let out = self.out.join().unwrap();
        let err = String::from_utf8_lossy(&self.err.join().unwrap()).into_owned();
        (status.code(), out, err)
    }
}

/// A process as seen once: PID and start time (field 22 of /proc/PID/stat), so a reused PID is
/// not mistaken for it.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    pid: u32,
    start: u64,
    cmdline: String,
}

fn stat_fields(pid: u32) -> Option<(char, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after: Vec<&str> = stat[stat.rfind(')')? + 2..].split_whitespace().collect();
    Some((after[0].chars().next()?, after.get(19)?.parse().ok()?))
}

fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

fn tree(pid: u32) -> Vec<Seen> {
    descendants(pid)
        .into_iter()
        .filter_map(|p| {
            stat_fields(p).map(|(_, start)| Seen {
                pid: p,
                start,
                cmdline: cmdline(p),
            })
        })
        .collect()
}

/// Still there and not a zombie waiting for init to reap it.
fn alive(s: &Seen) -> bool {
    matches!(stat_fields(s.pid), Some((state, start)) if start == s.start && state != 'Z')
}

fn send(pid: u32, sig: libc::c_int) {
    // SAFETY: kill(2) on the PID of the child this test started.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, sig) }, 0);
}

/// SIGKILL to a process this test started (or one of its children), gone or not.
fn kill_quietly(pid: u32) {
    // SAFETY: kill(2) with a positive PID below the test's own child.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
}

/// Waits until `ready` holds for the child's process tree, and returns that tree.
fn wait_for_tree(r: &mut Running, what: &str, ready: impl Fn(&[Seen]) -> bool) -> Vec<Seen> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(st) = r.child.try_wait().unwrap() {
            panic!("the harness ended ({st}) before {what}");
        }
        let t = tree(r.child.id());
        if ready(&t) {
            return t;
        }
        assert!(Instant::now() < deadline, "{what} never happened");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A `nix` first on PATH that waits a minute before running the real one: whatever the command
/// is doing with Nix, the signal finds a `nix` child running.
fn slow_nix(dir: &Path) -> String {
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = format!(
        "#!/usr/bin/env bash\nexec /usr/bin/python3 -c 'import os,sys,time; time.sleep(60); os.execv(sys.argv[2], sys.argv[2:])' paranoid-slow-nix {} \"$@\"\n",
        common::which_nix().display()
    );
    std::fs::write(bin.join("nix"), script).unwrap();
    std::fs::set_permissions(bin.join("nix"), std::fs::Permissions::from_mode(0o755)).unwrap();
    format!("{}:{}", bin.display(), std::env::var("PATH").unwrap())
}

/// What an interrupted `--format json` command prints: its report marked interrupted, or the
/// JSON error object of kind "interrupted".
fn assert_interrupted_json(stdout: &[u8], command: &str) {
    let v: Value = serde_json::from_slice(stdout).unwrap_or_else(|e| {
        panic!(
            "{command}: stdout is not one JSON document ({e}): {}",
            String::from_utf8_lossy(stdout)
        )
    });
    let said = v["interrupted"] == true
        || (v["ok"] == false
            && v["error"]["kind"] == "interrupted"
            && v["error"]["exit_code"] == 130
            && v["command"] == command);
    assert!(said, "{command}: {v:#}");
}

const STOP_WITHIN: Duration = Duration::from_secs(2);

/// Every command, a `nix` child running: SIGINT or SIGTERM stops it within 2 s with exit 130,
/// every process it started is gone (checked by PID), and its scratch directory is empty.
#[test]
fn every_command_stops_within_two_seconds_of_a_signal_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let path = slow_nix(dir.path());
    let bastion = repo().join("examples/bastion/default.nix");
    let cases: Vec<(&str, Vec<String>, libc::c_int)> = vec![
        ("knobs", vec![], libc::SIGINT),
        ("eval", vec!["--host".into(), "meeka".into()], libc::SIGTERM),
        ("plan", vec![], libc::SIGINT),
        (
            "matrix",
            vec!["--strategy".into(), "one-at-a-time".into()],
            libc::SIGTERM,
        ),
        (
            "check",
            vec!["--module".into(), bastion.display().to_string()],
            libc::SIGINT,
        ),
        ("bench", vec!["--limit".into(), "4".into()], libc::SIGTERM),
        (
            "sandbox",
            vec!["--host".into(), "bastion".into()],
            libc::SIGINT,
        ),
        ("vm", vec![], libc::SIGTERM),
    ];
    let mut report = vec![];
    for (command, args, sig) in cases {
        let scratch = tempfile::tempdir().unwrap();
        let mut r = spawn(
            Command::new(bin())
                .arg(command)
                .args(&args)
                .args(["--format", "json"])
                .env("PATH", &path)
                .env("TMPDIR", scratch.path())
                .env("PARANOID_FLAKE", repo()),
        );
        let before = wait_for_tree(&mut r, &format!("{command} started nix"), |t| {
            t.iter().any(|s| s.cmdline.contains("paranoid-slow-nix"))
        });
        let pid = r.child.id();
        let t = Instant::now();
        send(pid, sig);
        let (code, stdout, stderr) = r.wait(Duration::from_secs(20));
        let took = t.elapsed();
        report.push(format!("{command}: {took:?}"));
        assert!(
            took <= STOP_WITHIN,
            "{command} took {took:?} to stop: {stderr}"
        );
        assert_eq!(code, Some(130), "{command}: {stderr}");
        assert_interrupted_json(&stdout, command);
        let left: Vec<&Seen> = before.iter().filter(|s| alive(s)).collect();
        assert!(
            left.is_empty(),
            "{command} left processes behind: {left:#?}"
        );
        if command != "vm" {
            // The VM tier keeps its logs (its output) in the temp directory; nothing else may.
            let files: Vec<_> = std::fs::read_dir(scratch.path())
                .unwrap()
                .flatten()
                .collect();
            assert!(files.is_empty(), "{command} left {files:?} in TMPDIR");
        }
    }
    eprintln!("stopped: {report:?}");
}

/// A command that polls no flag (here `plan`, blocked writing a plan nobody reads) is stopped
/// by the watchdog: its children killed by PID, scratch removed, exit 130 within 2 s.
#[test]
fn a_command_stuck_on_a_full_pipe_is_stopped_by_the_watchdog() {
    let scratch = tempfile::tempdir().unwrap();
    let mut child = Command::new(bin())
        .args(["plan", "--strategy", "exhaustive", "--format", "json"])
        .env("TMPDIR", scratch.path())
        .env("PARANOID_FLAKE", repo())
        .stdin(Stdio::null())
        .stdout(Stdio::piped()) // never read: the plan (50 MB) blocks on it
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Past the catalogue's evaluation (its nix child came and went), into the plan.
    let started = Instant::now();
    loop {
        assert!(child.try_wait().unwrap().is_none(), "plan ended by itself");
        let nix_running = !descendants(child.id()).is_empty();
        if started.elapsed() > Duration::from_secs(1) && !nix_running {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "plan never got going"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(child.try_wait().unwrap().is_none(), "plan ended by itself");
    let t = Instant::now();
    send(child.id(), libc::SIGTERM);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if t.elapsed() > Duration::from_secs(20) {
            for p in descendants(child.id()).into_iter().rev() {
                kill_quietly(p);
            }
            let _ = child.kill();
            let _ = child.wait();
            panic!("not stopped");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(t.elapsed() <= STOP_WITHIN, "took {:?}", t.elapsed());
    assert_eq!(status.code(), Some(130));
    assert_eq!(
        std::fs::read_dir(scratch.path()).unwrap().count(),
        0,
        "the run's scratch directory is removed"
    );
}

/// The sandbox mid-run (users, namespaces and a live sshd exist): a signal stops it within 2 s
/// and its guards remove every resource of the run.
#[test]
fn the_sandbox_stops_within_two_seconds_and_removes_its_users_namespaces_and_daemons() {
    sandbox_support::require_root();
    let state = PathBuf::from(format!(
        "/var/lib/paranoid-sandbox-test-signal-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&state);
    std::fs::create_dir_all(&state).unwrap();
    struct Cleanup(PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = Command::new(bin())
                .args(["sandbox", "--sweep", "--state-dir"])
                .arg(&self.0)
                .output();
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _cleanup = Cleanup(state.clone());
    let mut r = spawn(
        Command::new(bin())
            .args([
                "sandbox",
                "--host",
                "meeka",
                "--format",
                "json",
                "--paranoid",
            ])
            .arg(repo())
            .arg("--state-dir")
            .arg(&state),
    );
    let before = wait_for_tree(&mut r, "the sandbox started sshd", |t| {
        t.iter()
            .any(|s| s.cmdline.contains("sshd") && s.cmdline.contains(" -D "))
    });
    let id = std::fs::read_dir(state.join("runs"))
        .unwrap()
        .flatten()
        .find_map(|e| {
            e.file_name()
                .to_string_lossy()
                .strip_suffix(".journal")
                .map(str::to_string)
        })
        .expect("the run's journal");
    assert!(
        !sandbox_support::leftovers(&id, &state).is_empty(),
        "the run has resources to remove"
    );
    let t = Instant::now();
    send(r.child.id(), libc::SIGTERM);
    let (code, stdout, stderr) = r.wait(Duration::from_secs(30));
    let took = t.elapsed();
    assert!(took <= STOP_WITHIN, "took {took:?}: {stderr}");
    assert_eq!(code, Some(130), "{stderr}");
    assert_interrupted_json(&stdout, "sandbox");
    let left = sandbox_support::leftovers(&id, &state);
    assert!(left.is_empty(), "left behind: {left:#?}");
    let procs: Vec<&Seen> = before.iter().filter(|s| alive(s)).collect();
    assert!(procs.is_empty(), "processes left: {procs:#?}");
}

/// `--jobs 100000` is lowered to what the machine takes, with the bound and its reasons on
/// stderr, and the process never runs more threads than that pool needs.
#[test]
fn jobs_beyond_the_machine_are_capped_and_say_why() {
    let cores = std::thread::available_parallelism().unwrap().get();
    let mut r = spawn(
        Command::new(bin())
            .args([
                "matrix",
                "--strategy",
                "one-at-a-time",
                "--jobs",
                "100000",
                "--batch-size",
                "4",
                "--format",
                "json",
            ])
            .env("PARANOID_FLAKE", repo()),
    );
    let pid = r.child.id();
    let mut most_threads = 0;
    let mut most_nix = 0;
    while r.child.try_wait().unwrap().is_none() {
        let threads = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_default()
            .lines()
            .find_map(|l| {
                l.strip_prefix("Threads:")
                    .map(|n| n.trim().parse().unwrap_or(0))
            })
            .unwrap_or(0);
        most_threads = most_threads.max(threads);
        // The harness's own nix children (nix forks helpers of its own, e.g. for git).
        let nix = descendants(pid)
            .into_iter()
            .filter(|p| {
                paranoid_harness::interrupt::parent_pid(*p) == Some(pid)
                    && cmdline(*p).contains(" eval ")
            })
            .count();
        most_nix = most_nix.max(nix);
        std::thread::sleep(Duration::from_millis(5));
    }
    let (code, out, err) = r.wait(Duration::from_secs(5));
    assert_eq!(code, Some(0), "{err}");
    let report: Value = serde_json::from_slice(&out).unwrap();
    let jobs = report["jobs"].as_u64().unwrap() as usize;
    assert!(
        jobs >= 1 && jobs <= 2 * cores,
        "jobs {jobs} on {cores} cores"
    );
    assert!(
        err.contains(&format!("--jobs 100000 capped to {jobs}"))
            && err.contains(&format!("{cores} cores"))
            && err.contains("GiB of memory available"),
        "{err}"
    );
    // The pool's threads; per running nix a waiter and two readers (stdout, stderr); the
    // signal handler's and main.
    assert!(
        most_threads <= 4 * jobs + 4,
        "{most_threads} threads for {jobs} jobs"
    );
    assert!(
        most_nix <= jobs,
        "{most_nix} nix processes at once for {jobs} jobs"
    );
    assert_eq!(report["evaluated"], report["planned"]);

    // The sandbox's and the VM tier's pools are bounded the same way.
    let out = Command::new(bin())
        .args([
            "sandbox", "--host", "bastion", "--checks", "units", "--jobs", "100000",
        ])
        .env("PARANOID_FLAKE", repo())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--jobs 100000 capped to") && err.contains("sandbox jobs"),
        "{err}"
    );
    let out = Command::new(bin())
        .args(["vm", "--list", "--jobs", "100000"])
        .env("PARANOID_FLAKE", repo())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--jobs 100000 capped to") && err.contains("VM builds"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// Without root.

/// A user made for the test, removed with its files afterwards (even when an assertion failed).
struct TestUser {
    name: String,
    base: tempfile::TempDir,
}

impl TestUser {
    fn create() -> TestUser {
        use std::os::unix::fs::PermissionsExt;
        sandbox_support::require_root();
        let base = tempfile::tempdir().unwrap();
        std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let name = format!("pzh{}", std::process::id() % 100_000);
        let home = base.path().join("home");
        let st = Command::new("useradd")
            .args([
                "--no-create-home",
                "--user-group",
                "--shell",
                "/usr/sbin/nologin",
                "--home-dir",
            ])
            .arg(&home)
            .arg(&name)
            .status()
            .unwrap();
        assert!(st.success(), "useradd {name}");
        let user = TestUser { name, base };
        std::fs::create_dir(&home).unwrap();
        let st = Command::new("chown")
            .arg(format!("{0}:{0}", user.name))
            .arg(&home)
            .status()
            .unwrap();
        assert!(st.success());
        user
    }

    fn home(&self) -> PathBuf {
        self.base.path().join("home")
    }

    /// A copy of the checkout the user can read (the real one may sit under /root), outside
    /// its home, and of the binary.
    fn install(&self) -> (PathBuf, PathBuf) {
        let flake = self.base.path().join("paranoid");
        std::fs::create_dir(&flake).unwrap();
        let st = Command::new("cp")
            .arg("-r")
            .args(
                [
                    "flake.nix",
                    "flake.lock",
                    "lib",
                    "modules",
                    "checks",
                    "examples",
                ]
                .map(|f| repo().join(f)),
            )
            .arg(&flake)
            .status()
            .unwrap();
        assert!(st.success());
        let bin_copy = self.base.path().join("paranoid-harness");
        std::fs::copy(bin(), &bin_copy).unwrap();
        let st = Command::new("chmod")
            .args(["-R", "a+rX"])
            .arg(self.base.path())
            .status()
            .unwrap();
        assert!(st.success());
        (flake, bin_copy)
    }

    /// `setpriv` to the user, with a clean environment.
    fn run(
        &self,
        bin: &Path,
        flake: &Path,
        extra_env: &[(&str, &str)],
        args: &[&str],
    ) -> (Option<i32>, Vec<u8>, String) {
        let mut cmd = Command::new("setpriv");
        cmd.arg(format!("--reuid={}", self.name))
            .arg(format!("--regid={}", self.name))
            .arg("--clear-groups")
            .args([
                "env",
                "-i",
                "PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
            ])
            .arg(format!("HOME={}", self.home().display()))
            .arg(format!("PARANOID_FLAKE={}", flake.display()));
        for (k, v) in extra_env {
            cmd.arg(format!("{k}={v}"));
        }
        cmd.arg(bin).args(args);
        let out = cmd.output().unwrap();
        (
            out.status.code(),
            out.stdout,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        // Its processes are gone (every run above waited for its own); then the account.
        let _ = Command::new("userdel").arg(&self.name).status();
        let _ = Command::new("groupdel").arg(&self.name).output();
    }
}

/// As a user who is not root, on this machine's root-owned /nix without a daemon: evaluation
/// works in a private store seeded from /nix/store; a store the user may not use is exit 7
/// saying what is needed; the sandbox says it needs root, with exit 7.
#[test]
fn an_unprivileged_user_evaluates_in_a_private_store_and_the_sandbox_says_it_needs_root() {
    let user = TestUser::create();
    let (flake, bin) = user.install();
    assert!(
        !Path::new(paranoid_harness::store::DAEMON_SOCKET).exists(),
        "this test is about a machine without a nix-daemon"
    );

    let (code, out, err) = user.run(
        &bin,
        &flake,
        &[],
        &["eval", "--host", "meeka", "--format", "json"],
    );
    assert_eq!(code, Some(0), "{err}");
    let p: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(p["host"], "meeka");
    let store = user.home().join(".cache/paranoid-harness/nix-store");
    assert!(
        err.contains("private store") && err.contains(&store.display().to_string()),
        "{err}"
    );
    assert!(store.join("nix/store").is_dir());

    let module = flake.join("examples/bastion/default.nix");
    let (code, out, err) = user.run(
        &bin,
        &flake,
        &[],
        &[
            "check",
            "--format",
            "json",
            "--module",
            module.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    let r: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(r["ok"], true, "{r:#}");

    // The checkout root owns (this repository): git refuses it for this user, so Nix could not
    // read it; the harness says so, with how to trust it, instead of Nix's usage dump.
    let (code, _, err) = user.run(&bin, &repo(), &[], &["eval", "--host", "meeka"]);
    assert_eq!(code, Some(7), "{err}");
    assert!(err.contains("dubious ownership") && err.contains("safe.directory"), "{err}");

    // The system store, asked for explicitly: Nix may not use it; the message says what would do.
    let (code, out, err) = user.run(
        &bin,
        &flake,
        &[("NIX_REMOTE", "local")],
        &["eval", "--host", "meeka", "--format", "json"],
    );
    assert_eq!(code, Some(7), "{err}");
    assert!(
        err.contains("/nix/var/nix") && err.contains("run as root") && err.contains("nix-daemon"),
        "{err}"
    );
    let e: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(e["error"]["kind"], "environment");

    // The sandbox tier: evaluated as above, then it needs root, and says so.
    let (code, out, err) = user.run(
        &bin,
        &flake,
        &[],
        &["sandbox", "--host", "bastion", "--format", "json"],
    );
    assert_eq!(code, Some(7), "{err}");
    assert!(err.contains("the sandbox tier needs root"), "{err}");
    let r: Value = serde_json::from_slice(&out).unwrap();
    let sshd = sandbox_support::check(&r, "sshd");
    assert_eq!(sshd["status"], "skipped");
    assert!(
        sshd["summary"]
            .as_str()
            .unwrap()
            .starts_with("needs root: "),
        "{sshd}"
    );
}

/// A private store inside the checkout would be copied into itself: refused up front.
#[test]
fn a_private_store_inside_the_checkout_is_refused() {
    let scratch = tempfile::tempdir().unwrap();
    let inside = repo().join(".paranoid-test-store-never-created");
    let out = Command::new(bin())
        .args(["knobs", "--format", "json"])
        .env("PARANOID_FLAKE", repo())
        .env("PARANOID_NIX_STORE", &inside)
        .env("TMPDIR", scratch.path())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("inside the paranoid checkout"));
    assert!(!inside.exists());
}
