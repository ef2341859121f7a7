//! The opt-in auditd check: a uid-scoped copy of the execve rule records a throwaway user's
//! exec, and the kernel's audit state is exactly as before afterwards.

mod sandbox_support;
use sandbox_support::*;

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

#[test]
fn the_execve_rule_records_a_throwaway_users_exec_and_the_audit_state_is_restored() {
    require_root();
    let before = audit_state();
    let (code, r) = sandbox_json(&["--host", "meeka", "--checks", "auditd"]);
    let c = check(&r, "auditd");
    if c["status"] == "skipped" {
        // Another audit daemon or locked rules: say so loudly rather than pass.
        panic!("the auditd check could not run here: {}", c["summary"]);
    }
    assert_eq!(code, 0, "{r:#}");
    let ev = evidence_text(c);
    assert!(
        ev.contains("type=EXECVE") && ev.contains("a0=/bin/true"),
        "{ev}"
    );
    assert!(
        ev.contains("[true] the previous audit state is restored exactly"),
        "{ev}"
    );
    assert_eq!(audit_state(), before, "audit state changed");
}

#[test]
fn the_auditd_check_is_off_unless_asked_for() {
    require_root();
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
