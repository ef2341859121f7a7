//! `eval`: one configuration's projection (issue 2 item 7): a reference host of the flake or a
//! module file, on the offline surface.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::error::{exit, Error, Result};
use crate::nix::{self, EvalOptions, Flake, Item, Outcome};

#[derive(Debug, Clone)]
pub enum EvalTarget {
    Host(String),
    Module(PathBuf),
}

/// Evaluates the target alone (`catch: false`, so a failure carries Nix's message).
pub fn evaluate(flake: &Flake, target: &EvalTarget, timeout: Duration) -> Result<Value> {
    let (item, context) = match target {
        EvalTarget::Host(h) => (
            Item {
                id: format!("host:{h}"),
                host: Some(h.clone()),
                ..Default::default()
            },
            format!("host {h}"),
        ),
        EvalTarget::Module(p) => {
            let abs = p
                .canonicalize()
                .map_err(|e| Error::Usage(format!("--module {}: {e}", p.display())))?;
            let context = abs.display().to_string();
            (
                Item {
                    id: "module".into(),
                    modules: vec![abs],
                    ..Default::default()
                },
                context,
            )
        }
    };
    let opts = EvalOptions {
        jobs: 1,
        batch_size: 1,
        timeout,
        ..Default::default()
    };
    match nix::evaluate_alone(flake, &item, &opts)? {
        Outcome::Projection(p) => Ok(p),
        Outcome::Failed { message } => {
            if let EvalTarget::Host(h) = target {
                unknown_host(flake, h, timeout)?;
            }
            Err(Error::NixEval { context, message })
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

/// 6 when NixOS assertions failed (the projection is still printed), else 0.
pub fn exit_code(projection: &Value) -> u8 {
    let failed = projection
        .get("assertions")
        .and_then(Value::as_array)
        .map(|a| !a.is_empty())
        .unwrap_or(false);
    if failed {
        exit::ASSERTIONS
    } else {
        exit::OK
    }
}
