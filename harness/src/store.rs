//! Which Nix store the harness's `nix` calls use, so that everything that only evaluates runs
//! without root (docs/harness.md, "Running unprivileged").
//!
//! Evaluating a flake copies its source into a store, so Nix needs a store it may write. As
//! root that is /nix/store; a user who is not root writes through a nix-daemon, or owns a
//! single-user /nix. Where neither holds (Debian's nix-bin without its daemon, /nix owned by
//! root) Nix 2.8 fails with "could not set permissions on '/nix/var/nix/profiles/per-user'".
//! The harness then evaluates in a private store of the user's own (Nix's chroot store,
//! `--store DIR`), and copies the flake's locked inputs into it from /nix/store, which anyone may
//! read: the store paths are the same (they are named by their NAR hash), so nothing is
//! fetched. Building (the sandbox and VM tiers) still needs root.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use serde_json::Value;

use crate::error::{Error, Result};

/// The system daemon's socket; when it exists Nix's `auto` store talks to the daemon.
pub const DAEMON_SOCKET: &str = "/nix/var/nix/daemon-socket/socket";
/// Nix's state directory; writable means a single-user install this user owns.
pub const STATE_DIR: &str = "/nix/var/nix";
/// Names a private store directory, for root too.
pub const STORE_ENV: &str = "PARANOID_NIX_STORE";

/// Where `nix` keeps what it evaluates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Store {
    /// Nix's own choice: /nix/store as root, through the daemon, a single-user install, or what
    /// the user configured (`NIX_REMOTE`, `store` in `NIX_CONFIG`).
    System,
    /// A private store of this user's (`--store DIR`), seeded from /nix/store.
    Private(PathBuf),
}

/// Decided once per process.
pub fn store() -> &'static Store {
    static STORE: OnceLock<Store> = OnceLock::new();
    STORE.get_or_init(|| {
        decide(
            paranoid_sandbox::sys::is_root(),
            |k| std::env::var_os(k).filter(|v| !v.is_empty()),
            Path::new(DAEMON_SOCKET).exists(),
            writable(Path::new(STATE_DIR)),
        )
    })
}

