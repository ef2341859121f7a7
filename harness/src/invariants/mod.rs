//! The invariants (docs/harness.md "Invariants"): each a function of the expected posture and a
//! projection, returning violations that name the knob values, the option value found, and the
//! fix. Posture invariants serve `matrix` and `check`; `knob-off.untouched`, `nixos.assertions`
//! and `constraint.rejected` need the matrix's context and live in their own functions.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;

use crate::catalogue::Catalogue;
use crate::effective::Effective;
use crate::plan::plain;

mod access;
mod admin;
mod audit;
mod nix;
mod noexec;
mod rest;
mod sshd;
mod sudo;

/// Every invariant id, in the order of docs/harness.md.
pub const IDS: &[&str] = &[
    "ssh.password-auth",
    "ssh.kbd-interactive",
    "ssh.publickey-only",
    "ssh.tcp-forwarding",
    "ssh.agent-forwarding",
    "ssh.x11-forwarding",
    "ssh.streamlocal-forwarding",
    "ssh.disable-forwarding",
    "ssh.tunnel",
    "ssh.gateway-ports",
    "ssh.sftp",
    "ssh.root-login",
    "ssh.homedir-keys",
    "ssh.judged",
    "ssh.config-valid",
    "ssh.model-agrees",
    "noexec.mounts",
    "noexec.persisted",
    "noexec.store-exec",
    "nix.allowed-users",
    "nix.trusted-users",
    "nix.channels",
    "nix.cache-block",
    "nix.judged",
    "firewall.enabled",
    "vpn.ssh-not-global",
    "vpn.interface-trusted",
    "vpn.judged",
    "audit.execve-rules",
    "audit.immutable",
    "audit.judged",
    "sudo.mode",
    "sudo.judged",
    "admin.path",
    "packages.stripped",
    "amnesia.tmpfs-root",
    "amnesia.persistence",
    "amnesia.host-keys",
    "users.immutable",
    "logs.upload",
    "antivirus.mode",
    "knob-off.untouched",
    "nixos.assertions",
    "constraint.rejected",
];

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub invariant: String,
    /// What was found, naming the knob values and the option value.
    pub message: String,
    /// The knob to set or the override to remove.
    pub fix: String,
    /// Definitions that realise the fix (each `option = lib.mkForce value`, or a plain
    /// definition for a paranoid knob); empty when the fix needs a human decision.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub apply: Vec<Apply>,
}

/// One definition of a fix: `option = value`, forced above the host's own when `force`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Apply {
    pub option: String,
    pub value: Value,
    pub force: bool,
}

impl Violation {
    /// The same violation with definitions that realise its fix.
    pub fn applying(mut self, apply: Vec<Apply>) -> Violation {
        self.apply = apply;
        self
    }
}

fn v(invariant: &str, message: impl Into<String>, fix: impl Into<String>) -> Violation {
    Violation {
        invariant: invariant.into(),
        message: message.into(),
        fix: fix.into(),
        apply: vec![],
    }
}

/// `option = lib.mkForce value`.
fn force(option: impl Into<String>, value: Value) -> Apply {
    Apply {
        option: option.into(),
        value,
        force: true,
    }
}

/// `option = value` (a paranoid knob: the host sets it like any other).
fn set_knob(option: impl Into<String>, value: Value) -> Apply {
    Apply {
        option: option.into(),
        value,
        force: false,
    }
}

/// The posture a projection is held to: knob values, and which areas are on.
#[derive(Debug, Clone, Default)]
pub struct Posture {
    pub knobs: BTreeMap<String, Value>,
    pub on: BTreeSet<String>,
    /// Areas expected on only because `profile` says so (`check`): the fix is to enable them.
    pub from_profile: BTreeSet<String>,
    pub profile: Option<String>,
    /// The host's own knob values (`check`), to say what the profile changed.
    pub actual: BTreeMap<String, Value>,
}

