//! Shared by the integration tests: the repository root (found from CARGO_MANIFEST_DIR), the
//! binary, scratch modules and fake `nix` wrappers.
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

/// The paranoid checkout these tests evaluate.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("harness/ has a parent")
        .to_path_buf()
}

/// `paranoid-harness` with the flake pinned to this checkout (via PARANOID_FLAKE, so
/// subcommands that take `--flake` for something else still find it).
pub fn harness() -> Command {
    let mut c = Command::cargo_bin("paranoid-harness").expect("binary built");
    c.env("PARANOID_FLAKE", repo());
    c
}

/// A NixOS module in a temporary directory; `{repo}` is replaced by the checkout's path.
pub fn module(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text.replace("{repo}", &repo().display().to_string()))
        .expect("write module");
    path
}

/// A fake `nix` first in PATH: a bash script whose body runs before the real nix is exec'd
/// (`$REQ` is the request file of a batch call, empty otherwise).
pub fn nix_wrapper(dir: &tempfile::TempDir, body: &str) -> String {
    let real = which_nix();
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).expect("bin dir");
    let script = format!(
        "#!/usr/bin/env bash\nREQ=$(printf '%s\\n' \"$@\" | grep -o '/[^\"]*request.json' | head -n1)\n{body}\nexec {} \"$@\"\n",
        real.display()
    );
    let path = bin.join("nix");
    std::fs::write(&path, script).expect("write wrapper");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

pub fn which_nix() -> PathBuf {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join("nix"))
        .find(|p| p.is_file())
        .expect("these tests need nix on PATH (apt-get install nix-bin)")
}

pub fn json(out: &[u8]) -> Value {
    serde_json::from_slice(out)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(out)))
}

pub fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `paranoid-harness check --format json --profile PROFILE --module FILE`: exit code, report, stderr.
pub fn check_module(file: &Path, profile: &str) -> (Option<i32>, Value, String) {
    let out = harness()
        .args([
            "check",
            "--format",
            "json",
            "--profile",
            profile,
            "--module",
        ])
        .arg(file)
        .output()
        .unwrap();
    (out.status.code(), json(&out.stdout), stderr(&out))
}

/// Fails the test unless it runs as root; `why` says what needs root.
pub fn require_root(why: &str) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|r| r.split_whitespace().nth(1))
        .unwrap_or("1")
        .to_string();
    assert_eq!(uid, "0", "{why}: these tests need root");
}