/// The rule, apart from the machine: an explicit `PARANOID_NIX_STORE` wins; root, a user's own
/// store choice, a daemon or a writable state directory keep the system store; otherwise a
/// private store under the user's cache directory.
pub fn decide(
    root: bool,
    env: impl Fn(&str) -> Option<std::ffi::OsString>,
    daemon: bool,
    state_writable: bool,
) -> Store {
    if let Some(dir) = env(STORE_ENV) {
        return Store::Private(PathBuf::from(dir));
    }
    let configured = env("NIX_REMOTE").is_some()
        || env("NIX_CONFIG").is_some_and(|c| {
            c.to_string_lossy()
                .lines()
                .any(|l| l.trim_start().starts_with("store"))
        });
    if root || configured || daemon || state_writable {
        return Store::System;
    }
    let cache = env("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| std::env::temp_dir().join(format!("paranoid-harness-{}", uid())));
    Store::Private(cache.join("paranoid-harness").join("nix-store"))
}

fn uid() -> u32 {
    // SAFETY: getuid(2) cannot fail and touches no memory.
    unsafe { libc::getuid() }
}

fn writable(p: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt as _;
    let Ok(c) = std::ffi::CString::new(p.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: access(2) reads the NUL-terminated path only.
    unsafe { libc::access(c.as_ptr(), libc::W_OK) == 0 }
}

/// The arguments that select `store` on a `nix` call.
pub fn args(store: &Store) -> Vec<String> {
    match store {
        Store::System => vec![],
        Store::Private(dir) => vec!["--store".into(), dir.display().to_string()],
    }
}

/// Makes the private store ready for `flake`: created, with the flake's locked inputs copied
/// from /nix/store where they are there (once per flake per process). Nothing for the system
/// store.
pub fn prepare(flake: &Path) -> Result<()> {
    let Store::Private(dir) = store() else {
        return Ok(());
    };
    static DONE: OnceLock<Mutex<Vec<PathBuf>>> = OnceLock::new();
    let done = DONE.get_or_init(|| Mutex::new(vec![]));
    let mut done = done.lock().unwrap_or_else(|e| e.into_inner());
    if done.iter().any(|d| d == flake) {
        return Ok(());
    }
    // Nix copies a checkout that is not a git repository whole: a store inside it would be
    // copied into itself, again and again.
    let inside = std::path::absolute(dir).is_ok_and(|d| d.starts_with(flake));
    if inside {
        return Err(Error::Environment(format!(
            "the private Nix store {} lies inside the paranoid checkout {}, which Nix copies into that store: \
             set {STORE_ENV} to a directory outside the checkout",
            dir.display(),
            flake.display()
        )));
    }
    refuse_unsafe_checkout(flake)?;
    let fresh = !dir.exists();
    std::fs::create_dir_all(dir).map_err(|e| {
        Error::Environment(format!(
            "Nix needs a store it can write to evaluate, and this user has none: {} cannot be created ({e}). {}",
            dir.display(),
            WHAT_IS_NEEDED
        ))
    })?;
    let seeded = seed_inputs(dir, flake);
    if fresh || !seeded.is_empty() {
        let why = if std::env::var_os(STORE_ENV).is_some_and(|v| !v.is_empty()) {
            format!("{STORE_ENV} is set")
        } else {
            "not root and no nix-daemon".to_string()
        };
        eprintln!(
            "paranoid-harness: {why}, so Nix evaluates in a private store at {}{} \
             (run as root or with a nix-daemon to use /nix/store; {STORE_ENV}=DIR moves it)",
            dir.display(),
            if seeded.is_empty() {
                String::new()
            } else {
                format!(
                    ", with the pinned inputs {} copied from /nix/store",
                    seeded.join(", ")
                )
            }
        );
    }
    done.push(flake.to_path_buf());
    Ok(())
}

/// Nix reads a git checkout with git, which refuses one another user owns ("dubious
/// ownership", git-config(1) safe.directory) and leaves Nix to fail with a usage dump. Say so,
/// with the fix, before Nix runs. Trusting the checkout stays the user's decision.
fn refuse_unsafe_checkout(flake: &Path) -> Result<()> {
    if !flake.join(".git").exists() {
        return Ok(());
    }
    let Ok(out) = std::process::Command::new("git")
        .arg("-C")
        .arg(flake)
        .args(["rev-parse", "--git-dir"])
        .output()
    else {
        return Ok(());
    };
    let err = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() && err.contains("dubious ownership") {
        return Err(Error::Environment(format!(
            "git refuses the paranoid checkout {} for this user (another user owns it: \"dubious ownership\"), so Nix cannot read it. \
             Trust it with `git config --global --add safe.directory {}`, or use a clone of your own",
            flake.display(),
            flake.display()
        )));
    }
    Ok(())
}

/// What an unprivileged user needs to evaluate, for messages.
pub const WHAT_IS_NEEDED: &str = "Evaluation needs write access to a Nix store: run as root, or use a nix-daemon \
     (start it, and unset NIX_REMOTE or set NIX_REMOTE=daemon; the user must be in its allowed-users), \
     or let paranoid-harness use a private store (unset NIX_REMOTE; optionally PARANOID_NIX_STORE=DIR).";

/// Copies each locked input of `flake/flake.lock` that /nix/store holds and the private store
/// lacks; returns the names of those copied. An input that cannot be copied is left to Nix,
/// which then says it cannot fetch it (exit 4).
fn seed_inputs(dir: &Path, flake: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(flake.join("flake.lock")) else {
        return vec![];
    };
    let Ok(lock) = serde_json::from_str::<Value>(&text) else {
        return vec![];
    };
    let root = lock["root"].as_str().unwrap_or("root");
    let mut seeded = vec![];
    for (name, node) in lock["nodes"].as_object().into_iter().flatten() {
        if name == root {
            continue;
        }
        let Some(nar_hash) = node.pointer("/locked/narHash").and_then(Value::as_str) else {
            continue;
        };
        let Some(path) = fixed_path(nar_hash) else {
            continue;
        };
        if !Path::new(&path).exists() || valid_in(dir, &path) {
            continue;
        }
        let out = Command::new("nix")
            .args(crate::nix::base_args_for(&Store::Private(
                dir.to_path_buf(),
            )))
            .args(["store", "add-path", "--name", "source", &path])
            .output();
        if out
            .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == path)
        {
            seeded.push(name.clone());
        }
    }
    seeded
}

/// The store path Nix gives a locked input with this NAR hash (`source`, recursive SHA-256),
/// asked of Nix itself without opening any store.
fn fixed_path(nar_hash: &str) -> Option<String> {
    let out = Command::new("nix-store")
        .args([
            "--store",
            "dummy://",
            "--print-fixed-path",
            "--recursive",
            "sha256",
            nar_hash,
            "source",
        ])
        .output()
        .ok()?;
    let p = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && p.starts_with("/nix/store/")).then_some(p)
}

