//! Check: who becomes root through sudo, sudo-rs and doas, read by the tools' own parsers.
//!
//! - sudo / sudo-rs: `visudo -c -f` must accept `rendered.sudoers`; `cvtsudoers -f json` reads it
//!   with sudo's own parser (aliases listed, tags carried along a command list, `ALL` implying
//!   SETENV), and once per Defaults type (`-d global|host|user|runas|command`, since the JSON
//!   does not say which binding a Defaults line had). For every account of the host and for an
//!   account nobody configured, sudoers(5)'s semantics decide whether it may run any command or
//!   a shell as root, and with whose password: the last matching item of a list and the last
//!   matching rule win; a tag beats Defaults; Defaults apply global, host, user, runas, then
//!   command. sudo-rs has no Debian package: its file is read by sudo's parser (sudo-rs
//!   implements a subset of the same format), sudo-rs's own reading is the model's only.
//! - doas: `doas -C` (OpenDoas) parses `rendered.doas_conf`, then decides for each account, run as
//!   a throwaway account standing for it (the identities are rewritten, an adaptation),
//!   whether `doas -u root <command>` is `permit`, `permit nopass` or `deny`.
//!
//! What the programs say must equal the model (`effective.sudo`, lib/posture/sudo.nix) and what
//! paranoid.sudo.mode allows: `removed`, no tool enabled; `wheel-only`, no account outside wheel
//! and no path without a password. execWheelOnly (the setuid wrapper executable by wheel only)
//! is NixOS's activation, the VM tier's: applied here as the model applies it, and said so.

use super::elapsed_ms;
use crate::context::{write_file, Ctx};
use crate::model::{CheckId, CheckResult, Recorder};
use crate::projection::{strings, Permutation};

use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// Programs whose basename counts as "a shell": running one as root is becoming root (the same
/// list the model uses).
const SHELLS: &[&str] = &[
    "sh", "bash", "zsh", "dash", "fish", "ksh", "csh", "tcsh", "su", "sudo", "doas", "env", "nu",
    "xonsh",
];
/// A command no rule names: allowed only by `ALL` (or a rule without `cmd` in doas.conf).
const ANY_COMMAND: &str = "/paranoid-sandbox/any-command";

/// An account to judge: one of the host's, or somebody the configuration does not name.
#[derive(Clone, Debug)]
pub struct Who {
    /// The model's name for it (`<any other user>` for the anonymous one).
    pub account: String,
    pub name: Option<String>,
    pub uid: Option<u64>,
    pub groups: Vec<String>,
}

impl Who {
    pub fn in_wheel(&self) -> bool {
        self.name.as_deref() == Some("root") || self.groups.iter().any(|g| g == "wheel")
    }
}

/// The host's accounts (`effective.accounts`) and the model's anonymous account.
pub fn principals(p: &Permutation) -> Vec<Who> {
    let other = p
        .effective("sudo")
        .and_then(|s| s.get("otherUser"))
        .and_then(Value::as_str)
        .unwrap_or("<any other user>")
        .to_string();
    let mut out: Vec<Who> = p
        .effective("accounts")
        .and_then(Value::as_object)
        .map(|o| {
            o.iter()
                .map(|(n, a)| Who {
                    account: n.clone(),
                    name: Some(n.clone()),
                    uid: a.get("uid").and_then(Value::as_u64),
                    groups: strings(a.get("groups")),
                })
                .collect()
        })
        .unwrap_or_default();
    out.push(Who {
        account: other,
        name: None,
        uid: None,
        groups: vec![],
    });
    out
}

// ---- sudoers, as cvtsudoers prints it -------------------------------------------------------------

/// The last matching item of a list decides (`!` turns a match into a refusal); None: no item
/// matched. `item` answers Some(matched) or None when it cannot be evaluated here.
fn last_match(
    items: &[Value],
    item: &mut dyn FnMut(&Map<String, Value>) -> Option<bool>,
    unknown: &mut Vec<String>,
) -> Option<bool> {
    let mut decided = None;
    for i in items {
        let Some(o) = i.as_object() else { continue };
        let negated = o.get("negated").and_then(Value::as_bool).unwrap_or(false);
        match item(o) {
            Some(true) => decided = Some(!negated),
            Some(false) => {}
            None => unknown.push(Value::Object(o.clone()).to_string()),
        }
    }
    decided
}

