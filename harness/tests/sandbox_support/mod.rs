//! Shared helpers of the sandbox tier's tests (run as root; they start real daemons).
#![allow(dead_code)]

use assert_cmd::Command;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The repository root (the flake), found from this crate, never hard-coded.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// These tests prove behaviour with real daemons and namespaces: without root they cannot
/// run, and they say so instead of passing.
pub fn require_root() {
    let uid = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix("Uid:")
                .map(|r| r.split_whitespace().nth(1).unwrap_or("1").to_string())
        })
        .unwrap();
    assert_eq!(
        uid, "0",
        "the sandbox tier's tests need root (they create namespaces, users and daemons)"
    );
}

pub fn harness() -> Command {
    let mut c = Command::cargo_bin("paranoid-harness").unwrap();
    c.env_remove("PARANOID_SANDBOX_STATE_DIR");
    c
}

/// Run `paranoid-harness sandbox <args> --format json` and return (exit code, report).
pub fn sandbox_json(args: &[&str]) -> (i32, Value) {
    let root = repo_root();
    let out = harness()
        .arg("sandbox")
        .args(args)
        .args(["--format", "json", "--flake"])
        .arg(&root)
        .output()
        .unwrap();
    let code = out.status.code().unwrap_or(-1);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}); exit {code}\nstdout: {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (code, v)
}

/// (status, summary) of every check of the first permutation.
pub fn statuses(report: &Value) -> Vec<(String, String, String)> {
    report["permutations"][0]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["check"].as_str().unwrap().to_string(),
                c["status"].as_str().unwrap().to_string(),
                c["summary"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

pub fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["permutations"][0]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == name)
        .unwrap_or_else(|| panic!("no {name} in {report}"))
}

/// Every evidence line of a check, as "what → output" text (for asserting on it).
pub fn evidence_text(c: &Value) -> String {
    c["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "[{}] {} → {}",
                e["ok"],
                e["what"].as_str().unwrap_or(""),
                e["output"].as_str().unwrap_or("")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The evaluated projection of a reference host, through the same contract the harness uses.
pub fn projection_of(host: &str) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let req = dir.path().join("req.json");
    std::fs::write(
        &req,
        serde_json::json!({"catch": false, "items": [{"id": host, "host": host}]}).to_string(),
    )
    .unwrap();
    let out = std::process::Command::new("nix")
        .args([
            "--extra-experimental-features",
            "nix-command flakes",
            "eval",
            "--json",
            "--impure",
        ])
        .arg(format!("{}#lib.harness.evalBatch", repo_root().display()))
        .args([
            "--apply",
            &format!(
                "f: f (builtins.fromJSON (builtins.readFile \"{}\"))",
                req.display()
            ),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "nix eval failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v[0]["projection"].clone()
}

/// A host module in a temporary directory that imports a reference host and adds `body`.
pub fn host_module(dir: &Path, host: &str, body: &str) -> PathBuf {
    let f = dir.join(format!("{host}-control.nix"));
    let host_file = repo_root().join("examples").join(host).join("default.nix");
    std::fs::write(
        &f,
        format!(
            "{{ lib, pkgs, ... }}:\n{{\n  imports = [ {} ];\n{body}\n}}\n",
            host_file.display()
        ),
    )
    .unwrap();
    f
}

/// What a run with id `id` left behind: users, groups, namespaces, processes, mounts, files.
pub fn leftovers(id: &str, state_dir: &Path) -> Vec<String> {
    let mut out = vec![];
    let tag = format!("pzs{id}");
    for (file, kind) in [
        ("/etc/passwd", "user"),
        ("/etc/group", "group"),
        ("/etc/shadow", "shadow entry"),
    ] {
        for l in std::fs::read_to_string(file).unwrap_or_default().lines() {
            if l.starts_with(&tag) {
                out.push(format!("{kind} {}", l.split(':').next().unwrap()));
            }
        }
    }
    if let Ok(rd) = std::fs::read_dir("/run/netns") {
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.starts_with(&format!("pzs-{id}-")) {
                out.push(format!("netns {n}"));
            }
        }
    }
    // sshd rewrites its environment for its process title: match the work directory in the
    // command line too, and membership of the run's network namespaces.
    let marker = format!("PARANOID_SANDBOX_RUN={id}");
    let workdir = format!("{}/{id}/", state_dir.display());
    let netns: Vec<String> = std::fs::read_dir("/run/netns")
        .map(|rd| {
            rd.flatten()
                .filter(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .starts_with(&format!("pzs-{id}-"))
                })
                .filter_map(|e| {
                    std::fs::metadata(e.path())
                        .ok()
                        .map(|m| format!("net:[{}]", std::os::unix::fs::MetadataExt::ino(&m)))
                })
                .collect()
        })
        .unwrap_or_default();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == std::process::id() {
            continue;
        }
        let env = std::fs::read(e.path().join("environ")).unwrap_or_default();
        let cmd = std::fs::read_to_string(e.path().join("cmdline"))
            .unwrap_or_default()
            .replace('\0', " ");
        let ns = std::fs::read_link(e.path().join("ns/net"))
            .map(|l| l.to_string_lossy().into_owned())
            .unwrap_or_default();
        if env.split(|b| *b == 0).any(|v| v == marker.as_bytes())
            || cmd.contains(&workdir)
            || netns.contains(&ns)
        {
            let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
            let zombie = stat
                .rsplit_once(')')
                .map(|(_, r)| r.trim_start().starts_with('Z'))
                .unwrap_or(false);
            if !zombie {
                out.push(format!("process {pid} {cmd}"));
            }
        }
    }
    for l in std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
    {
        if l.contains(id) {
            out.push(format!("mount {l}"));
        }
    }
    if state_dir.join(id).exists() {
        out.push(format!("work directory {}", state_dir.join(id).display()));
    }
    for ext in ["lock", "journal"] {
        let f = state_dir.join("runs").join(format!("{id}.{ext}"));
        if f.exists() {
            out.push(format!("file {}", f.display()));
        }
    }
    // Listening sockets of the run's processes would show up as processes above; the daemons
    // live in the run's namespaces, which are listed too.
    out
}

pub const DEFAULT_STATE_DIR: &str = "/var/lib/paranoid-sandbox";
