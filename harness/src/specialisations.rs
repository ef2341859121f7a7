//! The other boot entries of a host (NixOS specialisations, such as paranoid.breakGlass's), each
//! projected like the host itself (`specialisations.<name>` of the projection) and held to the
//! main entry's posture. What an entry relaxes is observed by comparing its effective posture
//! with the main entry's: noexec lifted from mounts, accounts that become root through
//! sudo/sudo-rs/doas, interfaces where SSH becomes reachable, root getting a password. A
//! relaxation the host's `paranoid.breakGlass` asks for excuses the invariants it breaks (they are
//! reported as asked); every other invariant must hold there as on the main entry.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::Value;

use crate::effective::Effective;
use crate::invariants::{self, Posture, Proj, Violation};
use crate::mounts::Table;

/// One way an entry is weaker than the main one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Relaxation {
    /// `noexec`, `sudo`, `ssh-interface` or `console-root-login`.
    pub id: String,
    /// What changed, as observed (or, when not observed, why nothing did).
    pub what: String,
    /// The host's paranoid.breakGlass asks for it for this entry.
    pub asked: bool,
    /// The entry's posture really differs from the main one here.
    pub observed: bool,
}

/// One boot entry checked against the main entry's posture.
#[derive(Debug, Clone, Serialize)]
pub struct EntryCheck {
    pub name: String,
    /// Whether this is the entry paranoid.breakGlass builds.
    pub break_glass: bool,
    pub relaxations: Vec<Relaxation>,
    /// Violations that are the relaxations asked for.
    pub asked: Vec<Violation>,
    /// Violations of what must still hold in this entry (they fail the check).
    pub violations: Vec<Violation>,
    pub ok: bool,
}

/// The invariants each relaxation breaks on purpose.
fn excused_by(relaxation: &str) -> &'static [&'static str] {
    match relaxation {
        "noexec" => &["noexec.mounts", "noexec.persisted"],
        "sudo" => &["sudo.mode"],
        "ssh-interface" => &["vpn.ssh-not-global"],
        _ => &[],
    }
}

const RELAXATIONS: &[&str] = &["noexec", "sudo", "ssh-interface", "console-root-login"];

/// The other boot entries of a projection, by name.
pub fn entries(projection: &Value) -> Vec<(&str, &Value)> {
    projection
        .get("specialisations")
        .and_then(Value::as_object)
        .map(|o| o.iter().map(|(k, v)| (k.as_str(), v)).collect())
        .unwrap_or_default()
}

/// The relaxations the host's paranoid.breakGlass asks of the entry `name`.
pub fn asked(main: &Value, name: &str) -> BTreeSet<&'static str> {
    let knobs = Proj(main).knobs();
    let flag = |k: &str| knobs.get(k).and_then(Value::as_bool).unwrap_or(false);
    if !flag("breakGlass.enable")
        || knobs.get("breakGlass.name").and_then(Value::as_str) != Some(name)
    {
        return BTreeSet::new();
    }
    let mut out = BTreeSet::new();
    if flag("breakGlass.noexec") {
        out.insert("noexec");
    }
    if flag("breakGlass.sudo") {
        out.insert("sudo");
    }
    if knobs
        .get("breakGlass.sshInterface")
        .is_some_and(|v| !v.is_null())
    {
        out.insert("ssh-interface");
    }
    if flag("breakGlass.consoleRootLogin.enable") {
        out.insert("console-root-login");
    }
    out
}

/// Mount points that are noexec on the main entry and executable on `entry`.
fn executable_again(main: &Value, entry: &Value) -> Vec<String> {
    let (a, b) = (Table::from_projection(main), Table::from_projection(entry));
    let noexec = |t: &Table| -> BTreeSet<String> {
        t.mounts
            .iter()
            .filter(|m| t.flags(m).noexec)
            .map(|m| m.mount_point.clone())
            .collect()
    };
    let after = noexec(&b);
    noexec(&a)
        .into_iter()
        .filter(|m| !after.contains(m))
        .collect()
}

/// `account via tool` for every account (root and "any other user" aside) that can become root.
fn escalations(e: &Effective) -> BTreeSet<String> {
    e.sudo
        .iter()
        .flat_map(|s| {
            s.paths
                .iter()
                .filter(|p| p.account != "root" && p.account != s.other_user)
                .map(|p| {
                    format!(
                        "{} via {} ({})",
                        p.account,
                        p.tool,
                        password_words(&p.password)
                    )
                })
        })
        .collect()
}

