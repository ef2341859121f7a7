//! paranoid.breakGlass offline: `eval` shows the break-glass entry's posture beside the main
//! one, `check` holds it to the same posture and reports exactly the relaxations asked for,
//! and every break-glass and rollback guard fires with its message.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{harness, json, module, stderr};
use serde_json::Value;

const FIXTURE: &str = "harness/tests/fixtures/break-glass.nix";

fn fixture() -> std::path::PathBuf {
    common::repo().join(FIXTURE)
}

/// `check --format json --profile maximum` of the fixture plus `extra` (a module body).
fn check_with(extra: &str) -> (Option<i32>, Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let m = module(
        &dir,
        "host.nix",
        &format!("{{ lib, ... }}: {{ imports = [ {{repo}}/{FIXTURE} ]; {extra} }}"),
    );
    common::check_module(&m, "maximum")
}

fn ids(vs: &Value) -> BTreeSet<String> {
    vs.as_array()
        .unwrap()
        .iter()
        .map(|v| v["invariant"].as_str().unwrap().to_string())
        .collect()
}

fn entry(r: &Value) -> &Value {
    let entries = r["specialisations"]
        .as_array()
        .expect("check JSON lists the boot entries");
    assert_eq!(entries.len(), 1, "{r}");
    &entries[0]
}

fn relaxations(e: &Value) -> BTreeMap<String, (bool, bool)> {
    e["relaxations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_string(),
                (
                    r["asked"].as_bool().unwrap(),
                    r["observed"].as_bool().unwrap(),
                ),
            )
        })
        .collect()
}