impl Posture {
    /// The matrix's posture: the row's effective knobs as the projection reports them.
    pub fn effective(cat: &Catalogue, knobs: &BTreeMap<String, Value>) -> Posture {
        let on = cat
            .areas()
            .into_iter()
            .filter(|a| cat.area_on(a, knobs))
            .collect();
        Posture {
            knobs: knobs.clone(),
            on,
            from_profile: BTreeSet::new(),
            profile: None,
            actual: knobs.clone(),
        }
    }

    /// `check`'s posture: the host's own knobs where an area is on; where it is off, the
    /// profile's values (and the catalogue defaults of that area's other knobs).
    pub fn for_check(cat: &Catalogue, host: &BTreeMap<String, Value>, profile: &str) -> Posture {
        let mut p = Posture::effective(cat, host);
        let preset = cat.profiles.get(profile).cloned().unwrap_or_default();
        for area in cat.areas() {
            if p.on.contains(&area) {
                continue;
            }
            let mut knobs = p.knobs.clone();
            for k in cat.knobs.iter().filter(|k| k.area == area) {
                if let Some(val) = preset.get(&k.name) {
                    knobs.insert(k.name.clone(), val.clone());
                } else if k.off.is_none() && !knobs.contains_key(&k.name) {
                    knobs.insert(k.name.clone(), k.default.clone());
                }
            }
            if cat.area_on(&area, &knobs) {
                p.knobs = knobs;
                p.on.insert(area.clone());
                p.from_profile.insert(area);
            }
        }
        p.profile = Some(profile.to_string());
        p
    }

    /// The same posture with every area as if the host had turned it on itself: the same
    /// knobs and areas, so the same violations in the same order, but each fix says which
    /// override to remove instead of which knob to set.
    pub fn without_profile(&self) -> Posture {
        Posture {
            from_profile: BTreeSet::new(),
            actual: self.knobs.clone(),
            ..self.clone()
        }
    }

