//! The effective posture as the projection carries it (`effective`, computed by lib/posture
//! from what NixOS renders, with each daemon's semantics). These types mirror that JSON
//! (docs/harness.md "Effective posture"); the invariants, `check`, the matrix and the sandbox
//! read them instead of the options paranoid sets.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The option (and the files defining it) that produced a rendered line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    pub option: String,
    #[serde(default)]
    pub files: Vec<String>,
    /// For a list value: the files that put each entry there.
    #[serde(
        default,
        rename = "byEntry",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub by_entry: BTreeMap<String, Vec<String>>,
}

impl Origin {
    /// The files that defined `entry`, if the origin knows, else every file.
    pub fn files_of(&self, entry: &str) -> &[String] {
        self.by_entry
            .get(entry)
            .map(Vec::as_slice)
            .unwrap_or(&self.files)
    }

    /// `services.openssh.extraConfig (in hosts/a.nix)`.
    pub fn describe(&self) -> String {
        if self.files.is_empty() {
            self.option.clone()
        } else {
            format!("{} (in {})", self.option, self.files.join(", "))
        }
    }
}

/// A line a model could not follow or that the daemon would refuse.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    #[serde(default)]
    pub line: Option<usize>,
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub origin: Origin,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub option: Option<String>,
    #[serde(default)]
    pub files: Vec<String>,
    /// What to change, where the model knows (sshd's start-up refusals).
    #[serde(default)]
    pub fix: Option<String>,
}

impl Finding {
    pub fn origin(&self) -> Origin {
        match &self.option {
            Some(o) => Origin {
                option: o.clone(),
                files: self.files.clone(),
                ..Default::default()
            },
            None => self.origin.clone(),
        }
    }
}

// ---- sshd ----------------------------------------------------------------------------------

