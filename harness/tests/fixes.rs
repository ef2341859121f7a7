//! Fixes that fix (issue 9): `check --format json` gives each violation an `apply`, the
//! definitions that realise its fix. Applied to the host that was flagged (every handed case
//! that issue 9 expects flagged, and every entry of the weakening catalogue) as a module — a
//! forced definition, or a plain one when `force` is false — the host must come out clean.
//! A forced definition is written `lib.mkOverride 10`: a fix says "remove your definition", and
//! where the host forces the option itself (`lib.mkForce`, 50) a second `lib.mkForce` would only
//! clash with it; 10 stands for the host's definition being gone, as `check`'s own retry with the
//! suggested knobs does. A violation whose fix needs a human (free text, a choice only the owner
//! can make) has no `apply`: those are listed in HUMAN below, and their fix must still name the
//! option the host really set.

mod common;
mod weakening_support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;
use weakening_support::{catalogue, check, entry_text, par_map, write, Checked};

/// The handed cases issue 9 expects flagged (c08–c10 are other issues' guards; c11 and c12
/// expect a warning or its absence; c15 and c16 expect clean).
const CASES: &[&str] = &[
    "c01-match-group-homedir-keys",
    "c02-include-unjudgeable",
    "c03-nix-extra-trusted-users",
    "c04-sudo-rs-nopasswd",
    "c05-audit-exclude-execve",
    "c06-uplink-port-22",
    "c07-listenaddress-port",
    "c13-challengeresponse-alias",
    "c14-second-persist-root",
];

/// Violations whose fix a human must write (no `apply`): (case or entry id, invariant, the
/// option the fix names, which the host's own text sets).
const HUMAN: &[(&str, &str, &str)] = &[
    // An Include: what the included file should set is the owner's to say.
    ("c02-include-unjudgeable", "ssh.judged", "services.openssh.extraConfig"),
    ("sshd-include-runtime-file", "ssh.judged", "services.openssh.extraConfig"),
    // A keyword sshd refuses in a Match block: move it out, or into settings; the owner picks.
    ("sshd-match-global-only-keyword", "ssh.config-valid", "services.openssh.extraConfig"),
    // nix.conf's !include: same as sshd's Include.
    ("nix-extraoptions-include", "nix.judged", "nix.extraOptions"),
    // Free text in nix.extraOptions and the daemon's NIX_CONFIG: the line to drop is named.
    ("nix-extraoptions-trusted", "nix.trusted-users", "nix.extraOptions"),
    ("nix-daemon-nix-config-env", "nix.trusted-users", "systemd.services.nix-daemon.environment.NIX_CONFIG"),
    ("nix-daemon-serviceconfig-environment", "nix.trusted-users", "systemd.services.nix-daemon.serviceConfig.Environment"),
    // A free-text nftables rule: restrict it to the VPN interface, or drop it.
    ("firewall-extra-input-rules", "vpn.ssh-not-global", "networking.firewall.extraInputRules"),
    ("firewall-extra-input-rules-own-interface", "vpn.ssh-not-global", "networking.firewall.extraInputRules"),
    ("firewall-extra-input-rules-wildcard", "vpn.ssh-not-global", "networking.firewall.extraInputRules"),
    ("firewall-extra-input-rules-unreadable", "vpn.judged", "networking.firewall.extraInputRules"),
    // sudoers free text: the NOPASSWD rule, the Defaults line, the @includedir.
    ("sudo-extraconfig-nopasswd", "sudo.mode", "security.sudo.extraConfig"),
    ("sudo-defaults-not-authenticate", "sudo.mode", "security.sudo.extraConfig"),
    ("sudo-includedir", "sudo.judged", "security.sudo.extraConfig"),
    // A NOPASSWD rule among the host's extraRules: which rule to change is the owner's call.
    ("sudo-extra-rule-nopasswd", "sudo.mode", "security.sudo.extraRules"),
    // A sudoers rule for someone outside wheel: remove it, or put the account in wheel.
    ("sudo-rule-for-non-wheel-user", "sudo.mode", "security.sudo-rs.extraRules"),
    // An audit rule a model cannot evaluate: narrow it or drop it.
    ("audit-never-unjudgeable-field", "audit.judged", "security.audit.rules"),
    // No VPN any more: which VPN to bring back is the owner's call.
    ("admin-vpn-only-without-vpn", "admin.path", "networking.wireguard.interfaces"),
    // A login shell that ends every session: which shell to give back is the owner's call.
    ("admin-root-shell-nologin", "admin.path", "users.users.root.shell"),
    // Match RDomain: which VRF the block is meant for is the owner's to say.
    ("sshd-match-rdomain-unjudged", "ssh.judged", "services.openssh.extraConfig"),
    // A forced persistence list: which of the host's own entries to keep is the owner's call.
    ("amnesia-persistence-overridden", "amnesia.persistence", "environment.persistence.\"/nix/persist\""),
];

