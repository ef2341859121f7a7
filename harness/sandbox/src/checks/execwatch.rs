//! Check 8 (opt-in, `--with-auditd`): paranoid-execwatch, run with the arguments the
//! configuration's unit gives it, alerts when the throwaway user runs a binary copied outside
//! /nix/store and when our rule is removed, and says so when it stops. Like the auditd check it
//! loads only a uid-scoped copy of the execve rules under a unique key, holds the audit lock,
//! and restores the enabled flag and the rules exactly.

use super::elapsed_ms;
use crate::cleanup::{Guard, Resource};
use crate::context::Ctx;
use crate::exec::{Cmd, Daemon};
use crate::model::{CheckId, CheckResult, Recorder, SkipKind};
use crate::projection::{strings, Permutation};
use std::collections::BTreeMap;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const UNIT: &str = "paranoid-execwatch";

/// The watcher binary: `$PARANOID_EXECWATCH`, else beside the running harness (one Cargo
/// workspace builds both), else on PATH.
pub fn watcher_binary() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("PARANOID_EXECWATCH") {
        return Some(PathBuf::from(p)).filter(|p| p.exists());
    }
    let beside = std::env::current_exe().ok()?.parent()?.join("paranoid-execwatch");
    if beside.exists() {
        return Some(beside);
    }
    // Integration tests run from target/<profile>/deps.
    let up = std::env::current_exe().ok()?.parent()?.parent()?.join("paranoid-execwatch");
    if up.exists() {
        return Some(up);
    }
    crate::exec::which("paranoid-execwatch")
}

/// The `watch` arguments of the unit's ExecStart, without the sinks (a webhook or command of
/// the real host must not be called from here) and the status interval (the check's is 1 s).
pub fn watch_args(exec_start: &str) -> Vec<String> {
    let toks: Vec<String> = exec_start
        .split_whitespace()
        .map(|t| t.trim_matches('\'').to_string())
        .collect();
    let mut out = vec![];
    let mut it = toks.into_iter().skip_while(|t| t != "watch").skip(1);
    while let Some(t) = it.next() {
        // Sinks (a real receiver must not be called from here) and the poll interval (the
        // check sets its own) are left out.
        if matches!(t.as_str(), "--webhook-url" | "--webhook-token-file" | "--command" | "--journal-socket" | "--status-interval") {
            it.next();
            continue;
        }
        out.push(t);
    }
    out
}

