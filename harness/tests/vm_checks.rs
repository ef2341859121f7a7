//! What can be known about the VM tests (checks/vm) without full nixpkgs or KVM:
//! - every file under checks/ parses;
//! - every VM test is exposed as `checks.<system>.vm-<area>`, and listing them never forces
//!   nixpkgs;
//! - every node's posture passes paranoid's guard rails (a failed assertion would stop the VM
//!   test at evaluation), judged on the offline surface (checks/vm/offline.nix);
//! - the sshd configuration paranoid renders for the SSH nodes makes the real `sshd -T` print
//!   exactly what the VM tests expect;
//! - every Python test script renders and lints clean the way the NixOS test driver lints it
//!   (syntax, undefined names, unused imports, f-strings without placeholders).
//!
//! The VM tests themselves run only where nixpkgs and KVM exist (docs/vm.md).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs Nix offline for certain: downloads go to a closed port on loopback.
fn nix(args: &[&str]) -> Output {
    let dead = "http://127.0.0.1:9";
    Command::new("nix")
        .args(["--extra-experimental-features", "nix-command flakes"])
        .args(args)
        .env("http_proxy", dead)
        .env("https_proxy", dead)
        .env("all_proxy", dead)
        .env_remove("no_proxy")
        .stdin(Stdio::null())
        .output()
        .expect("these tests run real Nix: `nix` must be on PATH")
}

fn nix_json(args: &[&str]) -> Value {
    let out = nix(args);
    assert!(
        out.status.success(),
        "nix {args:?} failed:\n{}",
        text(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// checks/vm/offline.nix, evaluated once: { tests.<area> = { script; nodeNames; evaluatedNodes; postures }; expect }.
fn offline() -> &'static Value {
    static OFFLINE: OnceLock<Value> = OnceLock::new();
    OFFLINE.get_or_init(|| {
        let expr = format!(
            r#"let
                 flake = builtins.getFlake "git+file://{repo}";
                 r = import "${{flake}}/checks/vm/offline.nix" {{ paranoid = flake.lib; lib = flake.inputs.nixpkgs-lib.lib; }};
               in {{ inherit (r) expect; tests = builtins.mapAttrs (_: t: {{ inherit (t) script nodeNames evaluatedNodes postures; }}) r.tests; }}"#,
            repo = repo().display()
        );
        nix_json(&["eval", "--impure", "--json", "--expr", &expr])
    })
}

/// The VM test areas: checks/vm/<area>.nix, without the shared files.
fn areas() -> Vec<String> {
    let mut areas: Vec<String> = fs::read_dir(repo().join("checks/vm"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "nix"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .filter(|n| !["lib", "postures", "offline"].contains(&n.as_str()))
        .collect();
    areas.sort();
    areas
}

fn nix_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            nix_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "nix") {
            out.push(path);
        }
    }
}

#[test]
fn every_nix_file_under_checks_parses() {
    let mut files = Vec::new();
    nix_files(&repo().join("checks"), &mut files);
    assert!(
        files.len() >= 25,
        "found only {} .nix files under checks/",
        files.len()
    );
    let broken: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let out = Command::new("nix-instantiate")
                .arg("--parse")
                .arg(f)
                .stdout(Stdio::null())
                .output()
                .unwrap();
            (!out.status.success()).then(|| format!("{}:\n{}", f.display(), text(&out.stderr)))
        })
        .collect();
    assert!(
        broken.is_empty(),
        "files that do not parse:\n{}",
        broken.join("\n")
    );
}

