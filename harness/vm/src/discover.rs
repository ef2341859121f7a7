//! Discovery and planning: which VM checks the flake has, what each needs, and whether this
//! machine can build it. Listing the checks evaluates only attribute names (no nixpkgs);
//! reading their derivations evaluates them, which is where a missing nixpkgs shows up.

use std::path::PathBuf;

use serde::Deserialize;

use crate::nix::{nix_string, BuilderConfig, Failure, Nix};
use crate::{drv, Config, Result, VmError, VM_PREFIX};

/// One VM check, evaluated.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: String,
    pub drv_path: PathBuf,
    /// `passthru.paranoid.flaky = true`: `--retries` may re-run it.
    pub flaky: bool,
    /// The derivation's `requiredSystemFeatures`.
    pub features: Vec<String>,
    /// Why this machine cannot build it, if it cannot.
    pub refusal: Option<String>,
}

/// What the runner will do.
#[derive(Debug, Clone)]
pub struct Plan {
    pub flake: String,
    pub system: String,
    pub checks: Vec<Check>,
    pub builder: BuilderConfig,
}

#[derive(Deserialize)]
struct Meta {
    #[serde(rename = "drvPath")]
    drv_path: String,
    flaky: bool,
}

/// Discovers, evaluates and vets the VM checks `config` selects.
pub fn plan(config: &Config, nix: &Nix) -> Result<Plan> {
    let system = match &config.system {
        Some(s) => s.clone(),
        None => nix.current_system()?,
    };
    let installable = format!("{}#checks.{}", config.flake, system);

    let names = vm_check_names(config, nix, &installable, &system)?;

    // One evaluation for all of them: this is the step that needs the flake's inputs.
    let list = serde_json::to_string(&names).expect("names serialize");
    let apply = format!(
        "checks: builtins.listToAttrs (map (n: {{ name = n; value = {{ drvPath = checks.${{n}}.drvPath; \
         flaky = ((checks.${{n}}.paranoid or {{ }}).flaky or false) == true; }}; }}) (builtins.fromJSON {}))",
        nix_string(&list)
    );
    let meta = nix
        .eval_json(&installable, Some(&apply), false)
        .map_err(|f| {
            classify(
                &f,
                &format!("the VM checks of {installable}"),
                &config.flake,
            )
        })?;

    let builder = nix.builder_config()?;
    let mut checks = Vec::with_capacity(names.len());
    for name in names {
        let m: Meta = serde_json::from_value(meta.get(&name).cloned().unwrap_or_default())
            .map_err(|e| VmError::NixEval {
                context: format!("{installable}.{name}"),
                message: format!("unexpected answer from the evaluation: {e}"),
            })?;
        let drv_path = PathBuf::from(m.drv_path);
        let features = drv::features_of(&drv_path)?;
        let refusal = refusal(&features, &builder, &config.kvm_device);
        checks.push(Check {
            name,
            drv_path,
            flaky: m.flaky,
            features,
            refusal,
        });
    }
    Ok(Plan {
        flake: config.flake.clone(),
        system,
        checks,
        builder,
    })
}

/// Names of `checks.<system>` that start with `vm-` and match the filter. Evaluates names only.
fn vm_check_names(
    config: &Config,
    nix: &Nix,
    installable: &str,
    system: &str,
) -> Result<Vec<String>> {
    let all = nix
        .eval_json(installable, Some("builtins.attrNames"), false)
        .map_err(|f| {
            classify(
                &f,
                &format!("the check names of {installable}"),
                &config.flake,
            )
        })?;
    let all: Vec<String> = serde_json::from_value(all).map_err(|e| VmError::NixEval {
        context: installable.to_string(),
        message: format!("checks.{system} is not an attribute set of checks: {e}"),
    })?;
    let vm: Vec<String> = all
        .into_iter()
        .filter(|n| n.starts_with(VM_PREFIX))
        .collect();
    if vm.is_empty() {
        return Err(VmError::Usage(format!(
            "{} has no VM checks: no attribute of checks.{system} starts with \"{VM_PREFIX}\"",
            config.flake
        )));
    }
    let selected: Vec<String> = match &config.filter {
        Some(pattern) => vm.iter().filter(|n| matches(pattern, n)).cloned().collect(),
        None => vm.clone(),
    };
    if selected.is_empty() {
        return Err(VmError::Usage(format!(
            "no VM check matches --filter {:?}; the flake has: {}",
            config.filter.as_deref().unwrap_or_default(),
            vm.join(", ")
        )));
    }
    Ok(selected)
}

