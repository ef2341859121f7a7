//! paranoid's sshd model (lib/posture/sshd.nix, `effective.sshd` of a projection) held to the
//! real sshd, one connection at a time: `sshd -T -C user=…,host=…,addr=…,laddr=…,lport=…` for
//! every connection the model evaluates, and every tracked keyword compared.
//!
//! `Match Group` needs the configuration's accounts to exist for sshd. They exist for sshd only:
//! /etc/passwd, /etc/group and /etc/shadow are generated from `effective.accounts` and
//! bind-mounted in a private mount namespace (`AccountsNs`); the host's /etc is never touched and
//! no host user is created. Everything sshd is run with here is recorded (adaptations, notes).
//!
//! Used by the sandbox's sshd check (every connection judged, disagreements fail) and by
//! `check` (`confirm`: one namespace, all connections in one go).

use super::sshd_config::{self, adapt, bad_option, drop_newer_keyword, AdaptInput, Purpose};
use crate::exec::{self, Cancel, Cmd, Output};
use crate::sys;
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SSHD_TIMEOUT: Duration = Duration::from_secs(20);

// ---- the model, as the projection carries it --------------------------------------------------

/// One connection the model evaluated (`effective.sshd.contexts[]`).
#[derive(Clone, Debug)]
pub struct Context {
    pub id: String,
    pub user: String,
    pub exists: bool,
    pub network: String,
    pub addr: String,
    pub laddr: String,
    pub lport: u16,
    pub host: String,
    pub profile: usize,
    /// (path, kind) of each AuthorizedKeysFile entry: `declared`, `home`, `unmanaged`.
    pub key_files: Vec<(String, String)>,
    /// The model says sshd admits this account on this connection with a key (`login`).
    pub login_with_key: bool,
}

impl Context {
    /// The `-C` connection specification sshd evaluates its Match blocks for.
    pub fn spec(&self) -> String {
        format!(
            "user={},host={},addr={},laddr={},lport={}",
            self.user, self.host, self.addr, self.laddr, self.lport
        )
    }
}

/// `effective.sshd`: what the model says each connection gets.
#[derive(Clone, Debug)]
pub struct Model {
    pub judged: bool,
    /// Why the posture cannot be judged (an Include…), one line each.
    pub unjudged: Vec<String>,
    /// Lines the model says sshd refuses (a global-only keyword inside a Match block).
    pub errors: Vec<String>,
    /// Per profile: tracked keyword → effective value.
    pub profiles: Vec<BTreeMap<String, String>>,
    pub contexts: Vec<Context>,
}

fn s(v: &Value, k: &str) -> String {
    v.get(k).and_then(Value::as_str).unwrap_or("").to_string()
}

