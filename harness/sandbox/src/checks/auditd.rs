//! Check 7 (opt-in, `--with-auditd`): the configuration's complete audit rule file
//! (`rendered.audit_rules`, what audit-rules-nixos gives `auditctl -R`) is loaded in order into
//! the kernel beside a private auditd, a program copied below /tmp is run as a login user, as
//! root and as a daemon (login uid unset), through execve and execveat of both ABIs, and the
//! SYSCALL and EXECVE records the kernel writes are compared with the model
//! (`effective.audit.scenarios`) and with what paranoid.audit promises. `always` rules and
//! watches are narrowed to the probe (`-F exe=`), so no other process is recorded; `never`,
//! `exclude`, task rules, `-d`, `-D` and `-e 0|1` act as written. Left out, and said so: `-e 2`
//! (loaded as `-e 1`), `-b`/`-f`/`-r` (host-wide). It runs only when the host has no rules and
//! no audit daemon, under the audit lock, and restores the enabled flag and rule list exactly;
//! each change is journaled first, so a killed run's changes are undone by the next run's sweep.

use super::elapsed_ms;
use crate::cleanup::{Guard, Resource};
use crate::context::{random_hex, write_file, Ctx};
use crate::exec::Daemon;
use crate::model::{CheckId, CheckResult, Recorder, SkipKind};
use crate::projection::Permutation;
use std::ffi::CString;
use std::os::raw::{c_char, c_long};
use std::os::unix::fs::PermissionsExt;
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

/// The configuration's execve rules, scoped to one uid and given our key (the exec watcher's
/// check loads these).
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

/// One line of the configuration's rule file, as this check loads it.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// Load a rule; `undo` deletes it again. `scoped`: narrowed to the probe (an `always` exit
    /// rule or a watch, with `-F exe=<probe>` added), so it records no other process.
    Load {
        line: usize,
        text: String,
        args: Vec<String>,
        undo: Vec<String>,
        scoped: bool,
    },
    /// `-d` / `-W`: delete one rule, translated exactly like the rule it names.
    Delete {
        line: usize,
        text: String,
        args: Vec<String>,
    },
    /// `-D`: delete every rule loaded so far (this check's only: it runs when the host has none).
    DeleteAll { line: usize },
    /// `-e 0` / `-e 1` (a `-e 2` is loaded as `-e 1` and reported as left out).
    Enable { line: usize, text: String, flag: u8 },
    /// `-c` / `-i`: auditctl goes on after a rejected line from here on.
    ContinueOnError { line: usize },
    /// Not loaded into the kernel, and why.
    LeftOut {
        line: usize,
        text: String,
        why: String,
    },
}

const HOST_WIDE: &str = "sets the kernel's backlog, failure mode or rate limit for every process of the host (not which records a rule asks for); never changed here";