#[test]
fn check_reports_the_break_glass_posture_with_exactly_the_chosen_relaxations() {
    let (code, r, err) = check_with("");
    assert_eq!(
        r["violations"],
        serde_json::json!([]),
        "the main entry is bastion's, clean: {err}"
    );
    let e = entry(&r);
    assert_eq!(e["name"], "break-glass");
    assert_eq!(e["break_glass"], true);
    let all = |asked, observed| (asked, observed);
    assert_eq!(
        relaxations(e),
        BTreeMap::from([
            ("noexec".to_string(), all(true, true)),
            ("sudo".to_string(), all(true, true)),
            ("ssh-interface".to_string(), all(true, true)),
            ("console-root-login".to_string(), all(true, true)),
        ]),
        "{e:#}"
    );
    let what: Vec<&str> = e["relaxations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["what"].as_str().unwrap())
        .collect();
    let joined = what.join(" | ");
    for needle in [
        "executable again: /",
        "ops via sudo (own password)",
        "port 22 on eth0",
        "root-break-glass.hash",
    ] {
        assert!(joined.contains(needle), "{needle} in {joined}");
    }
    // The violations those relaxations are, and nothing else.
    assert_eq!(
        ids(&e["asked"]),
        BTreeSet::from(["noexec.mounts", "sudo.mode", "vpn.ssh-not-global"].map(String::from)),
        "{e:#}"
    );
    assert_eq!(
        e["violations"],
        serde_json::json!([]),
        "what must hold in the entry holds: {e:#}"
    );
    assert_eq!(e["ok"], true);
    assert_eq!(r["ok"], true);
    assert_eq!(code, Some(0));
}

#[test]
fn an_asked_relaxation_the_main_entry_already_has_is_reported_as_no_change() {
    // meeka's wheel user cadey already has sudo with a password.
    let dir = tempfile::tempdir().unwrap();
    let m = module(
        &dir,
        "host.nix",
        "{ imports = [ {repo}/examples/meeka ]; paranoid.breakGlass = { enable = true; sudo = true; }; }",
    );
    let (code, r, err) = common::check_module(&m, "paranoid");
    let e = entry(&r);
    assert_eq!(
        relaxations(e),
        BTreeMap::from([("sudo".to_string(), (true, false))]),
        "{e:#} {err}"
    );
    assert_eq!(e["ok"], true);
    assert_eq!(code, Some(0), "{r:#}");
}

#[test]
fn a_relaxation_nobody_asked_for_fails_the_check() {
    // The entry turns noexec off by hand while paranoid.breakGlass.noexec stays false.
    let (code, r, _) = check_with(
        "paranoid.breakGlass.noexec = lib.mkForce false; specialisation.break-glass.configuration.paranoid.noexec.enable = lib.mkForce false;",
    );
    assert_eq!(r["violations"], serde_json::json!([]));
    let e = entry(&r);
    assert_eq!(relaxations(e)["noexec"], (false, true), "{e:#}");
    assert!(
        ids(&e["violations"]).contains("noexec.mounts"),
        "not excused: {e:#}"
    );
    assert!(!ids(&e["asked"]).contains("noexec.mounts"));
    assert_eq!(e["ok"], false);
    assert_eq!(r["ok"], false);
    assert_eq!(code, Some(1));
}

#[test]
fn what_must_still_hold_in_the_entry_is_checked_as_usual() {
    let (code, r, _) = check_with(
        "specialisation.break-glass.configuration.services.openssh.settings.PasswordAuthentication = lib.mkForce true;",
    );
    assert_eq!(
        r["violations"],
        serde_json::json!([]),
        "the main entry is untouched"
    );
    let e = entry(&r);
    assert_eq!(
        ids(&e["violations"]),
        BTreeSet::from(["ssh.password-auth".to_string()]),
        "{e:#}"
    );
    assert_eq!(code, Some(1));

    // The human report labels the section and says which violations were asked for.
    let dir = tempfile::tempdir().unwrap();
    let m = module(
        &dir,
        "host.nix",
        &format!("{{ lib, ... }}: {{ imports = [ {{repo}}/{FIXTURE} ]; specialisation.break-glass.configuration.services.openssh.settings.PasswordAuthentication = lib.mkForce true; }}"),
    );
    let out = harness()
        .args(["check", "--profile", "maximum", "--module"])
        .arg(&m)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "clean: ",
        "boot entry \"break-glass\" (break glass, paranoid.breakGlass): held to the same posture",
        "relaxed as asked: noexec: executable again",
        "relaxed as asked: console-root-login",
        "are those relaxations: noexec.mounts, sudo.mode, vpn.ssh-not-global",
        "1 violation(s) of what must still hold in this entry:",
        "  - [ssh.password-auth]",
    ] {
        assert!(text.contains(needle), "{needle:?} in:\n{text}");
    }
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn eval_prints_the_break_glass_posture_beside_the_main_one() {
    let out = harness()
        .args(["eval", "--module"])
        .arg(fixture())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    insta::assert_snapshot!("eval_human_break_glass", text);

    let out = harness()
        .args(["eval", "--format", "json", "--module"])
        .arg(fixture())
        .output()
        .unwrap();
    let p = json(&out.stdout);
    let e = &p["specialisations"]["break-glass"];
    assert_eq!(e["specialisations"], serde_json::json!({}), "no nesting");
    assert_eq!(
        e["options"]["system.switch.enable"], false,
        "no switch-to-configuration in the entry"
    );
    assert_eq!(p["options"]["system.switch.enable"], true);
    assert!(e["options"]["services.getty.helpLine"]
        .as_str()
        .unwrap()
        .contains("BREAK-GLASS SYSTEM"));
    assert!(p["options"]["services.getty.helpLine"]
        .as_str()
        .unwrap()
        .is_empty());
    let banner = e["options"]["services.openssh.settings"]["Banner"]
        .as_str()
        .unwrap();
    assert!(banner.ends_with("-paranoid-break-glass-banner"), "{banner}");
    assert!(e["rendered"]["sshd_config"]
        .as_str()
        .unwrap()
        .contains(&format!("Banner {banner}")));
    assert_eq!(e["effective"]["adminPath"]["ok"], true);
}

/// Failed assertions and warnings of several configurations, evaluated in one nix process.
fn guards(cases: &[(&str, &str)]) -> BTreeMap<String, (Vec<String>, Vec<String>)> {
    let cases_nix: String = cases
        .iter()
        .map(|(name, body)| format!("\"{name}\" = {{ lib, ... }}: {{ {body} }};\n"))
        .collect();
    let expr = format!(
        r#"
        let
          flake = builtins.getFlake "{repo}";
          cases = {{ {cases_nix} }};
          run = name: m:
            let c = (flake.lib.evalSurface {{ modules = [ m ]; }}).config; in
            {{ failed = map (a: a.message) (builtins.filter (a: !a.assertion) c.assertions); warnings = c.warnings; }};
        in builtins.mapAttrs run cases
        "#,
        repo = common::repo().display()
    );
    let out = std::process::Command::new(common::which_nix())
        .args([
            "--extra-experimental-features",
            "nix-command flakes",
            "eval",
            "--json",
            "--impure",
            "--expr",
            &expr,
        ])
        .output()
        .expect("run nix");
    assert!(out.status.success(), "{}", stderr(&out));
    let v = json(&out.stdout);
    v.as_object()
        .unwrap()
        .iter()
        .map(|(k, x)| {
            let list = |key: &str| -> Vec<String> {
                x[key]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s.as_str().unwrap().to_string())
                    .collect()
            };
            (k.clone(), (list("failed"), list("warnings")))
        })
        .collect()
}