#[derive(Debug, Clone, Deserialize)]
pub struct SshdLine {
    pub line: usize,
    /// As written (`ChallengeResponseAuthentication`).
    pub keyword: String,
    /// Lower case, aliases resolved (`kbdinteractiveauthentication`).
    pub canonical: String,
    pub value: String,
    pub origin: Origin,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SshdValue {
    pub value: String,
    /// The winning line; none when sshd's compiled-in default applies.
    #[serde(default)]
    pub line: Option<usize>,
    /// Accumulating keywords (AllowUsers…): every line that adds to the list.
    #[serde(default)]
    pub lines: Vec<usize>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SshdProfile {
    /// Line numbers of the Match blocks that apply.
    pub blocks: Vec<usize>,
    pub values: BTreeMap<String, SshdValue>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Login {
    pub allowed: bool,
    #[serde(default)]
    pub reasons: Vec<String>,
    #[serde(rename = "withKey")]
    pub with_key: bool,
    #[serde(default, rename = "keyReasons")]
    pub key_reasons: Vec<String>,
    /// The keywords behind `reasons` (`allowusers`, `permitrootlogin`…).
    #[serde(default)]
    pub blame: Vec<String>,
    /// The keywords behind `key_reasons` (`pubkeyauthentication`, `authenticationmethods`).
    #[serde(default, rename = "keyBlame")]
    pub key_blame: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct KeyFile {
    pub path: String,
    /// `declared` (/etc/ssh/authorized_keys.d), `home`, `unmanaged`.
    pub kind: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SshdContext {
    pub id: String,
    pub user: String,
    pub exists: bool,
    #[serde(default)]
    pub groups: Vec<String>,
    pub network: String,
    pub addr: String,
    pub laddr: String,
    pub lport: u16,
    pub host: String,
    pub interface: String,
    pub profile: usize,
    pub login: Login,
    #[serde(rename = "keyFiles")]
    pub key_files: Vec<KeyFile>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Listener {
    pub port: u16,
    pub address: Option<String>,
    #[serde(default)]
    pub interface: Option<String>,
    #[serde(default)]
    pub line: Option<usize>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Subsystem {
    pub command: String,
    pub line: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Block {
    pub line: usize,
    pub criteria: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Sshd {
    pub judged: bool,
    pub unjudged: Vec<Finding>,
    pub errors: Vec<Finding>,
    #[serde(default, rename = "notModelled")]
    pub not_modelled: Vec<Finding>,
    /// What sshd starts with but ends every connection for (no host key algorithm left).
    #[serde(default)]
    pub unusable: Vec<Finding>,
    pub lines: Vec<SshdLine>,
    pub blocks: Vec<Block>,
    pub listeners: Vec<Listener>,
    pub ports: Vec<u16>,
    pub subsystems: BTreeMap<String, Subsystem>,
    pub profiles: Vec<SshdProfile>,
    pub contexts: Vec<SshdContext>,
}

impl Sshd {
    pub fn line(&self, n: usize) -> Option<&SshdLine> {
        self.lines.iter().find(|l| l.line == n)
    }
    pub fn block(&self, line: usize) -> Option<&Block> {
        self.blocks.iter().find(|b| b.line == line)
    }
    /// The Match block a line belongs to (the last block starting before it).
    pub fn block_of(&self, line: usize) -> Option<&Block> {
        self.blocks.iter().rev().find(|b| b.line < line)
    }
}

// ---- nix.conf ------------------------------------------------------------------------------

#[derive(Debug, Clone, Deserialize)]
pub struct NixLine {
    pub line: usize,
    pub text: String,
    pub origin: Origin,
    /// `/etc/nix/nix.conf` or `NIX_CONFIG`.
    pub source: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct UserList {
    pub value: Vec<String>,
    pub lines: Vec<NixLine>,
    /// The host's accounts the list admits (`@group` and `*` expanded).
    #[serde(default)]
    pub accounts: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct NixConf {
    pub judged: bool,
    pub unjudged: Vec<Finding>,
    #[serde(rename = "trustedUsers")]
    pub trusted_users: UserList,
    #[serde(rename = "allowedUsers")]
    pub allowed_users: UserList,
    pub substituters: UserList,
}

// ---- firewall ------------------------------------------------------------------------------

#[derive(Debug, Clone, Deserialize)]
pub struct Route {
    pub option: String,
    #[serde(default)]
    pub files: Vec<String>,
    pub text: String,
    /// For a port-range route: the option's whole list of `{ from; to; }`.
    #[serde(default)]
    pub ranges: Option<Value>,
}

impl Route {
    pub fn describe(&self) -> String {
        let o = Origin {
            option: self.option.clone(),
            files: self.files.clone(),
            ..Default::default()
        };
        format!("{}: {}", o.describe(), self.text)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct PortAt {
    pub interface: String,
    pub public: bool,
    pub open: bool,
    pub listening: bool,
    pub reachable: bool,
    pub routes: Vec<Route>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PortTable {
    pub port: u16,
    pub interfaces: Vec<PortAt>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PublicSsh {
    pub port: u16,
    pub interface: String,
    pub routes: Vec<Route>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Firewall {
    pub enabled: bool,
    pub backend: String,
    pub vpn: Option<String>,
    pub interfaces: Vec<String>,
    pub judged: bool,
    pub unjudged: Vec<Finding>,
    pub ssh: Vec<PortTable>,
    #[serde(rename = "publicSsh")]
    pub public_ssh: Vec<PublicSsh>,
}

// ---- sudo, sudo-rs, doas -------------------------------------------------------------------

#[derive(Debug, Clone, Deserialize)]
pub struct RootPath {
    pub tool: String,
    pub account: String,
    /// `own`, `root` or `none`.
    pub password: String,
    pub line: usize,
    pub text: String,
    pub origin: Origin,
    /// The `Defaults !authenticate` line that waives the password the rule would ask.
    #[serde(default, rename = "passwordBy")]
    pub password_by: Option<SudoersLine>,
}

/// One line of /etc/sudoers and the option that wrote it.
#[derive(Debug, Clone, Deserialize)]
pub struct SudoersLine {
    pub line: usize,
    pub text: String,
    pub origin: Origin,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Tool {
    pub enabled: bool,
    #[serde(rename = "execWheelOnly")]
    pub exec_wheel_only: bool,
    #[serde(default)]
    pub unjudged: Vec<Finding>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Sudo {
    pub removed: bool,
    pub tools: BTreeMap<String, Tool>,
    pub judged: bool,
    pub paths: Vec<RootPath>,
    #[serde(rename = "otherUser")]
    pub other_user: String,
}

// ---- audit ---------------------------------------------------------------------------------

#[derive(Debug, Clone, Deserialize)]
pub struct AuditRule {
    pub line: usize,
    pub text: String,
    pub origin: Origin,
    #[serde(default)]
    pub list: Option<String>,
    #[serde(default)]
    pub action: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Scenario {
    pub id: String,
    #[serde(rename = "syscallRecord")]
    pub syscall_record: bool,
    #[serde(rename = "execveRecord")]
    pub execve_record: bool,
    #[serde(rename = "decidedBy")]
    pub decided_by: Option<usize>,
    #[serde(rename = "droppedBy")]
    pub dropped_by: Vec<usize>,
    pub uncertain: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Audit {
    pub locked: bool,
    pub rules: Vec<AuditRule>,
    /// The `-d`/`-D` lines (their rules are gone from `rules`).
    #[serde(default)]
    pub deletions: Vec<AuditRule>,
    pub scenarios: Vec<Scenario>,
    /// `audit=0`/`audit=off` last on the kernel command line: nothing is recorded until reboot.
    #[serde(rename = "kernelDisabled", default)]
    pub kernel_disabled: Option<KernelDisabled>,
    /// The other places a foreign program runs from (a login user's 64-bit execve each).
    #[serde(default)]
    pub paths: Vec<ProbePath>,
    /// `-r N` (N > 0) as loaded: the kernel drops records over N a second.
    #[serde(rename = "rateLimit", default)]
    pub rate_limit: Option<RateLimit>,
    /// Whether auditd runs (without it records go to the rate-limited kernel log).
    #[serde(default = "yes")]
    pub auditd: bool,
    /// The files whose definitions of security.auditd.enable won.
    #[serde(rename = "auditdFiles", default)]
    pub auditd_files: Vec<String>,
    #[serde(rename = "execveAudited")]
    pub execve_audited: bool,
    pub judged: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
pub struct ProbePath {
    pub exe: String,
    pub actor: String,
    pub recorded: bool,
    #[serde(rename = "decidedBy")]
    pub decided_by: Option<usize>,
    #[serde(rename = "droppedBy")]
    pub dropped_by: Vec<usize>,
    pub uncertain: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RateLimit {
    pub value: String,
    pub line: usize,
    pub text: String,
    pub origin: Origin,
}

#[derive(Debug, Clone, Deserialize)]
pub struct KernelDisabled {
    /// The `audit=` parameter that counts (the last one).
    pub param: String,
    /// The files whose boot.kernelParams definitions carry it.
    #[serde(default)]
    pub files: Vec<String>,
}

impl Audit {
    pub fn rule(&self, line: usize) -> Option<&AuditRule> {
        self.rules.iter().find(|r| r.line == line)
    }
}

// ---- admin path ----------------------------------------------------------------------------

#[derive(Debug, Clone, Deserialize)]
pub struct AdminEntry {
    pub account: String,
    pub context: String,
    pub network: String,
    pub interface: String,
    pub port: u16,
    pub escalation: Value,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Broken {
    pub account: String,
    pub links: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AdminPath {
    pub ok: bool,
    pub paths: Vec<AdminEntry>,
    pub broken: Vec<Broken>,
    #[serde(rename = "vpnOnly")]
    pub vpn_only: bool,
    /// The networks an administrator comes from (`vpn`, and `public` unless VPN-only).
    #[serde(default)]
    pub networks: Vec<String>,
}

/// An account as /etc/passwd, /etc/group and /etc/shadow will have it after a reboot.
#[derive(Debug, Clone, Deserialize)]
pub struct Account {
    pub name: String,
    #[serde(default)]
    pub groups: Vec<String>,
    pub admin: bool,
    /// Where its password comes from; none when it has no usable password after a reboot.
    #[serde(default)]
    pub password: Option<String>,
    /// Why a declared password does not count (locked hash, file not on persistent storage).
    #[serde(default, rename = "passwordLost")]
    pub password_lost: Option<String>,
    pub keys: usize,
    /// The login shell's path, where the configuration says it.
    #[serde(default)]
    pub shell: Option<String>,
    /// Its login shell (nologin, false) ends every session.
    #[serde(default, rename = "refusesSessions")]
    pub refuses_sessions: bool,
}

/// The effective posture of one projection; each part absent when the daemon is off.
#[derive(Debug, Clone, Default)]
pub struct Effective {
    pub accounts: BTreeMap<String, Account>,
    pub sshd: Option<Sshd>,
    pub nix: Option<NixConf>,
    pub firewall: Option<Firewall>,
    pub sudo: Option<Sudo>,
    pub audit: Option<Audit>,
    pub admin_path: Option<AdminPath>,
}

fn part<T: for<'de> Deserialize<'de>>(e: &Value, name: &str) -> Option<T> {
    let v = e.get(name)?;
    if v.is_null() {
        return None;
    }
    match serde_json::from_value(v.clone()) {
        Ok(t) => Some(t),
        // A projection from an incompatible paranoid is a bug to see, not a part to skip.
        Err(err) => panic!("projection's effective.{name} does not match the schema: {err}"),
    }
}

impl Effective {
    pub fn in_group(&self, account: &str, group: &str) -> bool {
        self.accounts
            .get(account)
            .is_some_and(|a| a.groups.iter().any(|g| g == group))
    }

    /// Reads `effective` from a projection (absent parts stay `None`).
    pub fn of(projection: &Value) -> Effective {
        let Some(e) = projection.get("effective") else {
            return Effective::default();
        };
        Effective {
            accounts: part(e, "accounts").unwrap_or_default(),
            sshd: part(e, "sshd"),
            nix: part(e, "nix"),
            firewall: part(e, "firewall"),
            sudo: part(e, "sudo"),
            audit: part(e, "audit"),
            admin_path: part(e, "adminPath"),
        }
    }
}