/// The configuration's rule file (`rendered.audit_rules`, what audit-rules-nixos gives
/// `auditctl -R`) in load order, as this check loads it with the probe at `probe`.
pub fn plan(file: &str, probe: &str) -> Vec<Step> {
    let mut out = vec![];
    for (i, raw) in file.lines().enumerate() {
        let line = i + 1;
        let text = raw.trim().to_string();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        let toks: Vec<String> = text.split_whitespace().map(str::to_string).collect();
        let op = toks[0].as_str();
        let exe = |mut a: Vec<String>| {
            a.extend(["-F".to_string(), format!("exe={probe}")]);
            a
        };
        match op {
            "-a" | "-A" | "-d" => {
                let parts: Vec<&str> = toks.get(1).map(|v| v.split(',').collect()).unwrap_or_default();
                let has_exe = toks
                    .windows(2)
                    .any(|w| w[0] == "-F" && w[1].starts_with("exe="));
                // Narrowing an `always` exit rule to the probe keeps its verdict for the probe
                // (one more field that the probe's exec matches) and its place in the list.
                let scoped = parts.contains(&"always") && parts.contains(&"exit") && !has_exe;
                let args = if scoped { exe(toks.clone()) } else { toks.clone() };
                if op == "-d" {
                    out.push(Step::Delete { line, text, args });
                } else {
                    let mut undo = args.clone();
                    undo[0] = "-d".into();
                    out.push(Step::Load { line, text, args, undo, scoped });
                }
            }
            "-w" | "-W" => match watch_as_rule(&toks, probe) {
                Some(args) if op == "-w" => {
                    let mut undo = args.clone();
                    undo[0] = "-d".into();
                    out.push(Step::Load { line, text, args, undo, scoped: true });
                }
                Some(mut args) => {
                    args[0] = "-d".into();
                    out.push(Step::Delete { line, text, args });
                }
                None => out.push(Step::LeftOut {
                    line,
                    text,
                    why: "a watch this check cannot translate into a rule narrowed to the probe".into(),
                }),
            },
            "-D" => out.push(Step::DeleteAll { line }),
            "-e" => match toks.get(1).map(String::as_str) {
                Some("0") => out.push(Step::Enable { line, text, flag: 0 }),
                Some("1") => out.push(Step::Enable { line, text, flag: 1 }),
                Some("2") => {
                    out.push(Step::LeftOut {
                        line,
                        text: text.clone(),
                        why: "`-e 2` would lock the kernel's audit rules until reboot: loaded as `-e 1` (enabled, not locked)".into(),
                    });
                    out.push(Step::Enable { line, text, flag: 1 });
                }
                _ => out.push(Step::LeftOut {
                    line,
                    text,
                    why: "an enabled flag auditctl does not take".into(),
                }),
            },
            "-c" | "-i" => out.push(Step::ContinueOnError { line }),
            "-b" | "-f" | "-r" | "--backlog_wait_time" | "--reset-lost" => {
                out.push(Step::LeftOut { line, text, why: HOST_WIDE.into() })
            }
            _ => out.push(Step::LeftOut {
                line,
                text,
                why: "not a rule, deletion or enabled flag: this check loads nothing else into the kernel".into(),
            }),
        }
    }
    out
}

/// `-w PATH [-p PERMS] [-k KEY]` as the equivalent exit rule (a directory watch on a directory,
/// as auditctl decides), narrowed to the probe.
fn watch_as_rule(toks: &[String], probe: &str) -> Option<Vec<String>> {
    let path = toks.get(1)?;
    let (mut perms, mut key) = (None, None);
    let mut i = 2;
    while i < toks.len() {
        match (toks[i].as_str(), toks.get(i + 1)) {
            ("-p", Some(v)) => perms = Some(v.clone()),
            ("-k", Some(v)) => key = Some(v.clone()),
            _ => return None,
        }
        i += 2;
    }
    let field = if std::path::Path::new(path).is_dir() {
        "dir"
    } else {
        "path"
    };
    let mut a: Vec<String> = vec![
        "-a".into(),
        "always,exit".into(),
        "-F".into(),
        format!("{field}={path}"),
    ];
    a.extend([
        "-F".into(),
        format!("perm={}", perms.unwrap_or_else(|| "rwxa".into())),
    ]);
    a.extend(["-F".into(), format!("exe={probe}")]);
    if let Some(k) = key {
        a.extend(["-k".into(), k]);
    }
    Some(a)
}

/// One exec the model judges (`effective.audit.scenarios`).
#[derive(Clone, Debug)]
pub struct Scenario {
    pub id: String,
    pub uid: u32,
    pub auid: u32,
    pub b32: bool,
    pub execveat: bool,
    /// What the model says the kernel records.
    pub syscall_record: bool,
    pub execve_record: bool,
    pub decided_by: Option<u64>,
}

/// An unset login uid, as the kernel writes it.
const UNSET: u32 = u32::MAX;

