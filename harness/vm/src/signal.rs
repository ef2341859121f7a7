//! Ctrl-C: the runner stops the builds it started (by PID) and reports what finished.
//!
//! Builds run in process groups of their own, so a terminal's SIGINT reaches only the harness;
//! the handler just raises a flag that the workers poll. A program that embeds the runner and
//! handles the signals itself (paranoid-harness does, for every command) calls
//! [`handled_elsewhere`] and then [`raise`] from its own handler; [`install`] then leaves the
//! process's handlers alone.

use std::sync::atomic::{AtomicBool, Ordering};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static EMBEDDED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Installs the SIGINT and SIGTERM handlers (idempotent), unless the embedding program
/// handles them ([`handled_elsewhere`]).
pub fn install() {
    if EMBEDDED.load(Ordering::SeqCst) {
        return;
    }
    let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: `on_signal` only performs an atomic store, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
}

/// The embedding program handles SIGINT and SIGTERM and calls [`raise`]: [`install`] is a no-op.
pub fn handled_elsewhere() {
    EMBEDDED.store(true, Ordering::SeqCst);
}

/// Marks the run interrupted, as a signal would.
pub fn raise() {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Whether SIGINT or SIGTERM arrived.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Sends `signal` to one process (never a group: the harness ends only what it started).
pub fn send(pid: u32, signal: libc::c_int) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill(2) with a positive PID of a child we spawned and have not reaped.
        unsafe {
            libc::kill(pid, signal);
        }
    }
}
