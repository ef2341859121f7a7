//! Check 7 (opt-in, `--with-auditd`): audit is global to the kernel, so this check loads only
//! a uid-scoped copy of the configuration's execve rules under a unique key, runs a binary as
//! a throwaway user, finds it with `ausearch -k` in a private auditd's log, and restores the
//! previous audit state exactly (enabled flag, rules). It never runs `auditctl -e 2`. Each
//! change is journaled first, so a killed run's changes are undone by the next run's sweep.

use super::elapsed_ms;
use crate::cleanup::{Guard, Resource};
use crate::context::{write_file, Ctx};
use crate::exec::{Cmd, Daemon};
use crate::model::{CheckId, CheckResult, Recorder, SkipKind};
use crate::projection::{strings, Permutation};
use std::time::{Duration, Instant};

const TOOLS: &[&str] = &["auditctl", "ausearch", "auditd"];

/// (enabled, pid, rules) as auditctl reports them.
pub fn state(ctx: &Ctx) -> Result<(u8, u32, String), String> {
    let s = ctx
        .run(&ctx.tool("auditctl").arg("-s"), Duration::from_secs(10))
        .map_err(|e| e.to_string())?;
    let field = |k: &str| {
        s.stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{k} ")))
            .and_then(|v| v.trim().parse::<u32>().ok())
    };
    let enabled = field("enabled").ok_or_else(|| format!("auditctl -s: {}", s.digest(2)))? as u8;
    let pid = field("pid").unwrap_or(0);
    let l = ctx
        .run(&ctx.tool("auditctl").arg("-l"), Duration::from_secs(10))
        .map_err(|e| e.to_string())?;
    Ok((enabled, pid, l.stdout.trim().to_string()))
}

/// The configuration's execve rules, scoped to one uid and given our key.
pub fn scoped_rules(rules: &[String], uid: u32, key: &str) -> Vec<String> {
    rules
        .iter()
        .filter(|r| r.contains("execve") && r.trim_start().starts_with("-a"))
        .map(|r| {
            let mut toks: Vec<String> = vec![];
            let mut it = r.split_whitespace().peekable();
            while let Some(t) = it.next() {
                if t == "-k"
                    || t == "-F" && it.peek().map(|n| n.starts_with("key=")).unwrap_or(false)
                {
                    it.next();
                    continue;
                }
                toks.push(t.to_string());
            }
            toks.extend([
                "-F".to_string(),
                format!("uid={uid}"),
                "-k".to_string(),
                key.to_string(),
            ]);
            toks.join(" ")
        })
        .collect()
}

const AUDITD_CONF: &str = "local_events = yes
write_logs = yes
log_file = @LOG@
log_group = root
log_format = ENRICHED
flush = DATA
freq = 0
max_log_file = 8
num_logs = 1
priority_boost = 0
name_format = NONE
max_log_file_action = IGNORE
space_left = 2
space_left_action = IGNORE
admin_space_left = 1
admin_space_left_action = IGNORE
disk_full_action = IGNORE
disk_error_action = IGNORE
use_libwrap = no
tcp_listen_queue = 5
tcp_max_per_addr = 1
tcp_client_max_idle = 0
transport = TCP
distribute_network = no
q_depth = 2000
overflow_action = IGNORE
max_restarts = 10
plugin_dir = @PLUGINS@
end_of_event_timeout = 2
";

pub fn run(ctx: &Ctx, p: &Permutation) -> CheckResult {
    let started = Instant::now();
    let id = CheckId::Auditd;
    if !p.knob_bool("audit.enable") {
        return CheckResult::not_applicable(id, "paranoid.audit.enable is off");
    }
    let rules = strings(p.option("security.audit.rules"));
    if !rules.iter().any(|r| r.contains("execve")) {
        return CheckResult::not_applicable(
            id,
            "no execve rule in security.audit.rules (paranoid.audit.execve is off)",
        );
    }
    if let Some(r) = super::preflight(
        ctx,
        id,
        Some("loads audit rules into the kernel and runs a private auditd"),
        TOOLS,
    ) {
        return r;
    }
    // Audit state is global: one auditd check at a time in this run, and across processes
    // (other sandbox runs, paranoid-execwatch's live tests) the audit lock.
    let _global = ctx.global.lock().unwrap_or_else(|e| e.into_inner());
    let _host = match crate::sys::audit_lock(Duration::from_secs(600)) {
        Ok(f) => f,
        Err(e) => return CheckResult::skipped(id, SkipKind::Environment, format!("cannot take the audit lock: {e}")),
    };
    let before = match state(ctx) {
        Ok(s) => s,
        Err(e) => {
            return CheckResult::skipped(
                id,
                SkipKind::Environment,
                format!("cannot read the audit state: {e}"),
            )
        }
    };
    if before.0 == 2 {
        return CheckResult::skipped(
            id,
            SkipKind::Environment,
            "the kernel's audit rules are locked (enabled 2) until reboot",
        );
    }
    if before.1 != 0 {
        return CheckResult::skipped(
            id,
            SkipKind::Environment,
            format!("an audit daemon (pid {}) already runs; this check starts its own and never replaces the host's", before.1),
        );
    }
    let mut rec = Recorder::new(id);
    rec.note(format!(
        "audit state before: enabled {}, rules: {}",
        before.0,
        if before.2.is_empty() {
            "none".into()
        } else {
            before.2.replace('\n', " | ")
        }
    ));
    if p.knob_bool("audit.immutable") {
        rec.note("audit.immutable renders `-e 2`; never loaded here (it would lock the kernel's rules until reboot)");
    }
    let r = run_inner(ctx, &rules, before.0, &mut rec);
    if let Err(e) = r {
        rec.fail("could not run the auditd check", e);
    }
    // Restored exactly?
    match state(ctx) {
        Ok(after) => {
            let ok = after.0 == before.0 && after.2 == before.2;
            rec.step(
                "the previous audit state is restored exactly (enabled flag, rules)",
                "auditctl -s; auditctl -l",
                format!(
                    "enabled {} (was {}); rules: {}",
                    after.0,
                    before.0,
                    if after.2 == before.2 {
                        "unchanged".into()
                    } else {
                        after.2.replace('\n', " | ")
                    }
                ),
                ok,
            );
        }
        Err(e) => rec.fail("cannot read the audit state after the check", e),
    }
    rec.finish(
        "the uid-scoped execve rule recorded the throwaway user's exec",
        elapsed_ms(started),
    )
}

