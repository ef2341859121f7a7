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
