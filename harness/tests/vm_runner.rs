//! `paranoid-harness vm` against scratch flakes whose "VM checks" are plain derivations with a
//! trivial builder (/bin/sh, sandbox off): real `nix eval` and `nix-store --realise` runs that
//! pass, fail, hang, flake or write a JUnit report. Each scratch flake carries a fresh nonce,
//! so the Nix store never answers from an earlier run.
//!
//! Plus the real paranoid flake, offline: refused quickly with the "no full nixpkgs" message.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use assert_cmd::prelude::*;
use paranoid_vm::quick_junit::{Report, TestCaseStatus};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_paranoid-harness");

/// No sandbox and no nixbld group on this kind of machine; no substituters (nothing to fetch).
const NIX_CONFIG: &str = "sandbox = false\nbuild-users-group = \nsubstituters = \n";

fn system() -> &'static str {
    static SYSTEM: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SYSTEM.get_or_init(|| {
        let out = Command::new("nix")
            .args(["--extra-experimental-features", "nix-command", "eval", "--impure", "--raw", "--expr", "builtins.currentSystem"])
            .env("NIX_CONFIG", NIX_CONFIG)
            .output()
            .expect("these tests run real Nix: `nix` must be on PATH");
        assert!(out.status.success(), "nix eval builtins.currentSystem failed: {}", String::from_utf8_lossy(&out.stderr));
        let system = String::from_utf8(out.stdout).unwrap();
        // The stand-ins run /bin/sh outside any sandbox, as this user: only a Nix that honours
        // `sandbox = false` from this process (root, single-user, or a trusted user) can run them.
        let probe = format!(
            r#"derivation {{ name = "paranoid-standin-probe-{}"; system = "{system}"; builder = "/bin/sh"; args = [ "-c" "/bin/mkdir $out" ]; }}"#,
            nonce()
        );
        let drv = Command::new("nix-instantiate").args(["--expr", &probe]).env("NIX_CONFIG", NIX_CONFIG).output().unwrap();
        let drv = String::from_utf8_lossy(&drv.stdout).trim().to_string();
        let built = Command::new("nix-store").args(["--realise", &drv]).env("NIX_CONFIG", NIX_CONFIG).output().unwrap();
        assert!(
            built.status.success(),
            "cannot run the stand-in checks here: a derivation with builder /bin/sh does not build with \
             `sandbox = false` (these tests need a Nix that honours it: root, single-user, or a trusted user):\n{}",
            String::from_utf8_lossy(&built.stderr)
        );
        system
    })
}

fn nonce() -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{t:x}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// A flake in a temp dir whose `checks.<system>` are the given Nix bindings. In them,
/// `standin name script extraAttrs` makes a derivation running `script` with /bin/sh, and
/// `state` is a directory outside the store the builders may write to.
struct Scratch {
    dir: tempfile::TempDir,
    nonce: String,
}

impl Scratch {
    fn new(checks: &str) -> Scratch {
        let dir = tempfile::Builder::new()
            .prefix("paranoid-vm-test-")
            .tempdir()
            .unwrap();
        let nonce = nonce();
        fs::create_dir(dir.path().join("state")).unwrap();
        let flake = FLAKE
            .replace("@SYSTEM@", system())
            .replace("@NONCE@", &nonce)
            .replace("@STATE@", &dir.path().join("state").display().to_string())
            .replace("@CHECKS@", checks);
        fs::write(dir.path().join("flake.nix"), flake).unwrap();
        Scratch { dir, nonce }
    }

    fn flake(&self) -> String {
        self.dir.path().display().to_string()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `paranoid-harness vm --flake <this>` with the scratch Nix configuration.
    fn vm(&self) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.arg("vm")
            .arg("--flake")
            .arg(self.flake())
            .arg("--log-dir")
            .arg(self.path("logs"));
        cmd.env("NIX_CONFIG", NIX_CONFIG).env_remove(KVM_ENV);
        cmd
    }

    /// Processes still running from this flake's builds (their environment carries the nonce).
    fn leftovers(&self) -> Vec<u32> {
        processes_with_env(&format!("PARANOID_NONCE={}", self.nonce))
    }
}