fn journal_entry(sock: &UnixDatagram, timeout: Duration) -> Option<BTreeMap<String, String>> {
    sock.set_read_timeout(Some(timeout.max(Duration::from_millis(1)))).ok()?;
    let mut buf = vec![0u8; 1 << 16];
    let n = sock.recv(&mut buf).ok()?;
    // KEY=value lines (the watcher's values have no newlines but MESSAGE may; those use the
    // binary form, which this simple reader keeps as its key only).
    Some(
        String::from_utf8_lossy(&buf[..n])
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

fn wait_for(
    sock: &UnixDatagram,
    timeout: Duration,
    pred: impl Fn(&BTreeMap<String, String>) -> bool,
) -> Option<BTreeMap<String, String>> {
    let until = Instant::now() + timeout;
    while Instant::now() < until {
        if let Some(e) = journal_entry(sock, until - Instant::now()) {
            if pred(&e) {
                return Some(e);
            }
        }
    }
    None
}

pub fn run(ctx: &Ctx, p: &Permutation) -> CheckResult {
    let started = Instant::now();
    let id = CheckId::Execwatch;
    if !p.knob_bool("audit.alertForeignExec.enable") {
        return CheckResult::not_applicable(id, "paranoid.audit.alertForeignExec.enable is off");
    }
    let Some(exec_start) = p
        .option("systemd.services")
        .and_then(|s| s.get(UNIT))
        .and_then(|u| u.get("serviceConfig"))
        .and_then(|c| c.get("ExecStart"))
        .and_then(|v| v.as_str())
        .map(str::to_string)
    else {
        let mut rec = Recorder::new(id);
        rec.fail("the configuration enables the watcher but renders no paranoid-execwatch unit", "systemd.services.paranoid-execwatch.serviceConfig.ExecStart is missing");
        return rec.finish("", elapsed_ms(started));
    };
    let rules = strings(p.option("security.audit.rules"));
    if let Some(r) = super::preflight(ctx, id, Some("loads audit rules into the kernel"), &["auditctl"]) {
        return r;
    }
    let Some(bin) = watcher_binary() else {
        return CheckResult::skipped(
            id,
            SkipKind::MissingTool,
            "paranoid-execwatch is not built: cargo build --release --manifest-path harness/Cargo.toml -p paranoid-execwatch (or set PARANOID_EXECWATCH)",
        );
    };
    let _global = ctx.global.lock().unwrap_or_else(|e| e.into_inner());
    let _host = match crate::sys::audit_lock(Duration::from_secs(600)) {
        Ok(f) => f,
        Err(e) => return CheckResult::skipped(id, SkipKind::Environment, format!("cannot take the audit lock: {e}")),
    };
    let before = match super::auditd::state(ctx) {
        Ok(s) => s,
        Err(e) => return CheckResult::skipped(id, SkipKind::Environment, format!("cannot read the audit state: {e}")),
    };
    if before.0 == 2 {
        return CheckResult::skipped(id, SkipKind::Environment, "the kernel's audit rules are locked (enabled 2) until reboot");
    }
    let mut rec = Recorder::new(id);
    let args = watch_args(&exec_start);
    rec.note(format!("the unit runs: {exec_start}"));
    let r = run_inner(ctx, &bin, &args, &rules, before.0, &mut rec);
    if let Err(e) = r {
        rec.fail("could not run the execwatch check", e);
    }
    match super::auditd::state(ctx) {
        Ok(after) => {
            rec.step(
                "the previous audit state is restored exactly (enabled flag, rules)",
                "auditctl -s; auditctl -l",
                format!("enabled {} (was {}); rules {}", after.0, before.0, if after.2 == before.2 { "unchanged" } else { "changed" }),
                after.0 == before.0 && after.2 == before.2,
            );
        }
        Err(e) => rec.fail("cannot read the audit state after the check", e),
    }
    rec.finish("the watcher alerted on a foreign exec and on the rule's removal, and on its own stop", elapsed_ms(started))
}

fn run_inner(
    ctx: &Ctx,
    bin: &std::path::Path,
    args: &[String],
    rules: &[String],
    enabled_before: u8,
    rec: &mut Recorder,
) -> Result<(), String> {
    let users = ctx.users()?;
    let scratch = ctx.scratch("execwatch").map_err(|e| e.to_string())?;
    let sock_path = scratch.path("journal.sock");
    let sock = UnixDatagram::bind(&sock_path).map_err(|e| e.to_string())?;
    let key = format!("{}{}_{}", crate::cleanup::NAME_PREFIX, ctx.run_id(), crate::context::random_hex(4));
    let enabled_guard = Guard::record(&ctx.reg, Resource::AuditEnabled(enabled_before)).map_err(|e| e.to_string())?;

    let mut cmd = Cmd::new(bin.to_string_lossy()).arg("watch").args(args.iter().cloned());
    cmd = cmd
        .args(["--key", key.as_str(), "--status-interval", "1", "--journal-socket"])
        .arg(sock_path.to_string_lossy());
    // On Debian the throwaway user's shell and tools live in /usr; on NixOS they are in the store.
    for a in ["/usr", "/bin", "/sbin", "/lib", "/lib64"] {
        cmd = cmd.args(["--allow", a]);
    }
    rec.adapt(format!(
        "watcher run from this build ({}) with the unit's watch arguments {:?}, its sinks and status interval left out, plus --key {key} (our scoped rule), --status-interval 1, the journal on a scratch socket and Debian's /usr, /bin, /sbin, /lib, /lib64 allowed",
        bin.display(),
        args
    ));
    let mut daemon = Daemon::start(&cmd, ctx.run_id(), &scratch.path("watcher.out")).map_err(|e| e.to_string())?;
    let started = wait_for(&sock, Duration::from_secs(10), |e| e.get("EXECWATCH_EVENT").map(String::as_str) == Some("started"));
    rec.step(
        "the watcher joins the audit multicast group with the unit's arguments",
        cmd.display(),
        started.as_ref().and_then(|e| e.get("MESSAGE").cloned()).unwrap_or_else(|| format!("no start entry: {}", daemon.log_text())),
        started.is_some(),
    );
    if started.is_none() {
        daemon.stop();
        return Ok(());
    }

    let scoped = super::auditd::scoped_rules(rules, users.member.uid, &key);
    let mut rule_guards = vec![];
    for r in &scoped {
        rule_guards.push(Guard::record(&ctx.reg, Resource::AuditRule(r.clone())).map_err(|e| e.to_string())?);
        let c = ctx.tool("auditctl").args(r.split_whitespace());
        let o = ctx.run(&c, Duration::from_secs(10)).map_err(|e| e.to_string())?;
        rec.step("load a uid-scoped copy of the execve rule", c.display(), o.digest(2), o.ok());
    }
    if !crate::sys::is_root() || scoped.is_empty() {
        daemon.stop();
        return Err("no execve rule to scope".into());
    }
    let o = ctx.run(&ctx.tool("auditctl").arg("-e").arg("1"), Duration::from_secs(10)).map_err(|e| e.to_string())?;
    rec.step("switch audit on for the check", "auditctl -e 1", o.digest(1), o.ok());

    let target = scratch.path("payload");
    std::fs::copy("/bin/true", &target).map_err(|e| e.to_string())?;
    std::fs::set_permissions(&target, std::os::unix::fs::PermissionsExt::from_mode(0o755)).map_err(|e| e.to_string())?;
    let exec = Cmd::new(target.to_string_lossy()).arg("pzs-execwatch").as_user(users.member.uid, users.member.gid, &users.member.name);
    let t0 = Instant::now();
    let o = ctx.run(&exec, Duration::from_secs(10)).map_err(|e| e.to_string())?;
    rec.step(format!("run a binary copied outside /nix/store as {}", users.member.name), exec.display(), o.rc(), o.ok());
    let target_s = target.to_string_lossy().to_string();
    let alert = wait_for(&sock, Duration::from_secs(5), |e| {
        e.get("EXECWATCH_KIND").map(String::as_str) == Some("foreign-exec") && e.get("EXECWATCH_EXE") == Some(&target_s)
    });
    let ms = t0.elapsed().as_millis();
    rec.step(
        "an alert at priority 1 names the executable, argv, uid and login uid, within 1 s",
        "journal socket",
        alert
            .as_ref()
            .map(|e| {
                format!(
                    "after {ms} ms: PRIORITY={} EXECWATCH_EXE={} EXECWATCH_ARGV={} EXECWATCH_UID={} EXECWATCH_AUID={}",
                    e.get("PRIORITY").cloned().unwrap_or_default(),
                    e.get("EXECWATCH_EXE").cloned().unwrap_or_default(),
                    e.get("EXECWATCH_ARGV").cloned().unwrap_or_default(),
                    e.get("EXECWATCH_UID").cloned().unwrap_or_default(),
                    e.get("EXECWATCH_AUID").cloned().unwrap_or_default()
                )
            })
            .unwrap_or_else(|| format!("no alert for {target_s}")),
        alert.as_ref().is_some_and(|e| {
            e.get("PRIORITY").map(String::as_str) == Some("1")
                && e.get("EXECWATCH_ARGV").is_some_and(|a| a.contains("pzs-execwatch"))
                && e.get("EXECWATCH_UID") == Some(&users.member.uid.to_string())
                && e.contains_key("EXECWATCH_AUID")
        }) && ms < 1000,
    );

    // Tampering: our rule removed.
    for g in rule_guards.into_iter().rev() {
        if let Err(e) = g.release() {
            rec.fail("could not delete the scoped rule", e);
        }
    }
    let removed = wait_for(&sock, Duration::from_secs(5), |e| {
        matches!(e.get("EXECWATCH_FINDING").map(String::as_str), Some("rule-removed") | Some("rules-missing"))
    });
    rec.step(
        "removing the execve rule is an alert",
        "auditctl -d <scoped rule>",
        removed.as_ref().and_then(|e| e.get("MESSAGE").cloned()).unwrap_or_else(|| "no alert".into()),
        removed.as_ref().is_some_and(|e| e.get("PRIORITY").map(String::as_str) == Some("1")),
    );
    daemon.stop();
    let stopped = wait_for(&sock, Duration::from_secs(3), |e| e.get("EXECWATCH_FINDING").map(String::as_str) == Some("watcher-stopped"));
    rec.step(
        "stopping the watcher is an alert",
        "SIGTERM",
        stopped.as_ref().and_then(|e| e.get("MESSAGE").cloned()).unwrap_or_else(|| "no alert".into()),
        stopped.is_some(),
    );
    if let Err(e) = enabled_guard.release() {
        rec.fail("could not restore the audit enabled flag", e);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_units_watch_arguments_are_kept_and_its_sinks_dropped() {
        let a = watch_args("/nix/store/x-paranoid-execwatch/bin/paranoid-execwatch watch --key exec --status-interval 5 --allow /run/wrappers --webhook-url https://h/x --webhook-token-file '%d/webhook-token' --command /nix/store/y-page");
        assert_eq!(a, vec!["--key", "exec", "--allow", "/run/wrappers"]);
    }
}