/// Turns a failed evaluation into the error (and exit code) it means.
pub fn classify(f: &Failure, context: &str, flake: &str) -> VmError {
    if let Some(line) = f.fetch_failure() {
        return VmError::Environment(format!(
            "no full nixpkgs: evaluating {context} needs the flake's pinned inputs, which are not in the \
             Nix store and could not be downloaded:\n  {line}\n\
             The VM tier runs only where the pinned nixpkgs is available (in the store, or online) and \
             KVM works; see docs/vm.md."
        ));
    }
    let lower = f.stderr.to_lowercase();
    if lower.contains("does not provide attribute") || lower.contains("attribute 'checks' missing")
    {
        return VmError::Usage(format!(
            "{flake} has no checks for this system:\n{}",
            f.message()
        ));
    }
    if [
        "does not contain a 'flake.nix'",
        "is not a flake",
        "no such file or directory",
        "cannot find flake",
        "does not exist",
    ]
    .iter()
    .any(|p| lower.contains(p))
    {
        return VmError::Usage(format!("cannot read the flake {flake}:\n{}", f.message()));
    }
    VmError::NixEval {
        context: context.to_string(),
        message: f.message(),
    }
}

/// Why this machine cannot build a derivation needing `features`, or `None` if it can.
pub fn refusal(
    features: &[String],
    builder: &BuilderConfig,
    kvm_device: &std::path::Path,
) -> Option<String> {
    if builder.remote_builders {
        // A remote builder may have what this machine lacks; Nix decides.
        return None;
    }
    let missing: Vec<&str> = features
        .iter()
        .map(String::as_str)
        .filter(|f| !builder.system_features.iter().any(|s| s == f))
        .collect();
    if !missing.is_empty() {
        return Some(format!(
            "needs the system feature(s) {} that this Nix does not offer (system-features = {}); \
             NixOS VM tests need KVM and a Nix with the `kvm` and `nixos-test` features",
            missing.join(", "),
            builder.system_features.join(" ")
        ));
    }
    if features.iter().any(|f| f == "kvm") {
        if let Err(e) = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(kvm_device)
        {
            return Some(format!(
                "needs KVM, but {} cannot be opened: {e}",
                kvm_device.display()
            ));
        }
    }
    None
}

/// `*` and `?` make `pattern` a glob over the whole name; otherwise it matches a substring.
pub fn matches(pattern: &str, name: &str) -> bool {
    if !pattern.contains(['*', '?']) {
        return name.contains(pattern);
    }
    fn glob(p: &[char], n: &[char]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some('*'), _) => glob(&p[1..], n) || (!n.is_empty() && glob(p, &n[1..])),
            (Some('?'), Some(_)) => glob(&p[1..], &n[1..]),
            (Some(a), Some(b)) if a == b => glob(&p[1..], &n[1..]),
            _ => false,
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    glob(&p, &n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_substrings_or_globs() {
        assert!(matches("ssh", "vm-ssh"));
        assert!(!matches("ssh", "vm-sudo"));
        assert!(matches("vm-s*", "vm-sudo"));
        assert!(!matches("vm-s*", "vm-nix"));
        assert!(matches("vm-?ix", "vm-nix"));
        assert!(!matches("vm-*x", "vm-nixy"));
    }

    #[test]
    fn missing_features_are_refused_unless_remote_builders_exist() {
        let local = BuilderConfig {
            system_features: vec!["benchmark".into()],
            remote_builders: false,
        };
        let why = refusal(
            &["kvm".into(), "nixos-test".into()],
            &local,
            std::path::Path::new("/dev/kvm"),
        )
        .unwrap();
        assert!(why.contains("kvm, nixos-test"), "{why}");
        let remote = BuilderConfig {
            remote_builders: true,
            ..local
        };
        assert!(refusal(&["kvm".into()], &remote, std::path::Path::new("/dev/kvm")).is_none());
    }

    #[test]
    fn kvm_needs_an_openable_device() {
        let local = BuilderConfig {
            system_features: vec!["kvm".into()],
            remote_builders: false,
        };
        let why = refusal(
            &["kvm".into()],
            &local,
            std::path::Path::new("/nonexistent/kvm"),
        )
        .unwrap();
        assert!(why.contains("/nonexistent/kvm"), "{why}");
        assert!(refusal(&[], &local, std::path::Path::new("/nonexistent/kvm")).is_none());
    }

    #[test]
    fn a_fetch_failure_is_an_environment_error() {
        let f = Failure {
            command: "nix eval".into(),
            status: Some(1),
            stderr: "error: unable to download 'https://api.github.com/repos/NixOS/nixpkgs/tarball/b18a': Couldn't resolve host name (6)".into(),
        };
        match classify(&f, "the VM checks", ".") {
            VmError::Environment(m) => assert!(
                m.starts_with("no full nixpkgs") && m.contains("NixOS/nixpkgs"),
                "{m}"
            ),
            other => panic!("expected an environment error, got {other:?}"),
        }
    }
}
