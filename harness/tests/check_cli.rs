//! `check --module`: flags the right invariant ids on broken hosts, passes examples/bastion
//! clean, and its outputs (JSON validated, human snapshot) say what to fix.

mod common;

use std::collections::BTreeSet;

use common::{harness, module};
use serde_json::Value;

fn check(text: &str, profile: &str) -> (Option<i32>, Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let m = module(&dir, "host.nix", text);
    common::check_module(&m, profile)
}

fn ids(r: &Value) -> BTreeSet<String> {
    r["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["invariant"].as_str().unwrap().to_string())
        .collect()
}

fn assert_schema(r: &Value) {
    assert_eq!(r["schema"], 1);
    for key in [
        "target",
        "backend",
        "profile",
        "profile_areas",
        "checked",
        "violations",
        "ok",
    ] {
        assert!(r.get(key).is_some(), "check JSON lacks {key}: {r}");
    }
    for v in r["violations"].as_array().unwrap() {
        for key in ["invariant", "message", "fix"] {
            assert!(
                v[key].as_str().is_some_and(|s| !s.is_empty()),
                "violation lacks {key}: {v}"
            );
        }
        let id = v["invariant"].as_str().unwrap();
        assert!(
            paranoid_harness::invariants::IDS.contains(&id),
            "{id} is a documented id"
        );
    }
    let entries_ok = r["specialisations"]
        .as_array()
        .expect("check JSON lists the other boot entries")
        .iter()
        .all(|e| e["ok"] == true);
    assert_eq!(r["ok"], r["violations"].as_array().unwrap().is_empty() && entries_ok);
}

#[test]
fn bastion_passes_clean() {
    for profile in ["baseline", "paranoid", "maximum"] {
        let (code, r, err) = check("{ imports = [ {repo}/examples/bastion ]; }", profile);
        assert_schema(&r);
        assert_eq!(
            r["violations"],
            serde_json::json!([]),
            "profile {profile}: {err}"
        );
        assert_eq!(code, Some(0));
        assert!(
            r["checked"].as_array().unwrap().len() > 20,
            "bastion turns most areas on"
        );
    }
}

#[test]
fn re_enabled_password_login_is_flagged() {
    let (code, r, _) = check(
        "{ lib, ... }: { imports = [ {repo}/examples/bastion ]; services.openssh.settings.PasswordAuthentication = lib.mkForce true; }",
        "paranoid",
    );
    assert_schema(&r);
    assert_eq!(ids(&r), BTreeSet::from(["ssh.password-auth".to_string()]));
    let v = &r["violations"][0];
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("PasswordAuthentication yes"),
        "{v}"
    );
    assert!(
        v["fix"]
            .as_str()
            .unwrap()
            .contains("services.openssh.settings.PasswordAuthentication"),
        "{v}"
    );
    assert_eq!(code, Some(1));
}

#[test]
fn tcp_forwarding_in_settings_is_flagged() {
    let (code, r, _) = check("{ imports = [ {repo}/examples/bastion ]; services.openssh.settings.AllowTcpForwarding = \"yes\"; }", "paranoid");
    assert_schema(&r);
    assert_eq!(ids(&r), BTreeSet::from(["ssh.tcp-forwarding".to_string()]));
    assert_eq!(code, Some(1));
}

#[test]
fn an_executable_persisted_directory_under_noexec_is_flagged() {
    // meeka (amnesia) with noexec on, and the persist path excepted: every persisted
    // directory becomes an executable bind of /nix/persist.
    let (code, r, _) = check(
        "{ imports = [ {repo}/examples/meeka ]; paranoid.noexec.enable = true; paranoid.noexec.exceptions = [ \"/nix/persist\" ]; }",
        "paranoid",
    );
    assert_schema(&r);
    assert!(ids(&r).contains("noexec.persisted"), "{r}");
    assert!(ids(&r).iter().all(|i| i.starts_with("noexec.")), "{r}");
    let msg = r["violations"][0]["message"].as_str().unwrap();
    assert!(msg.contains("/nix/persist"), "{msg}");
    assert_eq!(code, Some(1));
}

#[test]
fn a_persist_bind_overridden_without_noexec_is_flagged() {
    let (code, r, _) = check(
        "{ lib, ... }: { imports = [ {repo}/examples/meeka ]; paranoid.noexec.enable = true; fileSystems.\"/nix/persist\".options = lib.mkForce [ \"bind\" ]; }",
        "paranoid",
    );
    assert!(
        ids(&r).contains("noexec.persisted") && ids(&r).contains("noexec.mounts"),
        "{r}"
    );
    assert_eq!(code, Some(1));
}

#[test]
fn trusted_wheel_users_are_flagged() {
    let (code, r, _) = check(
        "{ imports = [ {repo}/examples/bastion ]; nix.settings.trusted-users = [ \"@wheel\" ]; }",
        "paranoid",
    );
    assert_schema(&r);
    let got = ids(&r);
    assert!(got.contains("nix.trusted-users"), "{r}");
    // The guard rail refuses it too, and check reports that as well.
    assert!(
        got.iter()
            .all(|i| i == "nix.trusted-users" || i == "nixos.assertions"),
        "{got:?}"
    );
    assert_eq!(code, Some(1));
}

