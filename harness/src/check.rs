//! `check`: the invariants on someone's own host. The expected posture is the host's own knob
//! values where an area is on, and the profile's (default `paranoid`) where it is off, so a
//! host that never enabled an area the profile wants is told which knob to set, and, when its
//! own definitions would still win over (or clash with) that knob, which override to remove.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use paranoid_sandbox::checks::sshd_model::{self, Verdict};

use serde::Serialize;
use serde_json::Value;

use crate::catalogue::Catalogue;
use crate::error::{Error, Result};
use crate::invariants::{self, Posture, Proj, Violation, IDS};
use crate::nix::{self, Backend, EvalOptions, Flake, Outcome};

/// What to check.
#[derive(Debug, Clone)]
pub enum Target {
    /// A NixOS module file evaluated on the surface with paranoid's modules imported.
    Module(PathBuf),
    /// `<flake ref>#<host>`: `nixosConfigurations.<host>` of a flake, with full nixpkgs.
    FlakeHost { reference: String, host: String },
}

impl Target {
    pub fn parse_flake_host(s: &str) -> Result<Target> {
        let (reference, host) = s
            .rsplit_once('#')
            .filter(|(r, h)| !r.is_empty() && !h.is_empty())
            .ok_or_else(|| {
                Error::Usage(format!(
                    "--flake {s}: expected REF#host, e.g. --flake .#bastion"
                ))
            })?;
        // Paths become absolute: getFlake needs them so.
        let reference = if reference.starts_with('.') || reference.starts_with('/') {
            let p = PathBuf::from(reference)
                .canonicalize()
                .map_err(|e| Error::Usage(format!("--flake {s}: {e}")))?;
            if !p.join("flake.nix").is_file() {
                return Err(Error::Usage(format!(
                    "--flake {s}: {} has no flake.nix",
                    p.display()
                )));
            }
            p.display().to_string()
        } else {
            reference.to_string()
        };
        Ok(Target::FlakeHost {
            reference,
            host: host.to_string(),
        })
    }

