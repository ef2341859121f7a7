//! Invariant unit tests on hand-built projections: one good projection that passes every
//! invariant, then one mutation per invariant that must trip exactly that invariant.

use super::*;
use serde_json::json;

fn posture() -> Posture {
    let knobs: BTreeMap<String, Value> = serde_json::from_value(json!({
        "ssh.enable": true, "ssh.allowSFTP": false, "ssh.permitRootLogin": "prohibit-password",
        "noexec.enable": true, "noexec.exceptions": [],
        "nix.enable": true, "nix.allowedUsers": "root", "nix.disableChannels": true, "nix.blockBinaryCache": true,
        "nix.binaryCacheRanges": ["151.101.0.0/16", "2a04:4e42::/32"],
        "firewall.enable": true,
        "vpn.sshOnlyOverVpn": true, "vpn.tailscale.enable": true, "vpn.interface": "tailscale0", "vpn.trust": "interface",
        "audit.enable": true, "audit.execve": true, "audit.immutable": true,
        "sudo.mode": "removed", "packages.stripDefaults": true,
        "amnesia.enable": true, "amnesia.persistPath": "/nix/persist", "amnesia.rootSize": "2G",
        "amnesia.directories": ["/var/log", {"directory": "/srv"}], "amnesia.files": ["/etc/machine-id"],
        "users.immutable": true,
        "logs.remote.enable": true, "logs.remote.url": "https://logs.example:19532",
        "antivirus.mode": "running"
    }))
    .unwrap();
    let on = [
        "ssh",
        "noexec",
        "nix",
        "firewall",
        "vpn",
        "audit",
        "sudo",
        "packages",
        "amnesia",
        "users",
        "logs",
        "antivirus",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    Posture {
        actual: knobs.clone(),
        knobs,
        on,
        from_profile: BTreeSet::new(),
        profile: None,
    }
}

const SSHD: &str = "AllowAgentForwarding no\nAllowStreamLocalForwarding no\nAllowTcpForwarding no\nAuthenticationMethods publickey\n\
DisableForwarding yes\nGatewayPorts no\nKbdInteractiveAuthentication no\nPasswordAuthentication no\nPermitRootLogin prohibit-password\n\
PermitTunnel no\nX11Forwarding no\nPort 22\nAuthorizedKeysFile /etc/ssh/authorized_keys.d/%u\nHostKey /nix/persist/etc/ssh/ssh_host_ed25519_key\n";

fn mount(point: &str, device: &str, fs: &str, opts: &[&str], origin: &str) -> Value {
    json!({"mountPoint": point, "device": device, "fsType": fs, "options": opts, "origin": origin, "neededForBoot": false})
}

fn good() -> Value {
    json!({
        "schema": 1, "backend": "surface", "host": "test", "paranoidImported": true, "knobs": {},
        "rendered": {
            "sshd_config": SSHD,
            "nftables": "table inet paranoid-egress {\n chain output {\n ip daddr { 151.101.0.0/16 } reject\n ip6 daddr { 2a04:4e42::/32 } reject\n }\n}\n"
        },
        "mounts": [
            mount("/", "tmpfs", "tmpfs", &["defaults", "size=2G", "mode=755", "noexec", "nosuid", "nodev"], "fileSystems"),
            mount("/nix", "/dev/disk/by-label/nix", "ext4", &["x-initrd.mount"], "fileSystems"),
            mount("/nix/persist", "/nix/persist", "none", &["bind", "x-initrd.mount", "noexec", "nosuid", "nodev"], "fileSystems"),
            mount("/dev/shm", "tmpfs", "tmpfs", &["nosuid", "nodev", "mode=1777", "noexec", "nosuid", "nodev"], "special"),
            mount("/run/wrappers", "tmpfs", "tmpfs", &["nodev", "mode=755"], "special"),
            mount("/var/log", "/nix/persist/var/log", "none", &["bind", "x-gvfs-hide"], "systemd.mounts"),
            mount("/srv", "/nix/persist/srv", "none", &["bind", "x-gvfs-hide"], "systemd.mounts"),
            mount("/var/log", "/nix/persist/var/log", "none", &["bind", "x-gvfs-hide"], "initrd")
        ],
        "options": {
            "nix.settings": {"allowed-users": ["root"], "trusted-users": ["root"], "substituters": []},
            "nix.channel.enable": false,
            "networking.firewall.enable": true,
            "networking.firewall.allowedTCPPorts": [],
            "networking.firewall.trustedInterfaces": ["tailscale0", "lo"],
            "networking.firewall.interfaces": {},
            "networking.firewall.extraCommands": "",
            "services.openssh.openFirewall": false,
            "services.openssh.ports": [22],
            "services.openssh.hostKeys": [{"type": "ed25519", "path": "/nix/persist/etc/ssh/ssh_host_ed25519_key"}],
            "security.audit.enable": "lock",
            "security.audit.rules": ["-a always,exit -F arch=b64 -S execve -k exec", "-a always,exit -F arch=b32 -S execve -k exec"],
            "security.sudo.enable": false,
            "security.sudo-rs.enable": false,
            "security.sudo.execWheelOnly": false,
            "security.sudo.wheelNeedsPassword": true,
            "environment.defaultPackages": [],
            "programs.nano.enable": false,
            "fileSystems": {"/": {"fsType": "tmpfs", "device": "tmpfs", "options": ["defaults", "size=2G", "mode=755", "noexec", "nosuid", "nodev"]}},
            "environment.persistence": {"/nix/persist": {"enable": true, "persistentStoragePath": "/nix/persist",
                "directories": [{"directory": "/var/log", "dirPath": "/var/log", "persistentStoragePath": "/nix/persist"},
                                {"directory": "/srv", "dirPath": "/srv", "persistentStoragePath": "/nix/persist"}],
                "files": [{"file": "/etc/machine-id", "filePath": "/etc/machine-id", "persistentStoragePath": "/nix/persist"}]}},
            "users.mutableUsers": false,
            "services.journald.upload.enable": true,
            "services.journald.upload.settings": {"Upload": {"URL": "https://logs.example:19532"}},
            "environment.systemPackages": ["clamav", "nix"],
            "services.clamav.daemon.enable": true,
            "services.clamav.updater.enable": true
        },
        "assertions": [],
        "warnings": []
    })
}

fn ids(vs: &[Violation]) -> BTreeSet<String> {
    vs.iter().map(|v| v.invariant.clone()).collect()
}

fn set(p: &mut Value, pointer: &str, value: Value) {
    *p.pointer_mut(pointer)
        .unwrap_or_else(|| panic!("no {pointer} in the test projection")) = value;
}

fn sshd_with(first_lines: &str) -> Value {
    json!(format!("{first_lines}{SSHD}"))
}

#[test]
fn the_good_projection_passes_every_posture_invariant() {
    let v = check_posture(&posture(), &good());
    assert!(v.is_empty(), "{v:#?}");
}

/// Each case: the invariant, and a mutation of the good projection (or posture) that breaks it.
#[test]
fn each_posture_invariant_fires_on_its_own_violation() {
    type Mutation = Box<dyn Fn(&mut Value, &mut Posture)>;
    let cases: Vec<(&str, Mutation)> = vec![
        (
            "ssh.password-auth",
            Box::new(|p, _| {
                set(
                    p,
                    "/rendered/sshd_config",
                    sshd_with("PasswordAuthentication yes\n"),
                )
            }),
        ),
        (
            "ssh.kbd-interactive",
            Box::new(|p, _| {
                set(
                    p,
                    "/rendered/sshd_config",
                    sshd_with("ChallengeResponseAuthentication yes\n"),
                )
            }),
        ),
        (
            "ssh.publickey-only",
            Box::new(|p, _| {
                set(
                    p,
                    "/rendered/sshd_config",
                    json!(SSHD.replace("AuthenticationMethods publickey\n", "")),
                )
            }),
        ),
        (
            "ssh.tcp-forwarding",
            Box::new(|p, _| {
                set(
                    p,
                    "/rendered/sshd_config",
                    sshd_with("allowtcpforwarding=yes\n"),
                )
            }),
        ),
        (
            "ssh.agent-forwarding",
            Box::new(|p, _| {
                set(
                    p,
                    "/rendered/sshd_config",
                    json!(SSHD.replace("AllowAgentForwarding no", "AllowAgentForwarding yes")),
                )
            }),
        ),
        (
            "ssh.x11-forwarding",
            Box::new(|p, _| set(p, "/rendered/sshd_config", sshd_with("X11Forwarding yes\n"))),
        ),
        (
            "ssh.streamlocal-forwarding",
            Box::new(|p, _| {
                set(
                    p,
                    "/rendered/sshd_config",
                    json!(SSHD.replace("AllowStreamLocalForwarding no\n", "")),
                )
            }),
        ),
        (
            "ssh.disable-forwarding",
            Box::new(|p, _| {
                set(
                    p,
                    "/rendered/sshd_config",
                    json!(SSHD.replace("DisableForwarding yes", "DisableForwarding no")),
                )
            }),
        ),
        (
            "ssh.tunnel",
            Box::new(|p, _| set(p, "/rendered/sshd_config", sshd_with("PermitTunnel yes\n"))),
        ),
        (
            "ssh.gateway-ports",
            Box::new(|p, _| {
                set(
                    p,
                    "/rendered/sshd_config",
                    sshd_with("GatewayPorts clientspecified\n"),
                )
            }),
        ),
        (
            "ssh.sftp",
            Box::new(|p, _| {
                set(
                    p,
                    "/rendered/sshd_config",
                    json!(format!(
                        "{SSHD}Subsystem sftp /nix/store/x/libexec/sftp-server\n"
                    )),
                )
            }),
        ),
        (
            "ssh.root-login",
            Box::new(|p, _| {
                set(
                    p,
                    "/rendered/sshd_config",
                    sshd_with("PermitRootLogin yes\n"),
                )
            }),
        ),
        (
            "ssh.homedir-keys",
            Box::new(|p, _| {
                set(
                    p,
                    "/rendered/sshd_config",
                    json!(SSHD.replace(
                        "AuthorizedKeysFile /etc/ssh/authorized_keys.d/%u",
                        "AuthorizedKeysFile %h/.ssh/authorized_keys /etc/ssh/authorized_keys.d/%u"
                    )),
                )
            }),
        ),
        (
            "noexec.mounts",
            Box::new(|p, _| {
                set(
                    p,
                    "/mounts/3/options",
                    json!(["nosuid", "nodev", "noexec", "defaults"]),
                )
            }),
        ),
        (
            "noexec.persisted",
            Box::new(|p, pos| {
                // The persist path excepted: its own mount is excused, what is persisted is not.
                pos.knobs
                    .insert("noexec.exceptions".into(), json!(["/nix/persist"]));
                set(p, "/mounts/2/options", json!(["bind", "x-initrd.mount"]))
            }),
        ),
        (
            "noexec.store-exec",
            Box::new(|p, _| set(p, "/mounts/1/options", json!(["noexec"]))),
        ),
        (
            "nix.allowed-users",
            Box::new(|p, _| set(p, "/options/nix.settings/allowed-users", json!(["*"]))),
        ),
        (
            "nix.trusted-users",
            Box::new(|p, _| {
                set(
                    p,
                    "/options/nix.settings/trusted-users",
                    json!(["root", "@wheel"]),
                )
            }),
        ),
        (
            "nix.channels",
            Box::new(|p, _| set(p, "/options/nix.channel.enable", json!(true))),
        ),
        (
            "nix.cache-block",
            Box::new(|p, _| {
                set(
                    p,
                    "/options/nix.settings/substituters",
                    json!(["https://cache.nixos.org/"]),
                )
            }),
        ),
        (
            "firewall.enabled",
            Box::new(|p, _| set(p, "/options/networking.firewall.enable", json!(false))),
        ),
        (
            "vpn.ssh-not-global",
            Box::new(|p, _| {
                set(
                    p,
                    "/options/networking.firewall.allowedTCPPorts",
                    json!([22]),
                )
            }),
        ),
        (
            "vpn.interface-trusted",
            Box::new(|p, _| {
                set(
                    p,
                    "/options/networking.firewall.trustedInterfaces",
                    json!(["lo"]),
                )
            }),
        ),
        (
            "audit.execve-rules",
            Box::new(|p, _| {
                set(
                    p,
                    "/options/security.audit.rules",
                    json!(["-a always,exit -F arch=b64 -S execve -k exec"]),
                )
            }),
        ),
        (
            "audit.immutable",
            Box::new(|p, _| set(p, "/options/security.audit.enable", json!(true))),
        ),
        (
            "sudo.mode",
            Box::new(|p, _| set(p, "/options/security.sudo-rs.enable", json!(true))),
        ),
        (
            "packages.stripped",
            Box::new(|p, _| set(p, "/options/programs.nano.enable", json!(true))),
        ),
        (
            "amnesia.tmpfs-root",
            Box::new(|p, _| {
                set(
                    p,
                    "/options/fileSystems",
                    json!({"/": {"fsType": "tmpfs", "options": ["defaults", "size=2G"]}}),
                )
            }),
        ),
        (
            "amnesia.persistence",
            Box::new(|p, _| {
                set(
                    p,
                    "/options/environment.persistence/~1nix~1persist/directories",
                    json!([{"dirPath": "/var/log"}]),
                )
            }),
        ),
        (
            "amnesia.host-keys",
            Box::new(|p, _| {
                set(
                    p,
                    "/options/services.openssh.hostKeys",
                    json!([{"path": "/etc/ssh/ssh_host_ed25519_key"}]),
                )
            }),
        ),
        (
            "users.immutable",
            Box::new(|p, _| set(p, "/options/users.mutableUsers", json!(true))),
        ),
        (
            "logs.upload",
            Box::new(|p, _| {
                set(
                    p,
                    "/options/services.journald.upload.settings/Upload/URL",
                    json!("https://elsewhere"),
                )
            }),
        ),
        (
            "antivirus.mode",
            Box::new(|p, _| set(p, "/options/services.clamav.updater.enable", json!(false))),
        ),
    ];
    let posture_ids: BTreeSet<&str> = IDS
        .iter()
        .copied()
        .filter(|i| {
            !matches!(
                *i,
                "knob-off.untouched" | "nixos.assertions" | "constraint.rejected"
            )
        })
        .collect();
    let covered: BTreeSet<&str> = cases.iter().map(|c| c.0).collect();
    assert_eq!(covered, posture_ids, "every posture invariant needs a case");
    for (id, mutate) in &cases {
        let (mut p, mut pos) = (good(), posture());
        mutate(&mut p, &mut pos);
        let got = check_posture(&pos, &p);
        assert_eq!(
            ids(&got),
            BTreeSet::from([id.to_string()]),
            "mutation for {id}: {got:#?}"
        );
        for v in &got {
            assert!(
                !v.message.is_empty() && !v.fix.is_empty(),
                "{id}: message and fix"
            );
            assert!(
                v.message.contains("paranoid.") || v.message.contains("/"),
                "{id}: the message names a knob or a path: {}",
                v.message
            );
        }
    }
}

#[test]
fn messages_name_the_knob_the_value_found_and_the_line() {
    let mut p = good();
    set(
        &mut p,
        "/rendered/sshd_config",
        sshd_with("PasswordAuthentication yes\n"),
    );
    let v = check_posture(&posture(), &p);
    assert!(
        v[0].message.contains("paranoid.ssh.enable = true"),
        "{}",
        v[0].message
    );
    assert!(
        v[0].message.contains("PasswordAuthentication yes") && v[0].message.contains("line 1"),
        "{}",
        v[0].message
    );
    assert!(
        v[0].fix
            .contains("services.openssh.settings.PasswordAuthentication"),
        "{}",
        v[0].fix
    );
}

#[test]
fn a_weaker_value_later_in_the_file_is_harmless_but_a_match_block_is_not() {
    let mut p = good();
    set(
        &mut p,
        "/rendered/sshd_config",
        json!(format!(
            "{SSHD}PasswordAuthentication yes\nAllowTcpForwarding yes\n"
        )),
    );
    assert!(check_posture(&posture(), &p).is_empty());
    set(
        &mut p,
        "/rendered/sshd_config",
        json!(format!(
            "{SSHD}Match User deploy\n  AllowTcpForwarding yes\n"
        )),
    );
    assert_eq!(
        ids(&check_posture(&posture(), &p)),
        BTreeSet::from(["ssh.tcp-forwarding".to_string()])
    );
}

#[test]
fn off_areas_are_not_held_to_anything_but_the_store() {
    let off = Posture::default();
    let mut p = good();
    set(
        &mut p,
        "/rendered/sshd_config",
        sshd_with("PasswordAuthentication yes\n"),
    );
    set(&mut p, "/options/users.mutableUsers", json!(true));
    assert!(check_posture(&off, &p).is_empty());
    set(&mut p, "/mounts/1/options", json!(["noexec"]));
    assert_eq!(
        ids(&check_posture(&off, &p)),
        BTreeSet::from(["noexec.store-exec".to_string()])
    );
}

#[test]
fn a_plain_bind_of_an_excepted_persist_path_is_caught() {
    let mut pos = posture();
    pos.knobs
        .insert("noexec.exceptions".into(), json!(["/nix/persist"]));
    let mut p = good();
    set(
        &mut p,
        "/mounts/2/options",
        json!(["bind", "x-initrd.mount"]),
    );
    let got = check_posture(&pos, &p);
    assert_eq!(
        ids(&got),
        BTreeSet::from(["noexec.persisted".to_string()]),
        "{got:#?}"
    );
    assert!(
        got[0].fix.contains("paranoid.noexec.exceptions"),
        "{}",
        got[0].fix
    );
}

fn catalogue() -> Catalogue {
    Catalogue::from_json(json!({
        "knobs": [
            {"name": "ssh.enable", "type": "bool", "values": [false, true], "default": false, "kind": "switch", "area": "ssh", "off": false},
            {"name": "sudo.mode", "type": "enum", "values": ["upstream", "wheel-only", "removed"], "default": "upstream", "kind": "switch", "area": "sudo", "off": "upstream"}
        ],
        "constraints": [
            {"id": "sudo-removed-no-root", "description": "d", "set": {"sudo.mode": "removed"}, "when": [{"sudo.mode": "removed", "ssh.enable": false}], "alsoFails": ["Neither the root"]}
        ]
    }))
    .unwrap()
}

#[test]
fn assertions_must_fail_exactly_where_a_constraint_says() {
    let cat = catalogue();
    let knobs: BTreeMap<String, Value> =
        serde_json::from_value(json!({"sudo.mode": "removed", "ssh.enable": false})).unwrap();
    let mut p = good();
    // Matches `when` but nothing refused it.
    let got = check_assertions(&cat, &knobs, None, &p);
    assert_eq!(
        ids(&got),
        BTreeSet::from(["constraint.rejected".to_string()])
    );
    // Refused with the marker, plus an alsoFails companion: clean.
    set(
        &mut p,
        "/assertions",
        json!([
            "[paranoid:sudo-removed-no-root] ... Fix: x",
            "Neither the root account nor any wheel user has ..."
        ]),
    );
    assert!(check_assertions(&cat, &knobs, None, &p).is_empty());
    // The same assertions on a row that matches no constraint: unexpected.
    let plain_knobs: BTreeMap<String, Value> =
        serde_json::from_value(json!({"sudo.mode": "wheel-only", "ssh.enable": true})).unwrap();
    let got = check_assertions(&cat, &plain_knobs, None, &p);
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|v| v.invariant == "nixos.assertions"));
    assert!(
        got[0].message.contains("sudo.mode=wheel-only"),
        "{}",
        got[0].message
    );
    // The explicit constraint row, refused by another guard only.
    set(&mut p, "/assertions", json!(["[paranoid:other] no"]));
    assert_eq!(
        ids(&check_assertions(
            &cat,
            &plain_knobs,
            Some("sudo-removed-no-root"),
            &p
        )),
        BTreeSet::from([
            "constraint.rejected".to_string(),
            "nixos.assertions".to_string()
        ])
    );
}

