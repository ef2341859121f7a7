//! Mutation testing of `check` (issue 9): every entry of the weakening catalogue
//! (checks/weakenings.nix) weakens one guarantee of a clean reference host by one route; `check`
//! must exit 1 and name the entry's invariant. The kill rate is printed; any survivor fails,
//! listed with what check said.

mod common;
mod weakening_support;

use std::collections::{BTreeMap, BTreeSet};

use paranoid_harness::invariants::IDS;
use weakening_support::{base_text, catalogue, check, entry_text, par_map, write, Entry, BASES, OBSERVERS};

/// The invariants `check` judges a host's posture by (the rest need the matrix's context).
fn posture_invariants() -> Vec<&'static str> {
    IDS.iter()
        .copied()
        // ssh.model-agrees holds paranoid's model to the real sshd: no host setting weakens it
        // (check_sshd.rs makes the model disagree and sees it reported).
        .filter(|id| !matches!(*id, "knob-off.untouched" | "nixos.assertions" | "constraint.rejected" | "ssh.model-agrees"))
        .collect()
}

/// Routes issue 9 names, each as it appears in some entry's `route` (so deleting the entries of
/// a route is caught here, not only by a lower count).
const ROUTES: &[&str] = &[
    // sshd
    "Match User",
    "Match Group",
    "Match Address",
    "Match LocalPort",
    "Match Host",
    "alias",
    "authorizedKeysInHomedir",
    "settings.AuthorizedKeysFile",
    "Include",
    "PermitRootLogin",
    "AuthenticationMethods",
    // nix
    "extra-trusted-users",
    "nix.extraOptions",
    "NIX_CONFIG",
    "@wheel",
    "[ \"*\" ]",
    "allowed-users",
    "extra-substituters",
    // firewall
    "interfaces.<uplink>.allowedTCPPorts",
    "interfaces.default",
    "allowedTCPPortRanges",
    "trustedInterfaces",
    "extraInputRules",
    "openFirewall",
    "listenAddresses",
    // sudo, sudo-rs, doas
    "wheelNeedsPassword",
    "security.sudo.extraRules",
    "security.sudo.extraConfig",
    "!authenticate",
    "outside wheel",
    "doas",
    "execWheelOnly",
    "security.sudo.enable",
    "sudo-rs",
    // audit
    "exclude rule drops every EXECVE",
    "number (1309)",
    "`never` exit rule ordered before",
    "`-A` prepends",
    "task,never",
    "`-d` deletes",
    "security.audit.rules = lib.mkForce",
    "security.audit.enable = lib.mkForce false",
    // the admin path
    "AllowUsers",
    "DenyUsers",
    "AllowGroups",
    "DenyGroups",
    "hashedPasswordFile",
    "VPN-only and the VPN is gone",
    "PubkeyAcceptedAlgorithms",
    "HostKeyAlgorithms",
    "users.users.root.shell",
    // key sources the model cannot read, connections it cannot place, sockets
    "AuthorizedKeysCommand",
    "authorizedKeysCommand",
    "Match RDomain",
    "startWhenNeeded",
];