    fn describe(&self) -> String {
        match self {
            Target::Module(p) => p.display().to_string(),
            Target::FlakeHost { reference, host } => format!("{reference}#{host}"),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub schema: u32,
    pub target: String,
    pub backend: String,
    pub profile: String,
    /// Areas the host leaves off that the profile expects on.
    pub profile_areas: Vec<String>,
    pub checked: Vec<String>,
    pub violations: Vec<Violation>,
    /// NixOS warnings of the configuration (paranoid's start with `[paranoid:<id>]`): they do
    /// not fail the check, but `nixos-rebuild` prints them too.
    pub warnings: Vec<String>,
    /// The other boot entries (specialisations, e.g. the break-glass entry), each held to the
    /// same posture: what it relaxes, the violations that are those relaxations, and the ones
    /// that must hold there too.
    pub specialisations: Vec<crate::specialisations::EntryCheck>,
    /// Per daemon, what judged it: paranoid's model alone, or the model confirmed by the real
    /// program (`sshd`: `sshd -T -C` for every connection of the model).
    #[serde(rename = "judgedBy")]
    pub judged_by: BTreeMap<String, Verdict>,
    /// What the offline surface accepted without judging (never changes the exit status).
    pub unjudged: crate::unjudged::Unjudged,
}

impl CheckResult {
    /// Clean: no violation on the main entry, and every other entry relaxes only what was asked.
    pub fn ok(&self) -> bool {
        self.violations.is_empty() && self.specialisations.iter().all(|e| e.ok)
    }

    /// 0 when clean, 1 with violations.
    pub fn exit_code(&self) -> u8 {
        if self.ok() {
            crate::error::exit::OK
        } else {
            crate::error::exit::FAILED
        }
    }
}

/// Evaluates the target and returns its projection (or Nix's error, exit 5).
pub fn project(flake: &Flake, target: &Target, timeout: Duration) -> Result<Value> {
    match target {
        Target::Module(path) => crate::eval_cmd::evaluate(
            flake,
            &crate::eval_cmd::EvalTarget::Module(path.clone()),
            timeout,
        ),
        Target::FlakeHost { reference, host } => {
            let expr = format!(
                "let p = builtins.getFlake {}; f = builtins.getFlake {}; in p.lib.project {{ inherit (f.nixosConfigurations.{}) config options; backend = \"nixos\"; }}",
                nix_str(&flake.root.display().to_string()),
                nix_str(reference),
                nix_str(host)
            );
            let mut args = nix::base_args();
            args.extend(["eval".into(), "--json".into(), "--impure".into()]);
            args.extend(nix::fail_fast_args());
            args.extend(["--expr".into(), expr]);
            let run = nix::run_nix(&args, timeout, None)?;
            if run.fetch_failed() {
                return Err(Error::Environment(format!(
                    "checking {reference}#{host} needs its full nixpkgs, which cannot be fetched here ({}). \
                     Use `check --module FILE` for the offline surface, or run where nixpkgs is reachable.",
                    run.stderr.lines().find(|l| l.starts_with("error:")).unwrap_or("").trim()
                )));
            }
            if !run.success() {
                return Err(Error::NixEval {
                    context: format!("{reference}#{host}"),
                    message: run.failure(),
                });
            }
            serde_json::from_slice(&run.stdout).map_err(|e| Error::NixEval {
                context: format!("{reference}#{host}"),
                message: format!("not JSON: {e}"),
            })
        }
    }
}

fn nix_str(s: &str) -> String {
    serde_json::to_string(s)
        .unwrap_or_default()
        .replace("${", "\\${")
}

/// The posture `check` holds a host to (an unknown profile is a usage error).
fn posture_of(cat: &Catalogue, projection: &Value, profile: &str) -> Result<Posture> {
    if !cat.profiles.contains_key(profile) {
        return Err(Error::Usage(format!(
            "unknown profile `{profile}`: use one of {}",
            cat.profiles.keys().cloned().collect::<Vec<_>>().join(", ")
        )));
    }
    Ok(Posture::for_check(cat, &Proj(projection).knobs(), profile))
}

/// The result: the posture's violations, then one per failed NixOS assertion.
fn finish(
    target: &str,
    backend: Backend,
    projection: &Value,
    posture: &Posture,
    mut violations: Vec<Violation>,
) -> CheckResult {
    for a in Proj(projection).assertions() {
        violations.push(Violation {
            invariant: "nixos.assertions".into(),
            message: format!(
                "NixOS would refuse this configuration: {}",
                crate::report::head(a, 6)
            ),
            fix: "do what the assertion's message says (its `Fix:`)".into(),
            apply: vec![],
        });
    }
    let checked = IDS
        .iter()
        .filter(|id| !matches!(**id, "knob-off.untouched" | "constraint.rejected"))
        .filter(|id| invariants::applies(id, posture, false, false))
        .map(|s| s.to_string())
        .collect();
    CheckResult {
        schema: 1,
        target: target.to_string(),
        backend: backend.name().into(),
        profile: posture.profile.clone().unwrap_or_default(),
        profile_areas: posture.from_profile.iter().cloned().collect(),
        checked,
        violations,
        warnings: Proj(projection).warnings().into_iter().map(String::from).collect(),
        specialisations: crate::specialisations::check_all(posture, projection),
        judged_by: BTreeMap::new(),
        unjudged: crate::unjudged::Unjudged::from_projection(projection),
    }
}

/// Ask sshd (where it is installed and the caller is root) whether the model is right about
/// this host, connection by connection; each disagreement is an `ssh.model-agrees` violation.
pub fn confirm_sshd(projection: &Value, result: &mut CheckResult) {
    let verdict = sshd_model::confirm(projection);
    result.violations.extend(model_violations(&verdict));
    if verdict.by == "model+sshd" {
        result.checked.push("ssh.model-agrees".into());
    }
    result.judged_by.insert("sshd".into(), verdict);
}

/// One violation per (keyword, model value, sshd value), naming every connection it concerns.
pub fn model_violations(v: &Verdict) -> Vec<Violation> {
    let sshd = v.sshd.clone().unwrap_or_else(|| "sshd".into());
    let mut groups: BTreeMap<(String, String, String), Vec<String>> = BTreeMap::new();
    for d in &v.disagreements {
        groups
            .entry((d.keyword.clone(), d.model.clone(), d.sshd.clone()))
            .or_default()
            .push(d.context.clone());
    }
    groups
        .into_iter()
        .map(|((keyword, model, real), contexts)| {
            let message = if keyword == "(sshd starts)" {
                format!(
                    "paranoid's model and {sshd} disagree on whether sshd starts with this sshd_config: the model says {model}; `sshd -t` says {real}"
                )
            } else {
                format!(
                    "paranoid's model and `sshd -T -C` ({sshd}) disagree on {keyword} for {}: the model says {model:?}, sshd says {real:?}; what this report says about {keyword} there cannot be trusted",
                    contexts.join(", ")
                )
            };
            Violation {
                invariant: "ssh.model-agrees".into(),
                message,
                fix: "nothing on this host: it is a bug in paranoid's sshd model (lib/posture/sshd.nix); report it with this message. Until it is fixed, sshd's value is the one that holds".into(),
                apply: vec![],
            }
        })
        .collect()
}

/// Checks a projection against the posture the profile implies (no further evaluation: the
/// fixes of areas the profile expects say which knob to set, not whether that suffices).
pub fn check_projection(
    cat: &Catalogue,
    target: &str,
    backend: Backend,
    projection: &Value,
    profile: &str,
) -> Result<CheckResult> {
    let posture = posture_of(cat, projection, profile)?;
    let violations = invariants::check_posture(&posture, projection);
    Ok(finish(target, backend, projection, &posture, violations))
}

/// Evaluates the target and checks it. For a module, the fixes that say "set paranoid.<switch>"
/// are tried (see [`explain_host_overrides`]).
pub fn run(
    flake: &Flake,
    cat: &Catalogue,
    target: &Target,
    profile: &str,
    timeout: Duration,
) -> Result<CheckResult> {
    let projection = project(flake, target, timeout)?;
    let backend = match target {
        Target::Module(_) => Backend::Surface,
        Target::FlakeHost { .. } => Backend::Nixos,
    };
    let posture = posture_of(cat, &projection, profile)?;
    let mut violations = invariants::check_posture(&posture, &projection);
    if let Target::Module(path) = target {
        explain_host_overrides(
            flake,
            cat,
            path,
            &posture,
            &projection,
            &mut violations,
            timeout,
        )?;
    }
    let mut result = finish(&target.describe(), backend, &projection, &posture, violations);
    confirm_sshd(&projection, &mut result);
    Ok(result)
}

/// What the evaluation with the suggested knobs showed.
#[derive(Debug, Clone)]
pub enum Retry {
    /// It evaluated; its violations, judged as if the host had set the knobs itself.
    Violations(Vec<Violation>),
    /// Nix refused it, with this message.
    Failed(String),
}

/// Where the profile expects areas the host left off, their violations' fix is "set
/// paranoid.<switch>". That is not the whole fix when the host defines the option itself:
/// paranoid's value then loses to the host's (or Nix refuses the two). So the host is evaluated
/// once more, in one `nix` process, with the suggested knobs set above `lib.mkForce` (as if the
/// host had written them itself); each such violation that stays, or whose option Nix
/// refuses, gets the override to remove added to its fix. A value that came from paranoid's or
/// NixOS's defaults goes away with the knob and keeps the plain fix.
pub fn explain_host_overrides(
    flake: &Flake,
    cat: &Catalogue,
    host: &Path,
    posture: &Posture,
    projection: &Value,
    violations: &mut [Violation],
    timeout: Duration,
) -> Result<()> {
    let as_set = posture.without_profile();
    // Same knobs, same areas on, same projection: the same violations in the same order.
    let specific = invariants::check_posture(&as_set, projection);
    if specific.len() != violations.len()
        || violations
            .iter()
            .zip(&specific)
            .all(|(v, s)| v.fix == s.fix)
    {
        return Ok(());
    }
    let knobs = posture.suggested_knobs(cat);
    if knobs.is_empty() {
        return Ok(());
    }
    let host = host
        .canonicalize()
        .map_err(|e| Error::Usage(format!("--module {}: {e}", host.display())))?;
    let dir = tempfile::Builder::new()
        .prefix("paranoid-harness-check-")
        .tempdir()
        .map_err(|e| Error::Other(format!("temporary directory: {e}")))?;
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text)
            .map(|_| path.clone())
            .map_err(|e| Error::Other(format!("{}: {e}", path.display())))
    };
    write(
        "knobs.json",
        &serde_json::to_string(&knobs).unwrap_or_default(),
    )?;
    let module = write("suggested-knobs.nix", SUGGESTED_KNOBS_MODULE)?;
    let opts = EvalOptions {
        jobs: 1,
        batch_size: 1,
        timeout,
        ..Default::default()
    };
    // With the same stand-in packages as the host's own evaluation.
    let evaluated =
        crate::eval_cmd::evaluate_module(flake, &host, &[module], "check:with-suggested-knobs", &opts)?;
    let retry = match evaluated {
        Outcome::Projection(after) => Retry::Violations(invariants::check_posture(&as_set, &after)),
        Outcome::Failed { message } => Retry::Failed(message),
    };
    amend_profile_fixes(violations, &specific, &retry);
    Ok(())
}