fn run_inner(
    ctx: &Ctx,
    rules: &[String],
    enabled_before: u8,
    rec: &mut Recorder,
) -> Result<(), String> {
    let users = ctx.users()?;
    let scratch = ctx.scratch("auditd").map_err(|e| e.to_string())?;
    let log = scratch.path("audit.log");
    let plugins = scratch.path("plugins.d");
    std::fs::create_dir_all(&plugins).map_err(|e| e.to_string())?;
    let conf = AUDITD_CONF
        .replace("@LOG@", &log.to_string_lossy())
        .replace("@PLUGINS@", &plugins.to_string_lossy());
    write_file(&scratch.path("auditd.conf"), conf, 0o640).map_err(|e| e.to_string())?;

    // The enabled flag comes back whatever happens (the guard, or the next run's sweep).
    let enabled_guard = Guard::record(&ctx.reg, Resource::AuditEnabled(enabled_before))
        .map_err(|e| e.to_string())?;
    let d = ctx
        .tool("auditd")
        .args(["-n", "-c"])
        .arg(scratch.dir.to_string_lossy());
    let mut daemon =
        Daemon::start(&d, ctx.run_id(), &scratch.path("auditd.out")).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut pid = 0;
    while Instant::now() < deadline && daemon.alive() {
        pid = state(ctx).map(|s| s.1).unwrap_or(0);
        if pid == daemon.pid() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if pid != daemon.pid() {
        return Err(format!(
            "auditd did not register with the kernel: {}",
            daemon.log_text().lines().last().unwrap_or("")
        ));
    }
    rec.note(format!(
        "private auditd (pid {pid}) logging to {}",
        log.display()
    ));

    let key = format!(
        "{}{}_{}",
        crate::cleanup::NAME_PREFIX,
        ctx.run_id(),
        crate::context::random_hex(4)
    );
    let scoped = scoped_rules(rules, users.member.uid, &key);
    let mut rule_guards = vec![];
    for r in &scoped {
        rule_guards.push(
            Guard::record(&ctx.reg, Resource::AuditRule(r.clone())).map_err(|e| e.to_string())?,
        );
        let c = ctx.tool("auditctl").args(r.split_whitespace());
        let o = ctx
            .run(&c, Duration::from_secs(10))
            .map_err(|e| e.to_string())?;
        rec.step(
            "load a uid-scoped copy of the execve rule",
            c.display(),
            o.digest(2),
            o.ok(),
        );
    }
    let marker = format!("pzs-audit-{}", crate::context::random_hex(8));
    let exec = Cmd::new("/bin/true").arg(marker.as_str()).as_user(
        users.member.uid,
        users.member.gid,
        &users.member.name,
    );
    let o = ctx
        .run(&exec, Duration::from_secs(10))
        .map_err(|e| e.to_string())?;
    rec.step(
        format!("run a binary as {}", users.member.name),
        exec.display(),
        o.rc(),
        o.ok(),
    );
    let search = ctx
        .tool("ausearch")
        .args(["-i", "--input"])
        .arg(log.to_string_lossy())
        .args(["-k", key.as_str()]);
    let mut found = None;
    let until = Instant::now() + Duration::from_secs(5);
    while found.is_none() && Instant::now() < until {
        if let Ok(o) = ctx.run(&search, Duration::from_secs(10)) {
            found = o
                .stdout
                .lines()
                .find(|l| l.contains("type=EXECVE") && l.contains(&marker))
                .map(|l| l.trim().to_string());
        }
        if found.is_none() {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    rec.step(
        format!("ausearch -k finds the exec of /bin/true {marker}"),
        search.display(),
        found
            .clone()
            .unwrap_or_else(|| "no EXECVE record with the marker".into()),
        found.is_some(),
    );
    for g in rule_guards.into_iter().rev() {
        if let Err(e) = g.release() {
            rec.fail("could not delete the scoped rule", e);
        }
    }
    daemon.stop();
    // auditd leaves auditing enabled on exit; put the flag back.
    if let Err(e) = enabled_guard.release() {
        rec.fail("could not restore the audit enabled flag", e);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_scoped_to_the_uid_and_rekeyed() {
        let r = scoped_rules(
            &[
                "-a always,exit -F arch=b64 -S execve -S execveat -k exec".into(),
                "-w /etc -p wa".into(),
            ],
            1234,
            "pzsK",
        );
        assert_eq!(
            r,
            vec!["-a always,exit -F arch=b64 -S execve -S execveat -F uid=1234 -k pzsK"]
        );
    }
}