fn one_with(messages: &[String], id: &str) -> String {
    let hits: Vec<&String> = messages
        .iter()
        .filter(|m| m.starts_with(&format!("[paranoid:{id}]")))
        .collect();
    assert_eq!(
        hits.len(),
        1,
        "exactly one [paranoid:{id}] in {messages:#?}"
    );
    hits[0].clone()
}

#[test]
fn every_break_glass_and_rollback_guard_fires_with_its_message() {
    let fx = fixture().display().to_string();
    let meeka = common::repo().join("examples/meeka").display().to_string();
    let imp = |more: &str| format!("imports = [ {fx} ]; {more}");
    let results = guards(&[
        ("clean", &imp("")),
        (
            "no-admin-path",
            // In the entry root loses its key and ops keeps no way to root (no sudo relaxation).
            &imp("paranoid.breakGlass.sudo = lib.mkForce false; specialisation.break-glass.configuration.users.users.root.openssh.authorizedKeys.keys = lib.mkForce [ ];"),
        ),
        ("no-admin-path-console-host", &imp("paranoid.breakGlass.sudo = lib.mkForce false; paranoid.adminPath.guard = false; specialisation.break-glass.configuration.users.users.root.openssh.authorizedKeys.keys = lib.mkForce [ ];")),
        ("switchable", &imp("specialisation.break-glass.configuration.system.switch.enable = lib.mkOverride 10 true;")),
        ("root-no-file", &imp("paranoid.breakGlass.consoleRootLogin.hashedPasswordFile = lib.mkForce null;")),
        ("root-in-store", &imp("paranoid.breakGlass.consoleRootLogin.hashedPasswordFile = lib.mkForce \"/nix/store/00000000000000000000000000000000-root.hash\";")),
        (
            "root-lost",
            &format!("imports = [ {meeka} ]; paranoid.breakGlass = {{ enable = true; consoleRootLogin = {{ enable = true; hashedPasswordFile = \"/root/break-glass.hash\"; }}; }};"),
        ),
        (
            "root-persisted",
            &format!("imports = [ {meeka} ]; paranoid.breakGlass = {{ enable = true; consoleRootLogin = {{ enable = true; hashedPasswordFile = \"/nix/persist/secrets/root.hash\"; }}; }};"),
        ),
        ("relaxes-nothing", &format!("imports = [ {meeka} ]; paranoid.breakGlass.enable = true;")),
        ("mutable-root", &imp("users.mutableUsers = lib.mkForce true;")),
        ("vpn-interface", &imp("paranoid.breakGlass.sshInterface = lib.mkForce \"wg0\";")),
        ("rollback", &imp("paranoid.rollback.enable = true;")),
        ("rollback-no-pam", &imp("paranoid.rollback.enable = true; services.openssh.settings.UsePAM = false;")),
        ("rollback-no-admin", &imp("paranoid.rollback.enable = true; paranoid.adminPath.guard = false; paranoid.breakGlass.enable = lib.mkForce false; users.users.root.openssh.authorizedKeys.keys = lib.mkForce [ ]; users.users.ops.openssh.authorizedKeys.keys = lib.mkForce [ ];")),
    ]);
    let (failed, warnings) = &results["clean"];
    assert!(failed.is_empty(), "{failed:#?}");
    assert!(
        warnings
            .iter()
            .all(|w| !w.contains("break-glass") && !w.contains("rollback")),
        "{warnings:#?}"
    );

    let m = one_with(&results["no-admin-path"].0, "break-glass-admin-path");
    for needle in [
        "in the break-glass entry \"break-glass\"",
        "- root: root has no key sshd reads",
        "- ops: ops cannot become root",
        "paranoid.breakGlass.sudo = true",
        "paranoid.adminPath.guard = false",
    ] {
        assert!(m.contains(needle), "{needle:?} in {m}");
    }
    assert!(
        results["no-admin-path-console-host"].0.is_empty(),
        "the guard honours paranoid.adminPath.guard = false"
    );

    let m = one_with(&results["switchable"].0, "break-glass-switchable");
    assert!(
        m.contains("system.switch.enable = true") && m.contains("without a reboot"),
        "{m}"
    );

    let m = one_with(&results["root-no-file"].0, "break-glass-root-password");
    assert!(m.contains("hashedPasswordFile is not set"), "{m}");
    let m = one_with(&results["root-in-store"].0, "break-glass-root-password");
    assert!(m.contains("is in /nix/store"), "{m}");
    let m = one_with(&results["root-lost"].0, "break-glass-root-password");
    assert!(
        m.contains("\"/root/break-glass.hash\" is not on persistent storage")
            && m.contains("paranoid.amnesia.persistPath"),
        "{m}"
    );
    assert!(
        !results["root-persisted"]
            .0
            .iter()
            .any(|a| a.contains("break-glass")),
        "a hash under the persist path survives: {:#?}",
        results["root-persisted"].0
    );

    let w = one_with(&results["relaxes-nothing"].1, "break-glass-relaxes-nothing");
    assert!(w.contains("the main posture with a banner"), "{w}");
    let w = one_with(&results["mutable-root"].1, "break-glass-root-password-kept");
    assert!(w.contains("paranoid.users.immutable = true"), "{w}");
    let w = one_with(&results["vpn-interface"].1, "break-glass-interface-is-vpn");
    assert!(w.contains("\"wg0\" is the VPN interface"), "{w}");

    let (failed, warnings) = &results["rollback"];
    assert!(
        failed.is_empty() && warnings.iter().all(|w| !w.contains("rollback")),
        "{failed:#?} {warnings:#?}"
    );
    let w = one_with(
        &results["rollback-no-pam"].1,
        "rollback-login-cannot-confirm",
    );
    assert!(
        w.contains("UsePAM = false") && w.contains("paranoid-confirm"),
        "{w}"
    );
    let w = one_with(&results["rollback-no-admin"].1, "rollback-no-admin-login");
    assert!(w.contains("no SSH login confirms"), "{w}");
}

