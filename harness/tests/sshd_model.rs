//! paranoid's sshd model and the real sshd agree, connection by connection: for the reference
//! hosts, the handed cases c01 and c13, every weakening of checks/weakenings.nix that the sshd
//! check observes, and a few fixtures that exercise Match criteria, lists, defaults and aliases,
//! every tracked keyword of every connection of `effective.sshd` is compared with what
//! `sshd -T -C user=…,host=…,addr=…,laddr=…,lport=…` prints (as root: sshd runs in a private
//! mount namespace where the configuration's accounts exist). A configuration the model marks
//! unjudged is excluded, saying why.

mod sandbox_support;
use paranoid_sandbox::checks::sshd_model::{confirm, Verdict};
use sandbox_support::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

fn nix_json(args: &[&str]) -> Value {
    let out = std::process::Command::new("nix")
        .args([
            "--extra-experimental-features",
            "nix-command flakes",
            "eval",
            "--json",
            "--impure",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "nix eval {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The weakenings whose effect the sshd check observes: (index, id, base).
fn sshd_weakenings() -> Vec<(usize, String, String)> {
    let file = repo_root().join("checks/weakenings.nix");
    let v = nix_json(&[
        "--expr",
        &format!(
            "map (e: {{ inherit (e) id base observable; }}) (import {})",
            file.display()
        ),
    ]);
    v.as_array()
        .unwrap()
        .iter()
        .enumerate()
        .filter(|(_, e)| e["observable"] == "sshd")
        .map(|(i, e)| {
            (
                i,
                e["id"].as_str().unwrap().to_string(),
                e["base"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn fixture(rel: &str) -> PathBuf {
    repo_root().join("harness/tests/fixtures").join(rel)
}

/// Every configuration of this test, evaluated in one batch: (name, projection).
fn projections(dir: &Path) -> Vec<(String, Value)> {
    let mut items = vec![
        json!({"id": "host bastion", "host": "bastion"}),
        json!({"id": "host meeka", "host": "meeka"}),
    ];
    for case in [
        "cases/c01-match-group-homedir-keys.nix",
        "cases/c13-challengeresponse-alias.nix",
        "sshd-model/match-criteria.nix",
        "sshd-model/lists-and-methods.nix",
        "sshd-model/defaults-and-aliases.nix",
        "sshd-model/match-global-only.nix",
        "sshd-model/key-algorithms.nix",
    ] {
        items.push(json!({"id": case, "modules": [fixture(case)]}));
    }
    let weakenings = sshd_weakenings();
    assert!(
        !weakenings.is_empty(),
        "checks/weakenings.nix has no entry the sshd check observes"
    );
    let catalogue = repo_root().join("checks/weakenings.nix");
    for (i, id, base) in &weakenings {
        let m = dir.join(format!("weakening-{i}.nix"));
        std::fs::write(
            &m,
            format!(
                "{{ imports = [ (builtins.elemAt (import {}) {i}).module ]; }}\n",
                catalogue.display()
            ),
        )
        .unwrap();
        items.push(
            json!({"id": format!("weakening {id} (on {base})"), "host": base, "modules": [m]}),
        );
    }
    let req = dir.join("request.json");
    std::fs::write(&req, json!({"catch": false, "items": items}).to_string()).unwrap();
    let answer = nix_json(&[
        &format!("{}#lib.harness.evalBatch", repo_root().display()),
        "--apply",
        &format!(
            "f: f (builtins.fromJSON (builtins.readFile \"{}\"))",
            req.display()
        ),
    ]);
    answer
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["id"].as_str().unwrap().to_string(),
                a["projection"].clone(),
            )
        })
        .collect()
}

fn describe(v: &Verdict) -> String {
    serde_json::to_string_pretty(v).unwrap()
}

#[test]
fn the_sshd_model_agrees_with_sshd_on_every_connection() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let all = projections(dir.path());
    let mut failures = vec![];
    let mut judged = 0;
    for (name, p) in &all {
        let v = confirm(p);
        if v.by != "model+sshd" {
            let unjudged = p["effective"]["sshd"]["judged"] == false;
            // Only a configuration the model itself cannot judge may be left out.
            if unjudged {
                println!("excluded {name}: {}", v.why.clone().unwrap_or_default());
                continue;
            }
            failures.push(format!("{name}: sshd did not answer: {}", describe(&v)));
            continue;
        }
        for d in &v.disagreements {
            failures.push(format!("{name}: {d}"));
        }
        let contexts = p["effective"]["sshd"]["contexts"].as_array().unwrap().len();
        let file_level = v.disagreements.iter().any(|d| d.keyword == "(sshd starts)");
        if v.refused.is_none() && !file_level && (v.connections != contexts || v.compared == 0) {
            failures.push(format!(
                "{name}: sshd answered for {} of {contexts} connections ({} comparisons)",
                v.connections, v.compared
            ));
        }
        judged += 1;
        println!(
            "{name}: {} connections, {} keyword comparisons, {} disagreements{}; adaptations: {}",
            v.connections,
            v.compared,
            v.disagreements.len(),
            v.refused
                .as_ref()
                .map(|r| format!(" (sshd refuses the file, as the model says: {r})"))
                .unwrap_or_default(),
            v.adaptations.join(" | ")
        );
    }
    assert!(
        failures.is_empty(),
        "model and sshd disagree:\n{}",
        failures.join("\n")
    );
    assert!(judged >= 8, "only {judged} configurations were compared");
}

#[test]
fn match_group_is_evaluated_with_the_configurations_accounts() {
    // c01: `Match Group wheel` gives ops (a wheel member that exists only in the configuration)
    // ~/.ssh/authorized_keys. sshd can only say so if it sees ops in wheel.
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let all = projections(dir.path());
    let (_, p) = all.iter().find(|(n, _)| n.contains("c01")).unwrap();
    let v = confirm(p);
    assert_eq!(v.by, "model+sshd", "{}", describe(&v));
    let ops: Vec<_> = v
        .answers
        .iter()
        .filter(|a| a.context.starts_with("ops@"))
        .collect();
    assert!(!ops.is_empty(), "no connection for ops");
    for a in ops {
        assert_eq!(
            a.values["authorizedkeysfile"],
            vec![".ssh/authorized_keys".to_string()],
            "{}",
            a.command
        );
    }
    let root = v
        .answers
        .iter()
        .find(|a| a.context.starts_with("root@"))
        .unwrap();
    assert_eq!(
        root.values["authorizedkeysfile"],
        vec!["/etc/ssh/authorized_keys.d/%u".to_string()]
    );
}

#[test]
fn a_model_that_is_wrong_is_caught_with_the_connection_the_keyword_and_both_values() {
    // Break the model on purpose: the comparison must fail, naming what differs.
    require_root();
    let mut p = projection_of("bastion");
    let profile = p["effective"]["sshd"]["contexts"][0]["profile"]
        .as_u64()
        .unwrap() as usize;
    p["effective"]["sshd"]["profiles"][profile]["values"]["passwordauthentication"]["value"] =
        "yes".into();
    let v = confirm(&p);
    assert_eq!(v.by, "model+sshd", "{}", describe(&v));
    let d = v
        .disagreements
        .iter()
        .find(|d| d.keyword == "passwordauthentication")
        .unwrap_or_else(|| panic!("not caught: {}", describe(&v)));
    assert_eq!((d.model.as_str(), d.sshd.as_str()), ("yes", "no"));
    assert!(d.context.contains('@'), "{d}");
    // And the file itself: a model that thinks sshd refuses a file it accepts.
    let mut p = projection_of("bastion");
    p["effective"]["sshd"]["errors"] = json!([{ "line": 1, "text": "X", "reason": "made up" }]);
    let v = confirm(&p);
    assert!(
        v.disagreements.iter().any(|d| d.keyword == "(sshd starts)"),
        "{}",
        describe(&v)
    );
}
