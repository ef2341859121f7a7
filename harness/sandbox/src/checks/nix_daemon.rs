//! Check 3: the rendered nix.conf loaded by a private nix-daemon (own socket, own chroot
//! store; the host's /nix and its daemon are never touched), and `nix store ping` from root, a
//! throwaway member of the wheel stand-in and a throwaway outsider, accepted or refused as
//! `paranoid.nix.allowedUsers` promises. The daemon's log says why (the client never does).

use super::elapsed_ms;
use crate::context::{write_file, Ctx, TestUser};
use crate::exec::{Cmd, Daemon};
use crate::model::{CheckId, CheckResult, Recorder};
use crate::projection::{strings, Permutation};

use std::path::Path;
use std::time::{Duration, Instant};

const TOOLS: &[&str] = &["nix", "nix-daemon"];
/// Settings replaced so the daemon runs privately here (paths, and what needs nixbld users).
const OVERRIDDEN: &[&str] = &["store", "sandbox", "build-users-group"];

/// Who `allowed-users` admits, as the knob says (before group names are mapped).
pub fn promised_allowed(p: &Permutation) -> Vec<String> {
    match p.knob("nix.allowedUsers") {
        Some(v) if v.as_str() == Some("root") => vec!["root".into()],
        Some(v) if v.as_str() == Some("wheel") => vec!["@wheel".into()],
        Some(v) if v.is_array() => strings(Some(v)),
        _ => vec!["@wheel".into()],
    }
}

fn admits(list: &[String], user: &str, groups: &[&str]) -> bool {
    list.iter().any(|e| {
        e == "*"
            || e == user
            || e.strip_prefix('@')
                .map(|g| groups.contains(&g))
                .unwrap_or(false)
    })
}

/// Rewrite nix.conf for a private daemon; returns the text and one line per change.
pub fn adapt_conf(conf: &str, store_root: &Path, wheel_standin: &str) -> (String, Vec<String>) {
    let mut out = vec![];
    let mut notes = vec![];
    for line in conf.lines() {
        let key = line.split('=').next().unwrap_or("").trim();
        if OVERRIDDEN.contains(&key) {
            notes.push(format!(
                "nix.conf: `{}` replaced (private daemon)",
                line.trim()
            ));
            continue;
        }
        if (key == "allowed-users" || key == "trusted-users") && line.contains("@wheel") {
            let new = line.replace("@wheel", &format!("@{wheel_standin}"));
            notes.push(format!(
                "nix.conf: `{}` → `{}` (throwaway group standing in for wheel)",
                line.trim(),
                new.trim()
            ));
            out.push(new);
            continue;
        }
        out.push(line.to_string());
    }
    out.push(
        "# paranoid-sandbox: a private daemon with a chroot store; no build users here".into(),
    );
    out.push(format!("store = local?root={}", store_root.display()));
    out.push("sandbox = false".into());
    out.push("build-users-group = ".into());
    notes.push(format!(
        "nix.conf: store = local?root={}, sandbox = false, build-users-group = (empty) appended",
        store_root.display()
    ));
    (out.join("\n") + "\n", notes)
}

pub fn run(ctx: &Ctx, p: &Permutation) -> CheckResult {
    let started = Instant::now();
    let id = CheckId::NixDaemon;
    let Some(conf) = p.rendered("nix_conf") else {
        return CheckResult::not_applicable(id, "nix.enable is false: there is no daemon");
    };
    if !p.knob_bool("nix.enable") {
        return CheckResult::not_applicable(
            id,
            "paranoid.nix.enable is off: allowed-users is NixOS's default, nothing is promised",
        );
    }
    if let Some(r) = super::preflight(
        ctx,
        id,
        Some("starts a private nix-daemon and connects as throwaway users"),
        TOOLS,
    ) {
        return r;
    }
    let mut rec = Recorder::new(id);
    if let Err(e) = run_inner(ctx, p, conf, &mut rec) {
        rec.fail("could not run the nix-daemon check", e);
    }
    rec.finish(
        "the private daemon admits exactly who paranoid.nix.allowedUsers promises",
        elapsed_ms(started),
    )
}