/// Sets `paranoid.<knob>` from `knobs.json` beside it, at priority 10: above `lib.mkForce` (50),
/// so a host's own `paranoid.*` definitions do not clash with what the fix asks it to write.
const SUGGESTED_KNOBS_MODULE: &str = r#"{ lib, ... }:
let knobs = builtins.fromJSON (builtins.readFile ./knobs.json); in
{
  paranoid = lib.foldl' lib.recursiveUpdate { } (lib.mapAttrsToList
    (name: value: lib.setAttrByPath (lib.splitString "." name) (lib.mkOverride 10 value))
    knobs);
}
"#;

/// Adds to each profile fix (where `violations[i].fix` differs from `specific[i].fix`, the same
/// violation's override fix) what the retry showed: the violation stayed (the host's definition
/// wins), or Nix refused an option the override fix names (the host's definition conflicts), or
/// Nix refused the host for a reason no violation names.
pub fn amend_profile_fixes(violations: &mut [Violation], specific: &[Violation], retry: &Retry) {
    let profile_fixed: Vec<usize> = (0..violations.len().min(specific.len()))
        .filter(|&i| violations[i].fix != specific[i].fix)
        .collect();
    match retry {
        Retry::Violations(after) => {
            // The same invariant with the same override fix names the same option (or mount,
            // or list) still failing; each violation found after pairs with one before.
            let mut left: Vec<Option<&Violation>> = after.iter().map(Some).collect();
            for i in profile_fixed {
                let s = &specific[i];
                let found = left
                    .iter_mut()
                    .find(|a| a.is_some_and(|a| a.invariant == s.invariant && a.fix == s.fix));
                if let Some(slot) = found {
                    *slot = None;
                    violations[i].fix =
                        invariants::fix_with_host_override(&violations[i].fix, &s.fix);
                }
            }
        }
        Retry::Failed(message) => {
            let conflicts = conflicting_options(message);
            let mut named = false;
            for &i in &profile_fixed {
                let hit = conflicts
                    .iter()
                    .find(|c| mentions(&specific[i].fix, &c.option));
                if let Some(c) = hit {
                    named = true;
                    let defined = if c.host_definitions.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", c.host_definitions.join("; "))
                    };
                    violations[i].fix =
                        invariants::fix_with_conflict(&violations[i].fix, &c.option, &defined);
                }
            }
            if !named {
                let first = message
                    .lines()
                    .find_map(|l| l.split_once("error: ").map(|(_, e)| e.trim()))
                    .or_else(|| message.lines().next())
                    .unwrap_or("")
                    .to_string();
                for i in profile_fixed {
                    violations[i].fix = invariants::fix_with_failure(&violations[i].fix, &first);
                }
            }
        }
    }
}