/// The model's scenarios; with audit off (`effective.audit` null) the kernel loads no rules,
/// so the same execs (lib/posture/audit.nix) must leave no record.
pub fn scenarios(p: &Permutation) -> Result<Vec<Scenario>, String> {
    let Some(a) = p.effective("audit") else {
        let mut v = vec![];
        for (actor, uid, auid) in [
            ("a login user", 1000, 1000),
            ("root in a login session", 0, 0),
            ("a daemon (no login uid)", 998, UNSET),
        ] {
            for arch in ["b64", "b32"] {
                for sc in ["execve", "execveat"] {
                    v.push(Scenario {
                        id: format!("{actor}, {arch} {sc}"),
                        uid,
                        auid,
                        b32: arch == "b32",
                        execveat: sc == "execveat",
                        syscall_record: false,
                        execve_record: false,
                        decided_by: None,
                    });
                }
            }
        }
        return Ok(v);
    };
    let list = a
        .get("scenarios")
        .and_then(serde_json::Value::as_array)
        .ok_or("effective.audit has no scenarios")?;
    list.iter()
        .map(|s| {
            let u = |k: &str| {
                s.get(k)
                    .and_then(serde_json::Value::as_u64)
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| format!("scenario without {k}: {s}"))
            };
            let t = |k: &str| s.get(k).and_then(serde_json::Value::as_str).unwrap_or("");
            let b = |k: &str| {
                s.get(k)
                    .and_then(serde_json::Value::as_bool)
                    .ok_or_else(|| format!("scenario without {k}: {s}"))
            };
            Ok(Scenario {
                id: t("id").to_string(),
                uid: u("uid")?,
                auid: u("auid")?,
                b32: t("arch") == "b32",
                execveat: t("syscall") == "execveat",
                syscall_record: b("syscallRecord")?,
                execve_record: b("execveRecord")?,
                decided_by: s.get("decidedBy").and_then(serde_json::Value::as_u64),
            })
        })
        .collect()
}

