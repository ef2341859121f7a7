//! sshd: every security keyword as sshd will apply it to every connection that matters (root,
//! the admins, the users AllowUsers/AllowGroups name, anybody else; from the VPN, the public
//! side and the loopback), read from the effective model (lib/posture/sshd.nix), so a Match
//! block, an alias or a line in extraConfig counts exactly as much as it does for sshd.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::{force, v, Posture, Proj, Violation};
use crate::effective::{Effective, Origin, Sshd, SshdContext};

/// (invariant, sshd keyword as sshd -T prints it, wanted value, services.openssh.settings key).
const KEYS: &[(&str, &str, &str, &str)] = &[
    (
        "ssh.password-auth",
        "passwordauthentication",
        "no",
        "PasswordAuthentication",
    ),
    (
        "ssh.kbd-interactive",
        "kbdinteractiveauthentication",
        "no",
        "KbdInteractiveAuthentication",
    ),
    (
        "ssh.publickey-only",
        "authenticationmethods",
        "publickey",
        "AuthenticationMethods",
    ),
    (
        "ssh.tcp-forwarding",
        "allowtcpforwarding",
        "no",
        "AllowTcpForwarding",
    ),
    (
        "ssh.agent-forwarding",
        "allowagentforwarding",
        "no",
        "AllowAgentForwarding",
    ),
    ("ssh.x11-forwarding", "x11forwarding", "no", "X11Forwarding"),
    (
        "ssh.streamlocal-forwarding",
        "allowstreamlocalforwarding",
        "no",
        "AllowStreamLocalForwarding",
    ),
    (
        "ssh.disable-forwarding",
        "disableforwarding",
        "yes",
        "DisableForwarding",
    ),
    ("ssh.tunnel", "permittunnel", "no", "PermitTunnel"),
    ("ssh.gateway-ports", "gatewayports", "no", "GatewayPorts"),
];

/// `root@vpn:22, ops@public:22 and 3 more`.
fn who(contexts: &[&SshdContext], all: usize) -> String {
    if contexts.len() == all {
        return "every connection".into();
    }
    let ids: Vec<&str> = contexts.iter().map(|c| c.id.as_str()).collect();
    if ids.len() <= 4 {
        ids.join(", ")
    } else {
        format!("{} and {} more", ids[..4].join(", "), ids.len() - 4)
    }
}

/// Contexts grouped by the profile that gives them `value` for `keyword`, where it is unwanted.
fn offending<'a>(
    s: &'a Sshd,
    keyword: &str,
    bad: impl Fn(&str) -> bool,
    only: &impl Fn(&SshdContext) -> bool,
) -> BTreeMap<usize, Vec<&'a SshdContext>> {
    let mut by: BTreeMap<usize, Vec<&SshdContext>> = BTreeMap::new();
    for c in s.contexts.iter().filter(|c| only(c)) {
        let Some(val) = s.profiles.get(c.profile).and_then(|p| p.values.get(keyword)) else {
            continue;
        };
        if bad(&val.value) {
            by.entry(c.profile).or_default().push(c);
        }
    }
    by
}

/// Where a value comes from, in words, and the definitions that would remove it.
struct Source {
    text: String,
    fix: String,
    apply: Vec<super::Apply>,
}

/// The extraConfig text with the first line that reads `keyword value` removed.
fn without_line(extra: &str, keyword: &str, value: &str) -> Option<String> {
    let lines: Vec<&str> = extra.split('\n').collect();
    let target = format!("{} {}", keyword.to_ascii_lowercase(), value);
    let idx = lines.iter().position(|l| {
        let t = l.trim().replacen('=', " ", 1);
        let norm: Vec<&str> = t.split_whitespace().collect();
        norm.join(" ").to_ascii_lowercase() == target.to_ascii_lowercase()
    })?;
    let mut kept = lines.clone();
    kept.remove(idx);
    Some(kept.join("\n"))
}