/// One option Nix refused for conflicting definitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub option: String,
    /// `value in file` for each definition outside the Nix store (the host's files; paranoid's
    /// modules are read from the store).
    pub host_definitions: Vec<String>,
}

/// The options of "The option `X' has conflicting definition values:" in Nix's message, with
/// the definitions listed under each ("- In `file': value").
pub fn conflicting_options(message: &str) -> Vec<Conflict> {
    let mut out: Vec<Conflict> = vec![];
    for line in message.lines().map(str::trim) {
        if let Some(rest) = line
            .split_once("The option `")
            .map(|(_, r)| r)
            .filter(|r| r.contains("' has conflicting definition values"))
        {
            if let Some((option, _)) = rest.split_once('\'') {
                out.push(Conflict {
                    option: option.to_string(),
                    host_definitions: vec![],
                });
            }
        } else if let (Some(c), Some(def)) = (out.last_mut(), line.strip_prefix("- In `")) {
            if let Some((file, value)) = def.split_once("': ") {
                if !file.starts_with("/nix/store/") {
                    c.host_definitions
                        .push(format!("{} in {file}", value.trim()));
                }
            }
        }
    }
    out
}

/// Whether `text` names `option` as a whole (not as the start of a longer option name).
fn mentions(text: &str, option: &str) -> bool {
    let name_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '"');
    text.match_indices(option).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + option.len()..].chars().next();
        !before.is_some_and(name_char) && !after.is_some_and(name_char)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(invariant: &str, fix: &str) -> Violation {
        Violation {
            invariant: invariant.into(),
            message: format!("{invariant} found"),
            fix: fix.into(),
            apply: vec![],
        }
    }

    const SET: &str = "set paranoid.ssh.enable = true";

    fn before() -> (Vec<Violation>, Vec<Violation>) {
        let violations = vec![
            v("ssh.password-auth", SET),
            v("ssh.tcp-forwarding", SET),
            v(
                "ssh.x11-forwarding",
                "remove X11Forwarding from that Match block",
            ),
        ];
        let specific = vec![
            v(
                "ssh.password-auth",
                "remove the definition of services.openssh.settings.PasswordAuthentication that overrides paranoid.ssh",
            ),
            v(
                "ssh.tcp-forwarding",
                "remove the definition of services.openssh.settings.AllowTcpForwarding that overrides paranoid.ssh",
            ),
            v("ssh.x11-forwarding", "remove X11Forwarding from that Match block"),
        ];
        (violations, specific)
    }

    #[test]
    fn a_violation_that_stays_with_the_knob_on_gets_its_override_named() {
        let (mut got, specific) = before();
        // Only tcp-forwarding stays: password-auth came from NixOS's default.
        amend_profile_fixes(
            &mut got,
            &specific,
            &Retry::Violations(vec![specific[1].clone(), specific[2].clone()]),
        );
        assert_eq!(
            got[0].fix, SET,
            "a default paranoid overrides keeps the plain fix"
        );
        assert!(
            got[1].fix.starts_with(SET)
                && got[1].fix.contains("this host defines the option itself")
                && got[1].fix.contains(
                    "remove the definition of services.openssh.settings.AllowTcpForwarding"
                ),
            "{}",
            got[1].fix
        );
        assert_eq!(
            got[2].fix, "remove X11Forwarding from that Match block",
            "a fix that already names the override is left alone"
        );
    }

    #[test]
    fn a_violation_that_stays_under_another_option_is_not_blamed_on_the_host() {
        let (mut got, specific) = before();
        let other = v(
            "ssh.tcp-forwarding",
            "remove the definition of services.openssh.settings.Other that overrides paranoid.ssh",
        );
        amend_profile_fixes(&mut got, &specific, &Retry::Violations(vec![other]));
        assert_eq!(got[1].fix, SET);
    }

    const CONFLICT: &str = "nix exited with status 1:
error: The option `services.openssh.settings.PasswordAuthentication' has conflicting definition values:
       - In `/tmp/x/host.nix': true
       - In `/nix/store/abc-source/modules/ssh.nix': false
       Use `lib.mkForce value` or `lib.mkDefault value` to change the priority on any of these definitions.";

    #[test]
    fn nix_conflicts_are_read_with_the_hosts_definitions() {
        assert_eq!(
            conflicting_options(CONFLICT),
            vec![Conflict {
                option: "services.openssh.settings.PasswordAuthentication".into(),
                host_definitions: vec!["true in /tmp/x/host.nix".into()],
            }]
        );
        assert!(conflicting_options("error: attribute 'x' missing").is_empty());
    }

    #[test]
    fn a_conflicting_option_is_named_in_the_fix_of_its_violation_only() {
        let (mut got, specific) = before();
        amend_profile_fixes(&mut got, &specific, &Retry::Failed(CONFLICT.into()));
        assert!(
            got[0].fix.starts_with(SET)
                && got[0].fix.contains(
                    "remove this host's own definition of services.openssh.settings.PasswordAuthentication (true in /tmp/x/host.nix)"
                ),
            "{}",
            got[0].fix
        );
        assert_eq!(got[1].fix, SET);
        assert_eq!(got[2].fix, specific[2].fix);
    }

    #[test]
    fn a_failure_no_violation_names_is_told_on_every_profile_fix() {
        let (mut got, specific) = before();
        amend_profile_fixes(
            &mut got,
            &specific,
            &Retry::Failed("nix exited with status 1:\nerror: The option `users.users.x.uid' has conflicting definition values:\n - In `/h.nix': 1".into()),
        );
        for g in &got[..2] {
            assert!(
                g.fix.starts_with(SET)
                    && g.fix.contains("does not evaluate (The option `users.users.x.uid' has conflicting definition values:)"),
                "{}",
                g.fix
            );
        }
        assert_eq!(got[2].fix, specific[2].fix);
    }

    #[test]
    fn options_are_matched_whole() {
        assert!(mentions(
            "remove services.openssh.ports = [ 22 ]",
            "services.openssh.ports"
        ));
        assert!(!mentions(
            "remove services.openssh.portsX",
            "services.openssh.ports"
        ));
        assert!(!mentions(
            "remove x.services.openssh.ports",
            "services.openssh.ports"
        ));
        assert!(mentions(
            "drop the override of fileSystems.\"/home\".options (lib.mkForce",
            "fileSystems.\"/home\".options"
        ));
    }
}
