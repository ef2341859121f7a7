//! What a first user meets (issue 11, item 3): bad input is a usage error, failures under
//! `--format json` are JSON objects, one way to name the paranoid checkout, a progress bar that
//! adds up, a mount table with a header, and a quick start that evaluates as written.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{harness, module, repo, stderr};
use paranoid_harness::catalogue::Catalogue;
use paranoid_harness::matrix::{self, MatrixOptions, ProgressEvent};
use paranoid_harness::nix::{EvalOptions, Flake};
use paranoid_harness::plan::Strategy;
use serde_json::Value;

fn bin() -> std::path::PathBuf {
    assert_cmd::cargo::cargo_bin("paranoid-harness")
}

/// The harness run from outside any checkout, with no PARANOID_FLAKE.
fn outside() -> (assert_cmd::Command, tempfile::TempDir) {
    let cwd = tempfile::tempdir().unwrap();
    let mut c = assert_cmd::Command::cargo_bin("paranoid-harness").unwrap();
    c.current_dir(cwd.path()).env_remove("PARANOID_FLAKE");
    (c, cwd)
}

fn code_and_stderr(cmd: &mut assert_cmd::Command) -> (Option<i32>, String, Vec<u8>) {
    let out = cmd.output().unwrap();
    let e = stderr(&out);
    assert!(!e.contains("panicked"), "panic: {e}");
    (out.status.code(), e, out.stdout)
}

#[test]
fn samples_zero_is_a_usage_error_for_every_command_that_plans() {
    for command in ["plan", "matrix", "bench", "sandbox"] {
        let (code, e, _) =
            code_and_stderr(harness().args([command, "--strategy", "random", "--samples", "0"]));
        assert_eq!(code, Some(2), "{command}: {e}");
        assert!(
            e.contains("--samples 0") && e.contains("at least one row"),
            "{command}: {e}"
        );
    }
    let (code, e, _) = code_and_stderr(harness().args(["plan", "--samples", "3"]));
    assert_eq!(code, Some(2), "--samples without random: {e}");
    assert!(e.contains("--strategy random only"), "{e}");
    let (code, e, _) =
        code_and_stderr(harness().args(["plan", "--strategy", "random", "--samples", "1"]));
    assert_eq!(code, Some(0), "one sample is fine: {e}");
}

#[test]
fn an_unknown_reference_host_is_a_usage_error_naming_the_known_ones() {
    for command in ["eval", "sandbox"] {
        let (code, e, _) = code_and_stderr(harness().args([command, "--host", "unknown"]));
        assert_eq!(code, Some(2), "{command}: {e}");
        assert!(
            e.contains("--host unknown")
                && e.contains("bastion, meeka")
                && e.contains("--module FILE"),
            "{command}: {e}"
        );
    }
}

