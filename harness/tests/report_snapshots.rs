//! The reporters on a fixed result: what a reviewer sees (human table), and the JUnit a CI
//! reads, validated as XML. Fixed inputs, so the snapshots change only when the format does.

use std::collections::{BTreeMap, BTreeSet};

use paranoid_harness::invariants::Violation;
use paranoid_harness::matrix::{tally, MatrixResult, RowResult};
use paranoid_harness::nix::Stats;
use paranoid_harness::plan::RowKind;
use paranoid_harness::report;
use serde_json::json;

fn row(id: &str, kind: RowKind, violations: Vec<Violation>, error: Option<&str>) -> RowResult {
    RowResult {
        id: id.into(),
        kind,
        knobs: BTreeMap::from([
            ("ssh.enable".to_string(), json!(true)),
            ("sudo.mode".to_string(), json!("removed")),
        ]),
        areas_on: vec!["ssh".into(), "sudo".into()],
        expected_constraints: vec![],
        // A row that failed to evaluate checked nothing.
        checked: if error.is_some() {
            vec![]
        } else {
            vec!["ssh.password-auth".into(), "nixos.assertions".into()]
        },
        violations,
        error: error.map(str::to_string),
    }
}

fn result() -> MatrixResult {
    let rows = vec![
        row("all-off", RowKind::AllOff, vec![], None),
        row(
            "r00007",
            RowKind::Generated,
            vec![Violation {
                invariant: "ssh.password-auth".into(),
                message: "with paranoid.ssh.enable = true, sshd runs with PasswordAuthentication yes (want no): `PasswordAuthentication yes` on line 21 of sshd_config wins".into(),
                fix: "remove the definition of services.openssh.settings.PasswordAuthentication that overrides paranoid.ssh".into(),
                apply: vec![],
            }],
            None,
        ),
        row("r00008", RowKind::Generated, vec![], Some("error: undefined variable 'oops'\n  at /x/host.nix:3:5")),
    ];
    let invariants = tally(&rows);
    MatrixResult {
        schema: 1,
        strategy: "pairwise".into(),
        backend: "surface".into(),
        jobs: 2,
        batch_size: 16,
        planned: 3,
        evaluated: 3,
        interrupted: false,
        wall_seconds: 1.25,
        nix: Stats {
            processes: 4,
            over_memory: 0,
            timed_out: 0,
            batches_died: 1,
            rerun_alone: 2,
        },
        touched: BTreeMap::from([(
            "ssh".to_string(),
            BTreeSet::from(["services.openssh.settings".to_string()]),
        )]),
        invariants,
        rows,
    }
}

#[test]
fn human_matrix_report() {
    let r = result();
    assert!(!r.ok());
    insta::assert_snapshot!("matrix_human", report::matrix_human(&r));
}

#[test]
fn interrupted_runs_say_so() {
    let mut r = result();
    r.interrupted = true;
    r.evaluated = 2;
    r.rows.pop();
    let text = report::matrix_human(&r);
    assert!(text.contains("INTERRUPTED: 2 of 3 rows finished"), "{text}");
    assert_eq!(report::matrix_json(&r)["interrupted"], true);
}

#[test]
fn junit_has_a_testcase_per_row_with_failures_and_errors() {
    let xml = report::matrix_junit(&result());
    let doc = roxmltree::Document::parse(&xml).expect("well-formed XML");
    let suite = doc
        .descendants()
        .find(|n| n.has_tag_name("testsuite"))
        .unwrap();
    assert_eq!(suite.attribute("tests"), Some("3"));
    assert_eq!(suite.attribute("failures"), Some("1"));
    assert_eq!(suite.attribute("errors"), Some("1"));
    let case = |name: &str| {
        suite
            .children()
            .find(|n| n.attribute("name") == Some(name))
            .unwrap()
    };
    let failure = case("r00007")
        .children()
        .find(|n| n.has_tag_name("failure"))
        .expect("a failure element");
    assert_eq!(failure.attribute("type"), Some("ssh.password-auth"));
    assert!(failure
        .text()
        .unwrap_or("")
        .contains("fix: remove the definition"));
    let error = case("r00008")
        .children()
        .find(|n| n.has_tag_name("error"))
        .expect("an error element");
    assert!(error
        .text()
        .unwrap_or("")
        .contains("undefined variable 'oops'"));
    assert!(case("all-off")
        .children()
        .all(|n| !n.has_tag_name("failure") && !n.has_tag_name("error")));
}

#[test]
fn json_matrix_report_is_stable() {
    let v = report::matrix_json(&result());
    assert_eq!(v["ok"], false);
    assert_eq!(v["failures"], 2);
    insta::assert_json_snapshot!("matrix_json", v);
}
