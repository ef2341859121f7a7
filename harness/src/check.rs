//! `check`: the invariants on someone's own host. The expected posture is the host's own knob
//! values where an area is on, and the profile's (default `paranoid`) where it is off, so a
//! host that never enabled an area the profile wants is told which knob to set.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::catalogue::Catalogue;
use crate::error::{Error, Result};
use crate::invariants::{self, Posture, Proj, Violation, IDS};
use crate::nix::{self, Backend, EvalOptions, Flake, Item, Outcome};

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
}

impl CheckResult {
    /// 0 when clean, 1 with violations.
    pub fn exit_code(&self) -> u8 {
        if self.violations.is_empty() {
            crate::error::exit::OK
        } else {
            crate::error::exit::FAILED
        }
    }
}

/// Evaluates the target and returns its projection (or Nix's error, exit 5).
pub fn project(flake: &Flake, target: &Target, timeout: Duration) -> Result<Value> {
    match target {
        Target::Module(path) => {
            let abs = path
                .canonicalize()
                .map_err(|e| Error::Usage(format!("--module {}: {e}", path.display())))?;
            let item = Item {
                id: "check".into(),
                modules: vec![abs.clone()],
                ..Default::default()
            };
            let opts = EvalOptions {
                jobs: 1,
                batch_size: 1,
                timeout,
                ..Default::default()
            };
            match nix::evaluate_alone(flake, &item, &opts)? {
                Outcome::Projection(p) => Ok(p),
                Outcome::Failed { message } => Err(Error::NixEval {
                    context: abs.display().to_string(),
                    message,
                }),
            }
        }
        Target::FlakeHost { reference, host } => {
            let expr = format!(
                "let p = builtins.getFlake {}; f = builtins.getFlake {}; in p.lib.project {{ config = f.nixosConfigurations.{}.config; backend = \"nixos\"; }}",
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

/// Checks a projection against the posture the profile implies.
pub fn check_projection(
    cat: &Catalogue,
    target: &str,
    backend: Backend,
    projection: &Value,
    profile: &str,
) -> Result<CheckResult> {
    if !cat.profiles.contains_key(profile) {
        return Err(Error::Usage(format!(
            "unknown profile `{profile}`: use one of {}",
            cat.profiles.keys().cloned().collect::<Vec<_>>().join(", ")
        )));
    }
    let knobs = Proj(projection).knobs();
    let posture = Posture::for_check(cat, &knobs, profile);
    let mut violations = invariants::check_posture(&posture, projection);
    for a in Proj(projection).assertions() {
        violations.push(Violation {
            invariant: "nixos.assertions".into(),
            message: format!(
                "NixOS would refuse this configuration: {}",
                crate::report::head(a, 6)
            ),
            fix: "do what the assertion's message says (its `Fix:`)".into(),
        });
    }
    let checked = IDS
        .iter()
        .filter(|id| !matches!(**id, "knob-off.untouched" | "constraint.rejected"))
        .filter(|id| invariants::applies(id, &posture, false, false))
        .map(|s| s.to_string())
        .collect();
    Ok(CheckResult {
        schema: 1,
        target: target.to_string(),
        backend: backend.name().into(),
        profile: profile.to_string(),
        profile_areas: posture.from_profile.iter().cloned().collect(),
        checked,
        violations,
    })
}

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
    check_projection(cat, &target.describe(), backend, &projection, profile)
}
