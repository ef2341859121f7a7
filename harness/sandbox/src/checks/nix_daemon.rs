//! Check 3: the Nix daemon as the configuration renders it, judged by Nix itself.
//!
//! - Static: `nix show-config --json` reads the complete rendered nix.conf (NIX_CONF_DIR) and the
//!   daemon's NIX_CONFIG, with no user configuration, and must read trusted-users, allowed-users
//!   and substituters exactly as the model (`effective.nix`, lib/posture/nixconf.nix) says.
//! - Live: a private nix-daemon (own socket, own chroot store; the host's /nix and daemon are
//!   never touched) runs the same file and NIX_CONFIG, and every principal that matters connects
//!   (`nix store ping`): root, each account the lists name, each admin, a member of every group
//!   the lists name, an account nobody configured. Throwaway accounts and groups stand for the
//!   configuration's (the lists are rewritten to their names, an adaptation). The daemon's log
//!   says whether it admitted and trusted each one; that must be what the model says, and what
//!   the posture allows: trusted-users root only, allowed-users as paranoid.nix.allowedUsers.

use super::elapsed_ms;
use crate::context::{write_file, Ctx, TestUser};
use crate::exec::{Cmd, Daemon};
use crate::model::{CheckId, CheckResult, Recorder};
use crate::projection::{strings, Permutation};

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

const TOOLS: &[&str] = &["nix", "nix-daemon", "useradd", "groupadd"];
/// Settings replaced so the daemon runs privately here (paths, and what needs nixbld users).
const OVERRIDDEN: &[&str] = &["store", "sandbox", "build-users-group"];
/// The user lists whose names and groups are mapped to throwaway stand-ins.
const USER_LISTS: &[&str] = &[
    "trusted-users",
    "allowed-users",
    "extra-trusted-users",
    "extra-allowed-users",
];
/// The settings held to the model.
const COMPARED: &[(&str, &str)] = &[
    ("trusted-users", "trustedUsers"),
    ("allowed-users", "allowedUsers"),
    ("substituters", "substituters"),
];

/// Who `allowed-users` admits, as the knob says (before group names are mapped).
pub fn promised_allowed(p: &Permutation) -> Vec<String> {
    match p.knob("nix.allowedUsers") {
        Some(v) if v.as_str() == Some("root") => vec!["root".into()],
        Some(v) if v.as_str() == Some("wheel") => vec!["@wheel".into()],
        Some(v) if v.is_array() => strings(Some(v)),
        _ => vec!["@wheel".into()],
    }
}

/// nix-daemon's matchUser: `*`, the user's name, or `@group` of a group the user is in.
pub fn matches(list: &[String], name: Option<&str>, groups: &[String]) -> bool {
    list.iter().any(|e| {
        e == "*"
            || Some(e.as_str()) == name
            || e.strip_prefix('@')
                .map(|g| groups.iter().any(|x| x == g))
                .unwrap_or(false)
    })
}

/// What the model says the daemon reads (`effective.nix`).
#[derive(Clone, Debug, Default)]
pub struct Model {
    pub values: BTreeMap<&'static str, Vec<String>>,
    pub trusted_accounts: Vec<String>,
    pub allowed_accounts: Vec<String>,
    pub unjudged: Vec<String>,
}

impl Model {
    pub fn of(p: &Permutation) -> Option<Model> {
        let n = p.effective("nix")?;
        let mut m = Model::default();
        for (setting, key) in COMPARED {
            m.values
                .insert(setting, strings(n.get(*key).and_then(|v| v.get("value"))));
        }
        m.trusted_accounts = strings(n.get("trustedUsers").and_then(|v| v.get("accounts")));
        m.allowed_accounts = strings(n.get("allowedUsers").and_then(|v| v.get("accounts")));
        m.unjudged = n
            .get("unjudged")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|u| {
                        u.get("reason")
                            .and_then(Value::as_str)
                            .unwrap_or("?")
                            .to_string()
                    })
                    .collect()
            })
            .unwrap_or_default();
        Some(m)
    }
    fn list(&self, setting: &str) -> &[String] {
        self.values.get(setting).map(Vec::as_slice).unwrap_or(&[])
    }
}

/// A host account as the model knows it (`effective.accounts`).
#[derive(Clone, Debug)]
pub struct Account {
    pub name: String,
    pub groups: Vec<String>,
    pub admin: bool,
}