/// Every command that takes `--format json` prints one JSON error object on stdout when it
/// fails, with the documented shape and the exit code it exits with.
#[test]
fn every_json_command_prints_a_json_error_object_when_it_fails() {
    let dir = tempfile::tempdir().unwrap();
    let typo = module(&dir, "typo.nix", "{ services.opensh.enable = true; }");
    let broken = module(&dir, "broken.nix", "{ services.openssh.enable = true\n");
    let (mut knobs_outside, _cwd) = outside();
    knobs_outside.args(["knobs", "--format", "json"]);
    let typo_s = typo.display().to_string();
    let broken_s = broken.display().to_string();
    let cases: Vec<(&str, assert_cmd::Command, i32, &str, &str)> = vec![
        ("knobs", knobs_outside, 2, "usage", "--paranoid DIR"),
        (
            "eval",
            {
                let mut c = harness();
                c.args(["eval", "--format", "json", "--module", &typo_s]);
                c
            },
            5,
            "nix-eval",
            "services.opensh",
        ),
        (
            "plan",
            {
                let mut c = harness();
                c.args(["plan", "--format", "json", "--set", "nope.enable=true"]);
                c
            },
            2,
            "usage",
            "unknown knob",
        ),
        (
            "matrix",
            {
                let mut c = harness();
                c.args([
                    "matrix",
                    "--format",
                    "json",
                    "--strategy",
                    "random",
                    "--samples",
                    "0",
                ]);
                c
            },
            2,
            "usage",
            "--samples 0",
        ),
        (
            "check",
            {
                let mut c = harness();
                c.args(["check", "--format", "json", "--module", &broken_s]);
                c
            },
            5,
            "nix-eval",
            "syntax error",
        ),
        (
            "bench",
            {
                let mut c = harness();
                c.args(["bench", "--format", "json", "--jobs", "0"]);
                c
            },
            2,
            "usage",
            "--jobs 0",
        ),
        (
            "sandbox",
            {
                let mut c = harness();
                c.args([
                    "sandbox", "--format", "json", "--checks", "bogus", "--host", "bastion",
                ]);
                c
            },
            2,
            "usage",
            "unknown check",
        ),
        (
            "vm",
            {
                let mut c = harness();
                c.args(["vm", "--format", "json", "--timeout", "0"]);
                c
            },
            2,
            "usage",
            "--timeout",
        ),
        (
            "eval",
            {
                // Arguments that do not parse: still an object, since JSON was asked for.
                let mut c = harness();
                c.args(["eval", "--format", "json", "--no-such-flag"]);
                c
            },
            2,
            "usage",
            "--no-such-flag",
        ),
    ];
    for (command, mut cmd, code, kind, says) in cases {
        let (got, e, stdout) = code_and_stderr(&mut cmd);
        assert_eq!(got, Some(code), "{command}: {e}");
        let v: Value = serde_json::from_slice(&stdout).unwrap_or_else(|err| {
            panic!(
                "{command}: stdout is not JSON ({err}): {:?}; stderr: {e}",
                String::from_utf8_lossy(&stdout)
            )
        });
        assert_eq!(v["schema"], 1, "{command}: {v:#}");
        assert_eq!(v["ok"], false, "{command}: {v:#}");
        assert_eq!(v["command"], command, "{v:#}");
        let err = &v["error"];
        assert_eq!(err["kind"], kind, "{command}: {v:#}");
        assert_eq!(err["exit_code"], code, "{command}: {v:#}");
        assert!(
            err["message"].as_str().unwrap().contains(says),
            "{command}: {v:#}"
        );
        assert!(
            err.get("context").is_some() && err.get("tool").is_some(),
            "{v:#}"
        );
        if kind == "nix-eval" {
            assert!(err["context"].as_str().unwrap().ends_with(".nix"), "{v:#}");
        }
        // The message is on stderr as well, as without --format json.
        assert!(e.contains(says), "{command}: {e}");
    }
    // Without --format json, stdout stays empty on failure.
    let (code, _, stdout) = code_and_stderr(harness().args(["eval", "--module", &typo_s]));
    assert_eq!(code, Some(5));
    assert!(stdout.is_empty());
}

/// `--paranoid DIR` (or PARANOID_FLAKE) names the checkout for every command; outside a
/// checkout the hint says so; `--flake DIR` still works outside `check`, with a note.
#[test]
fn every_command_takes_the_checkout_as_paranoid_dir() {
    let (mut c, _cwd) = outside();
    let (code, e, _) = code_and_stderr(c.args(["eval", "--host", "bastion"]));
    assert_eq!(code, Some(2), "{e}");
    assert!(
        e.contains("no paranoid checkout found")
            && e.contains("--paranoid DIR")
            && e.contains("PARANOID_FLAKE"),
        "{e}"
    );
    assert!(!e.contains("--flake DIR"), "the old hint: {e}");

    let r = repo().display().to_string();
    let bastion = repo()
        .join("examples/bastion/default.nix")
        .display()
        .to_string();
    let runs: Vec<(Vec<&str>, &[i32])> = vec![
        (vec!["knobs"], &[0]),
        (vec!["eval", "--host", "bastion"], &[0]),
        (vec!["plan"], &[0]),
        (vec!["check", "--module", &bastion], &[0]),
        (vec!["bench", "--limit", "2", "--repeat", "1"], &[0]),
        (
            vec!["sandbox", "--host", "bastion", "--checks", "units"],
            &[0, 7],
        ),
        // No full nixpkgs here: the VM tier found the checkout and says it cannot run (7).
        (vec!["vm", "--list"], &[0, 7]),
    ];
    for (args, codes) in runs {
        let (mut c, _cwd) = outside();
        let (code, e, _) = code_and_stderr(c.args(&args).args(["--paranoid", &r]));
        assert!(
            codes.contains(&code.unwrap_or(-1)),
            "{args:?}: {code:?} {e}"
        );
        assert!(!e.contains("deprecated"), "{e}");
    }
    let (mut c, _cwd) = outside();
    let (code, e, _) =
        code_and_stderr(c.args(["matrix", "--strategy", "one-at-a-time", "--paranoid", &r]));
    assert_eq!(code, Some(0), "{e}");

    // The old spelling, with a note.
    let (mut c, _cwd) = outside();
    let (code, e, _) = code_and_stderr(c.args(["eval", "--host", "bastion", "--flake", &r]));
    assert_eq!(code, Some(0), "{e}");
    assert!(
        e.contains("--flake DIR is deprecated") && e.contains("--paranoid DIR"),
        "{e}"
    );

    // As ../shared/cases/run calls it: PARANOID_FLAKE and check --module, from elsewhere.
    let (mut c, _cwd) = outside();
    let (code, e, _) = code_and_stderr(
        c.env("PARANOID_FLAKE", &r)
            .args(["check", "--module", &bastion]),
    );
    assert_eq!(code, Some(0), "{e}");

    // In check, --flake keeps naming the host's flake.
    let (code, e, _) = code_and_stderr(harness().args(["check", "--flake", "not-a-ref"]));
    assert_eq!(code, Some(2), "{e}");
    assert!(e.contains("expected REF#host"), "{e}");
}

