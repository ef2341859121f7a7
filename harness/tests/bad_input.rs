//! Bad input (issue 3): each gets a clear message and its documented exit code, no panic, and
//! nothing else in the run is lost.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{harness, json, module, nix_wrapper, repo, stderr};
use paranoid_harness::nix::{self, EvalOptions, Flake, Item, Outcome};
use serde_json::Value;

fn no_panic(out: &std::process::Output) {
    let e = stderr(out);
    assert!(!e.contains("panicked"), "panic: {e}");
}

/// Runs the harness, which must exit with `code` and not panic; returns its stderr.
fn exits(cmd: &mut assert_cmd::Command, code: i32) -> String {
    let out = cmd.output().unwrap();
    no_panic(&out);
    let e = stderr(&out);
    assert_eq!(out.status.code(), Some(code), "{e}");
    e
}

#[test]
fn missing_nix_is_exit_3_with_an_install_hint() {
    let empty = tempfile::tempdir().unwrap();
    let e = exits(
        harness()
            .env("PATH", empty.path())
            .args(["eval", "--host", "bastion"]),
        3,
    );
    assert!(
        e.contains("`nix` is not installed") && e.contains("apt-get install nix-bin"),
        "{e}"
    );
}

#[test]
fn a_flake_path_without_flake_nix_is_a_usage_error() {
    let empty = tempfile::tempdir().unwrap();
    let e = exits(
        harness()
            .args(["eval", "--host", "bastion", "--flake"])
            .arg(empty.path()),
        2,
    );
    assert!(e.contains("has no flake.nix"), "{e}");
    let e = exits(
        harness().args(["matrix", "--flake", "/nonexistent/paranoid"]),
        2,
    );
    assert!(e.contains("/nonexistent/paranoid"), "{e}");
}

#[test]
fn a_module_with_a_syntax_error_is_exit_5_with_nix_s_message() {
    let dir = tempfile::tempdir().unwrap();
    let m = module(&dir, "broken.nix", "{ services.openssh.enable = true\n");
    let e = exits(harness().args(["eval", "--module"]).arg(&m), 5);
    assert!(
        e.contains("syntax error") && e.contains("broken.nix"),
        "{e}"
    );
    assert!(
        !e.contains("nixbld"),
        "the harmless nixbld warning is filtered: {e}"
    );
}

#[test]
fn an_option_typo_is_exit_5_naming_the_option() {
    let dir = tempfile::tempdir().unwrap();
    let m = module(&dir, "typo.nix", "{ services.opensh.enable = true; }");
    let e = exits(harness().args(["eval", "--module"]).arg(&m), 5);
    assert!(
        e.contains("services.opensh") && e.contains("does not exist"),
        "{e}"
    );
    exits(harness().args(["check", "--module"]).arg(&m), 5);
}

#[test]
fn a_failed_assertion_is_exit_6_and_still_printed() {
    let dir = tempfile::tempdir().unwrap();
    let m = module(
        &dir,
        "guard.nix",
        "{ imports = [ {repo}/examples/bastion ]; nix.settings.trusted-users = [ \"@wheel\" ]; }",
    );
    let out = harness()
        .args(["eval", "--format", "json", "--module"])
        .arg(&m)
        .output()
        .unwrap();
    no_panic(&out);
    assert_eq!(out.status.code(), Some(6));
    let p = json(&out.stdout);
    assert!(
        p["assertions"][0]
            .as_str()
            .unwrap()
            .starts_with("[paranoid:nix-trusted-users]"),
        "{}",
        p["assertions"]
    );
    assert!(stderr(&out).contains("assertions failed"));
}

/// One batch: a good item, one whose module throws, another good one. The throwing one is
/// re-run alone for Nix's message; the others keep their projections.
#[test]
fn a_permutation_that_throws_does_not_sink_its_batch() {
    let dir = tempfile::tempdir().unwrap();
    let bad = module(
        &dir,
        "throws.nix",
        "{ networking.hostName = throw \"boom: this permutation throws\"; }",
    );
    let item = |id: &str, modules: Vec<std::path::PathBuf>| Item {
        id: id.into(),
        fixture: Some("matrix".into()),
        modules,
        knobs: BTreeMap::from([("ssh.enable".into(), Value::Bool(true))]),
        ..Default::default()
    };
    let opts = EvalOptions {
        jobs: 1,
        batch_size: 3,
        timeout: Duration::from_secs(120),
        ..Default::default()
    };
    let seen = std::sync::Mutex::new(vec![]);
    let out = nix::evaluate(
        &Flake::open(&repo()).unwrap(),
        vec![item("a", vec![]), item("bad", vec![bad]), item("c", vec![])],
        &opts,
        &|id, _| seen.lock().unwrap().push(id.to_string()),
    )
    .unwrap();
    assert_eq!(
        out.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(),
        ["a", "bad", "c"]
    );
    assert!(
        matches!(out[0].1, Outcome::Projection(_)) && matches!(out[2].1, Outcome::Projection(_))
    );
    match &out[1].1 {
        Outcome::Failed { message } => assert!(
            message.contains("boom: this permutation throws"),
            "{message}"
        ),
        o => panic!("expected a failure, got {o:?}"),
    }
    assert_eq!(seen.lock().unwrap().len(), 3, "on_done saw every item");
}

