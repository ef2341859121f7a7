//! `check` asks sshd where it can: as root with sshd installed, the model is confirmed with
//! `sshd -T -C` for every connection (`judgedBy.sshd`, one human line); where it cannot (sshd
//! not installed, a configuration the model cannot judge) it says so and why; a disagreement is
//! an `ssh.model-agrees` violation.

mod common;

use common::{check_module, harness, module};
use paranoid_harness::check::{confirm_sshd, CheckResult};
use serde_json::Value;
use std::collections::BTreeMap;


#[test]
fn bastion_is_confirmed_by_sshd_for_every_connection() {
    common::require_root("check asks sshd only as root");
    let dir = tempfile::tempdir().unwrap();
    let m = module(
        &dir,
        "host.nix",
        "{ imports = [ {repo}/examples/bastion ]; }",
    );
    let (code, r, err) = check_module(&m, "maximum");
    assert_eq!(code, Some(0), "{r:#}\n{err}");
    let v = &r["judgedBy"]["sshd"];
    assert_eq!(v["by"], "model+sshd", "{v:#}");
    assert_eq!(v["connections"], 6, "{v:#}");
    assert!(v["compared"].as_u64().unwrap() >= 6 * 25, "{v:#}");
    assert!(v["sshd"].as_str().unwrap().starts_with("OpenSSH "), "{v:#}");
    assert!(v["disagreements"].as_array().unwrap().is_empty());
    let adaptations = v["adaptations"].to_string();
    assert!(
        adaptations.contains("dropped mlkem768x25519-sha256"),
        "{adaptations}"
    );
    assert!(r["checked"]
        .as_array()
        .unwrap()
        .contains(&Value::from("ssh.model-agrees")));

    let out = harness()
        .args(["check", "--module"])
        .arg(&m)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("sshd: "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        line.starts_with("sshd: judged by paranoid's model, confirmed by sshd -T -C (OpenSSH ")
            && line.ends_with(") for 6 connections"),
        "{line}"
    );
}

#[test]
fn without_sshd_installed_check_says_the_model_judged_alone_and_why() {
    // PATH without /usr/sbin: nix and ssh remain, sshd does not.
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink(common::which_nix(), bin.join("nix")).unwrap();
    let m = module(
        &dir,
        "host.nix",
        "{ imports = [ {repo}/examples/bastion ]; }",
    );
    let out = harness()
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .args([
            "check",
            "--format",
            "json",
            "--profile",
            "maximum",
            "--module",
        ])
        .arg(&m)
        .output()
        .unwrap();
    let r = common::json(&out.stdout);
    let v = &r["judgedBy"]["sshd"];
    assert_eq!(v["by"], "model", "{v:#}");
    let why = v["why"].as_str().unwrap();
    assert!(
        why.contains("not installed") || why.contains("needs root"),
        "{why}"
    );
    assert!(!r["checked"]
        .as_array()
        .unwrap()
        .contains(&Value::from("ssh.model-agrees")));
    assert_eq!(
        out.status.code(),
        Some(0),
        "not being able to ask sshd is not a violation"
    );
}

#[test]
fn an_include_leaves_sshd_to_the_model_and_says_why() {
    common::require_root("check asks sshd only as root");
    let dir = tempfile::tempdir().unwrap();
    let m = module(
        &dir,
        "host.nix",
        "{ imports = [ {repo}/examples/bastion ]; services.openssh.extraConfig = \"Include /var/lib/appliance/sshd_override.conf\\n\"; }",
    );
    let out = harness()
        .args(["check", "--module"])
        .arg(&m)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("sshd: judged by paranoid's model only (the model cannot judge this sshd_config, so neither can sshd here: line ")
            && text.contains("Include /var/lib/appliance/sshd_override.conf"),
        "{text}"
    );
}

