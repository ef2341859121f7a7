//! The effective-posture model agrees with the real programs on every configuration of the
//! weakening catalogue and on the reference hosts (issue 9): `sshd -T -C` for every connection of
//! the sshd model (through `check`, which asks sshd as root), and `nix show-config` on the
//! rendered nix.conf and NIX_CONFIG for the Nix daemon model. A disagreement names the entry, the
//! setting and both readings.

mod common;
mod weakening_support;

use serde_json::Value;
use std::path::Path;
use std::process::Command;
use weakening_support::{base_text, catalogue, check, entry_text, par_map, write, BASES};


/// Every configuration: the reference hosts, then each catalogue entry on its base.
fn configurations(dir: &Path) -> Vec<(String, std::path::PathBuf)> {
    let mut out: Vec<(String, std::path::PathBuf)> = BASES
        .iter()
        .map(|b| {
            (
                b.to_string(),
                write(dir, &format!("base-{b}.nix"), &base_text(b, None)),
            )
        })
        .collect();
    for e in catalogue() {
        out.push((
            e.id.clone(),
            write(dir, &format!("{}.nix", e.id), &entry_text(&e)),
        ));
    }
    out
}

#[test]
fn the_sshd_model_agrees_with_sshd_on_every_catalogue_configuration() {
    common::require_root("check asks sshd only as root");
    assert!(
        Path::new("/usr/sbin/sshd").exists(),
        "sshd is not installed: this test needs openssh-server"
    );
    let dir = tempfile::tempdir().unwrap();
    let configs = configurations(dir.path());
    let results = par_map(&configs, |(_, f)| check(f));
    let (mut configurations, mut connections, mut comparisons, mut refusals) = (0, 0, 0, 0);
    let mut problems = vec![];
    for ((id, _), r) in configs.iter().zip(&results) {
        let v = &r.report["judgedBy"]["sshd"];
        if v.is_null() {
            // sshd is off in this configuration: nothing to ask.
            continue;
        }
        if r.invariants().iter().any(|i| i == "ssh.model-agrees") {
            problems.push(format!("{id}: {}", r.summary()));
            continue;
        }
        match v["by"].as_str() {
            Some("model+sshd") => {
                configurations += 1;
                if let Some(refused) = v["refused"].as_str() {
                    // sshd -t refuses the file, and so does the model (ssh.config-valid).
                    assert!(
                        r.invariants().iter().any(|i| i == "ssh.config-valid"),
                        "{id}: sshd refuses ({refused}) but the model accepts"
                    );
                    refusals += 1;
                } else {
                    connections += v["connections"].as_u64().unwrap_or(0);
                    comparisons += v["compared"].as_u64().unwrap_or(0);
                    assert!(
                        v["connections"].as_u64().unwrap_or(0) > 0,
                        "{id}: sshd answered for no connection: {v:#}"
                    );
                }
            }
            // Only a configuration the model itself cannot judge (an Include) goes unasked.
            _ => {
                let why = v["why"].as_str().unwrap_or("");
                if !r.invariants().iter().any(|i| i == "ssh.judged") {
                    problems.push(format!(
                        "{id}: sshd was not asked ({why}) although the model judges the file"
                    ));
                }
            }
        }
    }
    println!(
        "sshd model vs sshd -T -C: {configurations} configurations, {connections} connections, {comparisons} keyword comparisons, {refusals} refused by both, 0 disagreements"
    );
    assert!(
        problems.is_empty(),
        "model and sshd disagree:\n  {}",
        problems.join("\n  ")
    );
    assert!(
        configurations >= 60,
        "only {configurations} configurations were confirmed by sshd"
    );
}

fn eval_json(file: &Path) -> Value {
    let out = common::harness()
        .args(["eval", "--format", "json", "--module"])
        .arg(file)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "eval of {}: {e}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// What the real Nix reads from the rendered nix.conf (NIX_CONF_DIR) and the daemon's NIX_CONFIG,
/// with no user configuration.
fn nix_show_config(dir: &Path, conf: &str, nix_config: Option<&str>) -> Value {
    let etc = dir.join("etc");
    let empty = dir.join("empty");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::create_dir_all(&empty).unwrap();
    std::fs::write(etc.join("nix.conf"), conf).unwrap();
    let mut cmd = Command::new("nix");
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &empty)
        .env("XDG_CONFIG_HOME", &empty)
        .env("XDG_CONFIG_DIRS", &empty)
        .env("NIX_USER_CONF_FILES", "")
        .env("NIX_CONF_DIR", &etc)
        .args([
            "--extra-experimental-features",
            "nix-command",
            "show-config",
            "--json",
        ]);
    if let Some(c) = nix_config {
        cmd.env("NIX_CONFIG", c);
    }
    let out = cmd.output().expect("nix is installed");
    let text = String::from_utf8_lossy(&out.stdout);
    let start = text.find('{').unwrap_or_else(|| {
        panic!(
            "nix show-config printed no settings: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    serde_json::from_str(&text[start..]).unwrap()
}

#[test]
fn the_nix_conf_model_agrees_with_nix_show_config_on_every_catalogue_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let configs = configurations(dir.path());
    let projections = par_map(&configs, |(_, f)| eval_json(f));
    let (mut compared, mut unjudged) = (0, 0);
    let mut problems = vec![];
    for (i, ((id, _), p)) in configs.iter().zip(&projections).enumerate() {
        let Some(conf) = p.pointer("/rendered/nix_conf").and_then(Value::as_str) else {
            continue;
        };
        let model = &p["effective"]["nix"];
        let reasons = model["unjudged"].as_array().cloned().unwrap_or_default();
        if !reasons.is_empty() {
            // An include of a file the configuration does not contain: the model says so.
            unjudged += 1;
            continue;
        }
        let nix = nix_show_config(
            &dir.path().join(format!("n{i}")),
            conf,
            p.pointer("/rendered/nix_config").and_then(Value::as_str),
        );
        for (setting, key) in [
            ("trusted-users", "trustedUsers"),
            ("allowed-users", "allowedUsers"),
            ("substituters", "substituters"),
        ] {
            let real = strings(&nix[setting]["value"]);
            let modelled = strings(&model[key]["value"]);
            if real != modelled {
                problems.push(format!(
                    "{id}: {setting}: the model says {modelled:?}, nix show-config says {real:?}"
                ));
            }
        }
        compared += 1;
    }
    println!("nix.conf model vs nix show-config: {compared} configurations × 3 settings, {unjudged} the model declines to judge (includes), {} disagreements", problems.len());
    assert!(
        problems.is_empty(),
        "model and Nix disagree:\n  {}",
        problems.join("\n  ")
    );
    assert!(
        compared >= 60,
        "only {compared} configurations were compared"
    );
}