#[test]
fn an_entry_that_is_not_this_host_relaxed_is_refused() {
    // inheritParentConfig = false would make the entry another system: Nix names both definitions.
    let dir = tempfile::tempdir().unwrap();
    let m = module(
        &dir,
        "host.nix",
        &format!("{{ imports = [ {{repo}}/{FIXTURE} ]; specialisation.break-glass.inheritParentConfig = false; }}"),
    );
    let out = harness()
        .args(["eval", "--format", "json", "--module"])
        .arg(&m)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("specialisation.break-glass.inheritParentConfig")
            && err.contains("conflicting definition values"),
        "{err}"
    );
}

#[test]
fn a_failed_assertion_in_the_entry_fails_eval() {
    // The entry's own assertions (here: an account whose primary group is not declared, which
    // users-groups.nix refuses) fail the whole build, as NixOS's would: eval exits 6.
    let dir = tempfile::tempdir().unwrap();
    let m = module(
        &dir,
        "host.nix",
        &format!("{{ lib, ... }}: {{ imports = [ {{repo}}/{FIXTURE} ]; specialisation.break-glass.configuration.users.users.svc = {{ isSystemUser = true; group = \"missing\"; }}; }}"),
    );
    let out = harness()
        .args(["eval", "--format", "json", "--module"])
        .arg(&m)
        .output()
        .unwrap();
    let p = json(&out.stdout);
    assert_eq!(
        p["assertions"],
        serde_json::json!([]),
        "the main entry builds"
    );
    assert!(!p["specialisations"]["break-glass"]["assertions"]
        .as_array()
        .unwrap()
        .is_empty());
    assert_eq!(out.status.code(), Some(6));
}