#[test]
fn knob_off_means_untouched_unless_an_enabled_area_touches_it() {
    let baseline = json!({"options": {"users.mutableUsers": true, "security.sudo.enable": true,
        "systemd.services": {"sshd": {"enable": true}}}});
    let mut row = baseline.clone();
    set(&mut row, "/options/users.mutableUsers", json!(false));
    // A unit only the paranoid side projects is no difference.
    row["options"]["systemd.services"]["demo"] = json!({"enable": true});
    let touched = BTreeMap::from([(
        "users".to_string(),
        BTreeSet::from(["users.mutableUsers".to_string()]),
    )]);
    let mut pos = Posture::default();
    let got = knob_off_untouched(&pos, &row, &baseline, &touched);
    assert_eq!(
        ids(&got),
        BTreeSet::from(["knob-off.untouched".to_string()])
    );
    assert!(
        got[0]
            .message
            .contains("users.mutableUsers = false (without paranoid: true)"),
        "{}",
        got[0].message
    );
    pos.on.insert("users".into());
    assert!(knob_off_untouched(&pos, &row, &baseline, &touched).is_empty());
    row["options"]["systemd.services"]["sshd"] = json!({"enable": false});
    assert_eq!(
        knob_off_untouched(&pos, &row, &baseline, &touched).len(),
        1,
        "a unit both sides project is compared"
    );
}