fn run_inner(ctx: &Ctx, p: &Permutation, conf: &str, rec: &mut Recorder) -> Result<(), String> {
    let users = ctx.users()?;
    let scratch = ctx.scratch("nix").map_err(|e| e.to_string())?;
    let conf_dir = scratch.path("conf");
    let state = scratch.path("state");
    let sock = state.join("daemon-socket").join("socket");
    let (text, notes) = adapt_conf(conf, &scratch.path("store"), &users.wheel);
    for n in notes {
        rec.adapt(n);
    }
    write_file(&conf_dir.join("nix.conf"), &text, 0o644).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(sock.parent().unwrap()).map_err(|e| e.to_string())?;
    // Clients read no configuration of the host's: an empty, readable conf dir.
    let client_conf = scratch.path("client-conf");
    std::fs::create_dir_all(&client_conf).map_err(|e| e.to_string())?;

    // Static: what Nix itself reads from the file.
    let show = ctx
        .tool("nix")
        .env("NIX_CONF_DIR", conf_dir.to_string_lossy())
        .args([
            "--extra-experimental-features",
            "nix-command",
            "show-config",
        ]);
    let o = ctx
        .run(&show, Duration::from_secs(20))
        .map_err(|e| e.to_string())?;
    let setting = |k: &str| {
        o.stdout
            .lines()
            .find(|l| l.split('=').next().map(str::trim) == Some(k))
            .map(|l| l.trim().to_string())
    };
    let promised = promised_allowed(p);
    let mapped: Vec<String> = promised
        .iter()
        .map(|e| {
            if e == "@wheel" {
                format!("@{}", users.wheel)
            } else {
                e.clone()
            }
        })
        .collect();
    let allowed_line = setting("allowed-users").unwrap_or_else(|| "allowed-users (absent)".into());
    let got: Vec<String> = allowed_line
        .split_once('=')
        .map(|(_, v)| v.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    let mut g = got.clone();
    g.sort();
    let mut m = mapped.clone();
    m.sort();
    rec.step(
        format!(
            "Nix reads allowed-users = {} (paranoid.nix.allowedUsers)",
            promised.join(" ")
        ),
        show.display(),
        format!(
            "{allowed_line}; {}",
            setting("trusted-users").unwrap_or_else(|| "trusted-users (absent)".into())
        ),
        g == m,
    );
    if let Some(w) = o.stderr.lines().find(|l| l.contains("unknown setting")) {
        rec.note(format!(
            "nix {}: {}",
            ctx.tools.versions.get("nix").cloned().unwrap_or_default(),
            w.trim()
        ));
    }

    // Live: a private daemon.
    let daemon_cmd = ctx
        .tool("nix-daemon")
        .env("NIX_CONF_DIR", conf_dir.to_string_lossy())
        .env("NIX_STATE_DIR", state.to_string_lossy())
        .env("NIX_LOG_DIR", state.join("log").to_string_lossy())
        .env("NIX_DAEMON_SOCKET_PATH", sock.to_string_lossy());
    let mut daemon = Daemon::start(&daemon_cmd, ctx.run_id(), &scratch.path("daemon.log"))
        .map_err(|e| format!("starting nix-daemon: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while !sock.exists() && Instant::now() < deadline && daemon.alive() {
        std::thread::sleep(Duration::from_millis(5));
    }
    if !sock.exists() {
        return Err(format!(
            "nix-daemon did not create {} (log: {})",
            sock.display(),
            daemon
                .log_text()
                .lines()
                .take(3)
                .collect::<Vec<_>>()
                .join(" | ")
        ));
    }
    rec.note(format!(
        "private nix-daemon (pid {}) on {}, store chroot {}",
        daemon.pid(),
        sock.display(),
        scratch.path("store").display()
    ));

    // The promise: allowed-users as the knob says, and trusted-users = [ "root" ] (a trusted
    // user is admitted whatever allowed-users says, so it counts as a violation here).
    let probes: Vec<(String, Option<&TestUser>, bool, String)> = vec![
        (
            "root".into(),
            None,
            true,
            "root is trusted, so always admitted".into(),
        ),
        (
            users.member.name.clone(),
            Some(&users.member),
            admits(&promised, &users.member.name, &["wheel"]),
            format!("member of wheel (stand-in group {})", users.wheel),
        ),
        (
            users.outsider.name.clone(),
            Some(&users.outsider),
            admits(&promised, &users.outsider.name, &[]),
            "in no group".into(),
        ),
    ];
    for (name, user, want, who) in probes {
        let mut c = Cmd::new(ctx.tools.path("nix"))
            .env_clear()
            .env("NIX_CONF_DIR", client_conf.to_string_lossy());
        c = match user {
            Some(u) => c
                .env("HOME", u.home.to_string_lossy())
                .env("USER", &u.name)
                .as_user(u.uid, u.gid, &u.name),
            None => c.env("HOME", scratch.dir.to_string_lossy()),
        };
        let c = c
            .args([
                "--extra-experimental-features",
                "nix-command",
                "store",
                "ping",
                "--store",
            ])
            .arg(format!("unix://{}", sock.display()));
        let o = ctx
            .run(&c, Duration::from_secs(20))
            .map_err(|e| e.to_string())?;
        // Nix 2.8 prints "Store URL:" before connecting and "Version:" only once connected.
        let accepted = o.ok() && o.all().contains("Version:");
        let refused = !o.ok() && o.all().contains("cannot open connection to remote store");
        // The reason is only in the daemon's log; wait briefly for the forked handler to write it.
        let needle_ok = format!("user {name}");
        let needle_no = format!("user '{name}' is not allowed to connect");
        let mut log_line = None;
        let until = Instant::now() + Duration::from_secs(2);
        while log_line.is_none() && Instant::now() < until {
            let log = daemon.log_text();
            log_line = log
                .lines()
                .find(|l| {
                    (l.contains("accepted connection") && l.contains(&needle_ok))
                        || l.contains(&needle_no)
                })
                .map(|l| l.trim().to_string());
            if log_line.is_none() {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let client = o
            .line_with("cannot open connection")
            .or_else(|| o.line_with("Version:"))
            .unwrap_or_else(|| o.digest(2));
        let decisive = format!(
            "{}: {client}; daemon log: {}",
            o.rc(),
            log_line
                .clone()
                .unwrap_or_else(|| "(nothing logged)".into())
        );
        let ok = if want {
            accepted
        } else {
            refused
                && log_line
                    .as_deref()
                    .map(|l| l.contains("not allowed"))
                    .unwrap_or(false)
        };
        rec.step(
            format!(
                "{name} ({who}) is {}",
                if want { "admitted" } else { "refused" }
            ),
            c.display(),
            decisive,
            ok,
        );
    }
    daemon.stop();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_daemon_config_replaces_only_paths_and_build_users_and_maps_wheel() {
        let (t, notes) = adapt_conf(
            "allowed-users = @wheel\nsandbox = true\ntrusted-users = root\nrequire-sigs = true\n",
            Path::new("/s"),
            "pzsXw",
        );
        assert!(t.contains("allowed-users = @pzsXw\n"));
        assert!(t.contains("require-sigs = true\n") && t.contains("trusted-users = root\n"));
        assert!(!t.contains("sandbox = true") && t.contains("sandbox = false"));
        assert!(t.contains("store = local?root=/s"));
        assert_eq!(notes.len(), 3);
    }

    #[test]
    fn admission_follows_names_groups_and_star() {
        let l = vec!["@wheel".to_string()];
        assert!(admits(&l, "u", &["wheel"]) && !admits(&l, "o", &[]));
        assert!(admits(&["*".to_string()], "o", &[]));
    }
}
