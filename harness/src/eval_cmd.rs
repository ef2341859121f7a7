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
        Outcome::Failed { message } => Err(Error::NixEval { context, message }),
    }
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