/// The matrix tells the progress bar exactly the rows it reports, and a tick for each.
#[test]
fn the_matrix_s_progress_total_is_the_rows_it_reports() {
    let flake = Flake::open(&repo()).unwrap();
    let cat = Catalogue::load(&flake, Duration::from_secs(120)).unwrap();
    let planned = std::sync::Mutex::new(vec![]);
    let done = std::sync::atomic::AtomicUsize::new(0);
    let r = matrix::run(
        &flake,
        &cat,
        &MatrixOptions {
            strategy: Strategy::OneAtATime,
            pins: Default::default(),
            eval: EvalOptions::default(),
        },
        &|e| match e {
            ProgressEvent::Planned(n) => planned.lock().unwrap().push(n),
            ProgressEvent::Done => {
                done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        },
    )
    .unwrap();
    assert_eq!(*planned.lock().unwrap(), vec![r.rows.len()]);
    assert_eq!(r.rows.len(), r.planned);
    assert_eq!(done.load(std::sync::atomic::Ordering::SeqCst), r.rows.len());
}

/// The bar as a user sees it, on a terminal (`script` gives the harness one): every total shown
/// is the number of rows reported, and the first ETA shown is not longer than the whole run.
#[test]
fn the_progress_bar_on_a_terminal_adds_up_and_its_first_eta_is_sane() {
    let dir = tempfile::tempdir().unwrap();
    let typescript = dir.path().join("typescript");
    let report = dir.path().join("report.json");
    let started = Instant::now();
    let st = Command::new("script")
        .args(["-q", "-f", "-e", "-c"])
        .arg(format!(
            "{} matrix --strategy pairwise --format json > {}",
            bin().display(),
            report.display()
        ))
        .arg(&typescript)
        .env("PARANOID_FLAKE", repo())
        .env("TERM", "xterm")
        .stdout(std::process::Stdio::null())
        .status()
        .expect("script (util-linux) runs the harness on a terminal");
    let wall = started.elapsed();
    assert!(st.success(), "exit {st}");
    let r: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let rows = r["rows"].as_array().unwrap().len();
    let shown = String::from_utf8_lossy(&std::fs::read(&typescript).unwrap()).into_owned();
    let frames: Vec<(u64, u64, Option<u64>)> = shown
        .split(['\r', '\n'])
        .filter_map(|line| {
            let at = line.find(" rows ")?;
            let counts = line[..at].rsplit(' ').next()?;
            let (pos, len) = counts.split_once('/')?;
            let eta = line[at..].split("eta ").nth(1)?.split_whitespace().next()?;
            Some((
                pos.trim_start_matches(|c: char| !c.is_ascii_digit())
                    .parse()
                    .ok()?,
                len.parse().ok()?,
                seconds(eta),
            ))
        })
        .collect();
    assert!(!frames.is_empty(), "no progress bar drawn: {shown:?}");
    for (pos, len, _) in &frames {
        assert_eq!(
            *len as usize, rows,
            "a total that is not the rows reported: {frames:?}"
        );
        assert!(*pos as usize <= rows, "{frames:?}");
    }
    let first_eta = frames
        .iter()
        .filter(|(pos, _, _)| *pos > 0)
        .find_map(|(_, _, eta)| *eta)
        .expect("an ETA once rows finished");
    assert!(
        Duration::from_secs(first_eta) <= wall.max(Duration::from_secs(1)) * 2,
        "first ETA {first_eta} s for a run of {wall:?}: {frames:?}"
    );
}

/// "12s", "3m", "1h" (what a bar may show) in seconds.
fn seconds(eta: &str) -> Option<u64> {
    let unit = match eta.chars().last()? {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86400,
        _ => return None,
    };
    eta[..eta.len() - 1].parse::<u64>().ok().map(|n| n * unit)
}

#[test]
fn eval_s_mount_table_has_a_header() {
    let out = harness()
        .args(["eval", "--host", "meeka"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("mounts (effective"))
        .unwrap();
    let header: Vec<&str> = lines[at + 1].split_whitespace().collect();
    assert_eq!(
        header,
        ["mount", "point", "type", "flags", "from"],
        "{text}"
    );
    assert!(lines[at + 2].trim_start().starts_with('/'), "{text}");
}

// ---------------------------------------------------------------------------------------------
// The quick start.

const QUICKSTART: [&str; 2] = [
    "examples/quickstart/flake.nix",
    "examples/quickstart/paranoid.nix",
];

/// The code block after `<!-- quickstart: FILE -->` in the README.
fn readme_block(file: &str) -> String {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let marker = format!("<!-- quickstart: {file} -->");
    let after = readme
        .split_once(&marker)
        .unwrap_or_else(|| panic!("README.md has no {marker}"))
        .1;
    let body = after
        .trim_start()
        .strip_prefix("```nix\n")
        .expect("a ```nix block right after the marker");
    body[..body.find("```\n").expect("the block ends")].to_string()
}

#[test]
fn the_readme_shows_the_quick_start_files_exactly() {
    for file in QUICKSTART {
        let on_disk = std::fs::read_to_string(repo().join(file)).unwrap();
        assert_eq!(
            readme_block(file),
            on_disk,
            "README.md's block for {file} differs from the file"
        );
    }
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    assert!(
        readme.contains("Profile `paranoid` sets `users.mutableUsers = false`"),
        "the README says what the profile does to users"
    );
}

/// The modules the quick start's flake hands to `nixosSystem`, read from the flake as written
/// (nixpkgs stands in with a `nixosSystem` that returns its arguments; the paranoid input's
/// `nixosModules.all` with a marker).
fn quickstart_modules() -> Vec<String> {
    let flake = repo().join("examples/quickstart/flake.nix");
    let expr = format!(
        r#"let f = import {}; out = f.outputs {{ self = out; nixpkgs.lib.nixosSystem = args: args; paranoid.nixosModules.all = "<paranoid.nixosModules.all>"; }};
           in map toString out.nixosConfigurations.myhost.modules"#,
        flake.display()
    );
    let out = Command::new("nix")
        .args([
            "--extra-experimental-features",
            "nix-command flakes",
            "eval",
            "--impure",
            "--json",
            "--expr",
            &expr,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The quick start evaluates as written: its flake's modules, on the surface, through `check`
/// and `eval`: clean, no failed assertion.
#[test]
fn the_quick_start_evaluates_clean_as_its_flake_lists_it() {
    let modules = quickstart_modules();
    assert_eq!(modules[0], "<paranoid.nixosModules.all>", "{modules:?}");
    let own: Vec<&String> = modules[1..].iter().collect();
    assert!(
        own.iter().any(|m| m.ends_with("/paranoid.nix"))
            && own.iter().all(|m| Path::new(m).is_file()),
        "{modules:?}"
    );
    // `check --module` imports paranoid's modules itself: the host is the rest, together.
    let dir = tempfile::tempdir().unwrap();
    let host = dir.path().join("myhost.nix");
    std::fs::write(
        &host,
        format!(
            "{{ imports = [ {} ]; }}\n",
            own.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(" ")
        ),
    )
    .unwrap();
    let (code, report, err) = common::check_module(&host, "paranoid");
    assert_eq!(code, Some(0), "{report:#} {err}");
    assert_eq!(report["ok"], true, "{report:#}");
    let out = harness()
        .args(["eval", "--format", "json", "--module"])
        .arg(&host)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let p: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        p["assertions"],
        serde_json::json!([]),
        "{}",
        p["assertions"]
    );
    assert_eq!(p["knobs"]["users.immutable"], true, "the profile sets it");
    // The README's command for it: the directory's default.nix imports the same two modules.
    let (code, report, err) = common::check_module(&repo().join("examples/quickstart"), "paranoid");
    assert_eq!(code, Some(0), "check --module examples/quickstart: {report:#} {err}");
    assert_eq!(
        p["options"]["users.mutableUsers"], false,
        "{}",
        p["options"]["users.mutableUsers"]
    );
}

/// A flake handed to --module is refused with the way to check it, not judged as a module
/// whose options are `inputs` and `outputs`.
#[test]
fn a_flake_given_as_a_module_is_a_usage_error_naming_the_way() {
    for cmd in ["check", "eval"] {
        let out = harness()
            .args([cmd, "--module"])
            .arg(repo().join("examples/quickstart/flake.nix"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{cmd}: {}", stderr(&out));
        assert!(stderr(&out).contains("this is a flake, not a NixOS module") && stderr(&out).contains("--flake DIR#HOST"), "{}", stderr(&out));
    }
}