fn cases_dir() -> PathBuf {
    common::repo().join("harness/tests/fixtures/cases")
}

/// A host that was flagged: its name, the module to check, and the text that defines it.
struct Target {
    name: String,
    /// The module as check sees it.
    file: PathBuf,
    /// The host's own text (the case file, or the entry's block in checks/weakenings.nix).
    text: String,
}

/// The block of `id` in checks/weakenings.nix (from its `id =` line to the entry's end).
fn entry_source(catalogue_text: &str, id: &str) -> String {
    let start = catalogue_text
        .find(&format!("id = \"{id}\";"))
        .unwrap_or_else(|| panic!("{id} not in checks/weakenings.nix"));
    let rest = &catalogue_text[start..];
    let end = rest.find("\n  }").unwrap_or(rest.len());
    rest[..end].to_string()
}

fn targets(dir: &Path) -> Vec<Target> {
    let cat_text = std::fs::read_to_string(common::repo().join("checks/weakenings.nix")).unwrap();
    let mut out: Vec<Target> = CASES
        .iter()
        .map(|c| {
            let file = cases_dir().join(format!("{c}.nix"));
            Target {
                name: c.to_string(),
                text: std::fs::read_to_string(&file).unwrap(),
                file,
            }
        })
        .collect();
    for e in catalogue() {
        out.push(Target {
            file: write(dir, &format!("{}.nix", e.id), &entry_text(&e)),
            text: entry_source(&cat_text, &e.id),
            name: e.id,
        });
    }
    out
}

