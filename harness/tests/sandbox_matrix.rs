//! Acceptance: the pairwise matrix of sandboxes passes on 2 cores within the 60 s target, and
//! it really exercises every check (each passes on some permutation).

mod sandbox_support;
use sandbox_support::*;
use std::collections::BTreeMap;

#[test]
fn the_pairwise_matrix_of_sandboxes_passes_within_60_seconds() {
    require_root();
    let (code, r) = sandbox_json(&["--strategy", "pairwise"]);
    let perms = r["permutations"].as_array().unwrap();
    let mut by_check: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for p in perms {
        for c in p["checks"].as_array().unwrap() {
            *by_check
                .entry(c["check"].as_str().unwrap().into())
                .or_default()
                .entry(c["status"].as_str().unwrap().into())
                .or_default() += 1;
            assert_ne!(
                c["status"],
                "fail",
                "{} {}: {}\n{}",
                p["id"],
                c["check"],
                c["summary"],
                evidence_text(c)
            );
        }
    }
    assert_eq!(code, 0, "{by_check:?}");
    for check in [
        "sshd",
        "ssh-audit",
        "nix-daemon",
        "mounts",
        "firewall",
        "units",
    ] {
        let passed = by_check
            .get(check)
            .and_then(|m| m.get("pass"))
            .copied()
            .unwrap_or(0);
        assert!(passed > 0, "{check} never ran on the matrix: {by_check:?}");
    }
    // Rows that must be refused by a guard rail are reported, not sandboxed.
    assert!(perms
        .iter()
        .any(|p| p["source"].as_str().unwrap().contains("(constraint ")
            && p["checks"]
                .as_array()
                .unwrap()
                .iter()
                .all(|c| c["status"] == "not-applicable")));
    let sandboxed = perms
        .iter()
        .filter(|p| {
            p["assertions"]
                .as_array()
                .map(|a| a.is_empty())
                .unwrap_or(true)
        })
        .count();
    assert!(sandboxed >= 50, "only {sandboxed} permutations sandboxed");
    let ms = r["durationMs"].as_u64().unwrap() + r["evaluationMs"].as_u64().unwrap();
    eprintln!(
        "pairwise: {} permutations ({sandboxed} sandboxed) in {ms} ms; {by_check:?}",
        perms.len()
    );
    assert!(ms <= 60_000, "pairwise took {ms} ms (target 60 s)");
}
