//! Cleanup: after any run (success, failure, panic, Ctrl-C, or SIGKILL followed by a new run)
//! nothing of the run is left: no users, groups, network namespaces, mounts, processes,
//! listening sockets, files.

mod sandbox_support;
use sandbox_support::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A private state directory (root-owned, not under a world-writable /tmp: sshd's StrictModes).
struct StateDir(PathBuf);
impl StateDir {
    fn new(tag: &str) -> StateDir {
        let p = PathBuf::from(format!(
            "/var/lib/paranoid-sandbox-test-{tag}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        StateDir(p)
    }
}
impl Drop for StateDir {
    fn drop(&mut self) {
        // Even when an assertion failed: sweep what a killed run left, then remove the journals.
        let _ = Command::new(bin())
            .args(["sandbox", "--sweep", "--state-dir"])
            .arg(&self.0)
            .output();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("paranoid-harness")
}

/// Start a run in the background; wait until its journal shows a namespace and a user, and
/// its sshd runs.
#[allow(clippy::zombie_processes)] // the caller kills and waits for the child it gets back
fn start_and_wait_for_daemon(state: &Path, host: &str) -> (std::process::Child, String) {
    let mut child = Command::new(bin())
        .args(["sandbox", "--host", host, "--format", "json", "--flake"])
        .arg(repo_root())
        .arg("--state-dir")
        .arg(state)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the run never started sshd");
        }
        let runs = state.join("runs");
        let id = std::fs::read_dir(&runs).ok().and_then(|rd| {
            rd.flatten().find_map(|e| {
                e.file_name()
                    .to_string_lossy()
                    .strip_suffix(".journal")
                    .map(str::to_string)
            })
        });
        if let Some(id) = id {
            let journal =
                std::fs::read_to_string(runs.join(format!("{id}.journal"))).unwrap_or_default();
            // sshd is the hard case: it rewrites its environment (process title), erasing the marker.
            let daemon_up = leftovers(&id, state)
                .iter()
                .any(|l| l.starts_with("process") && l.contains("sshd") && l.contains(" -D "));
            if journal.contains("netns") && journal.contains("user") && daemon_up {
                return (child, id);
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn listening_ports_host_ns() -> Vec<u16> {
    let mut v = vec![];
    for f in ["/proc/net/tcp", "/proc/net/tcp6"] {
        for l in std::fs::read_to_string(f)
            .unwrap_or_default()
            .lines()
            .skip(1)
        {
            let cols: Vec<&str> = l.split_whitespace().collect();
            if cols.get(3) == Some(&"0A") {
                if let Some(port) = cols
                    .get(1)
                    .and_then(|a| a.rsplit(':').next())
                    .and_then(|h| u16::from_str_radix(h, 16).ok())
                {
                    v.push(port);
                }
            }
        }
    }
    v
}

#[test]
fn a_run_killed_with_sigkill_is_swept_by_the_next_run() {
    require_root();
    let state = StateDir::new("kill");
    let (mut child, id) = start_and_wait_for_daemon(&state.0, "bastion");
    child.kill().unwrap(); // SIGKILL: no guard runs
    child.wait().unwrap();
    let left = leftovers(&id, &state.0);
    assert!(
        left.iter().any(|l| l.starts_with("netns")),
        "the kill should leave namespaces behind: {left:#?}"
    );
    assert!(
        left.iter().any(|l| l.starts_with("user")),
        "the kill should leave users behind: {left:#?}"
    );
    assert!(
        left.iter()
            .any(|l| l.starts_with("process") && l.contains("sshd") && l.contains(" -D ")),
        "the kill should leave sshd running: {left:#?}"
    );

    // The next run (any checks) sweeps it first.
    let out = Command::new(bin())
        .args([
            "sandbox",
            "--host",
            "meeka",
            "--checks",
            "units,mounts",
            "--format",
            "json",
            "--flake",
        ])
        .arg(repo_root())
        .arg("--state-dir")
        .arg(&state.0)
        .output()
        .unwrap();
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let swept: Vec<String> = r["swept"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    assert!(
        swept
            .iter()
            .any(|s| s.contains(&id) && s.contains("ended processes")),
        "{swept:#?}"
    );
    assert!(
        swept.iter().any(|s| s.contains(&id) && s.contains("netns")),
        "{swept:#?}"
    );
    assert!(!swept.iter().any(|s| s.contains("could not")), "{swept:#?}");
    let left = leftovers(&id, &state.0);
    assert!(left.is_empty(), "left after the sweep: {left:#?}");
    assert!(leftovers(r["runId"].as_str().unwrap(), &state.0).is_empty());
}

#[test]
fn ctrl_c_stops_the_run_reports_what_finished_and_cleans_up() {
    require_root();
    let state = StateDir::new("int");
    let (child, id) = start_and_wait_for_daemon(&state.0, "meeka");
    let t = Instant::now();
    let st = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "Ctrl-C must exit 130");
    assert!(
        t.elapsed() < Duration::from_secs(20),
        "stopping took {:?}",
        t.elapsed()
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["interrupted"], true);
    let left = leftovers(&id, &state.0);
    assert!(left.is_empty(), "left after Ctrl-C: {left:#?}");
}

#[test]
fn a_check_that_panics_is_reported_and_cleaned_up() {
    require_root();
    let state = StateDir::new("panic");
    let out = Command::new(bin())
        .args([
            "sandbox",
            "--host",
            "bastion",
            "--checks",
            "firewall,sshd",
            "--format",
            "json",
            "--flake",
        ])
        .arg(repo_root())
        .arg("--state-dir")
        .arg(&state.0)
        .env("PARANOID_SANDBOX_TEST_PANIC", "firewall")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let fw = check(&r, "firewall");
    assert_eq!(fw["status"], "fail");
    assert!(evidence_text(fw).contains("internal error (panic)"), "{fw}");
    assert_eq!(
        check(&r, "sshd")["status"],
        "pass",
        "the other check still ran"
    );
    let left = leftovers(r["runId"].as_str().unwrap(), &state.0);
    assert!(left.is_empty(), "left after a panic: {left:#?}");
}

#[test]
fn nothing_is_left_and_nothing_listens_on_the_host_after_a_full_run() {
    require_root();
    let before = listening_ports_host_ns();
    let (code, r) = sandbox_json(&["--host", "bastion", "--host", "meeka"]);
    assert_eq!(code, 0, "{r:#}");
    let left = leftovers(r["runId"].as_str().unwrap(), Path::new(DEFAULT_STATE_DIR));
    assert!(left.is_empty(), "{left:#?}");
    // Every daemon listened inside the run's own namespaces, never on the host.
    let after = listening_ports_host_ns();
    let new: Vec<u16> = after
        .iter()
        .filter(|p| !before.contains(p) && [22, 443, 20022, 20023].contains(*p))
        .copied()
        .collect();
    assert!(new.is_empty(), "new host listeners on {new:?}");
}