#[test]
fn check_posture_expects_the_profile_where_the_host_is_off() {
    let cat = Catalogue::from_json(json!({
        "knobs": [
            {"name": "ssh.enable", "type": "bool", "values": [false, true], "default": false, "kind": "switch", "area": "ssh", "off": false},
            {"name": "users.immutable", "type": "bool", "values": [false, true], "default": false, "kind": "switch", "area": "users", "off": false}
        ],
        "constraints": [],
        "profiles": {"paranoid": {"ssh.enable": true, "users.immutable": true}, "baseline": {"ssh.enable": true}}
    }))
    .unwrap();
    let host: BTreeMap<String, Value> = serde_json::from_value(json!({"ssh.enable": true, "ssh.allowSFTP": false, "ssh.permitRootLogin": "prohibit-password", "users.immutable": false})).unwrap();
    let p = Posture::for_check(&cat, &host, "paranoid");
    assert!(
        p.area_on("users") && p.from_profile.contains("users") && !p.from_profile.contains("ssh")
    );
    let mut proj = good();
    set(&mut proj, "/options/users.mutableUsers", json!(true));
    let got = check_posture(&p, &proj);
    assert_eq!(ids(&got), BTreeSet::from(["users.immutable".to_string()]));
    assert!(
        got[0].fix.contains("paranoid.users.immutable = true")
            && got[0].fix.contains("`paranoid` profile"),
        "{}",
        got[0].fix
    );
    assert!(!Posture::for_check(&cat, &host, "baseline").area_on("users"));
}