/// `want` as services.openssh.settings types `key`: upstream declares a few keys as booleans.
pub(super) fn settings_value(key: &str, want: &str) -> Value {
    const BOOLS: &[&str] = &[
        "PasswordAuthentication",
        "KbdInteractiveAuthentication",
        "X11Forwarding",
        "UseDns",
        "StrictModes",
        "PrintMotd",
    ];
    if BOOLS.contains(&key) {
        json!(want.eq_ignore_ascii_case("yes"))
    } else {
        json!(want)
    }
}

/// `want_value`: what the settings key paranoid sets should be forced back to (a definition of
/// that very key is then replaced by paranoid's value; any other line is removed).
fn source(s: &Sshd, proj: &Proj, line: Option<usize>, settings_key: &str, want: &str, want_value: Option<Value>) -> Source {
    let Some(n) = line else {
        return Source {
            text: "sshd_config has no such line, so sshd's compiled-in default applies".into(),
            fix: format!("set services.openssh.settings.{settings_key} = \"{want}\" (paranoid.ssh sets it; look for a definition setting it to null)"),
            apply: vec![force(format!("services.openssh.settings.{settings_key}"), settings_value(settings_key, want))],
        };
    };
    let Some(l) = s.line(n) else {
        return Source {
            text: format!("line {n} of sshd_config"),
            fix: format!("remove what sets {settings_key} on line {n} of sshd_config"),
            apply: vec![],
        };
    };
    let alias = if l.keyword.to_ascii_lowercase() != l.canonical {
        format!(" (an alias of {settings_key})")
    } else {
        String::new()
    };
    let place = match s.block_of(n) {
        Some(b) => format!(
            " in the block `Match {}` (line {}), which overrides the global value for the connections it matches",
            b.criteria.join(" "),
            b.line
        ),
        None => " wins (sshd keeps the first value it reads)".into(),
    };
    let text = format!(
        "`{} {}`{alias} on line {n} of sshd_config{place}; it comes from {}",
        l.keyword,
        l.value,
        l.origin.describe()
    );
    let own_key = l.origin.option == format!("services.openssh.settings.{settings_key}");
    let (fix, apply) = fix_for(&l.origin, &l.keyword, &l.value, proj, want_value.filter(|_| own_key));
    Source { text, fix, apply }
}

/// How to remove a line that came from `origin`: from extraConfig, the line itself; from a
/// settings key, its definition (forced to `want` where paranoid sets that key, else to null).
pub(super) fn fix_for(
    origin: &Origin,
    keyword: &str,
    value: &str,
    proj: &Proj,
    want: Option<Value>,
) -> (String, Vec<super::Apply>) {
    let files = if origin.files.is_empty() {
        String::new()
    } else {
        format!(" in {}", origin.files.join(", "))
    };
    if origin.option == "services.openssh.extraConfig" {
        let extra = proj
            .opt("services.openssh.extraConfig")
            .and_then(Value::as_str)
            .unwrap_or("");
        let apply = without_line(extra, keyword, value)
            .map(|t| vec![force("services.openssh.extraConfig", json!(t))])
            .unwrap_or_default();
        (
            format!("remove `{keyword} {value}` from services.openssh.extraConfig{files}; hardening belongs in services.openssh.settings, which paranoid.ssh sets"),
            apply,
        )
    } else if origin.option.starts_with("services.openssh.settings.") {
        (
            format!(
                "remove the definition of {}{files} (paranoid.ssh sets the hardened value)",
                origin.option
            ),
            vec![force(origin.option.clone(), want.unwrap_or(Value::Null))],
        )
    } else {
        (
            format!("remove or change the definition of {}{files}", origin.option),
            vec![],
        )
    }
}