    /// What the profile fixes ask the host to set: the knobs of the areas the profile expects
    /// whose expected value differs from the host's.
    pub fn suggested_knobs(&self, cat: &Catalogue) -> BTreeMap<String, Value> {
        self.knobs
            .iter()
            .filter(|(k, v)| {
                cat.knob(k)
                    .is_some_and(|knob| self.from_profile.contains(&knob.area))
                    && self.actual.get(*k) != Some(*v)
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    fn get(&self, k: &str) -> Option<&Value> {
        self.knobs.get(k)
    }
    fn flag(&self, k: &str) -> bool {
        self.get(k).and_then(Value::as_bool).unwrap_or(false)
    }
    fn text(&self, k: &str) -> String {
        self.get(k).map(plain).unwrap_or_default()
    }
    /// `paranoid.<k> = <value>` as the user would write it; for an area the profile expects,
    /// also what the host has.
    fn show(&self, k: &str) -> String {
        let val = |v: Option<&Value>| v.map(|v| v.to_string()).unwrap_or_else(|| "<unset>".into());
        let area = k.split('.').next().unwrap_or("");
        if self.from_profile.contains(area) && self.actual.get(k) != self.get(k) {
            format!(
                "paranoid.{k} = {} (expected by the `{}` profile; this host has {})",
                val(self.get(k)),
                self.profile.as_deref().unwrap_or("?"),
                val(self.actual.get(k))
            )
        } else {
            format!("paranoid.{k} = {}", val(self.get(k)))
        }
    }
    fn area_on(&self, area: &str) -> bool {
        self.on.contains(area)
    }

    /// The fix for an area the profile expects but the host left off, else `specific`.
    fn fix(&self, area: &str, switch: &str, specific: impl Into<String>) -> String {
        if self.from_profile.contains(area) {
            format!(
                "set paranoid.{switch} = {} (the `{}` profile expects it), or set paranoid.enable = true with paranoid.profile = \"{}\"",
                self.get(switch).map(|v| v.to_string()).unwrap_or_default(),
                self.profile.as_deref().unwrap_or("?"),
                self.profile.as_deref().unwrap_or("?")
            )
        } else {
            specific.into()
        }
    }
}

/// A profile fix (set the knob) completed with the override the host must also remove: with the
/// suggested knobs on, the violation stayed, so the host's own definition wins over paranoid's.
pub fn fix_with_host_override(fix: &str, override_fix: &str) -> String {
    format!(
        "{fix}; and this host defines the option itself, which still wins with those knobs on: {override_fix}"
    )
}

/// A profile fix completed with the host definition Nix refuses once the suggested knobs are
/// on (`option` has conflicting definition values; `defined` says where the host sets it).
pub fn fix_with_conflict(fix: &str, option: &str, defined: &str) -> String {
    format!(
        "{fix}; and remove this host's own definition of {option}{defined}: with those knobs on, Nix refuses it (conflicting definition values with paranoid's)"
    )
}

/// A profile fix after which the host no longer evaluates, for a reason no violation names.
pub fn fix_with_failure(fix: &str, nix_error: &str) -> String {
    format!(
        "{fix}; but with those knobs on this host does not evaluate ({nix_error}): remove the host definition Nix names"
    )
}

/// Accessors on a projection (docs/harness.md "Projection").
pub struct Proj<'a>(pub &'a Value);

impl<'a> Proj<'a> {
    pub fn opt(&self, path: &str) -> Option<&'a Value> {
        self.0.get("options")?.get(path)
    }
    fn opt_bool(&self, path: &str) -> Option<bool> {
        self.opt(path)?.as_bool()
    }
    fn opt_list(&self, path: &str) -> Vec<&'a Value> {
        self.opt(path)
            .and_then(Value::as_array)
            .map(|a| a.iter().collect())
            .unwrap_or_default()
    }
    pub fn rendered(&self, name: &str) -> Option<&'a str> {
        self.0.get("rendered")?.get(name)?.as_str()
    }
    pub fn assertions(&self) -> Vec<&'a str> {
        self.0
            .get("assertions")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    }
    pub fn warnings(&self) -> Vec<&'a str> {
        self.0
            .get("warnings")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    }
    pub fn knobs(&self) -> BTreeMap<String, Value> {
        self.0
            .get("knobs")
            .and_then(Value::as_object)
            .map(|o| o.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }
}

/// The guard rail that refuses every configuration breaking this invariant, if one does.
pub fn guarded_by(invariant: &str) -> Option<&'static str> {
    match invariant {
        "admin.path" => Some("admin-path"),
        "vpn.ssh-not-global" => Some("vpn-ssh-port-open"),
        _ => None,
    }
}

/// Every posture invariant on one projection.
pub fn check_posture(p: &Posture, projection: &Value) -> Vec<Violation> {
    let proj = Proj(projection);
    let eff = Effective::of(projection);
    let mut out = sshd::check(p, &proj, &eff);
    out.extend(noexec::check_noexec(p, &proj));
    out.extend(nix::check(p, &proj, &eff));
    out.extend(access::check(p, &proj, &eff));
    out.extend(audit::check(p, &proj, &eff));
    out.extend(sudo::check(p, &eff));
    out.extend(admin::check(p, &proj, &eff));
    out.extend(rest::check_rest(p, &proj));
    out
}

fn show_json(v: Option<&Value>) -> String {
    v.map(|v| v.to_string())
        .unwrap_or_else(|| "<absent>".into())
}

pub(super) fn str_list(vals: &[&Value]) -> Vec<String> {
    vals.iter().map(|x| plain(x)).collect()
}

// ---------------------------------------------------------------------------------------------
// Matrix-only invariants.

/// Leaves of a JSON value by dotted path (objects descended, arrays kept whole).
pub fn leaves(prefix: &str, v: &Value, out: &mut BTreeMap<String, Value>) {
    match v {
        Value::Object(o) if !o.is_empty() => {
            for (k, x) in o {
                leaves(&format!("{prefix}.{k}"), x, out);
            }
        }
        other => {
            out.insert(prefix.to_string(), other.clone());
        }
    }
}

