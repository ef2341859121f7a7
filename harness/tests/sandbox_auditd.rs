//! The opt-in auditd check: the configuration's complete rule file, loaded in order, and the
//! kernel's records of twelve execs (login user, root, daemon; execve and execveat; both ABIs)
//! compared with the model and the posture; the kernel's audit state is exactly as before
//! afterwards.

mod sandbox_support;
use sandbox_support::*;

/// The tests here compare the kernel's audit state before and after a run: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn audit_state() -> (String, String) {
    let s = std::process::Command::new("auditctl")
        .arg("-s")
        .output()
        .unwrap();
    let enabled = String::from_utf8_lossy(&s.stdout)
        .lines()
        .find(|l| l.starts_with("enabled "))
        .unwrap_or("")
        .to_string();
    let l = std::process::Command::new("auditctl")
        .arg("-l")
        .output()
        .unwrap();
    (enabled, String::from_utf8_lossy(&l.stdout).into_owned())
}

/// Run the auditd check on `args`; it must have run (a skip fails loudly), and the audit state
/// must be as before. Returns (exit code, status, evidence).
fn auditd(args: &[&str]) -> (i32, String, String) {
    let before = audit_state();
    let mut a = args.to_vec();
    a.extend(["--checks", "auditd", "--ignore-assertions"]);
    let (code, r) = sandbox_json(&a);
    let c = check(&r, "auditd");
    if c["status"] == "skipped" {
        // Another audit daemon, host rules or locked rules: say so loudly rather than pass.
        panic!("the auditd check could not run here: {}", c["summary"]);
    }
    let ev = evidence_text(c);
    assert!(
        ev.contains("[true] the previous audit state is restored exactly"),
        "{ev}"
    );
    assert_eq!(audit_state(), before, "audit state changed");
    (code, c["status"].as_str().unwrap().to_string(), ev)
}

fn module(text: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("m.nix");
    std::fs::write(&f, text).unwrap();
    let s = f.to_str().unwrap().to_string();
    (dir, s)
}

const EXECS: [&str; 12] = [
    "a login user, b64 execve",
    "a login user, b64 execveat",
    "a login user, b32 execve",
    "a login user, b32 execveat",
    "root in a login session, b64 execve",
    "root in a login session, b64 execveat",
    "root in a login session, b32 execve",
    "root in a login session, b32 execveat",
    "a daemon (no login uid), b64 execve",
    "a daemon (no login uid), b64 execveat",
    "a daemon (no login uid), b32 execve",
    "a daemon (no login uid), b32 execveat",
];

#[test]
fn the_complete_rule_file_records_every_exec_the_model_promises_and_the_audit_state_is_restored() {
    require_root();
    let _serial = serial();
    let (code, status, ev) = auditd(&["--host", "meeka"]);
    assert_eq!((code, status.as_str()), (0, "pass"), "{ev}");
    for x in EXECS {
        let line = format!(
            "[true] {x}: the kernel records SYSCALL yes, EXECVE yes (the model says SYSCALL yes, EXECVE yes"
        );
        assert!(ev.contains(&line), "{line}\n{ev}");
    }
    for needle in [
        // The whole file in order: -D, the host-wide lines left out, paranoid's rules narrowed
        // to the probe, the enabled flag.
        "[true] line 1 `-D`",
        "line 2 `-b 8192`: sets the kernel's backlog",
        "[true] line 5 `-a always,exit -F arch=b64 -S execve -S execveat -k exec`, narrowed to the probe",
        "[true] line 7 `-e 1`",
        "arch=40000003 syscall=358",
        "auid=4294967295 uid=998",
        "[true] paranoid.audit.execve promises SYSCALL and EXECVE records",
    ] {
        assert!(ev.contains(needle), "{needle}\n{ev}");
    }
}

#[test]
fn an_exclude_rule_as_written_drops_every_execve_record_and_the_check_fails() {
    require_root();
    let _serial = serial();
    let root = repo_root();
    let (_d, m) = module(&format!(
        "{{ lib, ... }}: {{ imports = [ {}/examples/meeka ]; security.audit.rules = lib.mkAfter [ \"-a always,exclude -F msgtype=EXECVE\" ]; }}",
        root.display()
    ));
    let (code, status, ev) = auditd(&["--module", &m]);
    assert_eq!((code, status.as_str()), (1, "fail"), "{ev}");
    assert!(
        ev.contains("[true] line 7 `-a always,exclude -F msgtype=EXECVE`, as written"),
        "{ev}"
    );
    // Model and kernel agree (SYSCALL kept, EXECVE dropped); the posture's promise is broken.
    for x in EXECS {
        let line = format!(
            "[true] {x}: the kernel records SYSCALL yes, EXECVE no (the model says SYSCALL yes, EXECVE no"
        );
        assert!(ev.contains(&line), "{line}\n{ev}");
    }
    assert!(
        ev.contains("[false] paranoid.audit.execve promises SYSCALL and EXECVE records"),
        "{ev}"
    );
}