fn key(
    id: &str,
    s: &Sshd,
    p: &Posture,
    proj: &Proj,
    keyword: &str,
    want: &str,
    settings_key: &str,
    only: impl Fn(&SshdContext) -> bool,
) -> Vec<Violation> {
    let by = offending(s, keyword, |v| !v.eq_ignore_ascii_case(want), &only);
    let total = s.contexts.iter().filter(|c| only(c)).count();
    by.into_iter()
        .map(|(profile, ctxs)| {
            let val = &s.profiles[profile].values[keyword];
            let src = source(s, proj, val.line, settings_key, want, Some(settings_value(settings_key, want)));
            v(
                id,
                format!(
                    "with {}, sshd runs with {settings_key} {} (want {want}) for {}: {}",
                    p.show("ssh.enable"),
                    val.value,
                    who(&ctxs, total),
                    src.text
                ),
                p.fix("ssh", "ssh.enable", src.fix),
            )
            .applying(src.apply)
        })
        .collect()
}

pub(super) fn check(p: &Posture, proj: &Proj, eff: &Effective) -> Vec<Violation> {
    if !p.area_on("ssh") {
        return vec![];
    }
    // No sshd at all: nothing listens, nothing to weaken.
    let Some(s) = &eff.sshd else { return vec![] };
    let mut out = vec![];
    for f in &s.unjudged {
        out.push(v(
            "ssh.judged",
            format!(
                "line {} of sshd_config, `{}` ({}): {}",
                f.line.unwrap_or(0),
                f.text.trim(),
                f.origin.describe(),
                f.reason
            ),
            format!("remove it from {} and set what it should set in services.openssh.settings, where it can be judged (and where paranoid's hardening still wins)", f.origin.describe()),
        ));
    }
    for f in &s.errors {
        // A refused AuthenticationMethods goes back to paranoid's "publickey" (or, without
        // paranoid.ssh, to sshd's default). Where a keyword sits in a Match block, its owner
        // decides where it belongs: no mechanical fix.
        let apply = f
            .line
            .and_then(|n| s.line(n))
            .filter(|l| l.canonical == "authenticationmethods")
            .map(|l| {
                let hardened = p.get("ssh.enable").and_then(Value::as_bool) == Some(true);
                fix_for(&l.origin, &l.keyword, &l.value, proj, hardened.then(|| json!("publickey"))).1
            })
            .unwrap_or_default();
        out.push(
            v(
                "ssh.config-valid",
                format!("line {} of sshd_config, `{}` ({}): {}", f.line.unwrap_or(0), f.text.trim(), f.origin.describe(), f.reason),
                f.fix.clone().unwrap_or_else(|| "make sshd -t accept the file: change or remove that line".into()),
            )
            .applying(apply),
        );
    }
    for (id, kw, want, sk) in KEYS {
        out.extend(key(id, s, p, proj, kw, want, sk, |_| true));
    }
    let want_root = p.text("ssh.permitRootLogin");
    if !want_root.is_empty() {
        out.extend(key(
            "ssh.root-login",
            s,
            p,
            proj,
            "permitrootlogin",
            &want_root,
            "PermitRootLogin",
            |c| c.user == "root",
        ));
    }
    // SFTP: a Subsystem line is global; sshd keeps the first one of each name.
    let sftp_wanted = p
        .get("ssh.allowSFTP")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let sftp = s.subsystems.get("sftp");
    if sftp.is_some() != sftp_wanted {
        let found = match sftp {
            Some(sub) => {
                let from = s
                    .line(sub.line)
                    .map(|l| l.origin.describe())
                    .unwrap_or_default();
                format!(
                    "still has `Subsystem sftp {}` (line {}, from {from})",
                    sub.command, sub.line
                )
            }
            None => "has no `Subsystem sftp` line".into(),
        };
        out.push(
            v(
                "ssh.sftp",
                format!("with {}, sshd_config {found}", p.show("ssh.allowSFTP")),
                if sftp_wanted {
                    "remove services.openssh.allowSFTP = false (or set paranoid.ssh.allowSFTP = false if SFTP should be off)".to_string()
                } else {
                    "remove the definition forcing services.openssh.allowSFTP = true, or the Subsystem line in services.openssh.extraConfig".to_string()
                },
            )
            .applying(vec![force("services.openssh.allowSFTP", json!(sftp_wanted))]),
        );
    }
    // Keys only from the configuration: no file a user (or an intruder as that user) can write.
    let mut seen = std::collections::BTreeSet::new();
    for c in s.contexts.iter().filter(|c| c.exists) {
        let bad: Vec<_> = c
            .key_files
            .iter()
            .filter(|f| f.kind == "home" || f.kind == "unmanaged")
            .collect();
        if bad.is_empty() || !seen.insert((c.profile, c.user.clone())) {
            continue;
        }
        let val = &s.profiles[c.profile].values["authorizedkeysfile"];
        let src = source(
            s,
            proj,
            val.line,
            "AuthorizedKeysFile",
            "/etc/ssh/authorized_keys.d/%u",
            None,
        );
        let (fix, apply) = match val.line.and_then(|n| s.line(n)) {
            Some(l) if l.origin.option == "services.openssh.authorizedKeysInHomedir" => (
                "remove services.openssh.authorizedKeysInHomedir = true (paranoid.ssh turns it off); keys belong in users.users.<name>.openssh.authorizedKeys".to_string(),
                vec![force("services.openssh.authorizedKeysInHomedir", json!(false))],
            ),
            _ => (src.fix.clone(), src.apply.clone()),
        };
        out.push(
            v(
                "ssh.homedir-keys",
                format!(
                    "with {}, sshd reads authorized keys for {} from {} (a file its owner can write): {}",
                    p.show("ssh.enable"),
                    c.user,
                    bad.iter().map(|f| f.path.as_str()).collect::<Vec<_>>().join(" "),
                    src.text
                ),
                p.fix("ssh", "ssh.enable", fix),
            )
            .applying(apply),
        );
    }
    // Keys printed by a program at login (AuthorizedKeysCommand): what it prints is outside the
    // configuration, so no key it admits can be judged; paranoid declares keys in the store.
    let mut seen = std::collections::BTreeSet::new();
    for c in s.contexts.iter().filter(|c| c.exists) {
        let Some(cmd) = c.key_files.iter().find(|f| f.kind == "command") else {
            continue;
        };
        if !seen.insert(c.profile) {
            continue;
        }
        let val = &s.profiles[c.profile].values["authorizedkeyscommand"];
        let mut src = source(s, proj, val.line, "AuthorizedKeysCommand", "none", None);
        // Upstream's own option writes the line: back to its "none".
        let line = val.line.and_then(|n| s.line(n));
        if let Some(l) = line.filter(|l| l.origin.option == "services.openssh.authorizedKeysCommand") {
            let files: String = l.origin.files.iter().map(|f| format!(" in {f}")).collect();
            src.fix = format!("remove the definition of services.openssh.authorizedKeysCommand{files}");
            src.apply = vec![force("services.openssh.authorizedKeysCommand", json!("none"))];
        }
        let users: std::collections::BTreeSet<&str> = s
            .contexts
            .iter()
            .filter(|x| x.exists && x.profile == c.profile)
            .map(|x| x.user.as_str())
            .collect();
        out.push(
            v(
                "ssh.homedir-keys",
                format!(
                    "with {}, sshd takes authorized keys for {} from the output of the program `{}` (AuthorizedKeysCommand), which the configuration does not contain: {}",
                    p.show("ssh.enable"),
                    users.into_iter().collect::<Vec<_>>().join(", "),
                    cmd.path,
                    src.text
                ),
                p.fix(
                    "ssh",
                    "ssh.enable",
                    format!("{}; keys belong in users.users.<name>.openssh.authorizedKeys", src.fix),
                ),
            )
            .applying(src.apply),
        );
    }
    out
}
