//! Never lock the admin out: at least one path from the network (over the VPN when SSH is
//! VPN-only) to root, with credentials that survive a reboot (lib/posture/admin-path.nix, the
//! same function paranoid's `admin-path` guard reads).
//!
//! The fix names, for each account that could have been the way in, the definitions behind its
//! broken links (the sshd lines that refuse it and the options that wrote them, the firewall
//! option that closes the VPN, a lost password file); where every link of one account can be
//! mended by a definition, those definitions are the `apply`.

use serde_json::{json, Value};

use super::{access, force, sshd, v, Apply, Posture, Proj, Violation};
use crate::effective::{AdminPath, Effective, Sshd, SshdContext};
use crate::plan::plain;

/// The areas whose knobs decide who can get in.
const ACCESS_AREAS: &[&str] = &["ssh", "sudo", "users", "vpn", "amnesia"];

/// How one account's path could be mended.
struct Mend {
    fixes: Vec<String>,
    apply: Vec<Apply>,
    /// Every broken link has a definition that mends it.
    complete: bool,
    /// Some mend changes a paranoid knob the host chose (a last resort).
    knob: bool,
}

impl Mend {
    fn human(&mut self, fix: String) {
        self.fixes.push(fix);
        self.complete = false;
    }
}

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(String::from).collect()
}

fn list(items: &[String]) -> Value {
    if items.is_empty() {
        Value::Null
    } else {
        json!(items)
    }
}

/// The knob's value as the words sshd_config shows it, if the host set the knob.
fn knob_words(p: &Posture, knob: &str) -> Option<Vec<String>> {
    match p.actual.get(knob)? {
        Value::Array(a) => Some(a.iter().map(plain).collect()),
        Value::Null => None,
        other => Some(vec![plain(other)]),
    }
}

/// Mends the line `n` (keyword `kw`) that refuses `ctx`: the value that lets the account in,
/// written where the line came from (a paranoid knob, a settings key, extraConfig).
fn relax(m: &mut Mend, s: &Sshd, p: &Posture, proj: &Proj, ctx: &SshdContext, kw: &str, n: usize) {
    let Some(l) = s.line(n) else { return };
    let current = words(&l.value);
    let group = ctx.groups.first().cloned().unwrap_or_else(|| ctx.user.clone());
    let (knob, relaxed): (Option<&str>, Option<Value>) = match kw {
        "permitrootlogin" => (Some("ssh.permitRootLogin"), Some(json!("prohibit-password"))),
        "allowusers" => (Some("ssh.allowUsers"), {
            let mut a = current.clone();
            a.push(ctx.user.clone());
            Some(json!(a))
        }),
        "denyusers" => (None, Some(list(&current.iter().filter(|u| **u != ctx.user).cloned().collect::<Vec<_>>()))),
        "allowgroups" => (None, {
            let mut a = current.clone();
            a.push(group);
            Some(json!(a))
        }),
        "denygroups" => (None, Some(list(&current.iter().filter(|g| !ctx.groups.contains(g)).cloned().collect::<Vec<_>>()))),
        "pubkeyauthentication" => (None, Some(json!("yes"))),
        "authenticationmethods" => (None, Some(json!("publickey"))),
        _ => (None, None),
    };
    // The value paranoid wrote from a knob the host chose: the knob is what to change.
    if let Some(k) = knob.filter(|k| knob_words(p, k).is_some_and(|w| w == current)) {
        let to = match (k, &relaxed) {
            ("ssh.allowUsers", Some(v)) => v.clone(),
            (_, Some(v)) => v.clone(),
            _ => return,
        };
        m.fixes.push(format!("set paranoid.{k} = {to} (this host sets {})", json!(knob_words(p, k))));
        m.apply.push(force(format!("paranoid.{k}"), to));
        m.knob = true;
        return;
    }
    let (fix, apply) = match (l.origin.option.strip_prefix("services.openssh.settings."), relaxed) {
        (Some(key), Some(want)) => {
            let option = &l.origin.option;
            let files = if l.origin.files.is_empty() {
                String::new()
            } else {
                format!(" (in {})", l.origin.files.join(", "))
            };
            let removed: Vec<&String> = current.iter().filter(|x| !want.as_array().is_some_and(|a| a.contains(&json!(x)))).collect();
            let fix = match kw {
                "allowusers" => format!("add {} to {option}{files}", ctx.user),
                "allowgroups" => format!("add {} to {option}{files}", want.as_array().and_then(|a| a.last()).map(plain).unwrap_or_default()),
                "denyusers" | "denygroups" => format!("remove {} from {option}{files}", removed.iter().map(|x| x.as_str()).collect::<Vec<_>>().join(", ")),
                _ => format!("set {option} = {want}{files}"),
            };
            // A single value is typed as the settings key declares it; lists stay lists.
            let want = match want {
                Value::String(v) => sshd::settings_value(key, &v),
                other => other,
            };
            (fix, vec![force(option.clone(), want)])
        }
        // extraConfig: the line itself goes.
        _ => sshd::fix_for(&l.origin, &l.keyword, &l.value, proj, None),
    };
    if apply.is_empty() {
        m.human(fix);
    } else {
        m.fixes.push(fix);
        m.apply.extend(apply);
    }
}