#[test]
fn the_check_fails_where_the_kernel_records_what_the_model_says_it_does_not() {
    require_root();
    let _serial = serial();
    // The model cannot evaluate ppid, so it counts this never rule as suppressing; the kernel
    // evaluates it, the probe's parent is not pid 1, and the exec is recorded.
    let root = repo_root();
    let (_d, m) = module(&format!(
        "{{ lib, ... }}: {{ imports = [ {}/examples/meeka ]; security.audit.rules = lib.mkBefore [ \"-a never,exit -F arch=b64 -S execve -F ppid=1\" ]; }}",
        root.display()
    ));
    let (code, status, ev) = auditd(&["--module", &m]);
    assert_eq!((code, status.as_str()), (1, "fail"), "{ev}");
    assert!(
        ev.contains("[false] a login user, b64 execve: the kernel records SYSCALL yes, EXECVE yes (the model says SYSCALL no, EXECVE no"),
        "{ev}"
    );
    // execveat and the 32-bit ABI are not named by the rule: model and kernel agree there.
    assert!(
        ev.contains("[true] a login user, b64 execveat: the kernel records SYSCALL yes, EXECVE yes (the model says SYSCALL yes, EXECVE yes"),
        "{ev}"
    );
    assert!(
        ev.contains("[true] paranoid.audit.execve promises SYSCALL and EXECVE records"),
        "{ev}"
    );
}

#[test]
fn a_locking_file_is_loaded_unlocked_and_an_unlocked_one_is_caught_where_the_lock_is_promised() {
    require_root();
    let _serial = serial();
    let (code, status, ev) = auditd(&["--host", "bastion"]);
    assert_eq!((code, status.as_str()), (0, "pass"), "{ev}");
    assert!(
        ev.contains("`-e 2`, loaded as `-e 1` (never locked here)"),
        "{ev}"
    );
    assert!(ev.contains("is not proven here"), "{ev}");
    let root = repo_root();
    let (_d, m) = module(&format!(
        "{{ lib, ... }}: {{ imports = [ {}/examples/bastion ]; security.audit.enable = lib.mkForce true; }}",
        root.display()
    ));
    let (code, status, ev) = auditd(&["--module", &m]);
    assert_eq!((code, status.as_str()), (1, "fail"), "{ev}");
    assert!(
        ev.contains("[false] root can switch auditing off (the file ends with `-e 1`; paranoid.audit.immutable promises it cannot)"),
        "{ev}"
    );
}

#[test]
fn the_auditd_check_is_off_unless_asked_for() {
    require_root();
    let _serial = serial();
    let (code, r) = sandbox_json(&["--host", "meeka"]);
    assert_eq!(code, 0, "{r:#}");
    assert!(r["permutations"][0]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["check"] != "auditd"));
}

#[test]
fn the_foreign_exec_watcher_alerts_under_the_units_arguments_and_the_audit_state_is_restored() {
    require_root();
    let _serial = serial();
    let before = audit_state();
    let (code, r) = sandbox_json(&["--host", "meeka", "--checks", "execwatch"]);
    let c = check(&r, "execwatch");
    if c["status"] == "skipped" {
        panic!("the execwatch check could not run here: {}", c["summary"]);
    }
    assert_eq!(code, 0, "{r:#}");
    let ev = evidence_text(c);
    for needle in [
        "[true] an alert at priority 1 names the executable",
        "[true] removing the execve rule is an alert",
        "[true] stopping the watcher is an alert",
        "[true] the previous audit state is restored exactly",
        "--allow /run/wrappers",
    ] {
        assert!(ev.contains(needle), "{needle}: {ev}");
    }
    assert_eq!(audit_state(), before, "audit state changed");
}

#[test]
fn a_run_killed_with_rules_loaded_is_undone_by_the_next_sweep() {
    require_root();
    let _serial = serial();
    let before = audit_state();
    let state = std::path::PathBuf::from(format!(
        "/var/lib/paranoid-sandbox-test-audit-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&state);
    std::fs::create_dir_all(&state).unwrap();
    let bin = assert_cmd::cargo::cargo_bin("paranoid-harness");
    let sweep = || {
        std::process::Command::new(&bin)
            .args(["sandbox", "--sweep", "--state-dir"])
            .arg(&state)
            .output()
            .unwrap()
    };
    // Dropping user messages keeps the check waiting for its sentinel (5 s) with every rule
    // loaded, as written (the exclude rule) and narrowed to the probe: the kill lands there.
    let root = repo_root();
    let (_d, m) = module(&format!(
        "{{ lib, ... }}: {{ imports = [ {}/examples/meeka ]; security.audit.rules = lib.mkAfter [ \"-a always,exclude -F msgtype=USER\" ]; }}",
        root.display()
    ));
    let mut child = std::process::Command::new(&bin)
        .args([
            "sandbox", "--module", &m, "--checks", "auditd", "--format", "json",
        ])
        .arg("--paranoid")
        .arg(&root)
        .arg("--state-dir")
        .arg(&state)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let loaded = loop {
        let (_, rules) = audit_state();
        if rules.contains("msgtype=USER") && rules.contains("-probe") {
            break rules;
        }
        if std::time::Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            let _ = child.wait();
            sweep();
            let _ = std::fs::remove_dir_all(&state);
            panic!("the run never loaded its rules: {rules}");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    child.kill().unwrap(); // SIGKILL: no guard runs
    child.wait().unwrap();
    assert_ne!(
        audit_state(),
        before,
        "the kill left nothing to undo: {loaded}"
    );
    let out = sweep();
    let report =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let _ = std::fs::remove_dir_all(&state);
    assert_eq!(
        audit_state(),
        before,
        "the sweep did not restore the audit state: {report}"
    );
    assert!(
        report.contains("removed audit-rule-undo -d always,exclude -F msgtype=USER"),
        "{report}"
    );
    assert!(report.contains("ended processes"), "{report}");
}