impl Drop for Scratch {
    /// Even when a test fails half-way, no builder of ours outlives it (killed by PID; only
    /// processes whose environment carries this scratch flake's nonce).
    fn drop(&mut self) {
        for pid in self.leftovers() {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}

const KVM_ENV: &str = "PARANOID_VM_KVM_DEVICE";

const FLAKE: &str = r#"{
  outputs = { self }:
    let
      system = "@SYSTEM@";
      nonce = "@NONCE@";
      state = "@STATE@";
      standin = name: script: extra: derivation ({
        name = "paranoid-standin-${name}-${nonce}";
        inherit system;
        builder = "/bin/sh";
        args = [ "-c" script ];
        PATH = "/usr/bin:/bin";
        PARANOID_NONCE = nonce;
      } // extra);
      # The shape nixos/lib/test-driver's JunitXMLLogger writes.
      driverJunit = ''
        <?xml version="1.0" encoding="utf-8"?>
        <testsuites tests="3" failures="0" errors="0" skipped="0" time="0">
          <testsuite name="NixOS integration test" tests="3" errors="0" failures="0" skipped="0" time="0">
            <testcase name="password and keyboard-interactive are refused" time="0"><system-out>ok</system-out></testcase>
            <testcase name="sshd -T: the effective values" time="0"/>
            <testcase name="main" time="0"/>
          </testsuite>
        </testsuites>
      '';
    in
    {
      checks.${system} = {
        @CHECKS@
      };
    };
}
"#;

fn processes_with_env(needle: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(env) = fs::read(entry.path().join("environ")) {
            if env.split(|b| *b == 0).any(|kv| kv == needle.as_bytes()) {
                found.push(pid);
            }
        }
    }
    found
}

fn json_of(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in {report:#}"))
}

/// The checks' own wall times added up: what a serial run would take.
fn sum_of_parts(report: &Value) -> f64 {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["seconds"].as_f64().unwrap())
        .sum()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn lists_only_the_vm_checks_and_their_markers_without_building() {
    let s = Scratch::new(
        r#"vm-a = standin "a" "mkdir $out" { };
        vm-flaky = standin "f" "mkdir $out" { } // { paranoid.flaky = true; };
        other = standin "other" "exit 1" { };"#,
    );
    let out = s
        .vm()
        .args(["--list", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let plan = json_of(&out);
    let names: Vec<&str> = plan["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        vec!["vm-a", "vm-flaky"],
        "only vm-* checks, in attribute order"
    );
    assert_eq!(check(&plan, "vm-flaky")["flaky"], true);
    assert_eq!(check(&plan, "vm-a")["flaky"], false);
    assert_eq!(check(&plan, "vm-a")["runnable"], true);
    // Nothing was built: the derivation's output does not exist.
    let drv = check(&plan, "vm-a")["drvPath"]
        .as_str()
        .unwrap()
        .to_string();
    let outputs = Command::new("nix-store")
        .args(["--query", "--outputs", &drv])
        .output()
        .unwrap();
    let out_path = text(&outputs.stdout).trim().to_string();
    assert!(
        !out_path.is_empty() && !Path::new(&out_path).exists(),
        "--list built {out_path}"
    );
}

#[test]
fn runs_checks_in_parallel_wall_time_below_the_sum() {
    let s = Scratch::new(
        r#"vm-sleep-a = standin "a" "sleep 4; mkdir $out" { };
        vm-sleep-b = standin "b" "sleep 4; mkdir $out" { };
        vm-sleep-c = standin "c" "sleep 4; mkdir $out" { };"#,
    );
    let out = s
        .vm()
        .args(["--jobs", "3", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let report = json_of(&out);
    let sum = sum_of_parts(&report);
    let wall = report["wallSeconds"].as_f64().unwrap();
    assert!(sum >= 12.0, "each stand-in sleeps 4s; sum of parts {sum}");
    assert!(
        wall < 0.75 * sum,
        "wall {wall:.1}s is not below the sum of the parts {sum:.1}s: not parallel"
    );
    assert_eq!(report["summary"]["passed"], 3);
    // One start and one finish line per check, with wall time.
    let stderr = text(&out.stderr);
    for name in ["vm-sleep-a", "vm-sleep-b", "vm-sleep-c"] {
        assert!(stderr.contains(&format!("[start  ] {name}")), "{stderr}");
        assert!(
            stderr
                .lines()
                .any(|l| l.starts_with(&format!("[pass   ] {name} ")) && l.ends_with('s')),
            "{stderr}"
        );
    }
}

#[test]
fn jobs_bounds_the_pool() {
    let s = Scratch::new(
        r#"vm-one = standin "one" "sleep 2; mkdir $out" { };
        vm-two = standin "two" "sleep 2; mkdir $out" { };"#,
    );
    let out = s
        .vm()
        .args(["--jobs", "1", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let report = json_of(&out);
    let sum = sum_of_parts(&report);
    assert!(
        report["wallSeconds"].as_f64().unwrap() >= 0.95 * sum,
        "--jobs 1 ran builds at once: {report:#}"
    );
}

#[test]
fn a_failure_is_reported_with_its_log_tail_and_exit_1() {
    let s = Scratch::new(
        r#"vm-ok = standin "ok" "mkdir $out" { };
        vm-broken = standin "broken" "echo preparing; echo paranoid-failure-marker-${nonce} >&2; exit 3" { };"#,
    );
    let out = s.vm().output().unwrap();
    assert_eq!(out.status.code(), Some(1), "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let marker = format!("paranoid-failure-marker-{}", s.nonce);
    assert!(
        stdout.contains("--- vm-broken failed: the build failed (nix-store exit 100)"),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("    | ") && l.contains(&marker)),
        "no log tail with the marker:\n{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.trim_start().starts_with("passed") && l.contains("vm-ok")),
        "{stdout}"
    );
    let log = fs::read_to_string(s.path("logs/vm-broken.log")).unwrap();
    assert!(
        log.contains(&marker) && log.contains("preparing"),
        "the log keeps the whole output:\n{log}"
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("[FAIL   ] vm-broken") && stderr.contains("vm-broken.log"),
        "{stderr}"
    );
}

#[test]
fn a_hanging_check_times_out_and_its_build_is_stopped() {
    let s = Scratch::new(r#"vm-hang = standin "hang" "echo hanging; sleep 45; mkdir $out" { };"#);
    let started = Instant::now();
    let child = s
        .vm()
        .args(["--timeout", "3", "--format", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The builder is seen running (so the check below that it is gone means something).
    let deadline = Instant::now() + Duration::from_secs(30);
    while s.leftovers().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        !s.leftovers().is_empty(),
        "the hanging builder was never seen running"
    );
    let out = child.wait_with_output().unwrap();
    let elapsed = started.elapsed();
    assert_eq!(out.status.code(), Some(1), "stderr: {}", text(&out.stderr));
    assert!(
        elapsed < Duration::from_secs(30),
        "a 3s timeout took {elapsed:?}"
    );
    let report = json_of(&out);
    let hang = check(&report, "vm-hang");
    assert_eq!(hang["status"], "timed-out");
    assert!(hang["seconds"].as_f64().unwrap() >= 3.0);
    assert!(
        hang["logTail"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l == "hanging"),
        "{hang:#}"
    );
    // Nix killed its builder when the harness stopped it: nothing of the build is left.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !s.leftovers().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        s.leftovers().is_empty(),
        "processes of the timed-out build survived: {:?}",
        s.leftovers()
    );
}

#[test]
fn only_checks_marked_flaky_are_retried() {
    // Both fail on their first run and pass on the next; only the marked one gets that chance.
    let s = Scratch::new(
        r#"vm-flaky = standin "flaky" "if [ -e ${state}/flaky ]; then mkdir $out; else touch ${state}/flaky; echo first attempt fails; exit 1; fi" { } // { paranoid.flaky = true; };
        vm-steady = standin "steady" "if [ -e ${state}/steady ]; then mkdir $out; else touch ${state}/steady; echo first attempt fails; exit 1; fi" { };"#,
    );
    let out = s
        .vm()
        .args(["--retries", "2", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "vm-steady fails; stderr: {}",
        text(&out.stderr)
    );
    let report = json_of(&out);
    let flaky = check(&report, "vm-flaky");
    assert_eq!(flaky["status"], "passed");
    assert_eq!(flaky["attempts"].as_array().unwrap().len(), 2);
    assert_eq!(flaky["attempts"][0]["status"], "failed");
    let steady = check(&report, "vm-steady");
    assert_eq!(steady["status"], "failed");
    assert_eq!(
        steady["attempts"].as_array().unwrap().len(),
        1,
        "an unmarked check must not be retried"
    );
    assert!(
        text(&out.stderr).contains("[retry  ] vm-flaky: attempt 1/3 failed"),
        "{}",
        text(&out.stderr)
    );
    let log = fs::read_to_string(s.path("logs/vm-flaky.log")).unwrap();
    assert!(
        log.contains("attempt 1/3: failed") && log.contains("attempt 2/3: passed"),
        "{log}"
    );
}

#[test]
fn without_retries_a_flaky_check_runs_once() {
    let s = Scratch::new(
        r#"vm-flaky = standin "flaky" "if [ -e ${state}/flaky ]; then mkdir $out; else touch ${state}/flaky; exit 1; fi" { } // { paranoid.flaky = true; };"#,
    );
    let out = s.vm().args(["--format", "json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        check(&json_of(&out), "vm-flaky")["attempts"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn the_drivers_junit_is_merged_into_one_valid_report() {
    let s = Scratch::new(
        r#"vm-junit = standin "junit" "mkdir $out; printf '%s' \"$driverJunit\" > $out/junit.xml" { inherit driverJunit; };
        vm-broken = standin "broken" "echo junit-failure-${nonce}; exit 1" { };
        vm-plain = standin "plain" "mkdir $out" { };"#,
    );
    let junit = s.path("merged.xml");
    let out = s.vm().arg("--junit").arg(&junit).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "stderr: {}", text(&out.stderr));
    assert!(text(&out.stdout).contains(&format!("junit: {}", junit.display())));

    let xml = fs::read_to_string(&junit).unwrap();
    // A real XML + JUnit parser reads it back (it rejects malformed XML and missing attributes).
    let report = Report::deserialize_from_str(&xml)
        .unwrap_or_else(|e| panic!("invalid JUnit ({e}):\n{xml}"));
    let suites: Vec<&str> = report.test_suites.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(suites, vec!["vm-broken", "vm-junit", "vm-plain"]);
    let cases: usize = report.test_suites.iter().map(|t| t.test_cases.len()).sum();
    assert_eq!(report.tests, cases, "the totals match the test cases");
    assert_eq!(report.failures, 1);

    let merged = &report.test_suites[1];
    let names: Vec<&str> = merged.test_cases.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "vm-junit",
            "password and keyboard-interactive are refused",
            "sshd -T: the effective values",
            "main"
        ]
    );
    assert!(merged
        .test_cases
        .iter()
        .all(|c| c.classname.as_ref().map(|n| n.as_str()) == Some("vm-junit")));
    assert!(merged
        .test_cases
        .iter()
        .all(|c| matches!(c.status, TestCaseStatus::Success { .. })));

    let broken = &report.test_suites[0].test_cases[0];
    match &broken.status {
        TestCaseStatus::NonSuccess {
            message,
            description,
            ..
        } => {
            assert!(message
                .as_ref()
                .unwrap()
                .as_str()
                .contains("the build failed"));
            assert!(
                description
                    .as_ref()
                    .unwrap()
                    .as_str()
                    .contains(&format!("junit-failure-{}", s.nonce)),
                "log tail in the failure"
            );
        }
        other => panic!("vm-broken is {other:?}"),
    }
    assert_eq!(
        report.test_suites[2].test_cases.len(),
        1,
        "no driver report: the runner's own test case only"
    );
}

#[test]
fn checks_needing_kvm_are_refused_without_the_kvm_feature() {
    let s = Scratch::new(
        r#"vm-kvm = standin "kvm" "mkdir $out" { requiredSystemFeatures = [ "kvm" "nixos-test" ]; };
        vm-plain = standin "plain" "mkdir $out" { };"#,
    );
    let out = s
        .vm()
        .args(["--format", "json"])
        .env(
            "NIX_CONFIG",
            format!("{NIX_CONFIG}system-features = benchmark\n"),
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(7), "stderr: {}", text(&out.stderr));
    let report = json_of(&out);
    let kvm = check(&report, "vm-kvm");
    assert_eq!(kvm["status"], "refused");
    assert!(
        kvm["reason"].as_str().unwrap().contains("kvm, nixos-test"),
        "{kvm:#}"
    );
    assert_eq!(
        check(&report, "vm-plain")["status"],
        "passed",
        "only the checks that need KVM are refused"
    );
    assert!(text(&out.stderr).contains("[refused] vm-kvm"));
}

#[test]
fn checks_needing_kvm_are_refused_without_a_kvm_device() {
    let s = Scratch::new(
        r#"vm-kvm = standin "kvm" "mkdir $out" { requiredSystemFeatures = [ "kvm" ]; };"#,
    );
    let out = s
        .vm()
        .args(["--list"])
        .env(
            "NIX_CONFIG",
            format!("{NIX_CONFIG}system-features = kvm nixos-test\n"),
        )
        .env(KVM_ENV, s.path("no-such-kvm"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(7), "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("refused")
            && stdout.contains("no-such-kvm")
            && stdout.contains("cannot be opened"),
        "{stdout}"
    );
}

#[test]
fn the_real_flake_offline_is_refused_quickly_with_no_full_nixpkgs() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    // Offline for certain: every download goes to a closed port on loopback.
    let dead = "http://127.0.0.1:9";
    let started = Instant::now();
    let out = Command::new(BIN)
        .args(["vm", "--list", "--flake"])
        .arg(repo)
        .env("NIX_CONFIG", NIX_CONFIG)
        .env("http_proxy", dead)
        .env("https_proxy", dead)
        .env("all_proxy", dead)
        .env_remove("no_proxy")
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    let stderr = text(&out.stderr);
    if out.status.code() == Some(0) {
        panic!(
            "cannot test the offline refusal here: the pinned nixpkgs is already in this Nix store, so the \
             VM checks evaluate (run `paranoid-harness vm` for real instead). Plan:\n{}",
            text(&out.stdout)
        );
    }
    assert_eq!(out.status.code(), Some(7), "stderr: {stderr}");
    assert!(stderr.contains("no full nixpkgs"), "{stderr}");
    assert!(stderr.contains("docs/vm.md"), "{stderr}");
    assert!(
        elapsed < Duration::from_secs(30),
        "refusal took {elapsed:?}"
    );
}

#[test]
fn usage_errors_exit_2_with_a_message() {
    let s = Scratch::new(r#"vm-a = standin "a" "mkdir $out" { };"#);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--jobs", "0"], "--jobs must be at least 1"),
        (vec!["--timeout", "0"], "--timeout must be at least 1"),
        (
            vec!["--filter", "nothing-like-this"],
            "no VM check matches --filter",
        ),
        (vec!["--format", "yaml"], "invalid value 'yaml'"),
    ];
    for (args, message) in cases {
        let out = s.vm().args(&args).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains(message),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    let out = s
        .vm()
        .args(["--filter", "nothing-like-this"])
        .output()
        .unwrap();
    assert!(text(&out.stderr).contains("the flake has: vm-a"));

    let none = Scratch::new(r#"other = standin "other" "mkdir $out" { };"#);
    let out = none.vm().output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("has no VM checks"),
        "{}",
        text(&out.stderr)
    );

    let missing = s.path("no-such-flake");
    let out = Command::new(BIN)
        .args(["vm", "--flake"])
        .arg(&missing)
        .env("NIX_CONFIG", NIX_CONFIG)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("cannot read the flake"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn an_evaluation_error_exits_5_with_nixs_message() {
    let s = Scratch::new(r#"vm-bad = throw "paranoid-eval-error-${nonce}";"#);
    let out = s.vm().output().unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains(&format!("paranoid-eval-error-{}", s.nonce)));
}

#[test]
fn without_nix_it_exits_3() {
    let s = Scratch::new(r#"vm-a = standin "a" "mkdir $out" { };"#);
    let empty = s.path("empty-path");
    fs::create_dir(&empty).unwrap();
    let out = s.vm().env("PATH", &empty).output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("`nix` is not installed"));
}

#[test]
fn ctrl_c_stops_the_builds_it_started_and_exits_130() {
    let s = Scratch::new(
        r#"vm-hang-a = standin "hang-a" "sleep 600; mkdir $out" { };
        vm-hang-b = standin "hang-b" "sleep 600; mkdir $out" { };
        vm-later = standin "later" "mkdir $out" { };"#,
    );
    let mut child = s
        .vm()
        .args(["--jobs", "2", "--format", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Both hanging builds are running (their builders carry the nonce).
    let deadline = Instant::now() + Duration::from_secs(60);
    while s.leftovers().len() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(s.leftovers().len() >= 2, "the builds never started");
    let signalled = Instant::now();
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .assert()
        .success();

    let deadline = Instant::now() + Duration::from_secs(40);
    while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    if child.try_wait().unwrap().is_none() {
        child.kill().unwrap();
        panic!("the harness did not stop after Ctrl-C");
    }
    // Every command of the harness stops within 2 s of a signal (docs/harness.md).
    let took = signalled.elapsed();
    let out = child.wait_with_output().unwrap();
    assert!(took <= Duration::from_secs(2), "stopping took {took:?}");
    assert_eq!(
        out.status.code(),
        Some(130),
        "stderr: {}",
        text(&out.stderr)
    );
    let report = json_of(&out);
    assert_eq!(report["interrupted"], true);
    assert_eq!(check(&report, "vm-hang-a")["status"], "interrupted");
    assert_eq!(check(&report, "vm-hang-b")["status"], "interrupted");
    assert_eq!(check(&report, "vm-later")["status"], "not-run");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !s.leftovers().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        s.leftovers().is_empty(),
        "builds survived Ctrl-C: {:?}",
        s.leftovers()
    );
}