fn mend(account: &str, a: &AdminPath, p: &Posture, proj: &Proj, eff: &Effective) -> Mend {
    let mut m = Mend { fixes: vec![], apply: vec![], complete: true, knob: false };
    let link_text = || {
        a.broken
            .iter()
            .find(|b| b.account == account)
            .map(|b| b.links.join("; "))
            .unwrap_or_default()
    };
    let Some(s) = &eff.sshd else {
        m.fixes.push("remove the definition of services.openssh.enable = false".into());
        m.apply.push(force("services.openssh.enable", json!(true)));
        // What sshd would then do is not known yet: one evaluation more decides.
        m.complete = false;
        return m;
    };
    // sshd starts but ends every connection (HostKeyAlgorithms fits no host key): the line goes.
    if !s.unusable.is_empty() {
        for f in &s.unusable {
            match f.line.and_then(|n| s.line(n)) {
                Some(l) => {
                    let (fix, apply) = sshd::fix_for(&l.origin, &l.keyword, &l.value, proj, None);
                    if apply.is_empty() {
                        m.human(fix);
                    } else {
                        m.fixes.push(fix);
                        m.apply.extend(apply);
                    }
                }
                None => m.human(f.fix.clone().unwrap_or_else(|| f.reason.clone())),
            }
        }
        return m;
    }
    let networks: Vec<&str> = if a.networks.is_empty() {
        if a.vpn_only { vec!["vpn"] } else { vec!["vpn", "public"] }
    } else {
        a.networks.iter().map(String::as_str).collect()
    };
    let mine: Vec<&SshdContext> = s
        .contexts
        .iter()
        .filter(|c| c.user == account && c.exists && networks.contains(&c.network.as_str()))
        .collect();
    if mine.is_empty() {
        m.human(link_text());
        return m;
    }
    let reachable = |c: &SshdContext| {
        eff.firewall.as_ref().is_some_and(|fw| {
            fw.ssh.iter().any(|t| {
                t.port == c.lport && t.interfaces.iter().any(|i| i.interface == c.interface && i.reachable)
            })
        })
    };
    let mut reach: Vec<&SshdContext> = mine.iter().copied().filter(|c| reachable(c)).collect();
    if reach.is_empty() {
        let vpn = eff.firewall.as_ref().and_then(|f| f.vpn.clone());
        let ports: Vec<u16> = mine.iter().map(|c| c.lport).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
        match vpn {
            Some(vpn) if mine.iter().any(|c| c.interface == vpn) => {
                let (fix, apply) = access::open_over_vpn(p, proj, &vpn, &ports);
                m.fixes.push(fix);
                m.apply.extend(apply);
            }
            _ => m.human(link_text()),
        }
        reach = mine.clone();
    }
    let admitted: Vec<&SshdContext> = reach.iter().copied().filter(|c| c.login.allowed).collect();
    let (blamed, keyed): (Vec<&SshdContext>, bool) = if admitted.is_empty() {
        (reach.clone(), false)
    } else if !admitted.iter().any(|c| c.login.with_key) {
        (admitted.clone(), true)
    } else {
        (vec![], false)
    };
    // One context speaks for the others (they share the keywords that refuse the account).
    if let Some(ctx) = blamed.first() {
        let kws = if keyed { &ctx.login.key_blame } else { &ctx.login.blame };
        if kws.is_empty() {
            m.human(link_text());
        }
        for kw in kws {
            let val = &s.profiles[ctx.profile].values[kw.as_str()];
            let lines: Vec<usize> = if val.lines.is_empty() { val.line.into_iter().collect() } else { val.lines.clone() };
            if lines.is_empty() {
                m.human(format!("sshd's compiled-in {kw} refuses {account}"));
            }
            for n in lines {
                relax(&mut m, s, p, proj, ctx, kw, n);
            }
        }
    }
    let acc = eff.accounts.get(account);
    if acc.is_some_and(|x| x.keys == 0) {
        m.human(format!("give {account} a key in users.users.{account}.openssh.authorizedKeys.keys"));
    }
    // A login shell that ends every session: which shell to give back is the owner's call.
    if let Some(x) = acc.filter(|x| x.refuses_sessions) {
        m.human(format!(
            "give {account} a login shell: remove the definition of users.users.{account}.shell = {} (it ends every session)",
            x.shell.as_deref().unwrap_or("?")
        ));
    }
    if account != "root" {
        // Becoming root afterwards: a sudo rule and a password that survives a reboot are the
        // owner's to give (which file, which tool).
        let escalates = a.paths.iter().any(|x| x.account == account)
            || eff.sudo.as_ref().is_some_and(|su| {
                su.paths.iter().any(|x| {
                    x.account == account
                        && (x.password == "none" || acc.is_some_and(|y| y.password.is_some()))
                })
            });
        if !escalates {
            m.human(match acc.and_then(|x| x.password_lost.clone()) {
                Some(lost) => format!("{lost}: put it on persistent storage"),
                None => format!("let {account} become root (paranoid.sudo.mode = \"wheel-only\" and a password in users.users.{account}.hashedPasswordFile on persistent storage)"),
            });
        }
    }
    m
}