#[test]
fn the_catalogue_is_well_formed_and_covers_every_posture_invariant_and_route() {
    let entries = catalogue();
    assert!(entries.len() >= 40, "issue 9 asks for at least 40 entries; the catalogue has {}", entries.len());
    let mut ids = BTreeSet::new();
    let mut problems = vec![];
    for e in &entries {
        if !ids.insert(e.id.as_str()) {
            problems.push(format!("{}: duplicate id", e.id));
        }
        if !BASES.contains(&e.base.as_str()) {
            problems.push(format!("{}: base `{}` is not one of {BASES:?}", e.id, e.base));
        }
        if !posture_invariants().contains(&e.invariant.as_str()) {
            problems.push(format!("{}: `{}` is not a posture invariant id of docs/harness.md", e.id, e.invariant));
        }
        if e.route.trim().is_empty() || e.source.trim().is_empty() {
            problems.push(format!("{}: route and source must say where the weakening comes from", e.id));
        }
        match (&e.observable, &e.why) {
            (Some(o), _) if !OBSERVERS.contains(&o.as_str()) => {
                problems.push(format!("{}: observable `{o}` is not a sandbox check ({OBSERVERS:?})", e.id))
            }
            (Some(_), Some(_)) => problems.push(format!("{}: `why` is for entries no program can observe (observable = null)", e.id)),
            (None, None) => problems.push(format!("{}: observable = null needs a `why`", e.id)),
            (None, Some(w)) if w.trim().is_empty() => problems.push(format!("{}: empty `why`", e.id)),
            _ => {}
        }
    }
    let covered: BTreeSet<&str> = entries.iter().map(|e| e.invariant.as_str()).collect();
    for id in posture_invariants() {
        if !covered.contains(id) {
            problems.push(format!("no entry weakens {id}"));
        }
    }
    for r in ROUTES {
        if !entries.iter().any(|e| e.route.contains(r)) {
            problems.push(format!("no entry's route covers `{r}`"));
        }
    }
    assert!(problems.is_empty(), "checks/weakenings.nix:\n  {}", problems.join("\n  "));
}

/// A weakening only counts if the host was clean before it: each reference host alone, and with
/// each entry's setup.
#[test]
fn the_reference_hosts_and_every_setup_are_clean() {
    let entries = catalogue();
    let dir = tempfile::tempdir().unwrap();
    let mut hosts: Vec<(String, std::path::PathBuf)> = BASES
        .iter()
        .map(|b| (b.to_string(), write(dir.path(), &format!("{b}.nix"), &base_text(b, None))))
        .collect();
    for e in entries.iter().filter(|e| e.setup) {
        hosts.push((
            format!("{} with the setup of {}", e.base, e.id),
            write(dir.path(), &format!("setup-{}.nix", e.id), &base_text(&e.base, Some(e))),
        ));
    }
    let results = par_map(&hosts, |(_, path)| check(path));
    let dirty: Vec<String> = hosts
        .iter()
        .zip(&results)
        .filter(|(_, r)| r.code != Some(0) || !r.violations().is_empty())
        .map(|((name, _), r)| format!("{name}: {}", r.summary()))
        .collect();
    assert!(dirty.is_empty(), "not clean before any weakening:\n  {}", dirty.join("\n  "));
}

/// Whether check killed the entry: exit 1, the entry's invariant named (with its `finding` in
/// that invariant's message, where the entry gives one).
fn killed(e: &Entry, r: &weakening_support::Checked) -> bool {
    r.code == Some(1)
        && r.violations().iter().any(|v| {
            v["invariant"] == e.invariant.as_str()
                && e.finding
                    .as_deref()
                    .map_or(true, |f| v["message"].as_str().unwrap_or("").contains(f))
        })
}

#[test]
fn check_kills_every_weakening() {
    let entries = catalogue();
    let dir = tempfile::tempdir().unwrap();
    let results = par_map(&entries, |e| {
        let host = write(dir.path(), &format!("{}.nix", e.id), &entry_text(e));
        check(&host)
    });
    let mut survivors = vec![];
    let mut by_invariant: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for (e, r) in entries.iter().zip(&results) {
        let tally = by_invariant.entry(e.invariant.as_str()).or_default();
        tally.1 += 1;
        if killed(e, r) {
            tally.0 += 1;
        } else {
            survivors.push(format!(
                "{} (base {}, must be caught by {}{}; route: {}): {}",
                e.id,
                e.base,
                e.invariant,
                e.finding.as_deref().map(|f| format!(" saying `{f}`")).unwrap_or_default(),
                e.route,
                r.summary()
            ));
        }
    }
    let caught = entries.len() - survivors.len();
    println!("check kill rate: {caught}/{}", entries.len());
    for (id, (c, t)) in &by_invariant {
        println!("  {id}: {c}/{t}");
    }
    assert!(
        survivors.is_empty(),
        "check kill rate {caught}/{}: {} weakening(s) survived:\n  {}",
        entries.len(),
        survivors.len(),
        survivors.join("\n  ")
    );
}