impl Model {
    /// None when the projection has no sshd (not enabled); Err when it does not match the schema.
    pub fn of(projection: &Value) -> Result<Option<Model>, String> {
        let Some(e) = projection
            .pointer("/effective/sshd")
            .filter(|v| !v.is_null())
        else {
            return Ok(None);
        };
        let bad = |what: &str| format!("projection's effective.sshd has no {what}");
        let profiles = e
            .get("profiles")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("profiles"))?
            .iter()
            .map(|p| {
                p.get("values")
                    .and_then(Value::as_object)
                    .map(|o| o.iter().map(|(k, v)| (k.clone(), s(v, "value"))).collect())
                    .ok_or_else(|| bad("profile values"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let contexts = e
            .get("contexts")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("contexts"))?
            .iter()
            .map(|c| {
                Ok(Context {
                    id: s(c, "id"),
                    user: s(c, "user"),
                    exists: c.get("exists").and_then(Value::as_bool).unwrap_or(false),
                    network: s(c, "network"),
                    addr: s(c, "addr"),
                    laddr: s(c, "laddr"),
                    lport: c
                        .get("lport")
                        .and_then(Value::as_u64)
                        .and_then(|p| u16::try_from(p).ok())
                        .ok_or_else(|| bad("context port"))?,
                    host: s(c, "host"),
                    profile: c
                        .get("profile")
                        .and_then(Value::as_u64)
                        .map(|p| p as usize)
                        .filter(|p| *p < profiles.len())
                        .ok_or_else(|| bad("valid context profile"))?,
                    key_files: c
                        .get("keyFiles")
                        .and_then(Value::as_array)
                        .map(|a| a.iter().map(|f| (s(f, "path"), s(f, "kind"))).collect())
                        .unwrap_or_default(),
                    login_with_key: ["allowed", "withKey"].iter().all(|k| {
                        c.pointer(&format!("/login/{k}")).and_then(Value::as_bool) == Some(true)
                    }),
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let findings = |key: &str| -> Vec<String> {
            e.get(key)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .map(|f| {
                            format!(
                                "line {} `{}`: {}",
                                f.get("line").map(|l| l.to_string()).unwrap_or_default(),
                                s(f, "text").trim(),
                                s(f, "reason")
                            )
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        Ok(Some(Model {
            judged: e.get("judged").and_then(Value::as_bool).unwrap_or(false),
            unjudged: findings("unjudged"),
            errors: findings("errors"),
            profiles,
            contexts,
        }))
    }

    pub fn values(&self, c: &Context) -> &BTreeMap<String, String> {
        &self.profiles[c.profile]
    }
}

/// One way in (`effective.adminPath.paths[]`).
#[derive(Clone, Debug)]
pub struct AdminEntry {
    pub account: String,
    pub context: String,
    pub network: String,
    pub port: u16,
    /// How the account becomes root: `root`, `sudo`, `sudo-rs`, `doas`.
    pub via: String,
}

/// `effective.adminPath`: is there a way in, and if not, what broke.
#[derive(Clone, Debug)]
pub struct AdminPath {
    pub ok: bool,
    pub paths: Vec<AdminEntry>,
    /// (account, broken links) for every account that could have been the way in.
    pub broken: Vec<(String, Vec<String>)>,
}

impl AdminPath {
    pub fn of(projection: &Value) -> Option<AdminPath> {
        let a = projection
            .pointer("/effective/adminPath")
            .filter(|v| !v.is_null())?;
        Some(AdminPath {
            ok: a.get("ok").and_then(Value::as_bool)?,
            paths: a
                .get("paths")
                .and_then(Value::as_array)
                .map(|ps| {
                    ps.iter()
                        .map(|p| AdminEntry {
                            account: s(p, "account"),
                            context: s(p, "context"),
                            network: s(p, "network"),
                            port: p.get("port").and_then(Value::as_u64).unwrap_or(22) as u16,
                            via: p
                                .pointer("/escalation/via")
                                .and_then(Value::as_str)
                                .unwrap_or("")
                                .to_string(),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            broken: a
                .get("broken")
                .and_then(Value::as_array)
                .map(|bs| {
                    bs.iter()
                        .map(|b| (s(b, "account"), crate::projection::strings(b.get("links"))))
                        .filter(|(_, l)| !l.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
        })
    }

    /// "root: link; link | cadey: link" for evidence.
    pub fn broken_text(&self) -> String {
        if self.broken.is_empty() {
            return "no account could be the way in (no root key, no admin account)".into();
        }
        self.broken
            .iter()
            .map(|(a, l)| format!("{a}: {}", l.join("; ")))
            .collect::<Vec<_>>()
            .join(" | ")
    }
}

// ---- the configuration's accounts, for sshd only --------------------------------------------

/// Lines copied verbatim from the host's files (the sandbox's throwaway users, sshd's
/// privilege separation user when the configuration lacks it).
#[derive(Clone, Debug, Default)]
pub struct HostLines {
    pub passwd: Vec<String>,
    pub group: Vec<String>,
    pub shadow: Vec<String>,
}

impl HostLines {
    /// The host's entries for these users and groups (missing ones are left out).
    pub fn read(users: &[&str], groups: &[&str]) -> HostLines {
        let pick = |file: &str, names: &[&str]| -> Vec<String> {
            fs::read_to_string(file)
                .unwrap_or_default()
                .lines()
                .filter(|l| names.contains(&l.split(':').next().unwrap_or("")))
                .map(str::to_string)
                .collect()
        };
        HostLines {
            passwd: pick("/etc/passwd", users),
            group: pick("/etc/group", groups),
            shadow: pick("/etc/shadow", users),
        }
    }
    fn names(lines: &[String]) -> BTreeSet<String> {
        lines
            .iter()
            .filter_map(|l| l.split(':').next().map(str::to_string))
            .collect()
    }
    fn ids(lines: &[String]) -> BTreeSet<u32> {
        lines
            .iter()
            .filter_map(|l| l.split(':').nth(2)?.parse().ok())
            .collect()
    }
}

/// Generated /etc/passwd, /etc/group, /etc/shadow.
#[derive(Clone, Debug, Default)]
pub struct AccountFiles {
    pub passwd: String,
    pub group: String,
    pub shadow: String,
    /// The configuration's account names, in the files.
    pub accounts: Vec<String>,
    /// What differs from what NixOS would write (each an adaptation of the evidence).
    pub adaptations: Vec<String>,
}

/// NixOS's fixed ids (nixos/modules/misc/ids.nix) for the groups sshd may be asked about.
const FIXED_GIDS: &[(&str, u32)] = &[
    ("root", 0),
    ("wheel", 1),
    ("users", 100),
    ("nogroup", 65534),
];

/// The files as NixOS's update-users-groups.pl would write them for `effective.accounts`
/// (primary group first, extraGroups and `members` as group members; a shadow entry of "!"
/// when the account has no password, which sshd treats as locked under `UsePAM no`), plus
/// `extra` lines from the host. Ids the configuration leaves to NixOS are allocated here.
pub fn account_files(projection: &Value, extra: &HostLines) -> Result<AccountFiles, String> {
    let accounts = projection
        .pointer("/effective/accounts")
        .and_then(Value::as_object)
        .ok_or("projection has no effective.accounts")?;
    let mut out = AccountFiles::default();
    let taken_names = HostLines::names(&extra.passwd);
    let mut used_uids: BTreeSet<u32> = HostLines::ids(&extra.passwd);
    let mut used_gids: BTreeSet<u32> = HostLines::ids(&extra.group);
    for a in accounts.values() {
        if let Some(u) = a.get("uid").and_then(Value::as_u64) {
            used_uids.insert(u as u32);
        }
    }
    used_gids.extend(FIXED_GIDS.iter().map(|(_, g)| *g));
    let next_free = |used: &mut BTreeSet<u32>| -> u32 {
        let mut id = 30000;
        while used.contains(&id) {
            id += 1;
        }
        used.insert(id);
        id
    };
    // Groups: every group an account is in, plus users.groups.
    let mut group_names: BTreeSet<String> =
        crate::projection::strings(projection.pointer("/options/users.groups"))
            .into_iter()
            .collect();
    for a in accounts.values() {
        group_names.extend(crate::projection::strings(a.get("groups")));
    }
    let host_groups = HostLines::names(&extra.group);
    let mut gids: BTreeMap<String, u32> = BTreeMap::new();
    for g in &group_names {
        if host_groups.contains(g) {
            continue;
        }
        let gid = FIXED_GIDS
            .iter()
            .find(|(n, _)| n == g)
            .map(|(_, id)| *id)
            .unwrap_or_else(|| next_free(&mut used_gids));
        gids.insert(g.clone(), gid);
    }
    let mut members: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut passwd = vec![];
    let mut shadow = vec![];
    let mut allocated = vec![];
    for (name, a) in accounts {
        if taken_names.contains(name) {
            continue;
        }
        let groups = crate::projection::strings(a.get("groups"));
        let uid = match a.get("uid").and_then(Value::as_u64) {
            Some(u) => u as u32,
            None if name == "root" => 0,
            None => {
                let u = next_free(&mut used_uids);
                allocated.push(format!("{name}={u}"));
                u
            }
        };
        let gid = groups
            .first()
            .and_then(|g| gids.get(g))
            .copied()
            .unwrap_or(65534);
        for g in groups.iter().skip(1) {
            members.entry(g.clone()).or_default().push(name.clone());
        }
        let home = a
            .get("home")
            .and_then(Value::as_str)
            .unwrap_or("/var/empty");
        passwd.push((uid, format!("{name}:x:{uid}:{gid}::{home}:/bin/sh")));
        // Locked as NixOS writes it ("!": no password reaches the account), which sshd obeys
        // under UsePAM no; otherwise a hash nobody can match (the real one is not known here).
        let locked = match a.get("locked").and_then(Value::as_bool) {
            Some(l) => l,
            None => a.get("password").map_or(true, Value::is_null),
        };
        let pw = if locked { "!" } else { "*" };
        shadow.push(format!("{name}:{pw}:1::::::"));
        out.accounts.push(name.clone());
    }
    passwd.sort();
    out.passwd = passwd
        .into_iter()
        .map(|(_, l)| l)
        .chain(extra.passwd.iter().cloned())
        .collect::<Vec<_>>()
        .join("\n")
        + "\n";
    out.group = gids
        .iter()
        .map(|(g, id)| {
            format!(
                "{g}:x:{id}:{}",
                members.get(g).map(|m| m.join(",")).unwrap_or_default()
            )
        })
        .chain(extra.group.iter().cloned())
        .collect::<Vec<_>>()
        .join("\n")
        + "\n";
    out.shadow = shadow
        .into_iter()
        .chain(extra.shadow.iter().cloned())
        .collect::<Vec<_>>()
        .join("\n")
        + "\n";
    out.adaptations.push(format!(
        "/etc/passwd, /etc/group, /etc/shadow generated from effective.accounts ({} accounts: {}) put in place for sshd only, in a private mount namespace whose /etc is the host's with these three files (the host's files and users are untouched)",
        out.accounts.len(),
        out.accounts.join(", ")
    ));
    if !allocated.is_empty() {
        out.adaptations.push(format!(
            "uids NixOS would allocate at activation, allocated here: {}",
            allocated.join(", ")
        ));
    }
    out.adaptations.push(
        "every account's login shell is /bin/sh (NixOS's shells live in its store); passwords are \"!\" where NixOS writes a locked one (no password reaches the account) and \"*\" otherwise (the real hash is not known here)"
            .into(),
    );
    if !extra.passwd.is_empty() {
        out.adaptations.push(format!(
            "added from the host: {}",
            HostLines::names(&extra.passwd)
                .into_iter()
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(out)
}

/// A private mount namespace whose /etc is the host's with the generated passwd, group and
/// shadow in place. It lives as long as this handle (and any process started in it).
///
/// /etc is replaced as a whole, not file by file: the host's useradd/groupadd (other runs,
/// other tools) rename new files over /etc/passwd and /etc/group, and a rename over a file
/// detaches every mount on it, in every namespace. The replacement is a directory on a tmpfs
/// private to the namespace: the generated files, and a symbolic link to a read-only bind of
/// the host's /etc for every other entry.
pub struct AccountsNs {
    handle: Arc<File>,
    pub notes: Vec<String>,
}

/// How commands run in the namespace are shown in the evidence.
pub const NS_SHOWN: &str =
    "unshare -m --propagation private (/etc with the configuration's passwd, group, shadow) --";

/// The generated account files.
const ACCOUNT_FILES: &[&str] = &["passwd", "group", "shadow"];

/// A symbolic link in `to` for every entry of `from` but those `skip` names; a symlink keeps its
/// own target (mtab → ../proc/self/mounts stays right once `to` is mounted where `from` was).
fn link_entries(from: &Path, to: &Path, skip: impl Fn(&str) -> bool) -> io::Result<()> {
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        if skip(&name.to_string_lossy()) {
            continue;
        }
        let target = match fs::read_link(entry.path()) {
            Ok(t) => t,
            Err(_) => from.join(&name),
        };
        std::os::unix::fs::symlink(target, to.join(&name))?;
    }
    Ok(())
}

impl AccountsNs {
    /// Build the namespace below `dir` (an empty directory is left there on the host; the
    /// namespace's own files live on a tmpfs only it sees). With `privsep_overlay`, a missing
    /// /run/sshd (which sshd requires even for -T) is provided inside the namespace only, on a
    /// tmpfs over /run.
    ///
    /// With `ssh_keys`, /etc/ssh is a directory too (every host entry linked) whose
    /// `authorized_keys.d` is `ssh_keys`: the keys a test installs, where NixOS puts the declared
    /// ones, without changing the rendered `AuthorizedKeysFile`.
    pub fn create(
        dir: &Path,
        files: &AccountFiles,
        privsep_overlay: bool,
        ssh_keys: Option<&Path>,
    ) -> Result<AccountsNs, String> {
        let root = dir.join("accounts-ns");
        fs::create_dir_all(&root).map_err(|e| format!("{}: {e}", root.display()))?;
        let overlay = privsep_overlay && !Path::new("/run/sshd").is_dir();
        let made = std::thread::scope(|sc| {
            sc.spawn(|| -> io::Result<File> {
                sys::private_mount_namespace()?;
                sys::mount_tmpfs(&root, "mode=755,size=4m")?;
                let host = root.join("host-etc");
                let etc = root.join("etc");
                fs::create_dir(&host)?;
                fs::create_dir(&etc)?;
                fs::set_permissions(&etc, fs::Permissions::from_mode(0o755))?;
                sys::bind_mount_readonly(Path::new("/etc"), &host)?;
                link_entries(&host, &etc, |n| {
                    ACCOUNT_FILES.iter().any(|f| n == *f) || (ssh_keys.is_some() && n == "ssh")
                })?;
                if let Some(keys) = ssh_keys {
                    let ssh = etc.join("ssh");
                    fs::create_dir(&ssh)?;
                    fs::set_permissions(&ssh, fs::Permissions::from_mode(0o755))?;
                    if host.join("ssh").is_dir() {
                        link_entries(&host.join("ssh"), &ssh, |n| n == "authorized_keys.d")?;
                    }
                    std::os::unix::fs::symlink(keys, ssh.join("authorized_keys.d"))?;
                }
                for (name, text, mode) in [
                    ("passwd", &files.passwd, 0o644),
                    ("group", &files.group, 0o644),
                    ("shadow", &files.shadow, 0o600),
                ] {
                    crate::context::write_file(&etc.join(name), text, mode)?;
                }
                sys::bind_mount(&etc, Path::new("/etc"))?;
                if overlay {
                    sys::mount_tmpfs(Path::new("/run"), "mode=755,size=1m")?;
                    fs::create_dir_all("/run/sshd")?;
                    fs::set_permissions("/run/sshd", fs::Permissions::from_mode(0o755))?;
                }
                File::open("/proc/thread-self/ns/mnt")
            })
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the namespace thread panicked")))
        })
        .map_err(|e| format!("private mount namespace for sshd's accounts: {e}"))?;
        let mut notes = vec![];
        if overlay {
            notes.push("/run/sshd (sshd's privilege separation directory) is missing on the host: a tmpfs over /run inside the namespace provides it".into());
        }
        Ok(AccountsNs {
            handle: Arc::new(made),
            notes,
        })
    }

    /// `cmd`, run inside the namespace.
    pub fn cmd(&self, cmd: Cmd) -> Cmd {
        cmd.in_mount_ns(self.handle.clone(), NS_SHOWN)
    }
}

// ---- asking sshd -----------------------------------------------------------------------------

/// Runs a command (with the caller's run id, timeout and cancel flag).
pub type Runner<'a> = &'a (dyn Fn(&Cmd, Duration) -> io::Result<Output> + Sync);

/// sshd's answer for one connection.
#[derive(Clone, Debug)]
pub struct Answer {
    pub context: String,
    pub command: String,
    pub values: BTreeMap<String, Vec<String>>,
}

/// `sshd -t` until it accepts the file, dropping only keywords newer than this sshd
/// ([`sshd_config::NEWER_KEYWORDS`]); returns the adaptations. Err: sshd rejects it otherwise.
pub fn fit_to_this_sshd(
    run: Runner,
    ns: &AccountsNs,
    sshd: &str,
    cfg: &Path,
) -> Result<Vec<String>, String> {
    let mut adaptations = vec![];
    for _ in 0..sshd_config::NEWER_KEYWORDS.len() + 1 {
        let t = ns.cmd(Cmd::new(sshd).args(["-t", "-f"]).arg(cfg.to_string_lossy()));
        let o = run(&t, SSHD_TIMEOUT).map_err(|e| e.to_string())?;
        if o.ok() {
            return Ok(adaptations);
        }
        let Some((n, kw)) = bad_option(&o.all()) else {
            return Err(format!("`{}`: {}", t.display(), o.digest(4)));
        };
        let text = fs::read_to_string(cfg).map_err(|e| e.to_string())?;
        let (kept, why) = drop_newer_keyword(&text, n, &kw)?;
        crate::context::write_file(cfg, kept, 0o600).map_err(|e| e.to_string())?;
        adaptations.push(why);
    }
    Err("sshd -t kept rejecting the configuration".into())
}

/// `sshd -T -C …` for every connection, four at a time.
pub fn ask_all(
    run: Runner,
    ns: &AccountsNs,
    sshd: &str,
    cfg: &Path,
    contexts: &[Context],
) -> Result<Vec<Answer>, String> {
    let queue = Mutex::new((0..contexts.len()).collect::<Vec<_>>());
    let answers: Mutex<Vec<Option<Result<Answer, String>>>> =
        Mutex::new(vec![None; contexts.len()]);
    std::thread::scope(|sc| {
        for _ in 0..4 {
            sc.spawn(|| loop {
                let Some(i) = queue.lock().unwrap_or_else(|e| e.into_inner()).pop() else {
                    break;
                };
                let c = &contexts[i];
                let cmd = ns.cmd(
                    Cmd::new(sshd)
                        .args(["-T", "-f"])
                        .arg(cfg.to_string_lossy())
                        .arg("-C")
                        .arg(c.spec()),
                );
                let r = match run(&cmd, SSHD_TIMEOUT) {
                    Ok(o) if o.ok() => Ok(Answer {
                        context: c.id.clone(),
                        command: cmd.display(),
                        values: sshd_config::parse_effective(&o.stdout),
                    }),
                    Ok(o) => Err(format!("`{}`: {}", cmd.display(), o.digest(4))),
                    Err(e) => Err(format!("`{}`: {e}", cmd.display())),
                };
                answers.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(r);
            });
        }
    });
    answers
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .map(|a| a.unwrap_or_else(|| Err("not asked (interrupted)".into())))
        .collect()
}

// ---- normalising and comparing ---------------------------------------------------------------

/// Keywords that add up (sshd -T prints one line per entry).
const LISTS: &[&str] = &["allowusers", "denyusers", "allowgroups", "denygroups"];

/// What sshd -T printed for `kw`, in the model's terms (lib/posture/sshd.nix `normalise`):
/// a multistate by its first name (`without-password` = `prohibit-password`, forwarding `all` =
/// `yes`), list keywords joined by spaces (empty when absent). None: this sshd did not print it.
pub fn normalise(kw: &str, printed: Option<&Vec<String>>) -> Option<String> {
    let words = |v: &[String]| {
        v.iter()
            .flat_map(|l| l.split_whitespace())
            .collect::<Vec<_>>()
            .join(" ")
    };
    if LISTS.contains(&kw) {
        return Some(printed.map(|v| words(v)).unwrap_or_default());
    }
    let v = words(printed?);
    Some(match (kw, v.as_str()) {
        ("allowtcpforwarding" | "allowstreamlocalforwarding", "all") => "yes".into(),
        ("permitrootlogin", "without-password") => "prohibit-password".into(),
        // Debian's OpenSSH has a SILENT level of its own and prints QUIET by that name;
        // upstream's log.c (NixOS) knows only QUIET.
        ("loglevel", "SILENT") => "QUIET".into(),
        _ => v,
    })
}

/// The model's value, spaced as sshd prints it.
fn model_value(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Disagreement {
    pub context: String,
    pub keyword: String,
    pub model: String,
    pub sshd: String,
}

impl std::fmt::Display for Disagreement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} is {:?} by paranoid's model, {:?} by sshd",
            self.context, self.keyword, self.model, self.sshd
        )
    }
}

#[derive(Clone, Debug, Default)]
pub struct Comparison {
    pub connections: usize,
    /// Keyword comparisons made.
    pub compared: usize,
    pub disagreements: Vec<Disagreement>,
    /// Tracked keywords this sshd does not print (nothing to compare).
    pub unprinted: BTreeSet<String>,
}

/// Every tracked keyword of every connection: model vs sshd.
pub fn compare(model: &Model, answers: &[Answer]) -> Comparison {
    let mut out = Comparison::default();
    for a in answers {
        let Some(c) = model.contexts.iter().find(|c| c.id == a.context) else {
            continue;
        };
        out.connections += 1;
        for (kw, want) in model.values(c) {
            match normalise(kw, a.values.get(kw)) {
                None => {
                    out.unprinted.insert(kw.clone());
                }
                Some(got) => {
                    out.compared += 1;
                    let want = model_value(want);
                    if got != want {
                        out.disagreements.push(Disagreement {
                            context: c.id.clone(),
                            keyword: kw.clone(),
                            model: want,
                            sshd: got,
                        });
                    }
                }
            }
        }
    }
    out
}

// ---- the dump configuration ------------------------------------------------------------------

/// The `ssh -Q` lists of this OpenSSH (what the adaptation drops algorithms against).
pub fn known_algorithms(
    run: Runner,
    ssh: &str,
) -> Result<BTreeMap<String, BTreeSet<String>>, String> {
    let mut m = BTreeMap::new();
    for &q in sshd_config::ALGORITHM_QUERIES {
        let c = Cmd::new(ssh).args(["-Q", q]);
        let o = run(&c, Duration::from_secs(10)).map_err(|e| e.to_string())?;
        if !o.ok() {
            return Err(format!("ssh -Q {q}: {}", o.digest(2)));
        }
        m.insert(
            q.to_string(),
            o.stdout
                .lines()
                .map(|l| l.trim().to_string())
                .filter(|l| !l.is_empty())
                .collect(),
        );
    }
    Ok(m)
}

/// The rendered file adapted for `sshd -T` (host keys, unknown algorithms), written to `cfg`.
/// Returns the adaptations; fit it to this sshd next ([`fit_to_this_sshd`]).
pub fn write_dump_config(
    rendered: &str,
    declared: &[(String, String, Option<u32>)],
    known: &BTreeMap<String, BTreeSet<String>>,
    host_key: sshd_config::HostKeyFn,
    cfg: &Path,
) -> Result<Vec<String>, String> {
    let input = AdaptInput {
        purpose: Purpose::Dump,
        host_key,
        declared_host_keys: declared,
        keys_dir: "",
        pid_file: "",
        known,
    };
    let adapted = adapt(rendered, &input)?;
    crate::context::write_file(cfg, &adapted.text, 0o600).map_err(|e| e.to_string())?;
    Ok(adapted.adaptations)
}

/// `services.openssh.hostKeys` as (path, type, bits): how the adaptation tells each HostKey's type.
pub fn declared_host_keys(projection: &Value) -> Vec<(String, String, Option<u32>)> {
    projection
        .pointer("/options/services.openssh.hostKeys")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|k| {
                    Some((
                        k.get("path")?.as_str()?.to_string(),
                        k.get("type")?.as_str()?.to_string(),
                        k.get("bits").and_then(Value::as_u64).map(|b| b as u32),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Match criteria newer OpenSSH releases know and 9.2 rejects ("Missing Match criteria for
/// invalid-user": it takes no argument there; "Unsupported Match attribute version").
pub const NEWER_CRITERIA: &[(&str, &str)] = &[("invalid-user", "10.0"), ("version", "10.0")];

/// When sshd -t's refusal is a feature only a newer OpenSSH has: which one.
pub fn newer_feature(message: &str) -> Option<String> {
    let lower = message.to_ascii_lowercase();
    if let Some((c, since)) = NEWER_CRITERIA.iter().find(|(c, _)| {
        lower.contains(&format!("match criteria for {c}"))
            || lower.contains(&format!("match attribute {c}"))
    }) {
        return Some(format!("`Match {c}` (OpenSSH {since})"));
    }
    // `Match User=x`: criterion=value is newer syntax for `Match User x`.
    let attr = lower
        .split("unsupported match attribute ")
        .nth(1)?
        .split_whitespace()
        .next()?;
    attr.contains('=')
        .then(|| format!("`Match {attr}` (criterion=value, OpenSSH 10.0)"))
}

/// Whether sshd starts with this file, as the model says (no `errors`) and as `sshd -t` says.
/// Some(disagreement) when they differ.
pub fn validity(model: &Model, sshd_says: &Result<(), String>) -> Option<Disagreement> {
    let model_says = if model.errors.is_empty() {
        "accepted".to_string()
    } else {
        format!("refused: {}", model.errors.join("; "))
    };
    match (model.errors.is_empty(), sshd_says) {
        (true, Ok(())) | (false, Err(_)) => None,
        (_, r) => Some(Disagreement {
            context: "the whole file".into(),
            keyword: "(sshd starts)".into(),
            model: model_says,
            sshd: match r {
                Ok(()) => "accepted (sshd -t)".into(),
                Err(e) => format!("refused: {e}"),
            },
        }),
    }
}

/// "OpenSSH 9.2p1" from `ssh -V` (which carries the portable release, where `sshd -V` says
/// "OpenSSH_9.2"), checked against sshd's own answer.
pub fn sshd_version(run: Runner, sshd: &str, ssh: Option<&str>) -> String {
    let first = |o: io::Result<Output>| {
        o.ok()
            .and_then(|o| o.all().lines().next().map(str::to_string))
            .and_then(|l| l.split([',', ' ']).next().map(str::to_string))
            .unwrap_or_default()
    };
    let server = first(run(&Cmd::new(sshd).arg("-V"), Duration::from_secs(10)));
    let client = ssh
        .map(|c| first(run(&Cmd::new(c).arg("-V"), Duration::from_secs(10))))
        .unwrap_or_default();
    let v = if !server.is_empty() && client.starts_with(&server) {
        client
    } else {
        server
    };
    v.replacen("OpenSSH_", "OpenSSH ", 1)
}

// ---- for `check`: the whole comparison in one go ---------------------------------------------

/// What `check` reports about sshd: judged by the model alone, or confirmed by sshd.
#[derive(Clone, Debug, Serialize)]
pub struct Verdict {
    /// `model+sshd` when sshd answered for every connection, else `model`.
    pub by: String,
    /// The sshd that answered ("OpenSSH 9.2p1").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sshd: Option<String>,
    pub connections: usize,
    /// Keyword comparisons made (connections × tracked keywords sshd prints).
    pub compared: usize,
    pub disagreements: Vec<Disagreement>,
    /// Why sshd did not confirm the model (not installed, not root, unjudged, refused).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// How the rendered file and the accounts were adapted to run here.
    pub adaptations: Vec<String>,
    /// Tracked keywords this sshd does not print.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unprinted: Vec<String>,
    /// One of the commands, as an example.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub example: Option<String>,
    /// sshd refuses the file, as the model says it would (`sshd -t`'s message).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
    /// sshd's answer for each connection.
    #[serde(skip)]
    pub answers: Vec<Answer>,
}

impl Verdict {
    fn model_only(why: impl Into<String>) -> Verdict {
        Verdict {
            by: "model".into(),
            sshd: None,
            connections: 0,
            compared: 0,
            disagreements: vec![],
            why: Some(why.into()),
            adaptations: vec![],
            unprinted: vec![],
            example: None,
            refused: None,
            answers: vec![],
        }
    }
}

/// A work directory removed when dropped.
struct Work(PathBuf);
impl Drop for Work {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Hold the model of `projection` to the sshd installed here, if it can be asked: one private
/// mount namespace, one throwaway host key, `sshd -T -C` for every connection. Never touches
/// the host (work files live in a private temporary directory and are removed).
pub fn confirm(projection: &Value) -> Verdict {
    let model = match Model::of(projection) {
        Ok(Some(m)) => m,
        Ok(None) => return Verdict::model_only("sshd is not enabled in this configuration"),
        Err(e) => return Verdict::model_only(e),
    };
    if !model.judged {
        return Verdict::model_only(format!(
            "the model cannot judge this sshd_config, so neither can sshd here: {}",
            model.unjudged.join("; ")
        ));
    }
    let Some(rendered) = projection
        .pointer("/rendered/sshd_config")
        .and_then(Value::as_str)
    else {
        return Verdict::model_only("the projection has no rendered sshd_config");
    };
    if !sys::is_root() {
        return Verdict::model_only(
            "needs root: sshd -T runs in a private mount namespace where the configuration's accounts exist",
        );
    }
    let tool = |n: &str| exec::which(n).map(|p| p.to_string_lossy().into_owned());
    let (Some(sshd), Some(ssh), Some(keygen)) = (tool("sshd"), tool("ssh"), tool("ssh-keygen"))
    else {
        return Verdict::model_only(
            "sshd, ssh or ssh-keygen is not installed (apt-get install openssh-server openssh-client)",
        );
    };
    let run_id = format!("check{}", std::process::id());
    let cancel = Cancel::new();
    let run = |c: &Cmd, t: Duration| c.run(&run_id, t, &cancel);
    match confirm_with(&run, &model, projection, rendered, &sshd, &ssh, &keygen) {
        Ok(v) => v,
        Err((why, adaptations)) => Verdict {
            adaptations,
            ..Verdict::model_only(why)
        },
    }
}

fn confirm_with(
    run: Runner,
    model: &Model,
    projection: &Value,
    rendered: &str,
    sshd: &str,
    ssh: &str,
    keygen: &str,
) -> Result<Verdict, (String, Vec<String>)> {
    let plain = |e: String| (e, vec![]);
    let dir = std::env::temp_dir().join(format!(
        "paranoid-sshd-{}-{}",
        std::process::id(),
        crate::context::random_hex(8)
    ));
    fs::create_dir(&dir).map_err(|e| plain(format!("{}: {e}", dir.display())))?;
    let work = Work(dir);
    fs::set_permissions(&work.0, fs::Permissions::from_mode(0o700))
        .map_err(|e| plain(e.to_string()))?;
    let key = work.0.join("ssh_host_ed25519_key");
    let o = run(
        &Cmd::new(keygen)
            .args([
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                "paranoid-check",
                "-f",
            ])
            .arg(key.to_string_lossy()),
        Duration::from_secs(30),
    )
    .map_err(|e| plain(e.to_string()))?;
    if !o.ok() {
        return Err(plain(format!("ssh-keygen: {}", o.digest(3))));
    }
    let known = known_algorithms(run, ssh).map_err(plain)?;
    // sshd's privilege separation user must exist even for -T.
    let extra = if model_has_account(projection, "sshd") {
        HostLines::default()
    } else {
        HostLines::read(&["sshd"], &[])
    };
    let files = account_files(projection, &extra).map_err(plain)?;
    let mut adaptations = files.adaptations.clone();
    let ns =
        AccountsNs::create(&work.0, &files, true, None).map_err(|e| (e, adaptations.clone()))?;
    adaptations.extend(ns.notes.iter().cloned());
    check_nss(run, &ns, &files).map_err(|e| (e, adaptations.clone()))?;
    let key_s = key.to_string_lossy().into_owned();
    let host_key = |ty: &str, _bits: Option<u32>| -> Result<String, String> {
        let _ = ty;
        Ok(key_s.clone())
    };
    let cfg = work.0.join("sshd_config");
    let adapted = write_dump_config(
        rendered,
        &declared_host_keys(projection),
        &known,
        &host_key,
        &cfg,
    )
    .map_err(|e| {
        (
            format!("the rendered file cannot be run here: {e}"),
            adaptations.clone(),
        )
    })?;
    adaptations.extend(adapted);
    let version = sshd_version(run, sshd, Some(ssh));
    let fit = fit_to_this_sshd(run, &ns, sshd, &cfg);
    let sshd_says = match fit {
        Ok(a) => {
            adaptations.extend(a);
            Ok(())
        }
        Err(e) => Err(e),
    };
    if let Err(e) = &sshd_says {
        if let Some(f) = newer_feature(e) {
            return Err((
                format!("{version} cannot read this file, NixOS's OpenSSH can: it uses {f}; {e}"),
                adaptations,
            ));
        }
    }
    let mut verdict = Verdict {
        by: "model+sshd".into(),
        sshd: Some(version),
        adaptations,
        why: None,
        ..Verdict::model_only("")
    };
    if let Some(d) = validity(model, &sshd_says) {
        verdict.disagreements.push(d);
        return Ok(verdict);
    }
    if let Err(e) = sshd_says {
        // Both say sshd refuses the file: there is no connection to compare.
        verdict.refused = Some(e);
        return Ok(verdict);
    }
    let answers = ask_all(run, &ns, sshd, &cfg, &model.contexts).map_err(|e| {
        (
            format!("sshd -T refused a connection: {e}"),
            verdict.adaptations.clone(),
        )
    })?;
    let cmp = compare(model, &answers);
    verdict.connections = cmp.connections;
    verdict.compared = cmp.compared;
    verdict.disagreements = cmp.disagreements;
    verdict.unprinted = cmp.unprinted.into_iter().collect();
    verdict.example = answers.first().map(|a| a.command.clone());
    verdict.answers = answers;
    Ok(verdict)
}

fn model_has_account(projection: &Value, name: &str) -> bool {
    projection
        .pointer("/effective/accounts")
        .and_then(|a| a.get(name))
        .is_some()
}

/// `getent passwd` inside the namespace must list every generated account: otherwise the
/// name service does not read /etc/passwd (nscd, sssd…) and sshd would not see them either.
pub fn check_nss(run: Runner, ns: &AccountsNs, files: &AccountFiles) -> Result<String, String> {
    let Some(getent) = exec::which("getent") else {
        return Ok(
            "getent not installed: the bind mounts are not verified through the name service"
                .into(),
        );
    };
    let c = ns.cmd(
        Cmd::new(getent.to_string_lossy())
            .arg("passwd")
            .args(files.accounts.iter().cloned()),
    );
    let o = run(&c, Duration::from_secs(10)).map_err(|e| e.to_string())?;
    let seen: BTreeSet<&str> = o
        .stdout
        .lines()
        .filter_map(|l| l.split(':').next())
        .collect();
    let missing: Vec<&String> = files
        .accounts
        .iter()
        .filter(|a| !seen.contains(a.as_str()))
        .collect();
    if missing.is_empty() {
        Ok(format!("{} sees {} accounts", c.display(), seen.len()))
    } else {
        Err(format!(
            "the name service does not read the generated /etc/passwd (missing {missing:?}); `{}` → {}",
            c.display(),
            o.digest(3)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn projection() -> Value {
        json!({
            "options": { "users.groups": ["wheel", "users", "sshd", "root"] },
            "effective": {
                "accounts": {
                    "root": { "name": "root", "uid": 0, "groups": ["root"], "home": "/root", "password": null },
                    "cadey": { "name": "cadey", "uid": 1000, "groups": ["users", "wheel"], "home": "/home/cadey", "password": "users.users.cadey.hashedPasswordFile" },
                    "sshd": { "name": "sshd", "uid": null, "groups": ["sshd"], "home": "/var/empty", "password": null }
                },
                "sshd": {
                    "judged": true, "unjudged": [],
                    "profiles": [ { "blocks": [], "values": {
                        "permitrootlogin": { "value": "prohibit-password", "line": 3 },
                        "allowusers": { "value": "root cadey", "lines": [1, 2] },
                        "loglevel": { "value": "VERBOSE", "line": 4 },
                        "allowtcpforwarding": { "value": "yes", "line": null } } } ],
                    "contexts": [ { "id": "root@vpn:22", "user": "root", "exists": true, "network": "vpn",
                        "addr": "10.0.0.1", "laddr": "10.0.0.2", "lport": 22, "host": "10.0.0.1", "profile": 0,
                        "keyFiles": [ { "path": "/etc/ssh/authorized_keys.d/root", "kind": "declared" } ] } ]
                },
                "adminPath": { "ok": false, "paths": [], "broken": [ { "account": "root", "links": ["PermitRootLogin no"] }, { "account": "x", "links": [] } ] }
            }
        })
    }

    #[test]
    fn accounts_are_written_as_nixos_would_with_members_and_locked_passwords() {
        let extra = HostLines {
            passwd: vec!["pzs1u:x:1001:1001::/h:/bin/sh".into()],
            group: vec!["pzs1u:x:1001:".into()],
            shadow: vec!["pzs1u:$6$x:1::::::".into()],
        };
        let f = account_files(&projection(), &extra).unwrap();
        assert!(
            f.passwd.contains("root:x:0:0::/root:/bin/sh\n"),
            "{}",
            f.passwd
        );
        assert!(
            f.passwd.contains("cadey:x:1000:100::/home/cadey:/bin/sh\n"),
            "{}",
            f.passwd
        );
        assert!(f.passwd.contains("sshd:x:30000:"), "{}", f.passwd);
        assert!(f.passwd.ends_with("pzs1u:x:1001:1001::/h:/bin/sh\n"));
        assert!(f.group.contains("wheel:x:1:cadey\n"), "{}", f.group);
        assert!(
            f.group.contains("users:x:100:\n"),
            "primary group lists no member: {}",
            f.group
        );
        assert!(f.shadow.contains("root:!:1::::::\n") && f.shadow.contains("cadey:*:1::::::\n"));
        assert_eq!(f.accounts, vec!["cadey", "root", "sshd"]);
    }

    #[test]
    fn sshd_output_is_read_in_the_models_terms() {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            normalise("permitrootlogin", Some(&v(&["without-password"]))).unwrap(),
            "prohibit-password"
        );
        assert_eq!(
            normalise("allowtcpforwarding", Some(&v(&["all"]))).unwrap(),
            "yes"
        );
        assert_eq!(
            normalise("loglevel", Some(&v(&["SILENT"]))).unwrap(),
            "QUIET"
        );
        assert_eq!(
            normalise("allowusers", Some(&v(&["root", "cadey"]))).unwrap(),
            "root cadey"
        );
        assert_eq!(normalise("allowusers", None).unwrap(), "");
        assert_eq!(normalise("kerberosauthentication", None), None);
    }

    #[test]
    fn a_disagreement_names_the_connection_the_keyword_and_both_values() {
        let m = Model::of(&projection()).unwrap().unwrap();
        let mut values = BTreeMap::new();
        values.insert(
            "permitrootlogin".to_string(),
            vec!["without-password".to_string()],
        );
        values.insert(
            "allowusers".to_string(),
            vec!["root".to_string(), "cadey".to_string()],
        );
        values.insert("loglevel".to_string(), vec!["INFO".to_string()]);
        values.insert("allowtcpforwarding".to_string(), vec!["all".to_string()]);
        let c = compare(
            &m,
            &[Answer {
                context: "root@vpn:22".into(),
                command: String::new(),
                values,
            }],
        );
        assert_eq!(c.connections, 1);
        assert_eq!(c.compared, 4);
        assert_eq!(
            c.disagreements,
            vec![Disagreement {
                context: "root@vpn:22".into(),
                keyword: "loglevel".into(),
                model: "VERBOSE".into(),
                sshd: "INFO".into()
            }]
        );
        assert_eq!(
            m.contexts[0].spec(),
            "user=root,host=10.0.0.1,addr=10.0.0.1,laddr=10.0.0.2,lport=22"
        );
    }

    #[test]
    fn refusals_that_only_a_newer_openssh_would_not_make_are_told_apart() {
        assert_eq!(
            newer_feature("Missing Match criteria for Invalid-User\nc line 6: Bad Match condition")
                .unwrap(),
            "`Match invalid-user` (OpenSSH 10.0)"
        );
        assert!(newer_feature("Unsupported Match attribute user=ops")
            .unwrap()
            .contains("criterion=value"));
        assert_eq!(
            newer_feature(
                "line 38: Directive 'DSAAuthentication' is not allowed within a Match block"
            ),
            None
        );
    }

    #[test]
    fn a_broken_admin_path_lists_its_links() {
        let a = AdminPath::of(&projection()).unwrap();
        assert!(!a.ok);
        assert_eq!(a.broken_text(), "root: PermitRootLogin no");
    }
}
