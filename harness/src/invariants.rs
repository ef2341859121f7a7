//! The invariants (docs/harness.md "Invariants"): each a function of the expected posture and a
//! projection, returning violations that name the knob values, the option value found, and the
//! fix. Posture invariants serve `matrix` and `check`; `knob-off.untouched`, `nixos.assertions`
//! and `constraint.rejected` need the matrix's context and live in their own functions.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;

use crate::catalogue::Catalogue;
use crate::mounts::Table;
use crate::plan::plain;
use crate::sshd::SshdConfig;

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
    "noexec.mounts",
    "noexec.persisted",
    "noexec.store-exec",
    "nix.allowed-users",
    "nix.trusted-users",
    "nix.channels",
    "nix.cache-block",
    "firewall.enabled",
    "vpn.ssh-not-global",
    "vpn.interface-trusted",
    "audit.execve-rules",
    "audit.immutable",
    "sudo.mode",
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
}

fn v(invariant: &str, message: impl Into<String>, fix: impl Into<String>) -> Violation {
    Violation {
        invariant: invariant.into(),
        message: message.into(),
        fix: fix.into(),
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
    pub fn knobs(&self) -> BTreeMap<String, Value> {
        self.0
            .get("knobs")
            .and_then(Value::as_object)
            .map(|o| o.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }
}

fn show_json(v: Option<&Value>) -> String {
    v.map(|v| v.to_string())
        .unwrap_or_else(|| "<absent>".into())
}

// ---------------------------------------------------------------------------------------------
// sshd

/// One sshd keyword that must have one value: checks the first global occurrence (or sshd's
/// default) and every Match block that sets it.
fn sshd_key(
    id: &str,
    cfg: &SshdConfig,
    p: &Posture,
    keyword: &str,
    want: &str,
    settings_key: &str,
) -> Vec<Violation> {
    let mut out = vec![];
    let got = cfg.get(keyword).unwrap_or_default();
    if !got.eq_ignore_ascii_case(want) {
        let whence = match cfg.first(keyword) {
            Some(d) => format!(
                "`{} {}` on line {} of sshd_config wins (sshd keeps the first value)",
                keyword, d.value, d.line
            ),
            None => format!("sshd_config has no {keyword} line, so sshd's default `{got}` applies"),
        };
        out.push(v(
            id,
            format!("with {}, sshd runs with {keyword} {got} (want {want}): {whence}", p.show("ssh.enable")),
            p.fix(
                "ssh",
                "ssh.enable",
                format!(
                    "remove the definition of services.openssh.settings.{settings_key} that overrides paranoid.ssh (look for lib.mkForce, \
                     or a plain value where paranoid uses mkDefault); paranoid.ssh sets {want}"
                ),
            ),
        ));
    }
    for (crit, d) in cfg.in_matches(keyword) {
        if !d.value.eq_ignore_ascii_case(want) {
            out.push(v(
                id,
                format!("`Match {crit}` sets {keyword} {} (line {}), overriding {want} for matching connections", d.value, d.line),
                format!("remove {keyword} from that Match block in services.openssh.extraConfig"),
            ));
        }
    }
    out
}

fn check_sshd(p: &Posture, proj: &Proj) -> Vec<Violation> {
    if !p.area_on("ssh") {
        return vec![];
    }
    let Some(text) = proj.rendered("sshd_config") else {
        // No sshd at all: nothing listens, nothing to weaken.
        return vec![];
    };
    let cfg = SshdConfig::parse(text);
    let mut out = vec![];
    let keys: &[(&str, &str, &str, &str)] = &[
        (
            "ssh.password-auth",
            "PasswordAuthentication",
            "no",
            "PasswordAuthentication",
        ),
        (
            "ssh.kbd-interactive",
            "KbdInteractiveAuthentication",
            "no",
            "KbdInteractiveAuthentication",
        ),
        (
            "ssh.publickey-only",
            "AuthenticationMethods",
            "publickey",
            "AuthenticationMethods",
        ),
        (
            "ssh.tcp-forwarding",
            "AllowTcpForwarding",
            "no",
            "AllowTcpForwarding",
        ),
        (
            "ssh.agent-forwarding",
            "AllowAgentForwarding",
            "no",
            "AllowAgentForwarding",
        ),
        ("ssh.x11-forwarding", "X11Forwarding", "no", "X11Forwarding"),
        (
            "ssh.streamlocal-forwarding",
            "AllowStreamLocalForwarding",
            "no",
            "AllowStreamLocalForwarding",
        ),
        (
            "ssh.disable-forwarding",
            "DisableForwarding",
            "yes",
            "DisableForwarding",
        ),
        ("ssh.tunnel", "PermitTunnel", "no", "PermitTunnel"),
        ("ssh.gateway-ports", "GatewayPorts", "no", "GatewayPorts"),
    ];
    for (id, kw, want, sk) in keys {
        out.extend(sshd_key(id, &cfg, p, kw, want, sk));
    }
    // The ChallengeResponseAuthentication alias: a line of it before KbdInteractiveAuthentication wins.
    let sftp_wanted = p
        .get("ssh.allowSFTP")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let sftp = cfg.subsystems.get("sftp");
    if sftp.is_some() != sftp_wanted {
        out.push(v(
            "ssh.sftp",
            format!(
                "with {}, sshd_config {}",
                p.show("ssh.allowSFTP"),
                match sftp {
                    Some(cmd) => format!("still has `Subsystem sftp {cmd}`"),
                    None => "has no `Subsystem sftp` line".into(),
                }
            ),
            if sftp_wanted {
                "remove services.openssh.allowSFTP = false (or set paranoid.ssh.allowSFTP = false if SFTP should be off)".to_string()
            } else {
                "remove the definition forcing services.openssh.allowSFTP = true or the Subsystem line in extraConfig".to_string()
            },
        ));
    }
    let want_root = p.text("ssh.permitRootLogin");
    if !want_root.is_empty() {
        out.extend(sshd_key(
            "ssh.root-login",
            &cfg,
            p,
            "PermitRootLogin",
            &want_root,
            "PermitRootLogin",
        ));
    }
    let files = cfg.get("AuthorizedKeysFile").unwrap_or_default();
    let in_home: Vec<&str> = files
        .split_whitespace()
        .filter(|f| !f.starts_with('/') || f.starts_with("/home/") || f.starts_with("/root/"))
        .filter(|f| *f != "none")
        .collect();
    if !in_home.is_empty() {
        out.push(v(
            "ssh.homedir-keys",
            format!("with {}, sshd reads authorized keys from the home directory: AuthorizedKeysFile {files} ({})", p.show("ssh.enable"), in_home.join(" ")),
            p.fix("ssh", "ssh.enable", "remove services.openssh.authorizedKeysInHomedir = true or the AuthorizedKeysFile setting; keys belong in users.users.<name>.openssh.authorizedKeys"),
        ));
    }
    out
}

// ---------------------------------------------------------------------------------------------
// noexec

const STORE_MOUNTS: &[&str] = &["/nix", "/nix/store"];

fn check_noexec(p: &Posture, proj: &Proj) -> Vec<Violation> {
    let table = Table::from_projection(proj.0);
    let mut out = vec![];
    // Always: the store stays executable.
    match table.flags_at("/nix/store") {
        Some((f, m)) if f.noexec => out.push(v(
            "noexec.store-exec",
            format!("/nix/store lies on {} which is noexec: nothing on the system could run", table.explain(m)),
            "put /nix on its own filesystem without noexec, or add its mount point to paranoid.noexec.exceptions",
        )),
        _ => {}
    }
    if !p.area_on("noexec") {
        return out;
    }
    let exceptions: Vec<String> = p
        .get("noexec.exceptions")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    for m in &table.mounts {
        // Filesystems: fileSystems entries and /dev/shm. The binds impermanence adds
        // (systemd.mounts, initrd) are persisted paths: noexec.persisted judges them.
        let relevant = match m.origin.as_str() {
            "special" => m.mount_point == "/dev/shm",
            "fileSystems" => true,
            _ => false,
        };
        if !relevant
            || STORE_MOUNTS.contains(&m.mount_point.as_str())
            || exceptions.contains(&m.mount_point)
        {
            continue;
        }
        let f = table.flags(m);
        if !f.hardened() {
            out.push(v(
                "noexec.mounts",
                format!("with {}, {} lacks {}", p.show("noexec.enable"), table.explain(m), f.missing().join(",")),
                p.fix(
                    "noexec",
                    "noexec.enable",
                    format!(
                        "drop the override of fileSystems.\"{}\".options (lib.mkForce or an `exec`/`defaults` after noexec), or list \"{}\" in paranoid.noexec.exceptions if it must stay executable",
                        m.mount_point, m.mount_point
                    ),
                ),
            ));
        }
    }
    // Persisted directories and files: the path and its storage both noexec.
    let mut persisted: Vec<(String, String)> = vec![];
    if let Some(pers) = proj
        .opt("environment.persistence")
        .and_then(Value::as_object)
    {
        for (storage, e) in pers {
            if e.get("enable").and_then(Value::as_bool) == Some(false) {
                continue;
            }
            // impermanence's entries: directories by dirPath, files by filePath.
            for (list, path_key, short_key) in [
                ("directories", "dirPath", "directory"),
                ("files", "filePath", "file"),
            ] {
                for entry in e.get(list).and_then(Value::as_array).into_iter().flatten() {
                    let Some(path) = entry
                        .get(path_key)
                        .or_else(|| entry.get(short_key))
                        .and_then(Value::as_str)
                    else {
                        continue;
                    };
                    let st = entry
                        .get("persistentStoragePath")
                        .and_then(Value::as_str)
                        .unwrap_or(storage);
                    persisted.push((
                        path.to_string(),
                        format!("{}{}", st.trim_end_matches('/'), path),
                    ));
                }
            }
        }
    }
    for (path, source) in persisted {
        // noexec.exceptions name mount points to keep executable; they do not excuse persisted
        // state, whose whole point is to survive reboots (a planted binary would too).
        for at in [&path, &source] {
            match table.flags_at(at) {
                Some((f, m)) if !f.noexec => {
                    out.push(v(
                        "noexec.persisted",
                        format!(
                            "with {}, persisted {} is executable: {} resolves to {}",
                            p.show("noexec.enable"),
                            path,
                            at,
                            table.explain(m)
                        ),
                        p.fix("noexec", "noexec.enable", {
                            let src = table.backing(m);
                            format!(
                                "remove \"{}\" from paranoid.noexec.exceptions, or drop the override of fileSystems.\"{}\".options, so the persistent storage keeps noexec",
                                src.mount_point, src.mount_point
                            )
                        }),
                    ));
                    break;
                }
                None => {
                    out.push(v(
                        "noexec.persisted",
                        format!("persisted {path}: no mount holds {at}"),
                        "declare fileSystems.\"/\"",
                    ));
                    break;
                }
                _ => {}
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// nix, firewall, vpn

fn str_list(vals: &[&Value]) -> Vec<String> {
    vals.iter().map(|x| plain(x)).collect()
}

fn check_nix(p: &Posture, proj: &Proj) -> Vec<Violation> {
    if !p.area_on("nix") {
        return vec![];
    }
    let mut out = vec![];
    let settings = proj.opt("nix.settings");
    let list = |k: &str| -> Vec<String> {
        let mut l: Vec<String> = settings
            .and_then(|s| s.get(k))
            .and_then(Value::as_array)
            .map(|a| a.iter().map(plain).collect())
            .unwrap_or_default();
        l.sort();
        l
    };
    let mut want: Vec<String> = match p.get("nix.allowedUsers") {
        Some(Value::String(s)) if s == "root" => vec!["root".into()],
        Some(Value::String(s)) if s == "wheel" => vec!["@wheel".into()],
        Some(Value::Array(a)) => a.iter().map(plain).collect(),
        Some(other) => vec![plain(other)],
        None => vec!["@wheel".into()],
    };
    want.sort();
    let got = list("allowed-users");
    if got != want {
        out.push(v(
            "nix.allowed-users",
            format!("with {}, nix.settings.allowed-users = {:?} (want {:?})", p.show("nix.allowedUsers"), got, want),
            p.fix("nix", "nix.enable", "remove the definition of nix.settings.allowed-users that overrides paranoid.nix.allowedUsers (or change paranoid.nix.allowedUsers)"),
        ));
    }
    let trusted = list("trusted-users");
    if trusted != ["root"] {
        out.push(v(
            "nix.trusted-users",
            format!("with {}, nix.settings.trusted-users = {:?}: everyone but root listed there can bypass the daemon's restrictions", p.show("nix.enable"), trusted),
            p.fix("nix", "nix.enable", format!("remove {:?} from nix.settings.trusted-users (keep only root)", trusted.iter().filter(|t| *t != "root").collect::<Vec<_>>())),
        ));
    }
    if p.flag("nix.disableChannels") && proj.opt_bool("nix.channel.enable") != Some(false) {
        out.push(v(
            "nix.channels",
            format!(
                "with {}, nix.channel.enable = {}",
                p.show("nix.disableChannels"),
                show_json(proj.opt("nix.channel.enable"))
            ),
            p.fix(
                "nix",
                "nix.enable",
                "remove the definition forcing nix.channel.enable = true",
            ),
        ));
    }
    if p.flag("nix.blockBinaryCache") {
        let ranges: Vec<String> = p
            .get("nix.binaryCacheRanges")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(plain).collect())
            .unwrap_or_default();
        let rules = format!(
            "{}\n{}",
            proj.rendered("nftables").unwrap_or(""),
            proj.opt("networking.firewall.extraCommands")
                .and_then(Value::as_str)
                .unwrap_or("")
        );
        for r in &ranges {
            if !rules.contains(r.as_str()) {
                out.push(v(
                    "nix.cache-block",
                    format!("with {}, no egress rule mentions {r}", p.show("nix.blockBinaryCache")),
                    p.fix("nix", "nix.enable", "enable the firewall (paranoid.firewall.enable = true) so the egress block has a packet filter to live in"),
                ));
            }
        }
        let subs = list("substituters");
        if subs.iter().any(|s| s.contains("cache.nixos.org")) {
            out.push(v(
                "nix.cache-block",
                format!(
                    "with {}, nix.settings.substituters still lists cache.nixos.org: {subs:?}",
                    p.show("nix.blockBinaryCache")
                ),
                p.fix(
                    "nix",
                    "nix.enable",
                    "remove cache.nixos.org from nix.settings.substituters",
                ),
            ));
        }
    }
    out
}

fn check_firewall_vpn(p: &Posture, proj: &Proj) -> Vec<Violation> {
    let mut out = vec![];
    if p.area_on("firewall") && proj.opt_bool("networking.firewall.enable") != Some(true) {
        out.push(v(
            "firewall.enabled",
            format!(
                "with {}, networking.firewall.enable = {}",
                p.show("firewall.enable"),
                show_json(proj.opt("networking.firewall.enable"))
            ),
            p.fix(
                "firewall",
                "firewall.enable",
                "remove the definition of networking.firewall.enable = false",
            ),
        ));
    }
    let ports: Vec<String> = str_list(&proj.opt_list("services.openssh.ports"));
    let ports = if ports.is_empty() {
        vec!["22".to_string()]
    } else {
        ports
    };
    if p.flag("vpn.sshOnlyOverVpn") {
        if proj.opt_bool("services.openssh.openFirewall") == Some(true) {
            out.push(v(
                "vpn.ssh-not-global",
                format!(
                    "with {}, services.openssh.openFirewall = true opens {} on every interface",
                    p.show("vpn.sshOnlyOverVpn"),
                    ports.join(",")
                ),
                p.fix(
                    "vpn",
                    "vpn.sshOnlyOverVpn",
                    "remove the definition of services.openssh.openFirewall = true",
                ),
            ));
        }
        let open = str_list(&proj.opt_list("networking.firewall.allowedTCPPorts"));
        let global: Vec<&String> = ports.iter().filter(|x| open.contains(x)).collect();
        if !global.is_empty() {
            out.push(v(
                "vpn.ssh-not-global",
                format!("with {}, networking.firewall.allowedTCPPorts = [{}] opens SSH port {} on every interface", p.show("vpn.sshOnlyOverVpn"), open.join(" "), global.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(",")),
                p.fix("vpn", "vpn.sshOnlyOverVpn", "remove the SSH port from networking.firewall.allowedTCPPorts (open it on the VPN interface only)"),
            ));
        }
    }
    if p.area_on("vpn") {
        let iface = match p.get("vpn.interface") {
            Some(i) => plain(i),
            None => "tailscale0".into(),
        };
        let trusted = str_list(&proj.opt_list("networking.firewall.trustedInterfaces"));
        let per_if: Vec<String> = proj
            .opt("networking.firewall.interfaces")
            .and_then(|i| i.get(&iface))
            .and_then(|i| i.get("allowedTCPPorts"))
            .and_then(Value::as_array)
            .map(|a| a.iter().map(plain).collect())
            .unwrap_or_default();
        if !trusted.contains(&iface) && !ports.iter().all(|port| per_if.contains(port)) {
            out.push(v(
                "vpn.interface-trusted",
                format!(
                    "with {} and {}, {iface} is not in networking.firewall.trustedInterfaces ({}) and does not carry SSH port(s) {}",
                    p.show("vpn.interface"),
                    p.show("vpn.trust"),
                    trusted.join(" "),
                    ports.join(",")
                ),
                p.fix("vpn", "vpn.sshOnlyOverVpn", format!("remove the definition that overrides networking.firewall.trustedInterfaces / networking.firewall.interfaces.{iface}")),
            ));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// audit, sudo, packages, amnesia, users, logs, antivirus

fn check_rest(p: &Posture, proj: &Proj) -> Vec<Violation> {
    let mut out = vec![];
    if p.area_on("audit") {
        if p.get("audit.execve")
            .and_then(Value::as_bool)
            .unwrap_or(true)
        {
            let rules: Vec<String> = str_list(&proj.opt_list("security.audit.rules"));
            for arch in ["b64", "b32"] {
                let present = rules.iter().any(|r| {
                    r.contains(&format!("arch={arch}"))
                        && r.split_whitespace()
                            .collect::<Vec<_>>()
                            .windows(2)
                            .any(|w| w[0] == "-S" && w[1] == "execve")
                });
                if !present {
                    out.push(v(
                        "audit.execve-rules",
                        format!("with {} and {}, security.audit.rules has no {arch} execve rule: {rules:?}", p.show("audit.enable"), p.show("audit.execve")),
                        p.fix("audit", "audit.enable", "remove the definition that overrides security.audit.rules (use lib.mkAfter to add rules)"),
                    ));
                }
            }
        }
        let lock = proj
            .opt("security.audit.enable")
            .map(|x| x == &Value::String("lock".into()))
            .unwrap_or(false);
        if lock != p.flag("audit.immutable") {
            out.push(v(
                "audit.immutable",
                format!(
                    "with {}, security.audit.enable = {}",
                    p.show("audit.immutable"),
                    show_json(proj.opt("security.audit.enable"))
                ),
                p.fix(
                    "audit",
                    "audit.enable",
                    "remove the definition that overrides security.audit.enable",
                ),
            ));
        }
    }
    if p.area_on("sudo") {
        let sudo = proj.opt_bool("security.sudo.enable") == Some(true);
        let sudo_rs = proj.opt_bool("security.sudo-rs.enable") == Some(true);
        match p.text("sudo.mode").as_str() {
            "removed" if sudo || sudo_rs => out.push(v(
                "sudo.mode",
                format!("with {}, security.sudo.enable = {sudo} and security.sudo-rs.enable = {sudo_rs}", p.show("sudo.mode")),
                p.fix("sudo", "sudo.mode", "remove the definition enabling security.sudo / security.sudo-rs"),
            )),
            "wheel-only" if sudo => {
                for key in ["security.sudo.execWheelOnly", "security.sudo.wheelNeedsPassword"] {
                    if proj.opt_bool(key) != Some(true) {
                        out.push(v("sudo.mode", format!("with {}, {key} = {}", p.show("sudo.mode"), show_json(proj.opt(key))), p.fix("sudo", "sudo.mode", format!("remove the definition of {key} = false"))));
                    }
                }
            }
            _ => {}
        }
    }
    if p.area_on("packages") && p.flag("packages.stripDefaults") {
        let defaults = str_list(&proj.opt_list("environment.defaultPackages"));
        if !defaults.is_empty() {
            out.push(v(
                "packages.stripped",
                format!(
                    "with {}, environment.defaultPackages = {defaults:?}",
                    p.show("packages.stripDefaults")
                ),
                p.fix(
                    "packages",
                    "packages.stripDefaults",
                    "remove the definition of environment.defaultPackages",
                ),
            ));
        }
        if proj.opt_bool("programs.nano.enable") != Some(false) {
            out.push(v(
                "packages.stripped",
                format!(
                    "with {}, programs.nano.enable = {}",
                    p.show("packages.stripDefaults"),
                    show_json(proj.opt("programs.nano.enable"))
                ),
                p.fix(
                    "packages",
                    "packages.stripDefaults",
                    "remove the definition of programs.nano.enable = true",
                ),
            ));
        }
    }
    if p.area_on("amnesia") {
        let persist = p.text("amnesia.persistPath");
        let size = p.text("amnesia.rootSize");
        let root = proj.opt("fileSystems").and_then(|f| f.get("/"));
        let fs_type = root
            .and_then(|r| r.get("fsType"))
            .and_then(Value::as_str)
            .unwrap_or("<none>");
        let opts: Vec<String> = root
            .and_then(|r| r.get("options"))
            .and_then(Value::as_array)
            .map(|a| a.iter().map(plain).collect())
            .unwrap_or_default();
        let last = |prefix: &str| opts.iter().rev().find(|o| o.starts_with(prefix)).cloned();
        if fs_type != "tmpfs"
            || last("mode=").as_deref() != Some("mode=755")
            || last("size=") != Some(format!("size={size}"))
        {
            out.push(v(
                "amnesia.tmpfs-root",
                format!("with {} and {}, fileSystems.\"/\" is {fs_type} with options {}", p.show("amnesia.enable"), p.show("amnesia.rootSize"), opts.join(",")),
                p.fix("amnesia", "amnesia.enable", "remove the fileSystems.\"/\" definition (usually hardware-configuration.nix) that overrides paranoid's tmpfs"),
            ));
        }
        let entry = proj
            .opt("environment.persistence")
            .and_then(|e| e.get(&persist));
        let listed = |key: &str, field: &str| -> BTreeSet<String> {
            entry
                .and_then(|e| e.get(key))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|d| d.get(field).and_then(Value::as_str).map(str::to_string))
                .collect()
        };
        let wanted = |key: &str, field: &str| -> Vec<String> {
            p.get(key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|d| {
                    d.as_str()
                        .map(str::to_string)
                        .or_else(|| d.get(field).and_then(Value::as_str).map(str::to_string))
                })
                .collect()
        };
        let (dirs, files) = (
            listed("directories", "dirPath"),
            listed("files", "filePath"),
        );
        let missing: Vec<String> = wanted("amnesia.directories", "directory")
            .into_iter()
            .filter(|d| !dirs.contains(d))
            .chain(
                wanted("amnesia.files", "file")
                    .into_iter()
                    .filter(|f| !files.contains(f)),
            )
            .collect();
        if entry.is_none() || !missing.is_empty() {
            out.push(v(
                "amnesia.persistence",
                format!("with {}, environment.persistence.\"{persist}\" {}", p.show("amnesia.persistPath"), if entry.is_none() { "does not exist".to_string() } else { format!("lacks {missing:?}") }),
                p.fix("amnesia", "amnesia.enable", "import impermanence's module (paranoid.nixosModules.all brings it) and do not override environment.persistence"),
            ));
        }
        for k in proj.opt_list("services.openssh.hostKeys") {
            let path = k.get("path").and_then(Value::as_str).unwrap_or("");
            if !path.starts_with(&format!("{}/", persist.trim_end_matches('/'))) {
                out.push(v(
                    "amnesia.host-keys",
                    format!("with {}, SSH host key {path} is outside persistent storage: it changes at every boot", p.show("amnesia.persistPath")),
                    p.fix("amnesia", "amnesia.enable", "remove the definition of services.openssh.hostKeys (paranoid.ssh.hostKeys.directory follows persistPath)"),
                ));
            }
        }
    }
    if p.area_on("users")
        && p.flag("users.immutable")
        && proj.opt_bool("users.mutableUsers") != Some(false)
    {
        out.push(v(
            "users.immutable",
            format!(
                "with {}, users.mutableUsers = {}",
                p.show("users.immutable"),
                show_json(proj.opt("users.mutableUsers"))
            ),
            p.fix(
                "users",
                "users.immutable",
                "remove the definition of users.mutableUsers = true",
            ),
        ));
    }
    if p.area_on("logs") {
        let url = p.text("logs.remote.url");
        let on = proj.opt_bool("services.journald.upload.enable") == Some(true);
        let got = proj
            .opt("services.journald.upload.settings")
            .and_then(|s| s.get("Upload"))
            .and_then(|u| u.get("URL"))
            .map(plain);
        if !on || got.as_deref() != Some(url.as_str()) {
            out.push(v(
                "logs.upload",
                format!(
                    "with {} and {}, services.journald.upload.enable = {on}, URL = {}",
                    p.show("logs.remote.enable"),
                    p.show("logs.remote.url"),
                    got.unwrap_or_else(|| "<none>".into())
                ),
                p.fix(
                    "logs",
                    "logs.remote.enable",
                    "set paranoid.logs.remote.url and remove overrides of services.journald.upload",
                ),
            ));
        }
    }
    if p.area_on("antivirus") {
        let mode = p.text("antivirus.mode");
        let installed = str_list(&proj.opt_list("environment.systemPackages"))
            .iter()
            .any(|n| n.contains("clamav"));
        let daemon = proj.opt_bool("services.clamav.daemon.enable") == Some(true);
        let updater = proj.opt_bool("services.clamav.updater.enable") == Some(true);
        let ok = match mode.as_str() {
            "installed" => installed,
            "running" => daemon && updater,
            _ => true,
        };
        if !ok {
            out.push(v(
                "antivirus.mode",
                format!("with {}, clamav installed = {installed}, clamd = {daemon}, freshclam = {updater}", p.show("antivirus.mode")),
                p.fix("antivirus", "antivirus.mode", "remove overrides of services.clamav.* / environment.systemPackages"),
            ));
        }
    }
    out
}

/// Every posture invariant on one projection.
pub fn check_posture(p: &Posture, projection: &Value) -> Vec<Violation> {
    let proj = Proj(projection);
    let mut out = check_sshd(p, &proj);
    out.extend(check_noexec(p, &proj));
    out.extend(check_nix(p, &proj));
    out.extend(check_firewall_vpn(p, &proj));
    out.extend(check_rest(p, &proj));
    out
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
#[path = "invariants_tests.rs"]
mod tests;
