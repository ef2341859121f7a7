//! The checks. Each takes the run context and one permutation and returns its results; none
//! prints anything.

pub mod auditd;
pub mod execwatch;
pub mod firewall;
pub mod mounts;
pub mod nix_daemon;
pub mod ssh;
pub mod sshd_config;
pub mod sshd_model;
pub mod sudo;
pub mod units;

use crate::context::{package_of, Ctx};
use crate::model::{CheckId, CheckResult, SkipKind};
use std::time::Instant;

pub fn elapsed_ms(started: Instant) -> u64 {
    started.elapsed().as_millis() as u64
}

/// Skipped results for `checks` when not running as root, saying what needs root and why.
pub fn needs_root(checks: &[CheckId], why: &str) -> Option<Vec<CheckResult>> {
    if crate::sys::is_root() {
        return None;
    }
    Some(
        checks
            .iter()
            .map(|c| CheckResult::skipped(*c, SkipKind::Environment, format!("needs root: {why}")))
            .collect(),
    )
}

/// A check skipped because `tool` is missing, naming the Debian package that provides it.
pub fn missing_tool(check: CheckId, tool: &str) -> CheckResult {
    CheckResult::skipped(
        check,
        SkipKind::MissingTool,
        format!(
            "{tool} not installed (apt-get install {})",
            package_of(tool)
        ),
    )
}

/// The gate every check passes first: root, when `root_because` says why it needs it, and its
/// tools. `Some(result)` ends the check with that (skipped) result.
pub fn preflight(
    ctx: &Ctx,
    check: CheckId,
    root_because: Option<&str>,
    tools: &[&str],
) -> Option<CheckResult> {
    if let Some(why) = root_because {
        if let Some(mut r) = needs_root(&[check], why) {
            return Some(r.remove(0));
        }
    }
    ctx.tools.missing(tools).map(|t| missing_tool(check, &t))
}

/// Test hook: with PARANOID_SANDBOX_TEST_PANIC=<check>, that check panics right after it has
/// created its namespaces, users and daemons, so tests can prove cleanup on panic.
pub fn test_panic_hook(check: CheckId) {
    if std::env::var("PARANOID_SANDBOX_TEST_PANIC").as_deref() == Ok(check.name()) {
        panic!("PARANOID_SANDBOX_TEST_PANIC={} (test hook)", check.name());
    }
}