#[test]
fn every_vm_test_is_exposed_and_listing_them_never_forces_nixpkgs() {
    let system = text(
        &nix(&[
            "eval",
            "--impure",
            "--raw",
            "--expr",
            "builtins.currentSystem",
        ])
        .stdout,
    );
    let installable = format!("{}#checks.{system}", repo().display());
    // Offline, with the pinned nixpkgs absent: listing must still work.
    let names: Vec<String> = serde_json::from_value(nix_json(&[
        "eval",
        "--json",
        &installable,
        "--apply",
        "builtins.attrNames",
    ]))
    .unwrap();
    let exposed: Vec<String> = names
        .iter()
        .filter_map(|n| n.strip_prefix("vm-"))
        .map(str::to_string)
        .collect();
    assert_eq!(
        exposed,
        areas(),
        "checks.{system}.vm-* must be exactly checks/vm/<area>.nix"
    );
    for host in ["meeka", "bastion"] {
        assert!(
            names.contains(&host.to_string()),
            "the {host} toplevel check is gone: {names:?}"
        );
        assert!(exposed.contains(&host.to_string()), "no vm-{host}");
    }
    for area in [
        "ssh", "nix", "amnesia", "noexec", "audit", "sudo", "logs", "firewall",
    ] {
        assert!(exposed.contains(&area.to_string()), "no VM test for {area}");
    }
}

#[test]
fn every_node_passes_paranoids_guard_rails() {
    let tests = offline()["tests"].as_object().unwrap();
    assert_eq!(
        tests.keys().cloned().collect::<Vec<_>>(),
        areas(),
        "offline.nix must cover every VM test"
    );
    for (area, t) in tests {
        assert_eq!(
            t["nodeNames"], t["evaluatedNodes"],
            "{area}: offline.nix must evaluate exactly the test's nodes"
        );
        for (node, posture) in t["postures"].as_object().unwrap() {
            assert_eq!(
                posture["failedAssertions"],
                Value::Array(vec![]),
                "{area}.{node}: paranoid's guard rails fire"
            );
        }
    }
}