#[test]
fn a_host_without_paranoid_is_held_to_the_profile() {
    let (code, r, _) = check(
        r#"{ networking.hostName = "plain"; system.stateVersion = "26.05";
             fileSystems."/" = { device = "/dev/sda1"; fsType = "ext4"; };
             services.openssh.enable = true; }"#,
        "paranoid",
    );
    assert_schema(&r);
    let got = ids(&r);
    for id in [
        "ssh.password-auth",
        "firewall.enabled",
        "users.immutable",
        "nix.allowed-users",
    ] {
        if id == "firewall.enabled" {
            continue; // NixOS enables the firewall by default
        }
        assert!(got.contains(id), "{id} missing from {got:?}");
    }
    assert!(r["profile_areas"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a == "ssh"));
    let fix = r["violations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["invariant"] == "ssh.password-auth")
        .unwrap()["fix"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(fix.contains("paranoid.ssh.enable = true"), "{fix}");
    assert_eq!(code, Some(1));
}

#[test]
fn human_check_report_reads_like_a_review_comment() {
    let dir = tempfile::tempdir().unwrap();
    let m = module(
        &dir,
        "host.nix",
        "{ lib, ... }: { imports = [ {repo}/examples/bastion ]; services.openssh.settings.PasswordAuthentication = lib.mkForce true; nix.settings.trusted-users = [ \"@wheel\" ]; }",
    );
    let out = harness()
        .args(["check", "--module"])
        .arg(&m)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text =
        String::from_utf8_lossy(&out.stdout).replace(&dir.path().display().to_string(), "<tmp>");
    insta::assert_snapshot!("check_human_broken_bastion", text);
}

/// The fix of one violation (the first with that id).
fn fix_of(r: &Value, id: &str) -> String {
    r["violations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["invariant"] == id)
        .unwrap_or_else(|| panic!("no {id} violation in {r}"))["fix"]
        .as_str()
        .unwrap()
        .to_string()
}

const PLAIN_HOST: &str = r#"networking.hostName = "plain"; system.stateVersion = "26.05";
    fileSystems."/" = { device = "/dev/sda1"; fsType = "ext4"; };
    services.openssh.enable = true;"#;

#[test]
fn a_host_setting_that_clashes_with_the_suggested_knob_is_named_in_the_fix() {
    // paranoid.ssh sets PasswordAuthentication = false plainly: with the knob on, the host's
    // own `true` makes the evaluation fail, so "set paranoid.ssh.enable" alone is no fix.
    let (code, r, err) = check(
        &format!("{{ {PLAIN_HOST} services.openssh.settings.PasswordAuthentication = true; }}"),
        "paranoid",
    );
    assert_schema(&r);
    assert_eq!(code, Some(1), "{err}");
    let fix = fix_of(&r, "ssh.password-auth");
    assert!(fix.starts_with("set paranoid.ssh.enable = true"), "{fix}");
    assert!(
        fix.contains("remove this host's own definition of services.openssh.settings.PasswordAuthentication (true in ")
            && fix.contains("host.nix)")
            && fix.contains("conflicting definition values"),
        "{fix}"
    );
    // Violations that come from NixOS's defaults keep the plain fix.
    assert_eq!(
        fix_of(&r, "ssh.agent-forwarding"),
        "set paranoid.ssh.enable = true (the `paranoid` profile expects it), or set paranoid.enable = true with paranoid.profile = \"paranoid\""
    );
}

#[test]
fn a_host_setting_that_outranks_the_suggested_knob_is_named_in_the_fix() {
    // paranoid.ssh sets AllowTcpForwarding with mkDefault: the host's plain "yes" still wins
    // once the knob is on. PasswordAuthentication `yes` here is NixOS's default, which the knob
    // does fix.
    let (code, r, err) = check(
        &format!("{{ {PLAIN_HOST} services.openssh.settings.AllowTcpForwarding = \"yes\"; }}"),
        "paranoid",
    );
    assert_schema(&r);
    assert_eq!(code, Some(1), "{err}");
    let fix = fix_of(&r, "ssh.tcp-forwarding");
    assert!(
        fix.starts_with("set paranoid.ssh.enable = true")
            && fix.contains("still wins with those knobs on: remove the definition of services.openssh.settings.AllowTcpForwarding"),
        "{fix}"
    );
    let password = fix_of(&r, "ssh.password-auth");
    assert!(
        password.starts_with("set paranoid.ssh.enable = true") && !password.contains("remove"),
        "NixOS's default is no host override: {password}"
    );
}

#[test]
fn a_host_that_forces_the_knob_off_is_still_told_about_its_override() {
    // The suggested knob is applied above the host's mkForce, as if the host had edited it.
    let (code, r, err) = check(
        &format!(
            "{{ lib, ... }}: {{ {PLAIN_HOST} paranoid.ssh.enable = lib.mkForce false; services.openssh.settings.AllowTcpForwarding = \"yes\"; }}"
        ),
        "paranoid",
    );
    assert_eq!(code, Some(1), "{err}");
    let fix = fix_of(&r, "ssh.tcp-forwarding");
    assert!(
        fix.contains("remove the definition of services.openssh.settings.AllowTcpForwarding"),
        "{fix}"
    );
    // Had the knob stayed off, every ssh violation would have stayed and been blamed on the host.
    let password = fix_of(&r, "ssh.password-auth");
    assert!(!password.contains("remove"), "{password}");
}
