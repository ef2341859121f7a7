//! paranoid.rollback's decisions (modules/rollback.sh), run for real against a fake host:
//! generations are directories whose bin/switch-to-configuration does what NixOS's does in the
//! order that matters (NIXOS_ACTION set, the activation script run, whose paranoid-rollback
//! snippet calls `arm`, then the running-system link pointed at itself); the system profile is
//! a real profile of generation symlinks that the script switches with the real `nix-env`;
//! systemd-run, systemctl and auditctl are stand-ins that record their arguments.

mod common;

use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use assert_cmd::Command;

fn script() -> PathBuf {
    common::repo().join("modules/rollback.sh")
}

fn write_exe(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn expect_stderr(out: &assert_cmd::assert::Assert, needle: &str) {
    let err = String::from_utf8_lossy(&out.get_output().stderr);
    assert!(
        err.contains(needle),
        "expected {needle:?} on stderr:\n{err}"
    );
}

struct Host {
    dir: tempfile::TempDir,
}

impl Host {
    /// Generations 1 to 3; generation 1 runs and is the profile's current one.
    fn new() -> Host {
        let host = Host {
            dir: tempfile::tempdir().unwrap(),
        };
        let d = host.dir.path();
        for dir in ["bin", "profiles", "run", "gcroots"] {
            std::fs::create_dir_all(d.join(dir)).unwrap();
        }
        for tool in ["systemd-run", "systemctl", "auditctl"] {
            write_exe(
                &d.join("bin").join(tool),
                &format!("#!/bin/sh\necho \"{tool} $*\" >> \"$CALLS\"\n"),
            );
        }
        for n in 1..=3 {
            let gen = host.gen(n);
            std::fs::create_dir_all(gen.join("bin")).unwrap();
            write_exe(
                &gen.join("bin/switch-to-configuration"),
                &format!(
                    r#"#!/usr/bin/env bash
# NixOS's switch-to-configuration, reduced to what the rollback depends on.
set -e
echo "switch-to-configuration gen{n} $1" >> "$CALLS"
case "$1" in
  switch|test)
    # The activation script, with paranoid.rollback's snippet as modules/rollback.nix writes it.
    NIXOS_ACTION=$1 bash "$ROLLBACK_SCRIPT" arm "{gen}" || echo "paranoid-rollback: the rollback is NOT armed" >&2
    # Its last step: this is now the running system.
    ln -sfn "{gen}" "$CURRENT"
    ;;
esac
"#,
                    gen = gen.display()
                ),
            );
        }
        symlink(host.gen(1), d.join("profiles/system-1-link")).unwrap();
        symlink("system-1-link", d.join("profiles/system")).unwrap();
        symlink(host.gen(1), host.current()).unwrap();
        host
    }

    fn gen(&self, n: u32) -> PathBuf {
        self.dir.path().join(format!("gen{n}"))
    }
    fn current(&self) -> PathBuf {
        self.dir.path().join("run/current-system")
    }
    fn state(&self) -> PathBuf {
        self.dir.path().join("run/paranoid-rollback")
    }
    fn profile(&self) -> PathBuf {
        self.dir.path().join("profiles/system")
    }
    fn gcroot(&self) -> PathBuf {
        self.dir.path().join("gcroots/paranoid-rollback")
    }

    /// A command with the host's paths and tools, and no activation context of its own.
    fn cmd(&self, program: &Path) -> Command {
        let d = self.dir.path();
        let mut c = Command::new(program);
        c.env(
            "PATH",
            format!(
                "{}:{}",
                d.join("bin").display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .env("CALLS", d.join("calls"))
        .env("ROLLBACK_SCRIPT", script())
        .env("CURRENT", self.current())
        .env("PARANOID_ROLLBACK_STATE", self.state())
        .env("PARANOID_ROLLBACK_PROFILE", self.profile())
        .env("PARANOID_ROLLBACK_CURRENT", self.current())
        .env("PARANOID_ROLLBACK_GCROOT", self.gcroot())
        .env("PARANOID_ROLLBACK_TIMEOUT", "5")
        .env(
            "PARANOID_ROLLBACK_SELF",
            "/run/current-system/sw/bin/paranoid-rollback",
        )
        .env_remove("NIXOS_ACTION")
        .env_remove("JOURNAL_STREAM")
        .env_remove("PARANOID_ROLLBACK_REACTIVATING");
        c
    }

    /// `paranoid-rollback <args>`.
    fn rollback(&self, args: &[&str]) -> Command {
        let mut c = self.cmd(Path::new("bash"));
        c.arg(script()).args(args);
        c
    }

    /// What nixos-rebuild switch does: a new profile generation for `gen`, then its
    /// switch-to-configuration `action`.
    fn rebuild(&self, n: u32, action: &str) {
        let link = self.dir.path().join(format!("profiles/system-{n}-link"));
        if !link.exists() {
            symlink(self.gen(n), &link).unwrap();
        }
        if action == "switch" {
            std::fs::remove_file(self.profile()).unwrap();
            symlink(format!("system-{n}-link"), self.profile()).unwrap();
        }
        self.cmd(&self.gen(n).join("bin/switch-to-configuration"))
            .arg(action)
            .assert()
            .success();
    }

    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("calls"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
    fn calls_of(&self, tool: &str) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter(|l| l.starts_with(&format!("{tool} ")))
            .collect()
    }
    fn running(&self) -> PathBuf {
        self.current().canonicalize().unwrap()
    }
    fn profile_target(&self) -> PathBuf {
        self.profile().canonicalize().unwrap()
    }
    fn armed(&self) -> bool {
        self.state().join("new").symlink_metadata().is_ok()
    }
    fn previous(&self) -> PathBuf {
        std::fs::read_link(self.state().join("previous")).unwrap()
    }
}

#[test]
fn a_switch_arms_a_timer_to_re_activate_the_running_generation() {
    let h = Host::new();
    h.rebuild(2, "switch");
    assert_eq!(h.running(), h.gen(2));
    assert!(h.armed(), "a switch must arm: {:?}", h.calls());
    assert_eq!(h.previous(), h.gen(1));
    let timer = h.calls_of("systemd-run");
    assert_eq!(timer.len(), 1, "{timer:?}");
    assert!(
        timer[0].contains("--unit=paranoid-rollback")
            && timer[0].contains("--on-active=5min")
            && timer[0].ends_with("/run/current-system/sw/bin/paranoid-rollback expire"),
        "{timer:?}"
    );
    // The previous generation is a GC root until the decision.
    assert_eq!(h.gcroot().canonicalize().unwrap(), h.gen(1));
    let status = h.rollback(&["status"]).assert().success();
    let out = String::from_utf8_lossy(&status.get_output().stdout).into_owned();
    assert!(
        out.contains("armed") && out.contains("gen2") && out.contains("gen1"),
        "{out}"
    );
}

#[test]
fn nixos_rebuild_test_arms_too() {
    let h = Host::new();
    h.rebuild(2, "test");
    assert!(h.armed());
    assert_eq!(h.previous(), h.gen(1));
}

#[test]
fn paranoid_confirm_cancels_the_rollback() {
    let h = Host::new();
    h.rebuild(2, "switch");
    let before = h.calls_of("systemctl").len();
    let out = h.rollback(&["confirm", "alice"]).assert().success();
    expect_stderr(&out, "confirmed by alice");
    assert!(!h.armed());
    assert!(
        h.gcroot().symlink_metadata().is_err(),
        "the GC root goes with the decision"
    );
    assert_eq!(
        h.calls_of("systemctl")[before..],
        ["systemctl stop paranoid-rollback.timer".to_string()],
        "confirming stops the timer"
    );
    // Even if the timer fired anyway, nothing is rolled back.
    h.rollback(&["expire"]).assert().success();
    assert_eq!(h.running(), h.gen(2));
    assert_eq!(h.profile_target(), h.gen(2));
    assert!(h
        .calls_of("switch-to-configuration")
        .iter()
        .all(|c| !c.contains("gen1")));
}

#[test]
fn no_confirmation_rolls_back_to_exactly_the_previous_generation() {
    let h = Host::new();
    h.rebuild(2, "switch");
    let out = h.rollback(&["expire"]).assert().success();
    expect_stderr(&out, "rolled back from");
    assert_eq!(h.running(), h.gen(1), "the previous generation runs again");
    assert_eq!(
        std::fs::read_link(h.profile()).unwrap(),
        PathBuf::from("system-1-link"),
        "the profile is back at generation 1 itself, not a copy of it"
    );
    assert_eq!(h.profile_target(), h.gen(1));
    assert!(
        h.calls_of("switch-to-configuration")
            .contains(&"switch-to-configuration gen1 switch".to_string()),
        "{:?}",
        h.calls()
    );
    assert!(!h.armed());
    assert!(!h.state().join("reactivating").exists());
    assert!(h.gcroot().symlink_metadata().is_err());
    // An alert reaches the audit log, before and after.
    let audit = h.calls_of("auditctl");
    assert!(
        audit.len() >= 2
            && audit
                .iter()
                .all(|a| a.starts_with("auditctl -m paranoid-rollback:")),
        "{audit:?}"
    );
}

#[test]
fn the_rollback_does_not_arm_another_rollback() {
    let h = Host::new();
    h.rebuild(2, "switch");
    let out = h.rollback(&["expire"]).assert().success();
    // Generation 1's activation ran `arm` (a switch away from the running gen2), and it refused
    // because it is the rollback, at once (not by timing out on the rollback's lock).
    expect_stderr(
        &out,
        "not arming: this activation is the rollback re-activating",
    );
    assert_eq!(h.running(), h.gen(1));
    assert!(
        !h.armed(),
        "the re-activation armed a rollback to gen2: {:?}",
        h.calls()
    );
    assert_eq!(h.calls_of("systemd-run").len(), 1, "{:?}", h.calls());
}

#[test]
fn booting_never_arms() {
    let h = Host::new();
    // At boot there is no running system yet and no NIXOS_ACTION.
    std::fs::remove_file(h.current()).unwrap();
    h.rollback(&["arm", h.gen(2).to_str().unwrap()])
        .assert()
        .success();
    assert!(!h.armed());
    // Nor does an activation without a switch action, even with a running system.
    symlink(h.gen(1), h.current()).unwrap();
    for action in [None, Some("boot"), Some("dry-activate")] {
        let mut c = h.rollback(&["arm", h.gen(2).to_str().unwrap()]);
        if let Some(a) = action {
            c.env("NIXOS_ACTION", a);
        }
        c.assert().success();
        assert!(!h.armed(), "armed on NIXOS_ACTION={action:?}");
    }
    // `nixos-rebuild boot` runs no activation at all; the fake's `boot` does the same.
    h.rebuild(2, "boot");
    assert!(!h.armed());
    assert!(h.calls_of("systemd-run").is_empty(), "{:?}", h.calls());
}

#[test]
fn re_activating_the_running_generation_does_not_arm() {
    let h = Host::new();
    h.rebuild(1, "switch");
    assert!(!h.armed());
    assert!(h.calls_of("systemd-run").is_empty());
}

#[test]
fn a_system_that_cannot_be_switched_to_is_never_the_rollback_target() {
    // Booted into the break-glass entry (no switch-to-configuration), then switched away.
    let h = Host::new();
    let entry = h.dir.path().join("break-glass");
    std::fs::create_dir_all(&entry).unwrap();
    std::fs::remove_file(h.current()).unwrap();
    symlink(&entry, h.current()).unwrap();
    let out = h
        .cmd(&h.gen(2).join("bin/switch-to-configuration"))
        .arg("switch")
        .assert()
        .success();
    expect_stderr(&out, "has no switch-to-configuration");
    assert_eq!(h.running(), h.gen(2));
    assert!(!h.armed());
    assert!(h.calls_of("systemd-run").is_empty());
}

#[test]
fn an_admins_new_ssh_login_confirms_and_nobody_elses_does() {
    let h = Host::new();
    h.rebuild(2, "switch");
    let login = |user: &str, kind: &str| {
        h.rollback(&["confirm-login", "root", "ops"])
            .env("PAM_USER", user)
            .env("PAM_TYPE", kind)
            .env("PAM_RHOST", "10.100.0.1")
            .assert()
            .success();
    };
    login("bob", "open_session");
    assert!(h.armed(), "bob is not an admin");
    login("ops", "close_session");
    assert!(h.armed(), "only opening a session confirms");
    login("ops", "open_session");
    assert!(!h.armed(), "ops's login must confirm");
    h.rollback(&["expire"]).assert().success();
    assert_eq!(h.running(), h.gen(2));
}

#[test]
fn unconfirmed_switches_in_a_row_roll_back_to_the_last_generation_reached() {
    let h = Host::new();
    h.rebuild(2, "switch");
    h.rebuild(3, "switch");
    assert_eq!(h.previous(), h.gen(1), "gen2 was never confirmed");
    assert_eq!(
        h.calls_of("systemctl").len(),
        2,
        "each arm restarts the timer: {:?}",
        h.calls()
    );
    h.rollback(&["expire"]).assert().success();
    assert_eq!(h.running(), h.gen(1));
    assert_eq!(h.profile_target(), h.gen(1));
}

#[test]
fn a_switch_that_did_not_arm_is_not_rolled_back() {
    let h = Host::new();
    h.rebuild(2, "switch");
    // gen3 runs now, but was activated without paranoid.rollback (no `arm`).
    std::fs::remove_file(h.current()).unwrap();
    symlink(h.gen(3), h.current()).unwrap();
    let out = h.rollback(&["expire"]).assert().success();
    expect_stderr(&out, "not rolling back");
    assert_eq!(h.running(), h.gen(3));
    assert!(!h.armed());
}

#[test]
fn a_previous_generation_missing_from_the_profile_becomes_a_new_generation() {
    let h = Host::new();
    h.rebuild(2, "switch");
    // Generations deleted (nix-collect-garbage -d) after the switch: gen1 has no link left.
    std::fs::remove_file(h.dir.path().join("profiles/system-1-link")).unwrap();
    // nix-env --set needs a store path; a recording stand-in shows the call instead.
    write_exe(
        &h.dir.path().join("bin/nix-env"),
        "#!/bin/sh\necho \"nix-env $*\" >> \"$CALLS\"\n",
    );
    h.rollback(&["expire"]).assert().success();
    assert_eq!(
        h.calls_of("nix-env"),
        vec![format!(
            "nix-env -p {} --set {}",
            h.profile().display(),
            h.gen(1).display()
        )]
    );
    assert_eq!(h.running(), h.gen(1));
}

#[test]
fn a_timer_that_cannot_start_leaves_nothing_armed_and_says_so() {
    let h = Host::new();
    write_exe(&h.dir.path().join("bin/systemd-run"), "#!/bin/sh\nexit 1\n");
    let out = h
        .cmd(&h.gen(2).join("bin/switch-to-configuration"))
        .arg("switch")
        .assert()
        .success();
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        err.contains("is NOT protected") && err.contains("the rollback is NOT armed"),
        "{err}"
    );
    assert!(!h.armed());
}

#[test]
fn bad_usage_exits_2() {
    let h = Host::new();
    h.rollback(&[]).assert().code(2);
    h.rollback(&["arm"]).assert().code(2);
    h.rollback(&["frobnicate"]).assert().code(2);
}