fn matrix_json(path: &str, extra: &[&str]) -> (Option<i32>, Value, String) {
    let pool: &[&str] = if extra.contains(&"--jobs") {
        &[]
    } else {
        &["--jobs", "2", "--batch-size", "16"]
    };
    let out = harness()
        .env("PATH", path)
        .args(["matrix", "--strategy", "one-at-a-time", "--format", "json"])
        .args(pool)
        .args(extra)
        .output()
        .unwrap();
    no_panic(&out);
    assert!(!out.stdout.is_empty(), "no report: {}", stderr(&out));
    (out.status.code(), json(&out.stdout), stderr(&out))
}

fn errors(r: &Value) -> Vec<(String, String)> {
    r["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| !x["error"].is_null())
        .map(|x| {
            (
                x["id"].as_str().unwrap().to_string(),
                x["error"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// A nix process killed mid-batch: every batch that holds one row dies with SIGKILL, and that
/// row dies alone too. Its batch-mates are re-run alone and pass; only it is reported.
#[test]
fn a_nix_process_killed_mid_batch_loses_only_its_culprit() {
    let dir = tempfile::tempdir().unwrap();
    let path = nix_wrapper(
        &dir,
        r#"if [ -n "$REQ" ] && grep -q '"alone:audit.enable=true"' "$REQ"; then kill -9 $$; fi"#,
    );
    let (code, r, err) = matrix_json(&path, &[]);
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(
        r["evaluated"], r["planned"],
        "nothing else in the run is lost"
    );
    let errs = errors(&r);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].0, "alone:audit.enable=true");
    assert!(errs[0].1.contains("killed by a signal"), "{}", errs[0].1);
    let failed_rows = r["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["violations"].as_array().is_some_and(|v| !v.is_empty()))
        .count();
    assert_eq!(failed_rows, 0, "the innocent rows pass");
}

/// Garbage on stdout: batches answer junk with status 0; each row is re-run alone (where the
/// wrapper stays out of the way) and the run completes clean.
#[test]
fn garbage_on_nix_s_stdout_is_recovered_by_re_running_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = nix_wrapper(
        &dir,
        r#"if [ -n "$REQ" ] && grep -q '"catch":true' "$REQ"; then echo 'this is not JSON {{{'; exit 0; fi"#,
    );
    let (code, r, err) = matrix_json(&path, &[]);
    assert_eq!(errors(&r), vec![], "{err}");
    assert_eq!(r["evaluated"], r["planned"]);
    assert_eq!(code, Some(0), "{err}");
}

/// A row whose nix answers garbage even alone is reported with what nix printed.
#[test]
fn garbage_even_alone_is_reported_for_that_row_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = nix_wrapper(
        &dir,
        r#"if [ -n "$REQ" ] && grep -q '"alone:users.immutable=true"' "$REQ"; then echo 'garbage!'; exit 0; fi"#,
    );
    let (code, r, _) = matrix_json(&path, &[]);
    assert_eq!(code, Some(1));
    let errs = errors(&r);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].1.contains("not JSON") && errs[0].1.contains("garbage!"),
        "{}",
        errs[0].1
    );
}

#[test]
fn a_nix_process_past_its_timeout_is_killed_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = nix_wrapper(
        &dir,
        r#"if [ -n "$REQ" ] && grep -q '"alone:firewall.enable=true"' "$REQ"; then exec sleep 600; fi"#,
    );
    let started = std::time::Instant::now();
    let (code, r, _) = matrix_json(&path, &["--timeout", "2"]);
    assert_eq!(code, Some(1));
    let errs = errors(&r);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].1.contains("timeout"), "{}", errs[0].1);
    // Not a timing test: a sleeper waited for would hold the run for ten minutes.
    assert!(
        started.elapsed() < Duration::from_secs(300),
        "the sleeper was killed, not waited for"
    );
}

#[test]
fn an_unknown_knob_in_set_is_exit_2_with_the_valid_names() {
    let e = exits(harness().args(["matrix", "--set", "ssh.enabel=true"]), 2);
    assert!(
        e.contains("unknown knob `ssh.enabel`")
            && e.contains("ssh.enable")
            && e.contains("sudo.mode"),
        "{e}"
    );
    let e = exits(
        harness().args(["matrix", "--set", "sudo.mode=sometimes"]),
        2,
    );
    assert!(e.contains("upstream"), "{e}");
}