/// Top-level projected options whose value differs between two projections.
/// `systemd.services` is projected only for the units paranoid knows of (its
/// `paranoid.services` and the daemons it configures), so a unit only one side lists is not
/// a difference: only units both sides project are compared.
pub fn differing_options(a: &Value, b: &Value) -> BTreeSet<String> {
    let (oa, ob) = (
        a.get("options").and_then(Value::as_object),
        b.get("options").and_then(Value::as_object),
    );
    let (Some(oa), Some(ob)) = (oa, ob) else {
        return BTreeSet::new();
    };
    oa.keys()
        .chain(ob.keys())
        .filter(|k| {
            if k.as_str() == "systemd.services" {
                if let (Some(Value::Object(ua)), Some(Value::Object(ub))) = (oa.get(*k), ob.get(*k))
                {
                    return ua
                        .iter()
                        .any(|(unit, x)| ub.get(unit).is_some_and(|y| y != x));
                }
            }
            oa.get(*k) != ob.get(*k)
        })
        .cloned()
        .collect()
}

/// `knob-off.untouched`: every projected option that no enabled area touches equals its
/// value in the evaluation without paranoid. `touched` maps an area to the options its
/// switches change alone.
pub fn knob_off_untouched(
    p: &Posture,
    row: &Value,
    baseline: &Value,
    touched: &BTreeMap<String, BTreeSet<String>>,
) -> Vec<Violation> {
    let allowed: BTreeSet<&String> =
        p.on.iter()
            .filter_map(|a| touched.get(a))
            .flatten()
            .collect();
    let mut out = vec![];
    for opt in differing_options(row, baseline) {
        if allowed.contains(&opt) {
            continue;
        }
        let (mut lr, mut lb) = (BTreeMap::new(), BTreeMap::new());
        let (vr, vb) = (
            row.get("options")
                .and_then(|o| o.get(&opt))
                .unwrap_or(&Value::Null),
            baseline
                .get("options")
                .and_then(|o| o.get(&opt))
                .unwrap_or(&Value::Null),
        );
        if opt == "systemd.services" {
            // Only the units both sides project (see differing_options).
            for (unit, x) in vr.as_object().into_iter().flatten() {
                if let Some(y) = vb.get(unit) {
                    leaves(&format!("{opt}.{unit}"), x, &mut lr);
                    leaves(&format!("{opt}.{unit}"), y, &mut lb);
                }
            }
        } else {
            leaves(&opt, vr, &mut lr);
            leaves(&opt, vb, &mut lb);
        }
        let diff: Vec<String> = lr
            .keys()
            .chain(lb.keys())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .filter(|k| lr.get(*k) != lb.get(*k))
            .take(3)
            .map(|k| {
                format!(
                    "{k} = {} (without paranoid: {})",
                    show_json(lr.get(k)),
                    show_json(lb.get(k))
                )
            })
            .collect();
        let on: Vec<&str> = p.on.iter().map(String::as_str).collect();
        out.push(v(
            "knob-off.untouched",
            format!(
                "{opt} changed although no enabled area touches it (areas on: [{}]): {}",
                on.join(" "),
                diff.join("; ")
            ),
            format!("find the paranoid module that sets {opt} outside its `mkIf cfg.enable`, and guard it"),
        ));
    }
    out
}

/// The constraints a row must be refused by: its own, and every `when` its knobs match.
pub fn expected_constraints<'c>(
    cat: &'c Catalogue,
    knobs: &BTreeMap<String, Value>,
    row_constraint: Option<&str>,
) -> Vec<&'c crate::catalogue::Constraint> {
    cat.constraints
        .iter()
        .filter(|c| {
            Some(c.id.as_str()) == row_constraint
                || c.when
                    .iter()
                    .any(|conj| conj.iter().all(|(k, val)| knobs.get(k) == Some(val)))
        })
        .collect()
}