pub fn run(ctx: &Ctx, p: &Permutation) -> CheckResult {
    let started = Instant::now();
    let id = CheckId::Auditd;
    let model = p.effective("audit");
    if !p.knob_bool("audit.enable") && model.is_none() {
        return CheckResult::not_applicable(
            id,
            "paranoid.audit.enable is off and security.audit loads no rules",
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
        Err(e) => {
            return CheckResult::skipped(
                id,
                SkipKind::Environment,
                format!("cannot take the audit lock: {e}"),
            )
        }
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
    if !before.2.is_empty() && before.2 != "No rules" {
        return CheckResult::skipped(
            id,
            SkipKind::Environment,
            format!(
                "the host has audit rules loaded ({}): they would change the configuration's verdicts, and this check never deletes them",
                before.2.replace('\n', " | ")
            ),
        );
    }
    let mut rec = Recorder::new(id);
    rec.note(format!(
        "audit state before: enabled {}, no rules",
        before.0
    ));
    let r = run_inner(ctx, p, before.0, &mut rec);
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
        "the kernel, loaded with the configuration's rules, records exactly the execs the model says, as the posture promises",
        elapsed_ms(started),
    )
}

/// A rule this check loaded, undone when dropped.
struct Loaded {
    undo: Vec<String>,
    guard: Guard,
}

/// Delete the rules this check loaded (last first); the errors, if any.
fn unload(loaded: &mut Vec<Loaded>) -> Vec<String> {
    loaded
        .drain(..)
        .rev()
        .filter_map(|l| l.guard.release().err())
        .collect()
}

fn run_inner(
    ctx: &Ctx,
    p: &Permutation,
    enabled_before: u8,
    rec: &mut Recorder,
) -> Result<(), String> {
    let scenarios = scenarios(p)?;
    let promised = p.knob_bool("audit.enable") && p.knob_bool("audit.execve");
    let scratch = ctx.scratch("auditd").map_err(|e| e.to_string())?;
    let log = scratch.path("audit.log");
    let plugins = scratch.path("plugins.d");
    std::fs::create_dir_all(&plugins).map_err(|e| e.to_string())?;
    let conf = AUDITD_CONF
        .replace("@LOG@", &log.to_string_lossy())
        .replace("@PLUGINS@", &plugins.to_string_lossy());
    write_file(&scratch.path("auditd.conf"), conf, 0o640).map_err(|e| e.to_string())?;

    // The probe: a program copied to a directory below /tmp (where the model's scenarios run
    // it from), named with the run id so rules narrowed to it are this run's.
    let tmp = std::path::PathBuf::from("/tmp").join(ctx.run_id());
    let _tmp_guard =
        Guard::record(&ctx.reg, Resource::Dir(tmp.clone())).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(&tmp).map_err(|e| e.to_string())?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| e.to_string())?;
    let probe = tmp.join(format!(
        "{}{}-probe",
        crate::cleanup::NAME_PREFIX,
        ctx.run_id()
    ));
    std::fs::copy("/bin/true", &probe).map_err(|e| format!("copy /bin/true: {e}"))?;
    std::fs::set_permissions(&probe, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| e.to_string())?;
    let probe_s = probe.to_string_lossy().to_string();

    // The enabled flag comes back whatever happens (the guard, or the next run's sweep).
    let enabled_guard = Guard::record(&ctx.reg, Resource::AuditEnabled(enabled_before))
        .map_err(|e| e.to_string())?;
    // As NixOS runs it (`-s nochange`): the rule file's `-e` lines decide the enabled flag.
    let d = ctx
        .tool("auditd")
        .args(["-n", "-s", "nochange", "-c"])
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
        "private auditd (pid {pid}, -s nochange) logging to {}",
        log.display()
    ));

    // The configuration's complete rule file, in load order.
    let file = p.rendered("audit_rules");
    let mut loaded: Vec<Loaded> = vec![];
    let mut final_enable: Option<String> = None;
    match file {
        None => rec.note(
            "security.audit.enable = false: NixOS loads no audit rules at all (no audit-rules-nixos); none loaded here",
        ),
        Some(file) => {
            let steps = plan(file, &probe_s);
            let mut left_out = vec![];
            let mut go_on = false;
            for (n, step) in steps.iter().enumerate() {
                let ok = match step {
                    Step::LeftOut { line, text, why } => {
                        left_out.push(format!("line {line} `{text}`: {why}"));
                        true
                    }
                    Step::ContinueOnError { .. } => {
                        go_on = true;
                        true
                    }
                    Step::DeleteAll { line } => {
                        let n = loaded.len();
                        let errs = unload(&mut loaded);
                        rec.step(
                            format!("line {line} `-D`: delete the {n} rule(s) loaded so far (this check's only: the host had none)"),
                            "auditctl -d … (each)",
                            if errs.is_empty() { "done".to_string() } else { errs.join("; ") },
                            errs.is_empty(),
                        )
                    }
                    Step::Enable { line, text, flag } => {
                        final_enable = Some(text.split_whitespace().nth(1).unwrap_or("").to_string());
                        let c = ctx.tool("auditctl").args(["-e".to_string(), flag.to_string()]);
                        let o = ctx.run(&c, Duration::from_secs(10)).map_err(|e| e.to_string())?;
                        let what = if text.split_whitespace().nth(1) == Some("2") {
                            format!("line {line} `{text}`, loaded as `-e 1` (never locked here)")
                        } else {
                            format!("line {line} `{text}`")
                        };
                        rec.step(what, c.display(), o.digest(2), o.ok())
                    }
                    Step::Load { line, text, args, undo, scoped } => {
                        let guard = Guard::record(&ctx.reg, Resource::AuditRuleUndo(undo.join(" ")))
                            .map_err(|e| e.to_string())?;
                        let c = ctx.tool("auditctl").args(args.iter().cloned());
                        let o = ctx.run(&c, Duration::from_secs(10)).map_err(|e| e.to_string())?;
                        let what = if *scoped {
                            format!("line {line} `{text}`, narrowed to the probe")
                        } else {
                            format!("line {line} `{text}`, as written")
                        };
                        if o.ok() {
                            loaded.push(Loaded { undo: undo.clone(), guard });
                        } else {
                            drop(guard);
                        }
                        rec.step(what, c.display(), o.digest(2), o.ok())
                    }
                    Step::Delete { line, text, args } => {
                        let c = ctx.tool("auditctl").args(args.iter().cloned());
                        let o = ctx.run(&c, Duration::from_secs(10)).map_err(|e| e.to_string())?;
                        if o.ok() {
                            if let Some(i) = loaded.iter().position(|l| &l.undo == args) {
                                loaded.remove(i);
                            }
                        }
                        rec.step(format!("line {line} `{text}`"), c.display(), o.digest(2), o.ok())
                    }
                };
                if !ok && !go_on {
                    let rest: Vec<String> = steps[n + 1..]
                        .iter()
                        .map(|s| format!("{s:?}"))
                        .collect();
                    rec.note(format!(
                        "auditctl -R stops at the first line the kernel rejects: {} later step(s) are not loaded, as on the host",
                        rest.len()
                    ));
                    break;
                }
            }
            if !left_out.is_empty() {
                rec.note(format!("left out (never loaded here): {}", left_out.join("; ")));
            }
        }
    }
    let loaded_state = state(ctx)?;
    rec.note(format!(
        "loaded: enabled {}, rules: {}",
        loaded_state.0,
        loaded_state.2.replace('\n', " | ")
    ));

    // The execs, each with its own marker argument, then a user message as a sentinel: once
    // it is in the log, every earlier record is too.
    let mut runs = vec![];
    for (i, s) in scenarios.iter().enumerate() {
        let marker = format!("{}a{}", crate::cleanup::NAME_PREFIX, random_hex(6));
        let started = probe_exec(&probe_s, &marker, s);
        runs.push((i, marker, started));
    }
    let sentinel = format!("{}sentinel{}", crate::cleanup::NAME_PREFIX, random_hex(6));
    let c = ctx
        .tool("auditctl")
        .args(["-m".to_string(), sentinel.clone()]);
    let _ = ctx.run(&c, Duration::from_secs(10));
    let until = Instant::now()
        + if loaded_state.0 == 0 {
            Duration::from_secs(1)
        } else {
            Duration::from_secs(5)
        };
    let mut text = String::new();
    while Instant::now() < until {
        text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains(&sentinel) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if !text.contains(&sentinel) {
        rec.note(format!(
            "the sentinel message never reached the log (audit enabled {}, or a rule drops user messages): read it after waiting",
            loaded_state.0
        ));
    }
    let records = parse_log(&text);
    let mut missing_promised = vec![];
    for (i, marker, started) in &runs {
        let s = &scenarios[*i];
        let pid = match started {
            Ok(pid) => *pid,
            Err(e) => {
                rec.fail(format!("exec as {} ({})", s.id, who(s)), e.clone());
                continue;
            }
        };
        let (sys_nr, arch) = match (s.b32, s.execveat) {
            (false, false) => ("59", "c000003e"),
            (false, true) => ("322", "c000003e"),
            (true, false) => ("11", "40000003"),
            (true, true) => ("358", "40000003"),
        };
        let quoted = format!("\"{probe_s}\"");
        let syscall = records.iter().find(|r| {
            r.kind == "SYSCALL"
                && r.get("pid") == Some(&pid.to_string())
                && r.get("exe") == Some(&quoted)
                && r.get("syscall") == Some(&sys_nr.to_string())
                && r.get("arch") == Some(&arch.to_string())
        });
        let execve = records
            .iter()
            .find(|r| r.kind == "EXECVE" && r.get("a1") == Some(&format!("\"{marker}\"")));
        let seen = (syscall.is_some(), execve.is_some());
        let said = (s.syscall_record, s.execve_record);
        let show = |b: (bool, bool)| {
            format!(
                "SYSCALL {}, EXECVE {}",
                if b.0 { "yes" } else { "no" },
                if b.1 { "yes" } else { "no" }
            )
        };
        let evidence = [syscall, execve]
            .iter()
            .flatten()
            .map(|r| r.raw.clone())
            .collect::<Vec<_>>()
            .join(" / ");
        rec.step(
            format!(
                "{}: the kernel records {} (the model says {}{})",
                s.id,
                show(seen),
                show(said),
                s.decided_by
                    .map(|l| format!(", decided by line {l}"))
                    .unwrap_or_default()
            ),
            format!("exec {probe_s} {marker} as {} (pid {pid})", who(s)),
            if evidence.is_empty() {
                "no record".to_string()
            } else {
                evidence
            },
            seen == said,
        );
        if promised && !(seen.0 && seen.1) {
            missing_promised.push(s.id.clone());
        }
    }
    if promised {
        rec.step(
            "paranoid.audit.execve promises SYSCALL and EXECVE records of every exec from /tmp",
            format!("grep {} and the markers in the log", probe_s),
            if missing_promised.is_empty() {
                format!("all {} execs recorded", runs.len())
            } else {
                format!("not recorded: {}", missing_promised.join("; "))
            },
            missing_promised.is_empty(),
        );
    }

    // The lock: `-e 2` is never loaded here; where the file does not lock, show that root can
    // switch auditing off, which paranoid.audit.immutable promises it cannot.
    let immutable = p.knob_bool("audit.enable") && p.knob_bool("audit.immutable");
    if final_enable.as_deref() == Some("2") {
        rec.note("the rule file ends with `-e 2` (not loaded: it locks the kernel's rules until reboot); that the kernel then refuses `auditctl -e 0` is not proven here");
    } else if immutable || final_enable.is_some() {
        let c = ctx.tool("auditctl").args(["-e", "0"]);
        let o = ctx
            .run(&c, Duration::from_secs(10))
            .map_err(|e| e.to_string())?;
        let after = state(ctx)?;
        let switched_off = o.ok() && after.0 == 0;
        rec.step(
            format!(
                "root {} switch auditing off (the file ends with {}; paranoid.audit.immutable {})",
                if switched_off { "can" } else { "cannot" },
                final_enable
                    .as_deref()
                    .map(|e| format!("`-e {e}`"))
                    .unwrap_or_else(|| "no `-e`".into()),
                if immutable {
                    "promises it cannot"
                } else {
                    "is off"
                }
            ),
            c.display(),
            format!("{}; enabled {}", o.rc(), after.0),
            !(immutable && switched_off),
        );
    }

    let errs = unload(&mut loaded);
    if !errs.is_empty() {
        rec.fail(
            "could not delete the rules this check loaded",
            errs.join("; "),
        );
    }
    let left = state(ctx)?;
    if !left.2.is_empty() && left.2 != "No rules" {
        rec.fail(
            "rules left loaded after undoing this check's",
            left.2.replace('\n', " | "),
        );
    }
    daemon.stop();
    // auditd may leave auditing enabled on exit; put the flag back.
    if let Err(e) = enabled_guard.release() {
        rec.fail("could not restore the audit enabled flag", e);
    }
    Ok(())
}