fn valid_in(dir: &Path, path: &str) -> bool {
    Command::new("nix-store")
        .arg("--store")
        .arg(dir)
        .args(["--check-validity", path])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Whether Nix's stderr says it may not use the store it was pointed at.
pub fn denied(stderr: &str) -> bool {
    stderr.lines().any(|l| {
        let l = l.trim();
        l.starts_with("error:")
            && ((l.contains("/nix/var/nix") || l.contains("/nix/store"))
                && (l.contains("Permission denied") || l.contains("Operation not permitted"))
                || l.contains("cannot connect to socket at '/nix/var/nix/daemon-socket/socket'"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| OsString::from(v))
        }
    }

    #[test]
    fn the_system_store_is_kept_where_it_can_be_written() {
        let home = env(&[("HOME", "/home/u")]);
        assert_eq!(decide(true, &home, false, false), Store::System);
        assert_eq!(decide(false, &home, true, false), Store::System);
        assert_eq!(decide(false, &home, false, true), Store::System);
        assert_eq!(
            decide(
                false,
                env(&[("HOME", "/h"), ("NIX_REMOTE", "daemon")]),
                false,
                false
            ),
            Store::System
        );
        assert_eq!(
            decide(
                false,
                env(&[("NIX_CONFIG", "sandbox = false\nstore = /x")]),
                false,
                false
            ),
            Store::System
        );
    }

    #[test]
    fn an_unprivileged_user_without_a_daemon_gets_a_private_store() {
        assert_eq!(
            decide(false, env(&[("HOME", "/home/u")]), false, false),
            Store::Private("/home/u/.cache/paranoid-harness/nix-store".into())
        );
        assert_eq!(
            decide(
                false,
                env(&[("HOME", "/home/u"), ("XDG_CACHE_HOME", "/c")]),
                false,
                false
            ),
            Store::Private("/c/paranoid-harness/nix-store".into())
        );
        assert_eq!(
            decide(true, env(&[(STORE_ENV, "/s")]), true, true),
            Store::Private("/s".into()),
            "an explicit private store wins"
        );
    }

    #[test]
    fn store_permission_errors_are_recognised() {
        assert!(denied(
            "error: could not set permissions on '/nix/var/nix/profiles/per-user' to 755: Operation not permitted"
        ));
        assert!(denied(
            "error: cannot connect to socket at '/nix/var/nix/daemon-socket/socket': No such file or directory"
        ));
        assert!(denied(
            "error: opening lock file '/nix/var/nix/db/big-lock': Permission denied"
        ));
        assert!(!denied("error: undefined variable 'x'"));
        assert!(!denied(
            "error: getting status of '/home/u/x.nix': Permission denied"
        ));
    }
}