/// `nixos.assertions` and `constraint.rejected` for one row.
pub fn check_assertions(
    cat: &Catalogue,
    knobs: &BTreeMap<String, Value>,
    row_constraint: Option<&str>,
    projection: &Value,
) -> Vec<Violation> {
    let expected = expected_constraints(cat, knobs, row_constraint);
    let failed = Proj(projection).assertions();
    let mut out = vec![];
    for c in &expected {
        if !failed.iter().any(|a| a.contains(&c.marker())) {
            let why = if Some(c.id.as_str()) == row_constraint {
                format!("the constraint row (set {})", show_set(&c.set))
            } else {
                format!(
                    "these knobs match its `when` ({})",
                    c.when.iter().map(show_set).collect::<Vec<_>>().join(" or ")
                )
            };
            out.push(v(
                "constraint.rejected",
                format!(
                    "{} ({}) was not refused: {why}; failed assertions: {}",
                    c.marker(),
                    c.description,
                    if failed.is_empty() {
                        "none".to_string()
                    } else {
                        failed.join(" | ")
                    }
                ),
                format!(
                    "add or fix the assertion with message prefix {} in modules/",
                    c.marker()
                ),
            ));
        }
    }
    for a in failed {
        let allowed = expected.iter().any(|c| {
            a.contains(&c.marker()) || c.also_fails.iter().any(|s| a.contains(s.as_str()))
        });
        if !allowed {
            out.push(v(
                "nixos.assertions",
                format!("failed assertion with {}: {}", show_set(&relevant_knobs(cat, knobs)), first_lines(a, 3)),
                "this combination of knobs should evaluate: fix the module, or declare the combination as a catalogue constraint",
            ));
        }
    }
    out
}

fn show_set(m: &BTreeMap<String, Value>) -> String {
    m.iter()
        .map(|(k, x)| format!("{k}={}", plain(x)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The switches that are on plus every non-default knob: what a reader needs to reproduce.
fn relevant_knobs(cat: &Catalogue, knobs: &BTreeMap<String, Value>) -> BTreeMap<String, Value> {
    knobs
        .iter()
        .filter(|(k, x)| match cat.knob(k) {
            Some(kn) => kn.off.as_ref().map_or(**x != kn.default, |off| *x != off),
            None => false,
        })
        .map(|(k, x)| (k.clone(), x.clone()))
        .collect()
}

fn first_lines(s: &str, n: usize) -> String {
    s.lines().take(n).collect::<Vec<_>>().join(" ")
}

/// Whether an invariant applies to a row with this posture (so pass counts mean something).
/// `constraint_row`: the row provokes a constraint on purpose; only the assertion invariants
/// apply to it.
pub fn applies(id: &str, p: &Posture, constraint_row: bool, expects_rejection: bool) -> bool {
    if constraint_row {
        return matches!(id, "nixos.assertions" | "constraint.rejected");
    }
    let area = id.split('.').next().unwrap_or("");
    match id {
        "noexec.store-exec" | "nixos.assertions" => true,
        // Judged by asking sshd, which only `check` does (and says so when it did).
        "ssh.model-agrees" => false,
        "knob-off.untouched" => true,
        "constraint.rejected" => expects_rejection,
        "nix.channels" => p.area_on("nix") && p.flag("nix.disableChannels"),
        "nix.cache-block" => p.area_on("nix") && p.flag("nix.blockBinaryCache"),
        "vpn.ssh-not-global" => p.flag("vpn.sshOnlyOverVpn"),
        "audit.execve-rules" => {
            p.area_on("audit")
                && p.get("audit.execve")
                    .and_then(Value::as_bool)
                    .unwrap_or(true)
        }
        "packages.stripped" => p.area_on("packages") && p.flag("packages.stripDefaults"),
        "users.immutable" => p.area_on("users") && p.flag("users.immutable"),
        _ => p.area_on(area),
    }
}

#[cfg(test)]
mod tests;
