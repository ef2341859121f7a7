//! Never lock the admin out: at least one path from the network (over the VPN when SSH is
//! VPN-only) to root, with credentials that survive a reboot (lib/posture/admin-path.nix, the
//! same function paranoid's `admin-path` guard reads).

use super::{v, Posture, Violation};
use crate::effective::Effective;

/// The areas whose knobs decide who can get in.
const ACCESS_AREAS: &[&str] = &["ssh", "sudo", "users", "vpn", "amnesia"];

pub(super) fn check(p: &Posture, eff: &Effective) -> Vec<Violation> {
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
    vec![v(
        "admin.path",
        format!(
            "no path leads {} to root after a reboot: {}",
            if a.vpn_only { "over the VPN" } else { "from the network" },
            links.join(" | ")
        ),
        "mend one link: give root a key and let it log in (PermitRootLogin prohibit-password, AllowUsers naming root), or give a wheel member a key plus a persisted password (hashedPasswordFile under the persist path) and sudo for wheel",
    )]
}
