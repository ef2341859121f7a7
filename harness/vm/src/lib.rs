//! VM tier runner: discovers a flake's NixOS VM tests (`checks.<system>.vm-*`), builds each
//! with its own Nix process on a bounded pool, with per-test timeouts, retries for tests marked
//! flaky, one log per test and a merged JUnit report.
//!
//! What runs (discovery, scheduling, processes) is separate from what reports ([`report`],
//! [`junit`]): the runner returns a finished [`RunReport`], the reporters only read it.
//!
//! The Nix side of the contract (docs/vm.md):
//! - a VM check is any attribute of `checks.<system>` whose name starts with `vm-`;
//! - `passthru.paranoid.flaky = true` on a check (visible as `<check>.paranoid.flaky`) allows
//!   `--retries` to re-run it after a failure or timeout; other checks run once;
//! - the derivation's `requiredSystemFeatures` decide whether this machine can build it;
//! - a `junit.xml` at the top of the check's output (the NixOS test driver's
//!   `--junit-xml=junit.xml`, relative to its `-o $out`) is merged into the combined report.

pub mod discover;
pub mod drv;
pub mod junit;
pub mod nix;
pub mod report;
pub mod run;
pub mod signal;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

pub use discover::{Check, Plan};
/// The JUnit model the merged report is built with (and can be read back with).
pub use quick_junit;
pub use run::{CheckResult, Event, RunReport, Status};

/// Prefix that makes a flake check a VM check.
pub const VM_PREFIX: &str = "vm-";

/// Everything the runner needs to know; the CLI fills it from its arguments.
#[derive(Clone, Debug)]
pub struct Config {
    /// Flake reference or directory (`.` by default).
    pub flake: String,
    /// Nix system whose checks to run; `None` asks Nix for `builtins.currentSystem`.
    pub system: Option<String>,
    /// Substring, or glob with `*` and `?`, matched against check names.
    pub filter: Option<String>,
    /// Builds running at once.
    pub jobs: usize,
    /// Extra attempts for checks marked flaky.
    pub retries: u32,
    /// Wall-time limit of one attempt (the whole `nix-store --realise`, dependencies included).
    pub timeout: Duration,
    /// Where logs go; `None` creates a fresh directory under the system temp dir.
    pub log_dir: Option<PathBuf>,
    /// The KVM device checked for checks that require the `kvm` feature.
    pub kvm_device: PathBuf,
    /// How long a build gets between SIGTERM and SIGKILL.
    pub grace: Duration,
}

impl Config {
    pub fn new(flake: impl Into<String>) -> Self {
        Config {
            flake: flake.into(),
            system: None,
            filter: None,
            jobs: 1,
            retries: 0,
            timeout: Duration::from_secs(3600),
            log_dir: None,
            kvm_device: PathBuf::from("/dev/kvm"),
            grace: Duration::from_secs(10),
        }
    }
}

/// Errors the VM tier reports; `paranoid-harness` maps each to its documented exit code.
#[derive(Debug)]
pub enum VmError {
    /// Bad arguments or a flake that is not what the user said (exit 2).
    Usage(String),
    /// `nix` or `nix-store` is missing (exit 3).
    MissingTool { tool: String, hint: String },
    /// This machine cannot run the tier: no full nixpkgs, no KVM, no `kvm` feature (exit 7).
    Environment(String),
    /// Nix failed to evaluate the checks for another reason (exit 5).
    NixEval { context: String, message: String },
    /// Anything else: I/O on logs and reports (exit 1).
    Other(String),
}

impl fmt::Display for VmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VmError::Usage(m) | VmError::Environment(m) | VmError::Other(m) => write!(f, "{m}"),
            VmError::MissingTool { tool, hint } => write!(f, "`{tool}` is not installed. {hint}"),
            VmError::NixEval { context, message } => {
                write!(f, "Nix could not evaluate {context}:\n{message}")
            }
        }
    }
}

impl std::error::Error for VmError {}

pub type Result<T> = std::result::Result<T, VmError>;

/// Discovers and vets the checks without building anything (`paranoid-harness vm --list`).
pub fn plan_tier(config: &Config) -> Result<Plan> {
    let nix = nix::Nix::locate()?;
    discover::plan(config, &nix)
}

/// Runs the whole tier: discover, plan, run. The caller reports.
pub fn run_tier(config: &Config, on_event: &(dyn Fn(&Event) + Sync)) -> Result<RunReport> {
    if config.jobs == 0 {
        return Err(VmError::Usage("--jobs must be at least 1".into()));
    }
    let nix = nix::Nix::locate()?;
    let plan = discover::plan(config, &nix)?;
    run::run(config, &nix, plan, on_event)
}