fn who(s: &Scenario) -> String {
    format!(
        "uid {}, loginuid {}",
        s.uid,
        if s.auid == UNSET {
            "unset".to_string()
        } else {
            s.auid.to_string()
        }
    )
}

/// One record of auditd's log: its type and `key=value` fields (the raw part, before the
/// enriched fields).
#[derive(Debug)]
pub struct Record {
    pub kind: String,
    pub fields: Vec<(String, String)>,
    pub raw: String,
}

impl Record {
    pub fn get(&self, k: &str) -> Option<&String> {
        self.fields.iter().find(|(n, _)| n == k).map(|(_, v)| v)
    }
}

pub fn parse_log(text: &str) -> Vec<Record> {
    text.lines()
        .filter_map(|l| {
            let raw = l.split('\u{1d}').next().unwrap_or(l).trim().to_string();
            let kind = raw
                .strip_prefix("type=")?
                .split_whitespace()
                .next()?
                .to_string();
            let fields = raw
                .split_whitespace()
                .filter_map(|t| t.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            Some(Record { kind, fields, raw })
        })
        .collect()
}

mod probe {
    use std::os::raw::{c_char, c_int, c_long, c_void};
    extern "C" {
        pub fn syscall(n: c_long, ...) -> c_long;
        pub fn open(path: *const c_char, flags: c_int, ...) -> c_int;
        pub fn write(fd: c_int, buf: *const c_void, n: usize) -> isize;
        pub fn close(fd: c_int) -> c_int;
        pub fn setgroups(n: usize, list: *const u32) -> c_int;
        pub fn setgid(g: u32) -> c_int;
        pub fn setuid(u: u32) -> c_int;
        pub fn mmap(
            addr: *mut c_void,
            len: usize,
            prot: c_int,
            flags: c_int,
            fd: c_int,
            off: i64,
        ) -> *mut c_void;
        pub fn munmap(addr: *mut c_void, len: usize) -> c_int;
    }
}

/// Everything the child needs, prepared before fork (the child only makes system calls).
struct ExecPlan {
    loginuid: CString,
    auid: Vec<u8>,
    uid: u32,
    gid: u32,
    path: CString,
    argv: Vec<*const c_char>,
    envp: Vec<*const c_char>,
    /// For the 32-bit ABI: a page below 4 GiB holding path, argv and envp.
    low: Option<(*mut u8, u32, u32, u32)>,
    execveat: bool,
    _args: Vec<CString>,
}
// SAFETY: the raw pointers point into `_args`/`path` or the low page, which live as long as
// the plan and are only read (by the kernel, in the forked child).
unsafe impl Send for ExecPlan {}
unsafe impl Sync for ExecPlan {}

const LOW_PAGE: usize = 4096;

impl ExecPlan {
    fn new(probe: &str, marker: &str, s: &Scenario) -> Result<ExecPlan, String> {
        let path = CString::new(probe).map_err(|e| e.to_string())?;
        let args = vec![
            path.clone(),
            CString::new(marker).map_err(|e| e.to_string())?,
        ];
        let mut argv: Vec<*const c_char> = args.iter().map(|a| a.as_ptr()).collect();
        argv.push(std::ptr::null());
        let low = if s.b32 {
            // SAFETY: an anonymous private mapping; MAP_32BIT places it below 4 GiB.
            let page = unsafe {
                probe::mmap(std::ptr::null_mut(), LOW_PAGE, 3, 0x02 | 0x20 | 0x40, -1, 0)
            } as *mut u8;
            if page.is_null()
                || page as isize == -1
                || (page as usize) > u32::MAX as usize - LOW_PAGE
            {
                return Err(format!(
                    "mmap below 4 GiB: {}",
                    std::io::Error::last_os_error()
                ));
            }
            let base = page as usize as u32;
            let put = |off: usize, b: &[u8]| {
                // SAFETY: off + len stays inside the page (paths are short, checked below).
                unsafe { std::ptr::copy_nonoverlapping(b.as_ptr(), page.add(off), b.len()) }
            };
            let (p, m) = (path.as_bytes_with_nul(), args[1].as_bytes_with_nul());
            if p.len() > 1024 || m.len() > 1024 {
                return Err("probe path or marker too long".into());
            }
            put(0, p);
            put(1024, m);
            let argv32 = [base, base + 1024, 0u32];
            let bytes: Vec<u8> = argv32.iter().flat_map(|x| x.to_ne_bytes()).collect();
            put(2048, &bytes);
            put(2064, &0u32.to_ne_bytes());
            Some((page, base, base + 2048, base + 2064))
        } else {
            None
        };
        Ok(ExecPlan {
            loginuid: CString::new("/proc/self/loginuid").unwrap(),
            auid: s.auid.to_string().into_bytes(),
            uid: s.uid,
            gid: s.uid,
            path,
            argv,
            envp: vec![std::ptr::null()],
            low,
            execveat: s.execveat,
            _args: args,
        })
    }

    /// In the forked child: set the login uid, drop to the uid, exec. Returns only on failure.
    fn exec(&self) -> std::io::Error {
        let err = std::io::Error::last_os_error;
        // SAFETY: plain system calls on buffers prepared before fork.
        unsafe {
            let fd = probe::open(self.loginuid.as_ptr(), 1);
            if fd < 0 {
                return err();
            }
            let n = probe::write(fd, self.auid.as_ptr() as *const _, self.auid.len());
            if n != self.auid.len() as isize {
                return err();
            }
            probe::close(fd);
            if probe::setgroups(0, std::ptr::null()) != 0
                || probe::setgid(self.gid) != 0
                || probe::setuid(self.uid) != 0
            {
                return err();
            }
            match self.low {
                None if self.execveat => {
                    probe::syscall(
                        322,
                        -100 as c_long,
                        self.path.as_ptr(),
                        self.argv.as_ptr(),
                        self.envp.as_ptr(),
                        0 as c_long,
                    );
                    err()
                }
                None => {
                    probe::syscall(
                        59,
                        self.path.as_ptr(),
                        self.argv.as_ptr(),
                        self.envp.as_ptr(),
                    );
                    err()
                }
                Some((_, path, argv, envp)) => {
                    let rc = int80(self.execveat, path, argv, envp);
                    std::io::Error::from_raw_os_error(-(rc as i32))
                }
            }
        }
    }
}

impl Drop for ExecPlan {
    fn drop(&mut self) {
        if let Some((page, ..)) = self.low {
            // SAFETY: the page this plan mapped, unmapped once.
            unsafe { probe::munmap(page as *mut _, LOW_PAGE) };
        }
    }
}

/// execve (11) or execveat (358) through the 32-bit system call gate: the kernel audits it
/// with arch=i386, as it would a 32-bit program's.
#[cfg(target_arch = "x86_64")]
unsafe fn int80(at: bool, path: u32, argv: u32, envp: u32) -> u32 {
    let (nr, b, c, d, si): (u64, u64, u64, u64, u64) = if at {
        (
            358,
            (-100i32) as u32 as u64,
            path as u64,
            argv as u64,
            envp as u64,
        )
    } else {
        (11, path as u64, argv as u64, envp as u64, 0)
    };
    let rc: u64;
    // rbx is reserved by LLVM: swap the first argument in and out around the gate.
    std::arch::asm!(
        "xchg {b}, rbx",
        "int 0x80",
        "xchg {b}, rbx",
        b = inout(reg) b => _,
        inout("rax") nr => rc,
        in("rcx") c,
        in("rdx") d,
        in("rsi") si,
        in("rdi") 0u64,
        out("r8") _, out("r9") _, out("r10") _, out("r11") _,
    );
    rc as u32
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn int80(_: bool, _: u32, _: u32, _: u32) -> u32 {
    (-38i32) as u32 // ENOSYS: the 32-bit ABI is probed on x86_64 only
}

/// Run one scenario's exec; Ok(pid of the exec) once it exited 0.
fn probe_exec(probe: &str, marker: &str, s: &Scenario) -> Result<u32, String> {
    use std::os::unix::process::CommandExt;
    let plan = std::sync::Arc::new(ExecPlan::new(probe, marker, s)?);
    let p2 = plan.clone();
    let mut c = std::process::Command::new(probe);
    c.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: the hook makes only system calls on memory prepared before fork; it returns only
    // when the exec failed.
    unsafe {
        c.pre_exec(move || Err(p2.exec()));
    }
    let mut child = c.spawn().map_err(|e| format!("exec: {e}"))?;
    let pid = child.id();
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(st) = child.try_wait().map_err(|e| e.to_string())? {
            drop(plan);
            return if st.success() {
                Ok(pid)
            } else {
                Err(format!("the probe exited {st}"))
            };
        }
        if Instant::now() > until {
            let _ = child.kill();
            let _ = child.wait();
            return Err("the probe did not exit within 10 s".into());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
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

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn the_rule_file_is_planned_in_order_narrowing_only_always_rules() {
        let file = "-D\n-b 8192\n-f 1\n-r 0\n-a always,exit -F arch=b64 -S execve -k exec\n\
                    -a never,exit -F arch=b32 -S execve\n-a always,exclude -F msgtype=EXECVE\n\
                    -d always,exit -F arch=b64 -S execve -k exec\n-w /nonexistent/f -p wa -k shadow\n-e 2\n";
        let probe = "/tmp/x/probe";
        let p = plan(file, probe);
        assert_eq!(p[0], Step::DeleteAll { line: 1 });
        for (i, n) in [(1, 2), (2, 3), (3, 4)] {
            assert!(
                matches!(&p[i], Step::LeftOut { line, .. } if *line == n),
                "{:?}",
                p[i]
            );
        }
        let narrowed = args("-a always,exit -F arch=b64 -S execve -k exec -F exe=/tmp/x/probe");
        assert_eq!(
            p[4],
            Step::Load {
                line: 5,
                text: "-a always,exit -F arch=b64 -S execve -k exec".into(),
                args: narrowed.clone(),
                undo: args("-d always,exit -F arch=b64 -S execve -k exec -F exe=/tmp/x/probe"),
                scoped: true,
            }
        );
        // never and exclude rules act as written.
        assert!(
            matches!(&p[5], Step::Load { args: a, scoped: false, .. } if *a == args("-a never,exit -F arch=b32 -S execve"))
        );
        assert!(
            matches!(&p[6], Step::Load { args: a, scoped: false, .. } if *a == args("-a always,exclude -F msgtype=EXECVE"))
        );
        // A deletion is translated exactly like the rule it names, so the kernel finds it.
        assert!(matches!(&p[7], Step::Delete { args: a, .. } if a[1..] == narrowed[1..]));
        assert!(matches!(&p[8], Step::Load { args: a, scoped: true, .. }
            if *a == args("-a always,exit -F path=/nonexistent/f -F perm=wa -F exe=/tmp/x/probe -k shadow")));
        // -e 2 is never loaded: said so, and loaded as -e 1.
        assert!(matches!(&p[9], Step::LeftOut { line: 10, .. }));
        assert!(matches!(
            &p[10],
            Step::Enable {
                line: 10,
                flag: 1,
                ..
            }
        ));
        assert_eq!(p.len(), 11);
    }

    #[test]
    fn records_are_read_from_the_raw_part_of_enriched_lines() {
        let r = parse_log("type=EXECVE msg=audit(1.2:3): argc=2 a0=\"/tmp/p\" a1=\"m\"\u{1d}X=y\n");
        assert_eq!(r[0].kind, "EXECVE");
        assert_eq!(r[0].get("a1").map(String::as_str), Some("\"m\""));
        assert_eq!(r[0].get("X"), None);
    }
}