fn password_words(p: &str) -> &'static str {
    match p {
        "own" => "own password",
        "root" => "root's password",
        _ => "no password",
    }
}

/// `port on interface` wherever SSH is reachable from outside the loopback.
fn ssh_reachable(e: &Effective) -> BTreeSet<String> {
    e.firewall
        .iter()
        .flat_map(|f| {
            f.ssh.iter().flat_map(|t| {
                t.interfaces
                    .iter()
                    .filter(|i| i.reachable && i.interface != "lo")
                    .map(move |i| format!("port {} on {}", t.port, i.interface))
            })
        })
        .collect()
}

fn root_password(e: &Effective) -> Option<String> {
    e.accounts.get("root").and_then(|a| a.password.clone())
}

/// What `entry` relaxes compared with `main`, each relaxation with whether it is `asked`.
pub fn relaxations(main: &Value, entry: &Value, asked: &BTreeSet<&str>) -> Vec<Relaxation> {
    let (em, ee) = (Effective::of(main), Effective::of(entry));
    let diff = |a: BTreeSet<String>, b: BTreeSet<String>| -> Vec<String> {
        b.difference(&a).cloned().collect()
    };
    let mut out = vec![];
    for id in RELAXATIONS {
        let observed: Option<String> = match *id {
            "noexec" => {
                let m = executable_again(main, entry);
                (!m.is_empty()).then(|| format!("executable again: {}", m.join(", ")))
            }
            "sudo" => {
                let d = diff(escalations(&em), escalations(&ee));
                (!d.is_empty()).then(|| format!("becomes root: {}", d.join(", ")))
            }
            "ssh-interface" => {
                let d = diff(ssh_reachable(&em), ssh_reachable(&ee));
                (!d.is_empty()).then(|| format!("SSH reachable: {}", d.join(", ")))
            }
            "console-root-login" => match (root_password(&em), root_password(&ee)) {
                (None, Some(p)) => Some(format!("root has a password, for the console: {p}")),
                _ => None,
            },
            _ => None,
        };
        let is_asked = asked.contains(id);
        match observed {
            Some(what) => out.push(Relaxation { id: id.to_string(), what, asked: is_asked, observed: true }),
            None if is_asked => out.push(Relaxation {
                id: id.to_string(),
                what: "asked, but the entry's posture does not differ here (the main entry allows as much already, or something else blocks it)".into(),
                asked: true,
                observed: false,
            }),
            None => {}
        }
    }
    out
}

/// Checks one entry against the main entry's posture: violations of the invariants an asked
/// relaxation breaks are reported as asked; the rest, with the entry's failed NixOS assertions,
/// must hold.
pub fn check_entry(posture: &Posture, main: &Value, name: &str, entry: &Value) -> EntryCheck {
    let wanted = asked(main, name);
    let relaxations = relaxations(main, entry, &wanted);
    let excused: BTreeSet<&str> = relaxations
        .iter()
        .filter(|r| r.asked && r.observed)
        .flat_map(|r| excused_by(&r.id).iter().copied())
        .collect();
    let mut all = invariants::check_posture(posture, entry);
    all.extend(Proj(entry).assertions().into_iter().map(|a| Violation {
        invariant: "nixos.assertions".into(),
        message: format!(
            "NixOS would refuse this entry (and so the whole system): {}",
            crate::report::head(a, 6)
        ),
        fix: "do what the assertion's message says (its `Fix:`)".into(),
        apply: vec![],
    }));
    let (asked_violations, violations): (Vec<Violation>, Vec<Violation>) = all
        .into_iter()
        .partition(|v| excused.contains(v.invariant.as_str()));
    let ok = violations.is_empty() && relaxations.iter().all(|r| r.asked || !r.observed);
    EntryCheck {
        name: name.to_string(),
        break_glass: is_break_glass(main, name),
        relaxations,
        asked: asked_violations,
        violations,
        ok,
    }
}

/// Whether `name` is the entry paranoid.breakGlass builds on this host.
pub fn is_break_glass(main: &Value, name: &str) -> bool {
    let knobs = Proj(main).knobs();
    knobs.get("breakGlass.enable").and_then(Value::as_bool) == Some(true)
        && knobs.get("breakGlass.name").and_then(Value::as_str) == Some(name)
}

/// Every other entry of `main`, checked.
pub fn check_all(posture: &Posture, main: &Value) -> Vec<EntryCheck> {
    entries(main)
        .into_iter()
        .map(|(name, entry)| check_entry(posture, main, name, entry))
        .collect()
}