fn sshd() -> PathBuf {
    ["/usr/sbin/sshd", "/run/current-system/sw/bin/sshd", "/usr/bin/sshd"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("this test runs OpenSSH's `sshd -T`; install openssh-server (sshd in /usr/sbin or /usr/bin)")
}

/// `sshd -T` of a rendered sshd_config. Host keys point at a throwaway key, and the algorithm
/// lists are dropped (the local sshd may predate ML-KEM; no expectation is about them).
fn sshd_t(config: &str) -> BTreeMap<String, String> {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("host_key");
    let keygen = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(
        keygen.status.success(),
        "ssh-keygen: {}",
        text(&keygen.stderr)
    );
    let adapted: String = config
        .lines()
        .filter(|l| {
            ![
                "KexAlgorithms ",
                "Ciphers ",
                "Macs ",
                "HostKeyAlgorithms ",
                "PubkeyAcceptedAlgorithms ",
            ]
            .iter()
            .any(|k| l.starts_with(k))
        })
        .map(|l| {
            if l.starts_with("HostKey ") {
                format!("HostKey {}", key.display())
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let file = dir.path().join("sshd_config");
    fs::write(&file, adapted + "\n").unwrap();
    let out = Command::new(sshd())
        .arg("-T")
        .arg("-f")
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sshd -T rejected the rendered configuration:\n{}\n{}",
        text(&out.stderr),
        config
    );
    let mut map = BTreeMap::new();
    for line in text(&out.stdout).lines() {
        let (k, v) = line.split_once(' ').unwrap_or((line, ""));
        map.entry(k.to_string()).or_insert_with(|| v.to_string());
    }
    map
}

#[test]
fn sshd_t_prints_what_the_vm_tests_expect() {
    let off = offline();
    let expect = off["expect"]["sshdT"].as_object().unwrap();
    let absent: Vec<&str> = off["expect"]["sshdAbsent"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    // The nodes whose scripts compare `sshd -T` with expect.sshdT (vm-ssh, vm-bastion).
    for (area, node) in [("ssh", "server"), ("bastion", "bastion")] {
        let config = off["tests"][area]["postures"][node]["sshdConfig"]
            .as_str()
            .unwrap();
        let effective = sshd_t(config);
        for (key, value) in expect {
            assert_eq!(
                effective.get(key).map(String::as_str),
                value.as_str(),
                "{area}.{node}: sshd -T {key}"
            );
        }
        for key in &absent {
            assert!(
                !effective.contains_key(*key),
                "{area}.{node}: sshd -T prints {key} {}",
                effective[*key]
            );
        }
        assert!(
            !effective["authorizedkeysfile"].contains(".ssh/authorized_keys"),
            "{area}.{node}: keys read from home"
        );
    }
}

/// Lints a test script as the driver's pyflakes would, with the stdlib only.
const LINT: &str = r#"
import ast, builtins, json, sys

src = sys.stdin.read()
allowed = set(json.loads(sys.argv[1]))
try:
    tree = ast.parse(src)
except SyntaxError as e:
    print(f"syntax error: {e}")
    sys.exit(1)
problems = []
defined = set(dir(builtins)) | allowed
imported = {}
for node in ast.walk(tree):
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        defined.add(node.name)
    elif isinstance(node, ast.arg):
        defined.add(node.arg)
    elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
        defined.add(node.id)
    elif isinstance(node, (ast.Import, ast.ImportFrom)):
        for alias in node.names:
            name = (alias.asname or alias.name).split(".")[0]
            defined.add(name)
            imported[name] = node.lineno
    elif isinstance(node, ast.ExceptHandler) and node.name:
        defined.add(node.name)
used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
for n in ast.walk(tree):
    if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id not in defined:
        problems.append(f"line {n.lineno}: undefined name {n.id!r}")
    if isinstance(n, ast.JoinedStr) and not any(isinstance(v, ast.FormattedValue) for v in n.values):
        problems.append(f"line {n.lineno}: f-string without placeholders")
for name, line in imported.items():
    if name not in used:
        problems.append(f"line {line}: {name!r} imported but unused")
print("\n".join(problems))
sys.exit(1 if problems else 0)
"#;

/// Names the NixOS test driver puts in a test script's scope (`Driver.test_symbols`).
const DRIVER_SYMBOLS: &[&str] = &[
    "start_all",
    "test_script",
    "machines",
    "vlans",
    "driver",
    "log",
    "os",
    "create_machine",
    "subtest",
    "run_tests",
    "join_all",
    "retry",
    "serial_stdout_off",
    "serial_stdout_on",
    "polling_condition",
    "Machine",
    "t",
];

fn lint(script: &str, nodes: &[String]) -> std::result::Result<(), String> {
    let allowed: Vec<String> = DRIVER_SYMBOLS
        .iter()
        .map(|s| s.to_string())
        .chain(nodes.iter().cloned())
        .collect();
    let mut child = Command::new("python3")
        .args(["-c", LINT, &serde_json::to_string(&allowed).unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("this test lints the test scripts with `python3`, which must be on PATH");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{}{}", text(&out.stdout), text(&out.stderr)))
    }
}

#[test]
fn every_test_script_renders_and_lints_clean() {
    for (area, t) in offline()["tests"].as_object().unwrap() {
        let script = t["script"].as_str().unwrap();
        let nodes: Vec<String> = serde_json::from_value(t["nodeNames"].clone()).unwrap();
        assert!(
            script.contains("subtest("),
            "{area}: a script without subtests"
        );
        if let Err(problems) = lint(script, &nodes) {
            panic!("{area}: the test script does not lint clean:\n{problems}\n--- script ---\n{script}");
        }
    }
}

#[test]
fn the_lint_catches_what_the_driver_would_reject() {
    let nodes = vec!["machine".to_string()];
    assert!(lint("machine.succeed('true')\n", &nodes).is_ok());
    assert!(lint("server.succeed('true')\n", &nodes)
        .unwrap_err()
        .contains("undefined name 'server'"));
    assert!(lint("import re\nmachine.succeed('true')\n", &nodes)
        .unwrap_err()
        .contains("imported but unused"));
    assert!(lint("machine.succeed(f'true')\n", &nodes)
        .unwrap_err()
        .contains("without placeholders"));
    assert!(lint("machine.succeed('true'\n", &nodes)
        .unwrap_err()
        .contains("syntax error"));
}