#[test]
fn a_disagreement_is_an_ssh_model_agrees_violation_naming_connections_and_values() {
    common::require_root("check asks sshd only as root");
    // The model of a real projection, broken on purpose for root's connections.
    let dir = tempfile::tempdir().unwrap();
    let m = module(
        &dir,
        "host.nix",
        "{ imports = [ {repo}/examples/bastion ]; }",
    );
    let out = harness()
        .args(["eval", "--format", "json", "--module"])
        .arg(&m)
        .output()
        .unwrap();
    let mut p = common::json(&out.stdout);
    let profiles = p["effective"]["sshd"]["profiles"].as_array().unwrap().len();
    for i in 0..profiles {
        p["effective"]["sshd"]["profiles"][i]["values"]["maxauthtries"]["value"] = "6".into();
    }
    let mut result = CheckResult {
        schema: 1,
        target: "t".into(),
        backend: "surface".into(),
        profile: "maximum".into(),
        profile_areas: vec![],
        checked: vec![],
        violations: vec![],
        warnings: vec![],
        judged_by: BTreeMap::new(),
        specialisations: vec![],
        unjudged: Default::default(),
    };
    confirm_sshd(&p, &mut result);
    assert_eq!(result.violations.len(), 1, "{:#?}", result.violations);
    let v = &result.violations[0];
    assert_eq!(v.invariant, "ssh.model-agrees");
    assert!(
        v.message
            .contains("disagree on maxauthtries for root@loopback:22, root@vpn:22, root@public:22")
            && v.message.contains("the model says \"6\", sshd says \"3\""),
        "{}",
        v.message
    );
    assert!(v.fix.contains("lib/posture/sshd.nix"), "{}", v.fix);
    let human = paranoid_harness::report::check_human(&result);
    assert!(
        human.contains("which sshd -T -C (OpenSSH ")
            && human.contains("contradicts on 6 of 6 connections"),
        "{human}"
    );
}

#[test]
fn use_pam_off_with_a_passwordless_root_has_no_admin_path() {
    // sshd refuses a locked account without PAM; check must say so (no root needed: the model).
    let dir = tempfile::tempdir().unwrap();
    let m = module(
        &dir,
        "host.nix",
        "{ lib, ... }: { imports = [ {repo}/examples/bastion ]; services.openssh.settings.UsePAM = lib.mkForce false; paranoid.adminPath.guard = false; }",
    );
    let (code, r, _) = check_module(&m, "maximum");
    assert_eq!(code, Some(1));
    let v = r["violations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["invariant"] == "admin.path")
        .unwrap_or_else(|| panic!("{r:#}"));
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("UsePAM no and its password is locked"),
        "{v}"
    );
}

#[test]
fn authentication_methods_sshd_cannot_satisfy_stop_sshd_and_the_admin_path() {
    // sshd.c refuses to start when every AuthenticationMethods list needs a disabled method; the
    // model says so (ssh.config-valid, and no admin path), and sshd -t agrees.
    common::require_root("check asks sshd only as root");
    let dir = tempfile::tempdir().unwrap();
    for (methods, disabled) in [
        ("publickey,password", "password: passwordauthentication no"),
        ("publickey,keyboard-interactive:pam", "keyboard-interactive:pam: kbdinteractiveauthentication no"),
    ] {
        let m = module(
            &dir,
            "host.nix",
            &format!("{{ lib, ... }}: {{ imports = [ {{repo}}/examples/bastion ]; services.openssh.settings.AuthenticationMethods = lib.mkForce \"{methods}\"; paranoid.adminPath.guard = false; }}"),
        );
        let (code, r, err) = check_module(&m, "maximum");
        assert_eq!(code, Some(1), "{r:#}\n{err}");
        let ids: Vec<&str> = r["violations"].as_array().unwrap().iter().map(|v| v["invariant"].as_str().unwrap()).collect();
        let valid = r["violations"].as_array().unwrap().iter().find(|v| v["invariant"] == "ssh.config-valid").expect("ssh.config-valid");
        assert!(valid["message"].as_str().unwrap().contains(disabled), "{valid:#}");
        assert!(ids.contains(&"admin.path"), "{ids:?}");
        assert!(!ids.contains(&"ssh.model-agrees"), "sshd -t must agree: {r:#}");
        assert!(r["judgedBy"]["sshd"]["refused"].as_str().unwrap().contains("AuthenticationMethods cannot be satisfied"), "{:#}", r["judgedBy"]);
    }
    // One satisfiable list is enough: sshd starts.
    let m = module(
        &dir,
        "host.nix",
        "{ lib, ... }: { imports = [ {repo}/examples/bastion ]; services.openssh.settings.AuthenticationMethods = lib.mkForce \"publickey,password publickey\"; paranoid.adminPath.guard = false; }",
    );
    let (_, r, _) = check_module(&m, "maximum");
    let ids: Vec<&str> = r["violations"].as_array().unwrap().iter().map(|v| v["invariant"].as_str().unwrap()).collect();
    assert!(!ids.contains(&"ssh.config-valid") && !ids.contains(&"ssh.model-agrees"), "{r:#}");
}
