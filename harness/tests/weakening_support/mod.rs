//! The weakening catalogue (checks/weakenings.nix) as the tests read it: the entries' metadata
//! from Nix, a host module per entry (its reference host, its setup, its weakening) and `check`
//! run on many hosts at once. A test using it declares `mod common;` too.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::Deserialize;
use serde_json::Value;

use crate::common::{self, repo};

/// Every sandbox check an entry's `observable` may name (docs/sandbox.md), plus `sudo`, the
/// sudoers/doas.conf check the sandbox tier gains for issue 9.
pub const OBSERVERS: &[&str] = &[
    "sshd",
    "ssh-audit",
    "nix-daemon",
    "mounts",
    "firewall",
    "units",
    "auditd",
    "sudo",
];

pub const BASES: &[&str] = &["bastion", "meeka"];

/// One entry, without its modules (those stay in Nix and are imported by id).
#[derive(Debug, Clone, Deserialize)]
pub struct Entry {
    pub id: String,
    pub base: String,
    pub invariant: String,
    pub route: String,
    pub source: String,
    pub observable: Option<String>,
    #[serde(default)]
    pub why: Option<String>,
    /// Whether the entry has a `setup` module.
    pub setup: bool,
    /// Text the invariant's finding must contain, for invariants with several causes.
    #[serde(default)]
    pub finding: Option<String>,
}

fn nix_string(s: &str) -> String {
    serde_json::to_string(s).unwrap().replace("${", "\\${")
}

/// The catalogue, read by Nix itself.
pub fn catalogue() -> Vec<Entry> {
    let file = repo().join("checks/weakenings.nix");
    let expr = format!(
        "map (e: builtins.removeAttrs e [ \"module\" \"setup\" ] // {{ setup = e ? setup && e.setup != null; }}) (import {})",
        nix_string(&file.display().to_string())
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
        .expect("nix runs");
    assert!(
        out.status.success(),
        "checks/weakenings.nix does not evaluate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the catalogue's metadata is JSON of the documented shape")
}

/// `<base>` alone, or with the setup of `with_setup_of`: what an entry starts from.
pub fn base_text(base: &str, with_setup_of: Option<&Entry>) -> String {
    let repo = repo().display().to_string();
    let setup = match with_setup_of {
        Some(e) => format!(
            "++ [ {{ _file = \"checks/weakenings.nix#{id} (setup)\"; imports = [ (e \"{id}\").setup ]; }} ]",
            id = e.id
        ),
        None => String::new(),
    };
    format!(
        "let e = id: builtins.head (builtins.filter (x: x.id == id) (import {cat})); in\n{{ imports = [ {repo}/examples/{base} ] {setup}; }}\n",
        cat = nix_string(&format!("{repo}/checks/weakenings.nix")),
    )
}

/// The entry applied to its base: base, setup, then the weakening (its definitions carry the
/// file name `checks/weakenings.nix#<id>`, so findings name the entry).
pub fn entry_text(e: &Entry) -> String {
    let repo = repo().display().to_string();
    let setup = if e.setup {
        format!("{{ _file = \"checks/weakenings.nix#{id} (setup)\"; imports = [ entry.setup ]; }}", id = e.id)
    } else {
        String::new()
    };
    format!(
        "let entry = builtins.head (builtins.filter (x: x.id == \"{id}\") (import {cat})); in\n{{ imports = [ {repo}/examples/{base} {setup} {{ _file = \"checks/weakenings.nix#{id}\"; imports = [ entry.module ]; }} ]; }}\n",
        id = e.id,
        base = e.base,
        cat = nix_string(&format!("{repo}/checks/weakenings.nix")),
    )
}

pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write module");
    path
}

/// What `check --format json` said about one host.
#[derive(Debug, Clone)]
pub struct Checked {
    pub code: Option<i32>,
    pub report: Value,
    pub stderr: String,
}

impl Checked {
    pub fn violations(&self) -> Vec<&Value> {
        self.report["violations"]
            .as_array()
            .map(|a| a.iter().collect())
            .unwrap_or_default()
    }
    pub fn invariants(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .violations()
            .iter()
            .filter_map(|v| v["invariant"].as_str().map(String::from))
            .collect();
        ids.dedup();
        ids
    }
    /// One line for a failure message: the exit code, the invariants and the first messages.
    pub fn summary(&self) -> String {
        let msgs: Vec<String> = self
            .violations()
            .iter()
            .take(4)
            .map(|v| {
                format!(
                    "[{}] {}",
                    v["invariant"].as_str().unwrap_or("?"),
                    v["message"].as_str().unwrap_or("").chars().take(200).collect::<String>()
                )
            })
            .collect();
        let err: String = self
            .stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .take(4)
            .collect::<Vec<_>>()
            .join(" | ");
        format!(
            "check exited {:?}; {}{}",
            self.code,
            if msgs.is_empty() { "no violation".into() } else { msgs.join("; ") },
            if err.is_empty() { String::new() } else { format!("; stderr: {err}") }
        )
    }
}

pub fn check(file: &Path) -> Checked {
    let out = common::harness()
        .args(["check", "--format", "json", "--module"])
        .arg(file)
        .output()
        .unwrap();
    Checked {
        code: out.status.code(),
        report: serde_json::from_slice(&out.stdout).unwrap_or(Value::Null),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `f` over `items` on two threads (the machine is shared; `check` starts Nix itself), in order.
pub fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let next = Mutex::new(0usize);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let i = {
                    let mut n = next.lock().unwrap();
                    let i = *n;
                    *n += 1;
                    i
                };
                if i >= items.len() {
                    break;
                }
                let r = f(&items[i]);
                results.lock().unwrap()[i] = Some(r);
            });
        }
    });
    results
        .into_inner()
        .unwrap()
        .into_iter()
        .map(|r| r.expect("every item ran"))
        .collect()
}