fn str_of<'a>(o: &'a Map<String, Value>, k: &str) -> Option<&'a str> {
    o.get(k).and_then(Value::as_str)
}

fn items<'a>(v: Option<&'a Value>) -> &'a [Value] {
    v.and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// Does a user list (User_List, a user Defaults binding) admit `who`?
fn user_list(
    list: &[Value],
    aliases: &Value,
    who: &Who,
    unknown: &mut Vec<String>,
) -> Option<bool> {
    let mut f = |o: &Map<String, Value>| -> Option<bool> {
        if let Some(n) = str_of(o, "username") {
            return Some(n == "ALL" || who.name.as_deref() == Some(n));
        }
        if let Some(g) = str_of(o, "usergroup") {
            return Some(who.groups.iter().any(|x| x == g));
        }
        if let Some(u) = o.get("userid").and_then(Value::as_u64) {
            return Some(who.uid == Some(u));
        }
        if let Some(a) = str_of(o, "useralias") {
            let mut inner = vec![];
            let r = user_list(items(aliases.get(a)), aliases, who, &mut inner);
            if !inner.is_empty() {
                return None;
            }
            return Some(r == Some(true));
        }
        // usergid, nonunixgroup, netgroup: the host's gids and directories are not modelled.
        None
    };
    last_match(list, &mut f, unknown)
}

fn host_list(
    list: &[Value],
    aliases: &Value,
    host: &str,
    unknown: &mut Vec<String>,
) -> Option<bool> {
    let mut f = |o: &Map<String, Value>| -> Option<bool> {
        if let Some(h) = str_of(o, "hostname") {
            return Some(h == "ALL" || h == host || h.split('.').next() == Some(host));
        }
        if let Some(a) = str_of(o, "hostalias") {
            let mut inner = vec![];
            let r = host_list(items(aliases.get(a)), aliases, host, &mut inner);
            return if inner.is_empty() {
                Some(r == Some(true))
            } else {
                None
            };
        }
        None
    };
    last_match(list, &mut f, unknown)
}

/// Does a runas user list name root as a target?
fn runas_list(list: &[Value], aliases: &Value, unknown: &mut Vec<String>) -> Option<bool> {
    let mut f = |o: &Map<String, Value>| -> Option<bool> {
        if let Some(n) = str_of(o, "username") {
            return Some(n == "ALL" || n == "root");
        }
        if let Some(u) = o.get("userid").and_then(Value::as_u64) {
            return Some(u == 0);
        }
        if let Some(g) = str_of(o, "usergroup") {
            // `%group` as a target: any member; root's only group is root.
            return Some(g == "root");
        }
        if let Some(a) = str_of(o, "runasalias") {
            let mut inner = vec![];
            let r = runas_list(items(aliases.get(a)), aliases, &mut inner);
            return if inner.is_empty() {
                Some(r == Some(true))
            } else {
                None
            };
        }
        None
    };
    last_match(list, &mut f, unknown)
}

/// Does a command list allow `probe` (a path, run without arguments)?
fn command_list(
    list: &[Value],
    aliases: &Value,
    probe: &str,
    unknown: &mut Vec<String>,
) -> Option<bool> {
    let mut f = |o: &Map<String, Value>| -> Option<bool> {
        if let Some(c) = str_of(o, "command") {
            if c == "ALL" {
                return Some(true);
            }
            let mut w = c.split_whitespace();
            let path = w.next().unwrap_or("");
            let args: Vec<&str> = w.collect();
            // No arguments in the rule: any arguments; `""`: none; others: exactly those.
            return Some(path == probe && (args.is_empty() || args == ["\"\""]));
        }
        if let Some(a) = str_of(o, "cmndalias") {
            let mut inner = vec![];
            let r = command_list(items(aliases.get(a)), aliases, probe, &mut inner);
            return if inner.is_empty() {
                Some(r == Some(true))
            } else {
                None
            };
        }
        None
    };
    last_match(list, &mut f, unknown)
}