/// `a.b."c.d".e` → ["a", "b", "c.d", "e"].
fn option_path(option: &str) -> Vec<String> {
    let mut parts = vec![];
    let mut cur = String::new();
    let mut quoted = false;
    for ch in option.chars() {
        match ch {
            '"' => quoted = !quoted,
            '.' if !quoted => parts.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    parts.push(cur);
    parts
}

/// A module importing `host` and defining every `apply` of `violations` (each value read from a
/// JSON file beside it, so no value is re-spelled in Nix).
fn fix_module(dir: &Path, name: &str, host: &Path, applies: &[&Value]) -> PathBuf {
    let mut defs = vec![];
    for (i, a) in applies.iter().enumerate() {
        let option = a["option"].as_str().expect("apply.option");
        let json = format!("{name}-apply-{i}.json");
        write(dir, &json, &a["value"].to_string());
        let path: Vec<String> = option_path(option)
            .iter()
            .map(|p| serde_json::to_string(p).unwrap().replace("${", "\\${"))
            .collect();
        let value = format!("(builtins.fromJSON (builtins.readFile ./{json}))");
        let value = if a["force"].as_bool().expect("apply.force") {
            format!("(lib.mkOverride 10 {value})")
        } else {
            value
        };
        defs.push(format!("(lib.setAttrByPath [ {} ] {value})", path.join(" ")));
    }
    write(
        dir,
        &format!("{name}-fixed.nix"),
        &format!(
            "{{ lib, ... }}: {{\n  imports = [ {} ];\n  config = lib.mkMerge [\n    {}\n  ];\n}}\n",
            serde_json::to_string(&host.display().to_string()).unwrap().replace("${", "\\${"),
            defs.join("\n    ")
        ),
    )
}

fn applies(v: &Value) -> Vec<&Value> {
    v["apply"].as_array().map(|a| a.iter().collect()).unwrap_or_default()
}

/// A guard's assertion is not a finding of its own: its fix is the assertion's text, and it
/// goes away with the posture violation it guards.
fn is_guard(v: &Value) -> bool {
    v["invariant"] == "nixos.assertions"
}

fn human(target: &str, invariant: &str) -> Option<&'static str> {
    HUMAN
        .iter()
        .find(|(t, i, _)| *t == target && *i == invariant)
        .map(|(_, _, o)| *o)
}

#[test]
fn every_suggested_fix_leaves_the_host_clean() {
    let dir = tempfile::tempdir().unwrap();
    let targets = targets(dir.path());
    let before: Vec<Checked> = par_map(&targets, |t| check(&t.file));
    let mut problems = vec![];
    let mut used_human = BTreeSet::new();
    let mut unflagged = BTreeSet::new();
    // (target index, the violations whose apply is tried together)
    let mut to_fix: Vec<(usize, Vec<Value>)> = vec![];
    for (i, (t, r)) in targets.iter().zip(&before).enumerate() {
        if r.code != Some(1) {
            problems.push(format!("{}: not flagged, so no fix to try: {}", t.name, r.summary()));
            unflagged.insert(t.name.clone());
            continue;
        }
        let mut fixable = vec![];
        for v in r.violations().into_iter().filter(|v| !is_guard(v)) {
            let inv = v["invariant"].as_str().unwrap_or("");
            let fix = v["fix"].as_str().unwrap_or("");
            if !applies(v).is_empty() {
                fixable.push(v.clone());
            } else if let Some(option) = human(&t.name, inv) {
                used_human.insert((t.name.clone(), inv.to_string()));
                if !fix.contains(option) || !t.text.contains(option) {
                    problems.push(format!(
                        "{} [{inv}]: a human fix must name {option}, which the host sets: fix = {fix:?}",
                        t.name
                    ));
                }
            } else {
                problems.push(format!(
                    "{} [{inv}]: no `apply`, and not listed as a fix a human must write: fix = {fix:?}",
                    t.name
                ));
            }
        }
        if !fixable.is_empty() {
            to_fix.push((i, fixable));
        }
    }
    for (t, i, _) in HUMAN {
        if !used_human.contains(&(t.to_string(), i.to_string())) && !unflagged.contains(*t) {
            problems.push(format!("HUMAN lists {t} [{i}], but check gives no such apply-less violation: drop it"));
        }
    }

    // All the applies of a host together: nothing but the human fixes may remain.
    let after: Vec<Checked> = par_map(&to_fix, |(i, vs)| {
        let t = &targets[*i];
        // The same definition from two violations (one line behind two findings) is written once.
        let mut all: Vec<&Value> = vec![];
        for a in vs.iter().flat_map(applies) {
            if !all.contains(&a) {
                all.push(a);
            }
        }
        check(&fix_module(dir.path(), &t.name, &t.file, &all))
    });
    let mut fixed = 0;
    for ((i, vs), r) in to_fix.iter().zip(&after) {
        let t = &targets[*i];
        let left: Vec<&Value> = r
            .violations()
            .into_iter()
            .filter(|v| human(&t.name, v["invariant"].as_str().unwrap_or("")).is_none())
            .collect();
        let expect_clean = before[*i]
            .violations()
            .iter()
            .filter(|v| !is_guard(v))
            .all(|v| !applies(v).is_empty());
        if !left.is_empty() || !matches!(r.code, Some(0) | Some(1)) || (expect_clean && r.code != Some(0)) {
            let applied: Vec<String> = vs
                .iter()
                .flat_map(applies)
                .map(|a| format!("{} = {}{}", a["option"].as_str().unwrap_or("?"), if a["force"] == true { "lib.mkForce " } else { "" }, a["value"]))
                .collect();
            problems.push(format!(
                "{}: after applying [{}] (fixes of {}): {}",
                t.name,
                applied.join("; "),
                vs.iter().map(|v| v["invariant"].as_str().unwrap_or("?")).collect::<Vec<_>>().join(", "),
                r.summary()
            ));
        } else {
            fixed += 1;
        }
    }
    // Where a host has several findings, each one's fix alone removes that finding: no fix
    // passes only because another finding's fix happens to cover it.
    let singles: Vec<(usize, Value)> = to_fix
        .iter()
        .filter(|(_, vs)| vs.len() > 1)
        .flat_map(|(i, vs)| vs.iter().map(move |v| (*i, v.clone())))
        .collect();
    let indexed: Vec<(usize, &(usize, Value))> = singles.iter().enumerate().collect();
    let single_results = par_map(&indexed, |(k, (i, v))| {
        let t = &targets[*i];
        check(&fix_module(dir.path(), &format!("{}-single-{k}", t.name), &t.file, &applies(v)))
    });
    for ((i, v), r) in singles.iter().zip(&single_results) {
        let t = &targets[*i];
        if r.violations().iter().any(|w| w["invariant"] == v["invariant"] && w["message"] == v["message"]) {
            problems.push(format!(
                "{} [{}]: its own apply {} leaves the same finding: {}",
                t.name,
                v["invariant"].as_str().unwrap_or("?"),
                v["apply"],
                v["message"].as_str().unwrap_or("")
            ));
        }
    }
    println!(
        "fixes applied: {fixed}/{} hosts come out clean (or with only the human fixes left); {} findings fixed one at a time; {} human fixes listed",
        to_fix.len(),
        singles.len(),
        HUMAN.len()
    );
    assert!(problems.is_empty(), "{} problem(s):\n  {}", problems.len(), problems.join("\n  "));
}

#[test]
fn option_paths_keep_quoted_names_whole() {
    assert_eq!(
        option_path("fileSystems.\"/nix/persist\".options"),
        vec!["fileSystems", "/nix/persist", "options"]
    );
    assert_eq!(
        option_path("networking.firewall.interfaces.enp1s0.allowedTCPPorts"),
        vec!["networking", "firewall", "interfaces", "enp1s0", "allowedTCPPorts"]
    );
}