pub fn accounts(p: &Permutation) -> BTreeMap<String, Account> {
    p.effective("accounts")
        .and_then(Value::as_object)
        .map(|o| {
            o.iter()
                .map(|(name, a)| {
                    (
                        name.clone(),
                        Account {
                            name: name.clone(),
                            groups: strings(a.get("groups")),
                            admin: a.get("admin").and_then(Value::as_bool).unwrap_or(false),
                        },
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Rewrite nix.conf (or NIX_CONFIG) lines: the settings in OVERRIDDEN dropped, the user lists'
/// entries renamed with `rename` (`@group` and names; `*`, `root` and `@root` are kept by the
/// caller's mapping). Returns the text and one note per change.
pub fn adapt_lines(
    text: &str,
    source: &str,
    rename: &dyn Fn(&str) -> String,
) -> (String, Vec<String>) {
    let mut out = vec![];
    let mut notes = vec![];
    for line in text.lines() {
        // Nix drops everything after `#`.
        let body = line.split('#').next().unwrap_or("");
        let key = body.split('=').next().unwrap_or("").trim();
        if body.contains('=') && OVERRIDDEN.contains(&key) {
            notes.push(format!(
                "{source}: `{}` dropped (private daemon)",
                line.trim()
            ));
            continue;
        }
        if body.contains('=') && USER_LISTS.contains(&key) {
            let (_, value) = body.split_once('=').unwrap_or(("", ""));
            let mapped: Vec<String> = value.split_whitespace().map(rename).collect();
            let new = format!("{key} = {}", mapped.join(" "));
            if value.split_whitespace().collect::<Vec<_>>()
                != mapped.iter().map(String::as_str).collect::<Vec<_>>()
            {
                notes.push(format!(
                    "{source}: `{}` → `{new}` (throwaway accounts and groups stand for the configuration's)",
                    line.trim()
                ));
            }
            out.push(new);
            continue;
        }
        out.push(line.to_string());
    }
    (out.join("\n") + "\n", notes)
}

/// The private daemon's nix.conf: the adapted file, then its own store, no sandbox, no build users.
pub fn adapt_conf(
    conf: &str,
    store_root: &Path,
    rename: &dyn Fn(&str) -> String,
) -> (String, Vec<String>) {
    let (mut text, mut notes) = adapt_lines(conf, "nix.conf", rename);
    text.push_str(
        "# paranoid-sandbox: a private daemon with a chroot store; no build users here\n",
    );
    text.push_str(&format!(
        "store = local?root={}\nsandbox = false\nbuild-users-group = \n",
        store_root.display()
    ));
    notes.push(format!(
        "nix.conf: store = local?root={}, sandbox = false, build-users-group = (empty) appended",
        store_root.display()
    ));
    (text, notes)
}

/// One connection to make: who, which throwaway account plays them, what the model and the
/// posture say.
struct Principal {
    what: String,
    account: Option<String>,
    /// The name the lists would name them by (their account's, or a synthetic one's).
    name: Option<String>,
    /// All their groups on the host (for the promise), by the configuration's names.
    groups: Vec<String>,
    user: Option<TestUser>,
}

pub fn run(ctx: &Ctx, p: &Permutation) -> CheckResult {
    let started = Instant::now();
    let id = CheckId::NixDaemon;
    let Some(conf) = p.rendered("nix_conf") else {
        return CheckResult::not_applicable(id, "nix.enable is false: there is no daemon");
    };
    let Some(model) = Model::of(p) else {
        return CheckResult::not_applicable(
            id,
            "the projection carries no effective.nix (nix.enable is false)",
        );
    };
    if let Some(r) = super::preflight(
        ctx,
        id,
        Some("starts a private nix-daemon and connects as throwaway users"),
        TOOLS,
    ) {
        return r;
    }
    let mut rec = Recorder::new(id);
    if let Err(e) = run_inner(ctx, p, conf, &model, &mut rec) {
        rec.fail("could not run the nix-daemon check", e);
    }
    rec.finish(
        "Nix reads nix.conf and NIX_CONFIG as the model says, and the private daemon admits and trusts exactly whom the model and paranoid.nix promise",
        elapsed_ms(started),
    )
}

fn show(values: &[String]) -> String {
    if values.is_empty() {
        "(empty)".into()
    } else {
        values.join(" ")
    }
}

fn run_inner(
    ctx: &Ctx,
    p: &Permutation,
    conf: &str,
    model: &Model,
    rec: &mut Recorder,
) -> Result<(), String> {
    let users = ctx.users()?;
    let scratch = ctx.scratch("nix").map_err(|e| e.to_string())?;
    let nix_config = p.rendered("nix_config");
    let promise_on = p.knob_bool("nix.enable");
    for u in &model.unjudged {
        rec.note(format!(
            "the model does not judge this configuration: {u}; Nix's reading is compared anyway"
        ));
    }

    // ---- static: what Nix reads from the complete rendered file and NIX_CONFIG --------------
    let host_conf = scratch.path("host-conf");
    write_file(&host_conf.join("nix.conf"), conf, 0o644).map_err(|e| e.to_string())?;
    let empty = scratch.path("empty");
    std::fs::create_dir_all(&empty).map_err(|e| e.to_string())?;
    let mut show_cmd = Cmd::new(ctx.tools.path("nix"))
        .env_clear()
        .env("HOME", empty.to_string_lossy())
        .env("XDG_CONFIG_HOME", empty.to_string_lossy())
        .env("XDG_CONFIG_DIRS", empty.to_string_lossy())
        .env("NIX_USER_CONF_FILES", "")
        .env("NIX_CONF_DIR", host_conf.to_string_lossy());
    if let Some(env) = nix_config {
        show_cmd = show_cmd.env("NIX_CONFIG", env);
    }
    let show_cmd = show_cmd.args([
        "--extra-experimental-features",
        "nix-command",
        "show-config",
        "--json",
    ]);
    let o = ctx
        .run(&show_cmd, Duration::from_secs(30))
        .map_err(|e| e.to_string())?;
    let json: Value = o
        .stdout
        .find('{')
        .and_then(|i| serde_json::from_str(&o.stdout[i..]).ok())
        .ok_or_else(|| {
            format!(
                "`{}` printed no settings: {}",
                show_cmd.display(),
                o.digest(3)
            )
        })?;
    let read = |k: &str| strings(json.get(k).and_then(|v| v.get("value")));
    for (setting, _) in COMPARED {
        let nix = read(setting);
        let want = model.list(setting);
        rec.step(
            format!("model agrees with Nix: {setting} = {}", show(want)),
            show_cmd.display(),
            format!("nix show-config: {setting} = {}", show(&nix)),
            nix == want,
        );
    }
    for w in o.stderr.lines().filter(|l| l.contains("unknown setting")) {
        rec.note(format!(
            "nix {}: {}",
            ctx.tools.versions.get("nix").cloned().unwrap_or_default(),
            w.trim()
        ));
    }
    if promise_on && p.knob_bool("nix.blockBinaryCache") {
        let subs = read("substituters");
        rec.step(
            "no substituter is cache.nixos.org (paranoid.nix.blockBinaryCache)",
            show_cmd.display(),
            format!("substituters = {}", show(&subs)),
            !subs.iter().any(|s| s.contains("cache.nixos.org")),
        );
    }

    // ---- who connects ------------------------------------------------------------------------
    let accts = accounts(p);
    let trusted_list = model.list("trusted-users").to_vec();
    let allowed_list = model.list("allowed-users").to_vec();
    let named: BTreeSet<String> = trusted_list.iter().chain(&allowed_list).cloned().collect();
    let named_groups: BTreeSet<String> = named
        .iter()
        .filter_map(|e| e.strip_prefix('@'))
        .filter(|g| *g != "root")
        .map(str::to_string)
        .collect();
    let named_users: BTreeSet<String> = named
        .iter()
        .filter(|e| !e.starts_with('@') && *e != "*" && *e != "root")
        .cloned()
        .collect();
    // Stand-in groups for every group a user list names anywhere (overridden lines too).
    let mut group_map: BTreeMap<String, String> = BTreeMap::new();
    let every_line = format!("{conf}\n{}", nix_config.unwrap_or(""));
    for line in every_line.lines() {
        let body = line.split('#').next().unwrap_or("");
        let Some((k, v)) = body.split_once('=') else {
            continue;
        };
        if !USER_LISTS.contains(&k.trim()) {
            continue;
        }
        for g in v
            .split_whitespace()
            .filter_map(|e| e.strip_prefix('@'))
            .filter(|g| *g != "root")
        {
            if !group_map.contains_key(g) {
                group_map.insert(g.to_string(), ctx.standin_group(g)?);
            }
        }
    }
    let standin_groups = |host_groups: &[String]| -> Vec<String> {
        host_groups
            .iter()
            .filter_map(|g| group_map.get(g).cloned())
            .collect()
    };
    let mut principals: Vec<Principal> = vec![Principal {
        what: "root".into(),
        account: Some("root".into()),
        name: Some("root".into()),
        groups: accts
            .get("root")
            .map(|a| a.groups.clone())
            .unwrap_or_else(|| vec!["root".into()]),
        user: None,
    }];
    let mut account_names: BTreeSet<String> = named_users
        .iter()
        .filter(|n| accts.contains_key(*n))
        .cloned()
        .collect();
    account_names.extend(
        accts
            .values()
            .filter(|a| a.admin && a.name != "root")
            .map(|a| a.name.clone()),
    );
    for n in &account_names {
        let a = &accts[n];
        let user = ctx.standin_user(&format!("account {n}"), &standin_groups(&a.groups))?;
        principals.push(Principal {
            what: format!(
                "{n} (an account of the host{}{})",
                if a.admin { ", an admin" } else { "" },
                if a.groups.is_empty() {
                    String::new()
                } else {
                    format!(", groups {}", a.groups.join(" "))
                }
            ),
            account: Some(n.clone()),
            name: Some(n.clone()),
            groups: a.groups.clone(),
            user: Some(user),
        });
    }
    for n in named_users.iter().filter(|n| !accts.contains_key(*n)) {
        let user = ctx.standin_user(&format!("name {n}"), &[])?;
        principals.push(Principal {
            what: format!("an account named {n} (not declared by the host)"),
            account: None,
            name: Some(n.clone()),
            groups: vec![],
            user: Some(user),
        });
    }
    for g in &named_groups {
        let user = ctx.standin_user(
            &format!("member of {g}"),
            &standin_groups(std::slice::from_ref(g)),
        )?;
        principals.push(Principal {
            what: format!("a member of @{g} (and of no other group)"),
            account: None,
            name: None,
            groups: vec![g.clone()],
            user: Some(user),
        });
    }
    principals.push(Principal {
        what: "any other user (an account the configuration does not name, in no group)".into(),
        account: None,
        name: None,
        groups: vec![],
        user: Some(users.outsider.clone()),
    });
    // Names in the lists → the stand-ins' names.
    let mut name_map: BTreeMap<String, String> = BTreeMap::new();
    for pr in &principals {
        if let (Some(n), Some(u)) = (&pr.name, &pr.user) {
            name_map.insert(n.clone(), u.name.clone());
        }
    }
    let rename = |e: &str| -> String {
        if let Some(g) = e.strip_prefix('@') {
            group_map
                .get(g)
                .map(|s| format!("@{s}"))
                .unwrap_or_else(|| e.to_string())
        } else {
            name_map.get(e).cloned().unwrap_or_else(|| e.to_string())
        }
    };

    // ---- live: a private daemon with the same file and NIX_CONFIG ------------------------------
    let conf_dir = scratch.path("conf");
    let state = scratch.path("state");
    let sock = state.join("daemon-socket").join("socket");
    let (text, notes) = adapt_conf(conf, &scratch.path("store"), &rename);
    for n in notes {
        rec.adapt(n);
    }
    let env_text = nix_config.map(|e| {
        let (t, notes) = adapt_lines(e, "NIX_CONFIG", &rename);
        for n in notes {
            rec.adapt(n);
        }
        t
    });
    write_file(&conf_dir.join("nix.conf"), &text, 0o644).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(sock.parent().unwrap()).map_err(|e| e.to_string())?;
    let client_conf = scratch.path("client-conf");
    std::fs::create_dir_all(&client_conf).map_err(|e| e.to_string())?;

    let mut daemon_cmd = ctx
        .tool("nix-daemon")
        .env("NIX_CONF_DIR", conf_dir.to_string_lossy())
        .env("NIX_STATE_DIR", state.to_string_lossy())
        .env("NIX_LOG_DIR", state.join("log").to_string_lossy())
        .env("NIX_DAEMON_SOCKET_PATH", sock.to_string_lossy());
    if let Some(e) = &env_text {
        daemon_cmd = daemon_cmd.env("NIX_CONFIG", e);
    }
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
        "private nix-daemon (pid {}) on {}, store chroot {}{}",
        daemon.pid(),
        sock.display(),
        scratch.path("store").display(),
        if env_text.is_some() {
            ", NIX_CONFIG in its environment"
        } else {
            ""
        }
    ));

    let promise = promised_allowed(p);
    for pr in &principals {
        // The model: its own verdict for the host's accounts, its lists for the others.
        let (m_trusted, m_allowed) = match &pr.account {
            Some(a) if accts.contains_key(a) => (
                model.trusted_accounts.contains(a),
                model.allowed_accounts.contains(a),
            ),
            _ => {
                let t = matches(&trusted_list, pr.name.as_deref(), &pr.groups);
                (
                    t,
                    t || matches(&allowed_list, pr.name.as_deref(), &pr.groups),
                )
            }
        };
        let (name, mut c) = match &pr.user {
            Some(u) => (
                u.name.clone(),
                Cmd::new(ctx.tools.path("nix"))
                    .env_clear()
                    .env("NIX_CONF_DIR", client_conf.to_string_lossy())
                    .env("HOME", u.home.to_string_lossy())
                    .env("USER", &u.name)
                    .as_user(u.uid, u.gid, &u.name),
            ),
            None => (
                "root".to_string(),
                Cmd::new(ctx.tools.path("nix"))
                    .env_clear()
                    .env("NIX_CONF_DIR", client_conf.to_string_lossy())
                    .env("HOME", scratch.dir.to_string_lossy()),
            ),
        };
        c = c
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
        // The reason is only in the daemon's log; wait briefly for the forked handler to write it.
        let needle_ok = format!("user {name}");
        let needle_no = format!("user '{name}' is not allowed to connect");
        let mut log_line = None;
        let until = Instant::now() + Duration::from_secs(2);
        while log_line.is_none() && Instant::now() < until {
            log_line = daemon
                .log_text()
                .lines()
                .find(|l| {
                    (l.contains("accepted connection")
                        && (l.ends_with(&needle_ok) || l.contains(&format!("{needle_ok} ("))))
                        || l.contains(&needle_no)
                })
                .map(|l| l.trim().to_string());
            if log_line.is_none() {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let logged = log_line
            .clone()
            .unwrap_or_else(|| "(nothing logged)".into());
        let d_allowed = accepted && logged.contains("accepted connection");
        let d_trusted = d_allowed && logged.ends_with("(trusted)");
        let client = o
            .line_with("cannot open connection")
            .or_else(|| o.line_with("Version:"))
            .unwrap_or_else(|| o.digest(2));
        let decisive = format!("{}: {client}; daemon log: {logged}", o.rc());
        let verdict = |allowed: bool, trusted: bool| {
            if trusted {
                "admitted and trusted"
            } else if allowed {
                "admitted, not trusted"
            } else {
                "refused"
            }
        };
        rec.step(
            format!(
                "model agrees with nix-daemon: {} ({name}) is {}",
                pr.what,
                verdict(m_allowed, m_trusted)
            ),
            c.display(),
            decisive.clone(),
            (d_allowed, d_trusted) == (m_allowed, m_trusted),
        );
        if !promise_on {
            continue;
        }
        let is_root = pr.what == "root";
        if d_trusted && !is_root {
            rec.step(
                format!(
                    "{} is not trusted (paranoid.nix keeps trusted-users to root)",
                    pr.what
                ),
                c.display(),
                decisive.clone(),
                false,
            );
        }
        let promised = is_root || matches(&promise, pr.name.as_deref(), &pr.groups);
        if d_allowed != promised {
            rec.step(
                format!(
                    "{} is {} (paranoid.nix.allowedUsers = {})",
                    pr.what,
                    if promised { "admitted" } else { "refused" },
                    promise.join(" ")
                ),
                c.display(),
                decisive,
                false,
            );
        }
    }
    if !promise_on {
        rec.note(
            "paranoid.nix.enable is off: only the model is held to the daemon, nothing is promised",
        );
    }
    daemon.stop();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_daemon_config_replaces_only_paths_and_build_users_and_maps_the_lists() {
        let map = |e: &str| match e {
            "@wheel" => "@pzsXw".to_string(),
            "cadey" => "pzsXs0".to_string(),
            o => o.to_string(),
        };
        let (t, notes) = adapt_conf(
            "allowed-users = @wheel\nsandbox = true\ntrusted-users = root cadey # comment\nrequire-sigs = true\n",
            Path::new("/s"),
            &map,
        );
        assert!(t.contains("allowed-users = @pzsXw\n"), "{t}");
        assert!(t.contains("trusted-users = root pzsXs0\n"), "{t}");
        assert!(t.contains("require-sigs = true\n"));
        assert!(!t.contains("sandbox = true") && t.contains("sandbox = false"));
        assert!(t.contains("store = local?root=/s"));
        assert_eq!(notes.len(), 4, "{notes:?}");
        let (e, _) = adapt_lines(
            "store = daemon\nextra-trusted-users = cadey",
            "NIX_CONFIG",
            &map,
        );
        assert_eq!(e, "extra-trusted-users = pzsXs0\n");
    }

    #[test]
    fn admission_follows_names_groups_and_star() {
        let l = vec!["@wheel".to_string()];
        assert!(matches(&l, Some("u"), &["wheel".into()]) && !matches(&l, Some("o"), &[]));
        assert!(matches(&["*".to_string()], None, &[]));
        assert!(matches(&["cadey".to_string()], Some("cadey"), &[]));
    }
}
