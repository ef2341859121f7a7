//! `eval`: one configuration's projection (issue 2 item 7): a reference host of the flake or a
//! module file, on the offline surface (a module gets stand-in packages: [`crate::stand_ins`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::error::{exit, Error, Result};
use crate::nix::{self, EvalOptions, Flake, Item, Outcome};
use crate::stand_ins;

#[derive(Debug, Clone)]
pub enum EvalTarget {
    Host(String),
    Module(PathBuf),
}

/// Evaluates the target alone (`catch: false`, so a failure carries Nix's message).
pub fn evaluate(flake: &Flake, target: &EvalTarget, timeout: Duration) -> Result<Value> {
    let opts = EvalOptions {
        jobs: 1,
        batch_size: 1,
        timeout,
        ..Default::default()
    };
    let (outcome, context) = match target {
        EvalTarget::Host(h) => {
            let item = Item {
                id: format!("host:{h}"),
                host: Some(h.clone()),
                ..Default::default()
            };
            (nix::evaluate_alone(flake, &item, &opts)?, format!("host {h}"))
        }
        EvalTarget::Module(p) => {
            let abs = p
                .canonicalize()
                .map_err(|e| Error::Usage(format!("--module {}: {e}", p.display())))?;
            let context = abs.display().to_string();
            (evaluate_module(flake, &abs, &[], "module", &opts)?, context)
        }
    };
    match outcome {
        Outcome::Projection(p) => Ok(p),
        Outcome::Failed { message } => {
            if let EvalTarget::Host(h) = target {
                unknown_host(flake, h, timeout)?;
            }
            Err(Error::NixEval { context, message })
        }
    }
}

/// Evaluates `module` (with `extra` modules beside it) on the surface with stand-in packages for
/// the names it uses; when Nix reports a name missing, retries with it added (at most
/// [`stand_ins::MAX_RETRIES`] times). A name that does not help ends the retries: its failure is
/// returned as Nix said it.
pub fn evaluate_module(
    flake: &Flake,
    module: &Path,
    extra: &[PathBuf],
    id: &str,
    opts: &EvalOptions,
) -> Result<Outcome> {
    let dir = tempfile::Builder::new()
        .prefix("paranoid-harness-stand-ins-")
        .tempdir()
        .map_err(|e| Error::Other(format!("temporary directory: {e}")))?;
    let mut names = stand_ins::scan(module);
    let mut upstream = std::collections::BTreeSet::new();
    let mut _modules_path: Option<ModulesPathVar> = None;
    let mut retries = 0;
    loop {
        let names_module = stand_ins::write_names_module(dir.path(), &names)?;
        let item = Item {
            id: id.into(),
            modules: std::iter::once(module.to_path_buf())
                .chain(extra.iter().cloned())
                .chain([names_module])
                .collect(),
            ..Default::default()
        };
        match nix::evaluate_alone(flake, &item, opts)? {
            Outcome::Failed { message } if retries < stand_ins::MAX_RETRIES => {
                if let Some(rel) = stand_ins::missing_upstream_module(&message).filter(|r| !upstream.contains(r)) {
                    upstream.insert(rel);
                    retries += 1;
                    let surface = flake.root.join("checks/surface/modules-path");
                    let root = stand_ins::write_modules_path(dir.path(), &surface, &upstream)?;
                    if _modules_path.is_none() {
                        _modules_path = Some(ModulesPathVar::set(&root));
                    }
                    continue;
                }
                match stand_ins::missing_name(&message) {
                    Some(name) if !names.contains(&name) => {
                        names.insert(name);
                        retries += 1;
                    }
                    _ => return Ok(Outcome::Failed { message }),
                }
            }
            outcome => return Ok(outcome),
        }
    }
}

/// `PARANOID_SURFACE_MODULES_PATH` (read by lib.evalSurface) for the `nix` processes started
/// while it lives: the generated `modulesPath`. The previous value comes back when it is dropped.
struct ModulesPathVar(Option<std::ffi::OsString>);

const MODULES_PATH_VAR: &str = "PARANOID_SURFACE_MODULES_PATH";

impl ModulesPathVar {
    fn set(root: &Path) -> ModulesPathVar {
        let previous = std::env::var_os(MODULES_PATH_VAR);
        std::env::set_var(MODULES_PATH_VAR, root);
        ModulesPathVar(previous)
    }
}

impl Drop for ModulesPathVar {
    fn drop(&mut self) {
        match self.0.take() {
            Some(v) => std::env::set_var(MODULES_PATH_VAR, v),
            None => std::env::remove_var(MODULES_PATH_VAR),
        }
    }
}

/// The reference hosts of the flake (`lib.hosts`).
pub fn reference_hosts(flake: &Flake, timeout: Duration) -> Result<Vec<String>> {
    let v = nix::eval_attr_applied(flake, "lib.hosts", Some("builtins.attrNames"), timeout)?;
    Ok(v.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect())
}

/// A usage error (exit 2) naming the known hosts when `host` is not one of them; asked of the
/// flake only after an evaluation failed, so a good host costs nothing.
pub fn unknown_host(flake: &Flake, host: &str, timeout: Duration) -> Result<()> {
    let known = reference_hosts(flake, timeout)?;
    if known.iter().any(|k| k == host) {
        return Ok(());
    }
    Err(Error::Usage(format!(
        "--host {host}: no such reference host; known: {} (or pass your own configuration with --module FILE)",
        known.join(", ")
    )))
}

/// 6 when NixOS assertions failed, the main entry's or another boot entry's (a real build
/// fails with either; the projection is still printed), else 0.
pub fn exit_code(projection: &Value) -> u8 {
    let failed_in = |p: &Value| {
        p.get("assertions")
            .and_then(Value::as_array)
            .map(|a| !a.is_empty())
            .unwrap_or(false)
    };
    let failed = failed_in(projection)
        || crate::specialisations::entries(projection)
            .into_iter()
            .any(|(_, e)| failed_in(e));
    if failed {
        exit::ASSERTIONS
    } else {
        exit::OK
    }
}