pub(super) fn check(p: &Posture, proj: &Proj, eff: &Effective) -> Vec<Violation> {
    if !ACCESS_AREAS.iter().any(|a| p.area_on(a)) {
        return vec![];
    }
    let Some(a) = &eff.admin_path else { return vec![] };
    if a.ok {
        return vec![];
    }
    let links: Vec<String> = a
        .broken
        .iter()
        .filter(|b| !b.links.is_empty())
        .map(|b| format!("{}: {}", b.account, b.links.join("; ")))
        .collect();
    let mends: Vec<(String, Mend)> = a
        .broken
        .iter()
        .filter(|b| !b.links.is_empty())
        .map(|b| (b.account.clone(), mend(&b.account, a, p, proj, eff)))
        .collect();
    let fix = if mends.iter().all(|(_, m)| m.fixes.is_empty()) {
        "mend one link: give root a key and let it log in (PermitRootLogin prohibit-password, AllowUsers naming root), or give a wheel member a key plus a persisted password (hashedPasswordFile under the persist path) and sudo for wheel".to_string()
    } else {
        format!(
            "mend one path: {}",
            mends
                .iter()
                .filter(|(_, m)| !m.fixes.is_empty())
                .map(|(acc, m)| format!("for {acc}, {}", m.fixes.join(" and ")))
                .collect::<Vec<_>>()
                .join("; or ")
        )
    };
    // The path to realise: one account whose every link has a definition, the host's own
    // definitions before a paranoid knob it chose.
    let chosen = mends
        .iter()
        .filter(|(_, m)| m.complete && !m.apply.is_empty())
        .min_by_key(|(_, m)| m.knob)
        .map(|(_, m)| m.apply.clone())
        .unwrap_or_default();
    vec![v(
        "admin.path",
        format!(
            "no path leads {} to root after a reboot: {}",
            if a.vpn_only { "over the VPN" } else { "from the network" },
            links.join(" | ")
        ),
        fix,
    )
    .applying(chosen)]
}
