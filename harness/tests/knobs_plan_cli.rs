//! `knobs` and `plan` as a user runs them.

mod common;

use common::{harness, json, stderr};

#[test]
fn knobs_json_is_the_catalogue() {
    let out = harness()
        .args(["knobs", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let c = json(&out.stdout);
    let knobs = c["knobs"].as_array().unwrap();
    let ssh = knobs
        .iter()
        .find(|k| k["name"] == "ssh.enable")
        .expect("ssh.enable");
    assert_eq!(
        ssh["path"],
        serde_json::json!(["paranoid", "ssh", "enable"])
    );
    assert_eq!(ssh["kind"], "switch");
    assert_eq!(ssh["profiles"]["baseline"], true);
    assert!(c["constraints"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["id"] == "vpn-ssh-open"));
}

#[test]
fn knobs_human_lists_knobs_and_constraints() {
    let out = harness().arg("knobs").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("sudo.mode")
            && text.contains("upstream|wheel-only|removed")
            && text.contains("constraints (must be refused"),
        "{text}"
    );
}

#[test]
fn plan_proves_its_pairwise_coverage() {
    let out = harness()
        .args(["plan", "--strategy", "pairwise", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let p = json(&out.stdout);
    assert_eq!(p["uncoveredPairs"], 0);
    assert!(p["rows"].as_array().unwrap().len() > 50);
    let out = harness()
        .args(["plan", "--strategy", "random"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "random needs --samples");
    assert!(stderr(&out).contains("--samples"));
}
