//! The checks. Each takes the run context and one permutation and returns its results; none
//! prints anything.

pub mod auditd;
pub mod firewall;
pub mod mounts;
pub mod nix_daemon;
pub mod ssh;
pub mod sshd_config;
pub mod units;

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

/// Test hook: with PARANOID_SANDBOX_TEST_PANIC=<check>, that check panics right after it has
/// created its namespaces, users and daemons, so tests can prove cleanup on panic.
pub fn test_panic_hook(check: CheckId) {
    if std::env::var("PARANOID_SANDBOX_TEST_PANIC").as_deref() == Ok(check.name()) {
        panic!("PARANOID_SANDBOX_TEST_PANIC={} (test hook)", check.name());
    }
}