#[test]
fn zero_jobs_is_exit_2() {
    let e = exits(harness().args(["matrix", "--jobs", "0"]), 2);
    assert!(e.contains("--jobs 0"), "{e}");
    exits(harness().args(["bench", "--jobs", "0"]), 2);
}

#[test]
fn a_tiny_memory_bound_is_refused_up_front() {
    let out = harness()
        .args(["matrix", "--jobs", "2", "--max-memory", "1M"])
        .output()
        .unwrap();
    no_panic(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--max-memory"), "{}", stderr(&out));
}

/// A bound far below what an unbounded batch takes (~450 MiB): Nix's heap is capped to fit
/// the share, so batches complete within it and nothing is killed or lost.
#[test]
fn batches_are_kept_within_the_memory_bound() {
    let path = std::env::var("PATH").unwrap();
    let (code, r, err) = matrix_json(
        &path,
        &["--jobs", "1", "--batch-size", "64", "--max-memory", "150M"],
    );
    assert_eq!(errors(&r), vec![], "{err}");
    assert_eq!(r["evaluated"], r["planned"]);
    assert_eq!(
        r["nix"]["over_memory"], 0,
        "the GC heap cap kept every process under 150 MiB: {}",
        r["nix"]
    );
    assert_eq!(code, Some(0));
}

/// The watchdog behind the heap cap: with the cap stripped (a wrapper unsets it), batches grow
/// past their share, are killed by PID, and their rows re-run alone; nothing is lost.
#[test]
fn batches_over_the_memory_bound_are_killed_and_split_not_lost() {
    let dir = tempfile::tempdir().unwrap();
    let path = nix_wrapper(&dir, "unset GC_MAXIMUM_HEAP_SIZE");
    let (code, r, err) = matrix_json(
        &path,
        &["--jobs", "1", "--batch-size", "64", "--max-memory", "150M"],
    );
    assert_eq!(errors(&r), vec![], "{err}");
    assert_eq!(r["evaluated"], r["planned"]);
    assert!(
        r["nix"]["over_memory"].as_u64().unwrap() >= 1,
        "an uncapped 40-row batch needs more than 150 MiB: {}",
        r["nix"]
    );
    assert!(
        r["nix"]["rerun_alone"].as_u64().unwrap() >= 1,
        "{}",
        r["nix"]
    );
    assert_eq!(code, Some(0));
}

/// Ctrl-C: the children are killed by PID, what finished is reported, exit 130.
#[test]
fn ctrl_c_stops_the_children_and_reports_what_finished() {
    let dir = tempfile::tempdir().unwrap();
    // Every nix call takes a second longer; `exec` keeps it one process per PID.
    let path = nix_wrapper(
        &dir,
        r#"if [ -n "$REQ" ]; then exec python3 -c 'import os,sys,time; time.sleep(1.5); os.execv(sys.argv[1], sys.argv[1:])' "$(dirname "$0")/real-nix" "$@"; fi"#,
    );
    std::os::unix::fs::symlink(common::which_nix(), dir.path().join("bin/real-nix")).unwrap();
    let bin = assert_cmd::cargo::cargo_bin("paranoid-harness");
    let child = duct::cmd(
        bin,
        ["matrix", "--strategy", "one-at-a-time", "--batch-size", "4"],
    )
    .env("PATH", &path)
    .env("PARANOID_FLAKE", repo())
    .stdout_capture()
    .stderr_capture()
    .unchecked()
    .start()
    .unwrap();
    std::thread::sleep(Duration::from_millis(5500));
    let pid = child.pids()[0];
    let started = std::time::Instant::now();
    duct::cmd!("kill", "-INT", pid.to_string()).run().unwrap();
    let out = child.wait().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "stopped promptly"
    );
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("INTERRUPTED:"), "{text}");
    // No nix child of ours survives: none runs with this test's wrapper directory on PATH.
    let ps = duct::cmd!("ps", "-eo", "args").read().unwrap();
    assert!(
        !ps.contains(&dir.path().join("bin/real-nix").display().to_string()),
        "{ps}"
    );
}

/// A flake whose input cannot be fetched (offline here; a 404 where online): exit 4, and the
/// message says how to get the inputs.
#[test]
fn unresolvable_inputs_are_exit_4_with_how_to_seed_them() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("flake.nix"),
        r#"{ inputs.missing.url = "github:paranoid-harness-tests/this-repository-does-not-exist";
             outputs = { self, missing }: { lib.catalogue = missing.lib; }; }"#,
    )
    .unwrap();
    let out = harness()
        .args(["knobs", "--flake"])
        .arg(dir.path())
        .output()
        .unwrap();
    no_panic(&out);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let e = stderr(&out);
    assert!(
        e.contains("cannot be resolved") && e.contains(".ci/seed-inputs"),
        "{e}"
    );
}
