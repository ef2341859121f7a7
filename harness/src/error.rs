//! Errors a user can act on, each mapped to a documented exit code (docs/harness.md).

use std::fmt;

/// Exit codes, as documented in docs/harness.md.
pub mod exit {
    pub const OK: u8 = 0;
    pub const FAILED: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const MISSING_TOOL: u8 = 3;
    pub const INPUTS_UNRESOLVABLE: u8 = 4;
    pub const NIX_EVAL: u8 = 5;
    pub const ASSERTIONS: u8 = 6;
    pub const ENVIRONMENT: u8 = 7;
    pub const INTERRUPTED: u8 = 130;
}

#[derive(Debug)]
pub enum Error {
    /// Bad arguments or input the user can fix on the command line.
    Usage(String),
    /// A program the harness needs is not installed.
    MissingTool { tool: String, hint: String },
    /// The flake's pinned inputs cannot be fetched or found in the store.
    InputsUnresolvable(String),
    /// Nix failed to evaluate; `context` says what was being evaluated.
    NixEval { context: String, message: String },
    /// The machine cannot run this tier (not root, no namespaces, no KVM...).
    Environment(String),
    /// Ctrl-C: the children were stopped; the message says what was under way.
    Interrupted(String),
    /// Anything else, with context.
    Other(String),
}

impl Error {
    /// The stable name of the error's kind, as the JSON error object carries it.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Usage(_) => "usage",
            Error::MissingTool { .. } => "missing-tool",
            Error::InputsUnresolvable(_) => "inputs-unresolvable",
            Error::NixEval { .. } => "nix-eval",
            Error::Environment(_) => "environment",
            Error::Interrupted(_) => "interrupted",
            Error::Other(_) => "other",
        }
    }

    /// The JSON error object every `--format json` command prints on stdout when it fails
    /// (docs/harness.md, "Errors as JSON"): the same message as on stderr, plus what a script
    /// needs to branch on.
    pub fn to_json(&self, command: &str) -> serde_json::Value {
        let (context, tool) = match self {
            Error::NixEval { context, .. } => (Some(context.as_str()), None),
            Error::MissingTool { tool, .. } => (None, Some(tool.as_str())),
            _ => (None, None),
        };
        serde_json::json!({
            "schema": 1,
            "ok": false,
            "command": command,
            "error": {
                "kind": self.kind(),
                "exit_code": self.exit_code(),
                "message": self.to_string(),
                "context": context,
                "tool": tool,
            }
        })
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) => exit::USAGE,
            Error::MissingTool { .. } => exit::MISSING_TOOL,
            Error::InputsUnresolvable(_) => exit::INPUTS_UNRESOLVABLE,
            Error::NixEval { .. } => exit::NIX_EVAL,
            Error::Environment(_) => exit::ENVIRONMENT,
            Error::Interrupted(_) => exit::INTERRUPTED,
            Error::Other(_) => exit::FAILED,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(m) => write!(f, "{m}"),
            Error::MissingTool { tool, hint } => write!(f, "`{tool}` is not installed. {hint}"),
            Error::InputsUnresolvable(m) => write!(f, "{m}"),
            Error::NixEval { context, message } => {
                write!(f, "Nix could not evaluate {context}:\n{message}")
            }
            Error::Environment(m) => write!(f, "{m}"),
            Error::Interrupted(m) => write!(f, "{m}"),
            Error::Other(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_json_error_object_has_the_documented_shape() {
        let e = Error::NixEval {
            context: "host x".into(),
            message: "error: boom".into(),
        };
        let v = e.to_json("eval");
        assert_eq!(v["schema"], 1);
        assert_eq!(v["ok"], false);
        assert_eq!(v["command"], "eval");
        assert_eq!(v["error"]["kind"], "nix-eval");
        assert_eq!(v["error"]["exit_code"], 5);
        assert_eq!(v["error"]["context"], "host x");
        assert!(v["error"]["tool"].is_null());
        assert_eq!(
            v["error"]["message"],
            "Nix could not evaluate host x:\nerror: boom"
        );
        let v = Error::MissingTool {
            tool: "nix".into(),
            hint: "install it".into(),
        }
        .to_json("knobs");
        assert_eq!(
            (v["error"]["kind"].as_str(), v["error"]["tool"].as_str()),
            (Some("missing-tool"), Some("nix"))
        );
        for (e, kind, code) in [
            (Error::Usage("u".into()), "usage", 2),
            (
                Error::InputsUnresolvable("i".into()),
                "inputs-unresolvable",
                4,
            ),
            (Error::Environment("e".into()), "environment", 7),
            (Error::Interrupted("i".into()), "interrupted", 130),
            (Error::Other("o".into()), "other", 1),
        ] {
            let v = e.to_json("x");
            assert_eq!(v["error"]["kind"], kind);
            assert_eq!(v["error"]["exit_code"], code);
        }
    }
}