/// The parsed sudoers: the main conversion, and the Defaults of each type in file order.
pub struct Sudoers {
    pub main: Value,
    pub defaults: Vec<(&'static str, Value)>,
}

pub const DEFAULT_TYPES: [&str; 5] = ["global", "host", "user", "runas", "command"];

/// One account's way to root: whose password sudo asks ("own", "root", "none").
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Decision {
    pub password: String,
    pub by: String,
}

/// Whether `who` may run any command or a shell as root on `host`, and with whose password.
pub fn sudoers_decide(
    s: &Sudoers,
    who: &Who,
    host: &str,
    unknown: &mut Vec<String>,
) -> Option<Decision> {
    let main = &s.main;
    let ua = main.get("User_Aliases").cloned().unwrap_or(Value::Null);
    let ha = main.get("Host_Aliases").cloned().unwrap_or(Value::Null);
    let ra = main.get("Runas_Aliases").cloned().unwrap_or(Value::Null);
    let ca = main.get("Command_Aliases").cloned().unwrap_or(Value::Null);
    let specs = items(main.get("User_Specs"));
    // The commands to try: one no rule names (only ALL allows it), and every shell a rule names.
    let mut probes: BTreeSet<String> = BTreeSet::from([ANY_COMMAND.to_string()]);
    let mut collect = |v: &Value| {
        for c in items(Some(v)) {
            if let Some(path) = c
                .get("command")
                .and_then(Value::as_str)
                .and_then(|c| c.split_whitespace().next())
            {
                if SHELLS.contains(&path.rsplit('/').next().unwrap_or("")) {
                    probes.insert(path.to_string());
                }
            }
        }
    };
    for spec in specs {
        for cs in items(spec.get("Cmnd_Specs")) {
            if let Some(c) = cs.get("Commands") {
                collect(c);
            }
        }
    }
    if let Some(o) = ca.as_object() {
        for v in o.values() {
            collect(v);
        }
    }
    let mut best: Option<Decision> = None;
    for probe in &probes {
        // The last rule (user, host, runas root, command) that matches decides.
        let mut decided: Option<(bool, Option<bool>, String)> = None;
        for spec in specs {
            if user_list(items(spec.get("User_List")), &ua, who, unknown) != Some(true)
                || host_list(items(spec.get("Host_List")), &ha, host, unknown) != Some(true)
            {
                continue;
            }
            for cs in items(spec.get("Cmnd_Specs")) {
                let root_target = match (cs.get("runasusers"), cs.get("runasgroups")) {
                    (None, None) => true,
                    // `(:group)`: the invoking user keeps their identity.
                    (None, Some(_)) => who.name.as_deref() == Some("root"),
                    (Some(l), _) => runas_list(items(Some(l)), &ra, unknown) == Some(true),
                };
                if !root_target {
                    continue;
                }
                if let Some(allow) = command_list(items(cs.get("Commands")), &ca, probe, unknown) {
                    let tag = items(cs.get("Options"))
                        .iter()
                        .find_map(|o| o.get("authenticate").and_then(Value::as_bool));
                    decided = Some((allow, tag, compact(spec)));
                }
            }
        }
        let Some((true, tag, by)) = decided else {
            continue;
        };
        let d = defaults_for(s, who, host, probe, unknown);
        let authenticate = tag.unwrap_or(d.authenticate);
        let password = if !authenticate {
            "none"
        } else if d.target_password {
            "root"
        } else {
            "own"
        };
        let decision = Decision {
            password: password.into(),
            by,
        };
        // The easiest way in counts: no password beats root's, root's beats one's own.
        let rank = |p: &str| match p {
            "none" => 0,
            "root" => 1,
            _ => 2,
        };
        if best
            .as_ref()
            .map(|b| rank(&decision.password) < rank(&b.password))
            .unwrap_or(true)
        {
            best = Some(decision);
        }
    }
    best
}

fn compact(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 300 {
        format!("{}…", &s[..300])
    } else {
        s
    }
}

struct Defaults {
    authenticate: bool,
    /// rootpw, targetpw or runaspw: root's password is asked (the target is root).
    target_password: bool,
}

fn defaults_for(
    s: &Sudoers,
    who: &Who,
    host: &str,
    probe: &str,
    unknown: &mut Vec<String>,
) -> Defaults {
    let main = &s.main;
    let alias = |k: &str| main.get(k).cloned().unwrap_or(Value::Null);
    let mut d = Defaults {
        authenticate: true,
        target_password: false,
    };
    let mut pw = BTreeMap::from([("rootpw", false), ("targetpw", false), ("runaspw", false)]);
    for (kind, v) in &s.defaults {
        for entry in items(v.get("Defaults")) {
            let binding = items(entry.get("Binding"));
            let applies = match *kind {
                "global" => binding.is_empty(),
                "host" => host_list(binding, &alias("Host_Aliases"), host, unknown) == Some(true),
                "user" => user_list(binding, &alias("User_Aliases"), who, unknown) == Some(true),
                "runas" => runas_list(binding, &alias("Runas_Aliases"), unknown) == Some(true),
                "command" => {
                    command_list(binding, &alias("Command_Aliases"), probe, unknown) == Some(true)
                }
                _ => false,
            };
            if !applies {
                continue;
            }
            for o in items(entry.get("Options")) {
                let Some(o) = o.as_object() else { continue };
                for (k, v) in o {
                    if k == "authenticate" {
                        if let Some(b) = v.as_bool() {
                            d.authenticate = b;
                        }
                    }
                    if let (Some(slot), Some(b)) = (pw.get_mut(k.as_str()), v.as_bool()) {
                        *slot = b;
                    }
                }
            }
        }
    }
    d.target_password = pw.values().any(|b| *b);
    d
}

// ---- the model -------------------------------------------------------------------------------------

/// The model's paths of one tool: account → password.
fn model_paths(p: &Permutation, tool: &str) -> BTreeMap<String, String> {
    p.effective("sudo")
        .and_then(|s| s.get("tools"))
        .and_then(|t| t.get(tool))
        .and_then(|t| t.get("paths"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| {
                    Some((
                        x.get("account")?.as_str()?.to_string(),
                        x.get("password")?.as_str()?.to_string(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn tool_field<'a>(p: &'a Permutation, tool: &str, field: &str) -> Option<&'a Value> {
    p.effective("sudo")?.get("tools")?.get(tool)?.get(field)
}

fn enabled(p: &Permutation, tool: &str) -> bool {
    tool_field(p, tool, "enabled")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

fn describe(path: Option<&str>) -> String {
    match path {
        None => "cannot become root".into(),
        Some("none") => "becomes root without a password".into(),
        Some("root") => "becomes root with root's password".into(),
        Some(_) => "becomes root with their own password".into(),
    }
}

pub fn run(ctx: &Ctx, p: &Permutation) -> CheckResult {
    let started = Instant::now();
    let id = CheckId::Sudo;
    if p.effective("sudo").is_none() {
        return CheckResult::not_applicable(id, "the projection carries no effective.sudo");
    }
    let tools: Vec<&str> = ["sudo", "sudo-rs", "doas"]
        .into_iter()
        .filter(|t| enabled(p, t))
        .collect();
    let mode = p.knob_str("sudo.mode").map(str::to_string);
    if tools.is_empty() {
        return match mode.as_deref() {
            Some("removed") => {
                let mut rec = Recorder::new(id);
                rec.note("sudo, sudo-rs and doas are all disabled: no /etc/sudoers or /etc/doas.conf is rendered");
                rec.finish(
                    "no escalation tool is enabled, as paranoid.sudo.mode = \"removed\" promises",
                    elapsed_ms(started),
                )
            }
            _ => CheckResult::not_applicable(
                id,
                "sudo, sudo-rs and doas are all disabled: nobody becomes root through them",
            ),
        };
    }
    let mut needed: Vec<&str> = vec![];
    if tools.iter().any(|t| *t != "doas") {
        needed.extend(["visudo", "cvtsudoers"]);
    }
    if tools.contains(&"doas") {
        needed.extend(["doas", "setpriv", "useradd", "groupadd"]);
    }
    if let Some(r) = super::preflight(
        ctx,
        id,
        Some("runs doas -C as throwaway accounts (and reads root-only sudoers files)"),
        &needed,
    ) {
        return r;
    }
    let mut rec = Recorder::new(id);
    if mode.as_deref() == Some("removed") {
        for t in &tools {
            rec.step(
                format!("no escalation tool is enabled (paranoid.sudo.mode = \"removed\"), but security.{t}.enable is true"),
                "",
                format!("effective.sudo.tools.{t}.enabled = true"),
                false,
            );
        }
    }
    let who = principals(p);
    let mut observed: Vec<(String, String, String)> = vec![]; // (tool, account, password)
    let r = (|| -> Result<(), String> {
        if let Some(t) = tools.iter().find(|t| **t != "doas") {
            observed.extend(judge_sudoers(ctx, p, t, &who, &mut rec)?);
        }
        if tools.contains(&"doas") {
            observed.extend(judge_doas(ctx, p, &who, &mut rec)?);
        }
        Ok(())
    })();
    if let Err(e) = r {
        rec.fail("could not run the sudo check", e);
    }
    if mode.as_deref() == Some("wheel-only") {
        for (tool, account, password) in &observed {
            let w = who.iter().find(|w| &w.account == account);
            let in_wheel = w.map(Who::in_wheel).unwrap_or(false)
                && w.and_then(|w| w.name.as_deref()).is_some();
            if !in_wheel {
                rec.step(
                    format!("nobody outside wheel becomes root (paranoid.sudo.mode = \"wheel-only\"): {account} does through {tool}"),
                    "",
                    format!("{account} {} through {tool}", describe(Some(password))),
                    false,
                );
            } else if password == "none" {
                rec.step(
                    format!("wheel is asked a password (paranoid.sudo.mode = \"wheel-only\"): {account} becomes root through {tool} without one"),
                    "",
                    format!("{account} {} through {tool}", describe(Some(password))),
                    false,
                );
            }
        }
    }
    rec.finish(
        "the tools' own parsers give exactly the model's ways to root, and paranoid.sudo.mode allows each",
        elapsed_ms(started),
    )
}

/// visudo and cvtsudoers on the rendered sudoers; every account judged; compared with the model.
/// Returns the paths sudo's parser gives (root's left out: root needs no tool).
fn judge_sudoers(
    ctx: &Ctx,
    p: &Permutation,
    tool: &str,
    who: &[Who],
    rec: &mut Recorder,
) -> Result<Vec<(String, String, String)>, String> {
    let Some(text) = p.rendered("sudoers") else {
        rec.fail(
            format!("security.{tool}.enable is true but no sudoers is rendered"),
            "rendered.sudoers is null",
        );
        return Ok(vec![]);
    };
    if tool == "sudo-rs" {
        rec.note("sudo-rs is not packaged for Debian 12: its /etc/sudoers is read by sudo's own parser (visudo, cvtsudoers); sudo-rs implements a subset of that format, and its own reading is the model's only");
    }
    let scratch = ctx.scratch("sudo").map_err(|e| e.to_string())?;
    let file = scratch.path("sudoers");
    write_file(&file, text, 0o440).map_err(|e| e.to_string())?;
    let check = ctx
        .tool("visudo")
        .args(["-c", "-f"])
        .arg(file.to_string_lossy());
    let o = ctx
        .run(&check, Duration::from_secs(10))
        .map_err(|e| e.to_string())?;
    if !rec.step(
        format!(
            "visudo accepts the rendered sudoers ({tool} refuses to run on a file it cannot parse)"
        ),
        check.display(),
        o.digest(3),
        o.ok(),
    ) {
        return Ok(vec![]);
    }
    let convert = |deftypes: Option<&str>| -> Result<(String, Value), String> {
        let mut c = ctx.tool("cvtsudoers").args(["-f", "json"]);
        if let Some(d) = deftypes {
            c = c.args(["-d", d]);
        }
        let c = c.arg(file.to_string_lossy());
        let o = ctx
            .run(&c, Duration::from_secs(10))
            .map_err(|e| e.to_string())?;
        let v = serde_json::from_str(&o.stdout)
            .map_err(|e| format!("`{}`: not JSON ({e}): {}", c.display(), o.digest(3)))?;
        Ok((c.display(), v))
    };
    let (cmd, main) = convert(None)?;
    let mut defaults = vec![];
    for t in DEFAULT_TYPES {
        defaults.push((t, convert(Some(t))?.1));
    }
    rec.note(format!(
        "sudo's parser: {cmd} (and -d {} for the Defaults of each type)",
        DEFAULT_TYPES.join("|")
    ));
    let sudoers = Sudoers { main, defaults };
    let host = p
        .projection
        .get("host")
        .and_then(Value::as_str)
        .unwrap_or("localhost")
        .to_string();
    let model = model_paths(p, tool);
    let wheel_only_exec = tool_field(p, tool, "execWheelOnly")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if wheel_only_exec {
        rec.note(format!("security.{tool}.execWheelOnly: NixOS makes the setuid wrapper executable by wheel only (the VM tier's to prove); accounts outside wheel are counted out here as the model counts them"));
    }
    let mut out = vec![];
    for w in who {
        let mut unknown = vec![];
        let mut d = sudoers_decide(&sudoers, w, &host, &mut unknown);
        unknown.sort();
        unknown.dedup();
        if !unknown.is_empty() {
            rec.note(format!(
                "{}: items this machine cannot evaluate were taken as not matching: {}",
                w.account,
                unknown.join(", ")
            ));
        }
        if wheel_only_exec && d.is_some() && !w.in_wheel() {
            rec.note(format!(
                "{}: sudoers lets them in, but only wheel can execute {tool} (execWheelOnly)",
                w.account
            ));
            d = None;
        }
        let got = d.as_ref().map(|d| d.password.clone());
        if w.name.as_deref() == Some("root") {
            rec.note(format!(
                "root {} through {tool} by the rules (sudo never asks root for a password)",
                describe(got.as_deref())
            ));
            continue;
        }
        let want = model.get(&w.account).cloned();
        rec.step(
            format!(
                "model agrees with sudo's parser: {} {} through {tool}",
                w.account,
                describe(want.as_deref())
            ),
            cmd.clone(),
            format!(
                "{}{}",
                describe(got.as_deref()),
                d.as_ref()
                    .map(|d| format!(" (last matching rule: {})", d.by))
                    .unwrap_or_default()
            ),
            got == want,
        );
        if let Some(pw) = got {
            out.push((tool.to_string(), w.account.clone(), pw));
        }
    }
    Ok(out)
}

/// Rewrite doas.conf identities for `who`, played by throwaway account `standin` in throwaway
/// group `group`: their name and uid → the stand-in, each of their groups → the stand-in
/// group, every other numeric identity → a name nobody has.
pub fn doas_for(conf: &str, who: &Who, standin: &str, group: &str) -> String {
    conf.lines()
        .map(|line| {
            let body = line.split('#').next().unwrap_or("");
            let spaced = body.replace('{', " { ").replace('}', " } ");
            let words: Vec<&str> = spaced.split_whitespace().collect();
            if !matches!(words.first(), Some(&"permit") | Some(&"deny")) {
                return line.to_string();
            }
            // The identity is the first word after the options (a setenv { … } block skipped).
            let mut i = 1;
            while i < words.len() {
                match words[i] {
                    "nopass" | "nolog" | "persist" | "keepenv" => i += 1,
                    "setenv" => {
                        i += 1;
                        if words.get(i) == Some(&"{") {
                            while i < words.len() && words[i] != "}" {
                                i += 1;
                            }
                            i += 1;
                        }
                    }
                    _ => break,
                }
            }
            let Some(ident) = words.get(i) else {
                return line.to_string();
            };
            let mapped = if let Some(g) = ident.strip_prefix(':') {
                if who.groups.iter().any(|x| x == g) {
                    format!(":{group}")
                } else if g.parse::<u64>().is_ok() {
                    // The host's gids are not modelled: a numeric group matches nobody here.
                    ":pzs-nobody".to_string()
                } else {
                    ident.to_string()
                }
            } else if who.name.as_deref() == Some(*ident)
                || who.uid.map(|u| u.to_string()).as_deref() == Some(*ident)
            {
                standin.to_string()
            } else if ident.parse::<u64>().is_ok() {
                "pzs-nobody".to_string()
            } else {
                ident.to_string()
            };
            let mut ws: Vec<String> = words.iter().map(|w| w.to_string()).collect();
            ws[i] = mapped;
            ws.join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

fn judge_doas(
    ctx: &Ctx,
    p: &Permutation,
    who: &[Who],
    rec: &mut Recorder,
) -> Result<Vec<(String, String, String)>, String> {
    let Some(text) = p.rendered("doas_conf") else {
        rec.fail(
            "security.doas.enable is true but no doas.conf is rendered",
            "rendered.doas_conf is null",
        );
        return Ok(vec![]);
    };
    let users = ctx.users()?;
    let scratch = ctx.scratch("doas").map_err(|e| e.to_string())?;
    let file = scratch.path("doas.conf");
    write_file(&file, text, 0o644).map_err(|e| e.to_string())?;
    let parse = ctx.tool("doas").arg("-C").arg(file.to_string_lossy());
    let o = ctx
        .run(&parse, Duration::from_secs(10))
        .map_err(|e| e.to_string())?;
    if !rec.step(
        "doas -C parses the rendered doas.conf",
        parse.display(),
        o.digest(3),
        o.ok(),
    ) {
        return Ok(vec![]);
    }
    // Commands to ask about: one no rule names, and every shell a rule's `cmd` names.
    let mut probes: BTreeSet<String> = BTreeSet::from([ANY_COMMAND.to_string()]);
    for l in text.lines() {
        let w: Vec<&str> = l
            .split('#')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        if let Some(i) = w.iter().position(|x| *x == "cmd") {
            if let Some(c) = w.get(i + 1) {
                if SHELLS.contains(&c.rsplit('/').next().unwrap_or("")) {
                    probes.insert(c.to_string());
                }
            }
        }
    }
    let model = model_paths(p, "doas");
    let member = &users.member;
    rec.adapt(format!(
        "doas.conf: for each account, its name (or uid) → {} and its groups → :{} (throwaway stand-ins, in /etc/passwd and /etc/group so doas can resolve them); other numeric identities → a name nobody has",
        member.name, users.wheel
    ));
    let mut out = vec![];
    for w in who {
        // root is root; the anonymous account is the outsider, in no group, with the file as is.
        let (conf, run_as) = match w.name.as_deref() {
            Some("root") => (text.to_string(), None),
            Some(_) => (doas_for(text, w, &member.name, &users.wheel), Some(member)),
            None => (text.to_string(), Some(&users.outsider)),
        };
        let f = scratch.path(&format!("doas-{}.conf", out.len() + rec.evidence.len()));
        write_file(&f, &conf, 0o644).map_err(|e| e.to_string())?;
        let mut verdict: Option<String> = None;
        let mut shown = String::new();
        let mut last_cmd = String::new();
        for probe in &probes {
            let mut c = match run_as {
                Some(u) => ctx.tool("setpriv").args([
                    format!("--reuid={}", u.uid),
                    format!("--regid={}", u.gid),
                    "--init-groups".to_string(),
                    ctx.tools.path("doas"),
                ]),
                None => ctx.tool("doas"),
            };
            c = c
                .arg("-C")
                .arg(f.to_string_lossy())
                .args(["-u", "root", probe.as_str()]);
            let o = ctx
                .run(&c, Duration::from_secs(10))
                .map_err(|e| e.to_string())?;
            let said = o.stdout.trim().to_string();
            if !matches!(said.as_str(), "permit" | "permit nopass" | "deny") {
                return Err(format!(
                    "`{}` said neither permit nor deny: {}",
                    c.display(),
                    o.digest(3)
                ));
            }
            shown.push_str(&format!("{probe}: {said}; "));
            last_cmd = c.display();
            let pw = match said.as_str() {
                "permit nopass" => Some("none"),
                "permit" => Some("own"),
                _ => None,
            };
            if let Some(pw) = pw {
                if verdict.as_deref() != Some("none") {
                    verdict = Some(pw.to_string());
                }
            }
        }
        if w.name.as_deref() == Some("root") {
            rec.note(format!(
                "root {} through doas ({})",
                describe(verdict.as_deref()),
                shown.trim_end_matches("; ")
            ));
            continue;
        }
        let want = model.get(&w.account).cloned();
        rec.step(
            format!(
                "model agrees with doas -C: {} {} through doas",
                w.account,
                describe(want.as_deref())
            ),
            last_cmd,
            format!(
                "{} ({})",
                describe(verdict.as_deref()),
                shown.trim_end_matches("; ")
            ),
            verdict == want,
        );
        if let Some(pw) = verdict {
            out.push(("doas".to_string(), w.account.clone(), pw));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn who(name: &str, groups: &[&str]) -> Who {
        Who {
            account: name.into(),
            name: Some(name.into()),
            uid: Some(1000),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }
    }

    fn sudoers(main: Value, defaults: &[(&'static str, Value)]) -> Sudoers {
        Sudoers {
            main,
            defaults: defaults.to_vec(),
        }
    }

    #[test]
    fn the_last_matching_rule_and_a_tag_over_defaults_decide() {
        let main = json!({"User_Specs": [
            {"User_List": [{"usergroup": "wheel"}], "Host_List": [{"hostname": "ALL"}],
             "Cmnd_Specs": [{"runasusers": [{"username": "ALL"}], "Commands": [{"command": "ALL"}]}]},
            {"User_List": [{"usergroup": "wheel"}], "Host_List": [{"hostname": "ALL"}],
             "Cmnd_Specs": [{"runasusers": [{"username": "ALL"}], "Options": [{"authenticate": false}], "Commands": [{"command": "ALL"}]}]}
        ]});
        let s = sudoers(main, &[]);
        let mut u = vec![];
        assert_eq!(
            sudoers_decide(&s, &who("cadey", &["wheel"]), "h", &mut u)
                .unwrap()
                .password,
            "none"
        );
        assert!(sudoers_decide(&s, &who("eve", &["users"]), "h", &mut u).is_none());
    }

    #[test]
    fn defaults_waive_or_redirect_the_password_by_type() {
        let main = json!({"User_Specs": [
            {"User_List": [{"username": "cadey"}], "Host_List": [{"hostname": "ALL"}],
             "Cmnd_Specs": [{"Commands": [{"command": "ALL"}]}]}]});
        let global_off = json!({"Defaults": [{"Options": [{"authenticate": false}]}]});
        let user_rootpw = json!({"Defaults": [{"Binding": [{"username": "cadey"}], "Options": [{"rootpw": true}]}]});
        let mut u = vec![];
        let s = sudoers(main.clone(), &[("global", global_off)]);
        assert_eq!(
            sudoers_decide(&s, &who("cadey", &[]), "h", &mut u)
                .unwrap()
                .password,
            "none"
        );
        let s = sudoers(main, &[("user", user_rootpw)]);
        assert_eq!(
            sudoers_decide(&s, &who("cadey", &[]), "h", &mut u)
                .unwrap()
                .password,
            "root"
        );
    }

    #[test]
    fn negation_runas_and_commands_narrow_the_way_in() {
        let main = json!({
        "User_Aliases": {"ADMINS": [{"usergroup": "wheel"}, {"username": "bob", "negated": true}]},
        "User_Specs": [
            {"User_List": [{"useralias": "ADMINS"}], "Host_List": [{"hostname": "ALL"}],
             "Cmnd_Specs": [{"runasgroups": [{"usergroup": "wheel"}], "Commands": [{"command": "ALL"}]},
                            {"runasusers": [{"username": "operator"}], "Commands": [{"command": "ALL"}]},
                            {"Commands": [{"command": "/usr/bin/systemctl"}]}]},
            {"User_List": [{"username": "carol"}], "Host_List": [{"hostname": "otherhost"}],
             "Cmnd_Specs": [{"Commands": [{"command": "ALL"}]}]},
            {"User_List": [{"username": "dave"}], "Host_List": [{"hostname": "ALL"}],
             "Cmnd_Specs": [{"Commands": [{"command": "/bin/sh"}]}]}
        ]});
        let s = sudoers(main, &[]);
        let mut u = vec![];
        assert!(
            sudoers_decide(&s, &who("alice", &["wheel"]), "h", &mut u).is_none(),
            "(:wheel), (operator) and one command are no way to root"
        );
        assert!(
            sudoers_decide(&s, &who("carol", &[]), "h", &mut u).is_none(),
            "a rule for another host"
        );
        assert_eq!(
            sudoers_decide(&s, &who("dave", &[]), "h", &mut u)
                .unwrap()
                .password,
            "own",
            "a shell is root"
        );
    }

    #[test]
    fn doas_identities_are_mapped_to_the_stand_ins() {
        let conf = "permit persist setenv { SSH_AUTH_SOCK } :wheel\npermit nopass cadey as root\npermit 1000\npermit nopass keepenv root\n";
        let t = doas_for(conf, &who("cadey", &["wheel"]), "pzsXu", "pzsXw");
        assert_eq!(
            t,
            "permit persist setenv { SSH_AUTH_SOCK } :pzsXw\npermit nopass pzsXu as root\npermit pzsXu\npermit nopass keepenv root\n"
        );
    }
}
