//! Invariant unit tests on hand-built projections: one good projection that passes every
//! invariant, then one mutation per invariant that must trip exactly that invariant.

use super::*;
use serde_json::json;

/// The projection of tests/fixtures/every-area.nix (every area on, nothing weakened), evaluated
/// once by the real lib.harness.evalBatch: the effective posture in it is the Nix model's own.
fn good() -> Value {
    static GOOD: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    GOOD.get_or_init(|| {
        let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let host = repo.join("harness/tests/fixtures/every-area.nix");
        let expr = format!(
            "(builtins.head ((builtins.getFlake {:?}).lib.harness.evalBatch {{ catch = false; items = [ {{ id = \"good\"; modules = [ {:?} ]; }} ]; }})).projection",
            repo.display().to_string(),
            host.display().to_string()
        );
        let out = std::process::Command::new("nix")
            .args(["--extra-experimental-features", "nix-command flakes", "eval", "--json", "--impure", "--expr", &expr])
            .output()
            .expect("these tests need nix on PATH");
        assert!(out.status.success(), "nix eval: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    })
    .clone()
}

/// The fixture's own knobs, every area on.
fn posture() -> Posture {
    let knobs = Proj(&good()).knobs();
    let on = [
        "ssh", "noexec", "nix", "firewall", "vpn", "audit", "sudo", "packages", "amnesia", "users", "logs", "antivirus",
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

/// The index of the mount at `point` from `origin` in the projection's mount table.
fn mount_at(p: &Value, point: &str, origin: &str) -> usize {
    p["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .position(|m| m["mountPoint"] == point && m["origin"] == origin)
        .unwrap_or_else(|| panic!("no {origin} mount at {point}"))
}

/// Every connection sshd was judged for gets `value` for `keyword` (from line `line`).
fn sshd_value(p: &mut Value, keyword: &str, value: &str) {
    for prof in p["effective"]["sshd"]["profiles"].as_array_mut().unwrap() {
        prof["values"][keyword]["value"] = json!(value);
    }
}

fn ids(vs: &[Violation]) -> BTreeSet<String> {
    vs.iter().map(|v| v.invariant.clone()).collect()
}

fn set(p: &mut Value, pointer: &str, value: Value) {
    *p.pointer_mut(pointer)
        .unwrap_or_else(|| panic!("no {pointer} in the test projection")) = value;
}

#[test]
fn the_good_projection_passes_every_posture_invariant() {
    let v = check_posture(&posture(), &good());
    assert!(v.is_empty(), "{v:#?}");
}

/// Each case: the invariant, and a mutation of the good projection (or posture) that breaks it.
/// The effective posture is mutated where the invariant reads it, the options where it reads
/// them; tests/weakenings.rs breaks the same invariants through real NixOS options.
#[test]
fn each_posture_invariant_fires_on_its_own_violation() {
    type Mutation = Box<dyn Fn(&mut Value, &mut Posture)>;
    let sshd = |kw: &'static str, val: &'static str| -> Mutation { Box::new(move |p, _| sshd_value(p, kw, val)) };
    let cases: Vec<(&str, Mutation)> = vec![
        ("ssh.password-auth", sshd("passwordauthentication", "yes")),
        ("ssh.kbd-interactive", sshd("kbdinteractiveauthentication", "yes")),
        ("ssh.publickey-only", sshd("authenticationmethods", "any")),
        ("ssh.tcp-forwarding", sshd("allowtcpforwarding", "yes")),
        ("ssh.agent-forwarding", sshd("allowagentforwarding", "yes")),
        ("ssh.x11-forwarding", sshd("x11forwarding", "yes")),
        ("ssh.streamlocal-forwarding", sshd("allowstreamlocalforwarding", "yes")),
        ("ssh.disable-forwarding", sshd("disableforwarding", "no")),
        ("ssh.tunnel", sshd("permittunnel", "yes")),
        ("ssh.gateway-ports", sshd("gatewayports", "clientspecified")),
        ("ssh.root-login", sshd("permitrootlogin", "yes")),
        (
            "ssh.sftp",
            Box::new(|p, _| set(p, "/effective/sshd/subsystems", json!({"sftp": {"command": "/x/sftp-server", "line": 40}}))),
        ),
        (
            "ssh.homedir-keys",
            Box::new(|p, _| {
                for c in p["effective"]["sshd"]["contexts"].as_array_mut().unwrap() {
                    c["keyFiles"] = json!([{"path": "/root/.ssh/authorized_keys", "kind": "home"}]);
                }
            }),
        ),
        (
            "ssh.judged",
            Box::new(|p, _| set(p, "/effective/sshd/unjudged", json!([{"line": 50, "text": "Include /etc/ssh/x", "origin": {"option": "services.openssh.extraConfig"}, "reason": "not in the store"}]))),
        ),
        (
            "ssh.config-valid",
            Box::new(|p, _| set(p, "/effective/sshd/errors", json!([{"line": 51, "text": "Port 2222", "origin": {"option": "services.openssh.extraConfig"}, "reason": "not allowed in Match"}]))),
        ),
        (
            "noexec.mounts",
            Box::new(|p, _| {
                let i = mount_at(p, "/dev/shm", "special");
                set(p, &format!("/mounts/{i}/options"), json!(["nosuid", "nodev", "noexec", "defaults"]))
            }),
        ),
        (
            "noexec.persisted",
            Box::new(|p, pos| {
                // The persist path excepted: its own mount is excused, what is persisted is not.
                pos.knobs.insert("noexec.exceptions".into(), json!(["/nix/persist"]));
                let i = mount_at(p, "/nix/persist", "fileSystems");
                set(p, &format!("/mounts/{i}/options"), json!(["bind", "x-initrd.mount"]))
            }),
        ),
        (
            "noexec.store-exec",
            Box::new(|p, _| {
                let i = mount_at(p, "/nix", "fileSystems");
                set(p, &format!("/mounts/{i}/options"), json!(["noexec"]))
            }),
        ),
        ("nix.allowed-users", Box::new(|p, _| set(p, "/effective/nix/allowedUsers/value", json!(["*"])))),
        ("nix.trusted-users", Box::new(|p, _| set(p, "/effective/nix/trustedUsers/value", json!(["root", "@wheel"])))),
        (
            "nix.judged",
            Box::new(|p, _| set(p, "/effective/nix/unjudged", json!([{"line": 30, "text": "include /etc/nix/extra.conf", "origin": {"option": "nix.extraOptions"}, "reason": "cannot read"}]))),
        ),
        ("nix.channels", Box::new(|p, _| set(p, "/options/nix.channel.enable", json!(true)))),
        ("nix.cache-block", Box::new(|p, _| set(p, "/effective/nix/substituters/value", json!(["https://cache.nixos.org/"])))),
        ("firewall.enabled", Box::new(|p, _| set(p, "/options/networking.firewall.enable", json!(false)))),
        (
            "vpn.ssh-not-global",
            Box::new(|p, _| {
                set(p, "/effective/firewall/publicSsh", json!([{"port": 22, "interface": "eth0", "routes": [{"option": "networking.firewall.allowedTCPPorts", "files": [], "text": "22"}]}]))
            }),
        ),
        (
            "vpn.interface-trusted",
            Box::new(|p, _| {
                for t in p["effective"]["firewall"]["ssh"].as_array_mut().unwrap() {
                    for i in t["interfaces"].as_array_mut().unwrap() {
                        i["reachable"] = json!(false);
                    }
                }
            }),
        ),
        (
            "vpn.judged",
            Box::new(|p, _| set(p, "/effective/firewall/unjudged", json!([{"option": "networking.firewall.extraInputRules", "files": [], "line": 1, "text": "tcp dport @ssh accept", "reason": "named set"}]))),
        ),
        (
            "audit.execve-rules",
            Box::new(|p, _| {
                set(p, "/effective/audit/execveAudited", json!(false));
                set(p, "/effective/audit/scenarios/0/execveRecord", json!(false));
            }),
        ),
        (
            "audit.judged",
            Box::new(|p, _| {
                set(p, "/effective/audit/judged", json!(false));
                set(p, "/effective/audit/scenarios/0/uncertain", json!(true));
            }),
        ),
        ("audit.immutable", Box::new(|p, _| set(p, "/effective/audit/locked", json!(false)))),
        ("sudo.mode", Box::new(|p, _| set(p, "/effective/sudo/tools/sudo-rs/enabled", json!(true)))),
        (
            "sudo.judged",
            Box::new(|p, pos| {
                pos.knobs.insert("sudo.mode".into(), json!("wheel-only"));
                set(p, "/effective/sudo/tools/sudo", json!({"enabled": true, "execWheelOnly": true, "unjudged": [{"line": 9, "text": "@includedir /etc/sudoers.d", "origin": {"option": "security.sudo.extraConfig"}, "reason": "cannot read"}], "paths": []}));
            }),
        ),
        (
            "admin.path",
            Box::new(|p, _| {
                set(p, "/effective/adminPath/ok", json!(false));
                set(p, "/effective/adminPath/broken", json!([{"account": "root", "links": ["sshd refuses root: PermitRootLogin no"]}]));
            }),
        ),
        ("packages.stripped", Box::new(|p, _| set(p, "/options/programs.nano.enable", json!(true)))),
        (
            "amnesia.tmpfs-root",
            Box::new(|p, _| set(p, "/options/fileSystems/~1", json!({"fsType": "tmpfs", "options": ["defaults", "size=2G"]}))),
        ),
        (
            "amnesia.persistence",
            Box::new(|p, _| set(p, "/options/environment.persistence/~1nix~1persist/directories", json!([{"dirPath": "/var/log"}]))),
        ),
        (
            "amnesia.host-keys",
            Box::new(|p, _| set(p, "/options/services.openssh.hostKeys", json!([{"path": "/etc/ssh/ssh_host_ed25519_key"}]))),
        ),
        ("users.immutable", Box::new(|p, _| set(p, "/options/users.mutableUsers", json!(true)))),
        (
            "logs.upload",
            Box::new(|p, _| set(p, "/options/services.journald.upload.settings/Upload/URL", json!("https://elsewhere"))),
        ),
        ("antivirus.mode", Box::new(|p, _| set(p, "/options/services.clamav.updater.enable", json!(false)))),
    ];
    let posture_ids: BTreeSet<&str> = IDS
        .iter()
        .copied()
        .filter(|i| !matches!(*i, "knob-off.untouched" | "nixos.assertions" | "constraint.rejected" | "ssh.model-agrees"))
        .collect();
    let covered: BTreeSet<&str> = cases.iter().map(|c| c.0).collect();
    assert_eq!(covered, posture_ids, "every posture invariant needs a case");
    for (id, mutate) in &cases {
        let (mut p, mut pos) = (good(), posture());
        mutate(&mut p, &mut pos);
        let got = check_posture(&pos, &p);
        assert_eq!(ids(&got), BTreeSet::from([id.to_string()]), "mutation for {id}: {got:#?}");
        for v in &got {
            assert!(!v.message.is_empty() && !v.fix.is_empty(), "{id}: message and fix");
        }
    }
}

#[test]
fn messages_name_the_line_the_keyword_as_written_and_the_option_behind_it() {
    let mut p = good();
    sshd_value(&mut p, "passwordauthentication", "yes");
    // Point every connection's value at a line that is an alias, set in extraConfig.
    let line = 77;
    for prof in p["effective"]["sshd"]["profiles"].as_array_mut().unwrap() {
        prof["values"]["kbdinteractiveauthentication"] = json!({"value": "yes", "line": line});
    }
    p["effective"]["sshd"]["lines"].as_array_mut().unwrap().push(json!({
        "line": line, "keyword": "ChallengeResponseAuthentication", "canonical": "kbdinteractiveauthentication",
        "value": "yes", "origin": {"option": "services.openssh.extraConfig", "files": ["hosts/a.nix"]}
    }));
    p["options"]["services.openssh.extraConfig"] = json!("Port 22\nChallengeResponseAuthentication yes\n");
    let v = check_posture(&posture(), &p);
    let kbd = v.iter().find(|v| v.invariant == "ssh.kbd-interactive").unwrap();
    assert!(kbd.message.contains("paranoid.ssh.enable = true"), "{}", kbd.message);
    assert!(
        kbd.message.contains("`ChallengeResponseAuthentication yes`") && kbd.message.contains("line 77") && kbd.message.contains("hosts/a.nix"),
        "{}",
        kbd.message
    );
    assert!(kbd.fix.contains("services.openssh.extraConfig in hosts/a.nix"), "{}", kbd.fix);
    // The fix removes exactly that line, forced over the host's text.
    assert_eq!(kbd.apply.len(), 1);
    assert_eq!(kbd.apply[0].value, json!("Port 22\n"));
    // A value from sshd's default names no line and says so.
    let pw = v.iter().find(|v| v.invariant == "ssh.password-auth").unwrap();
    assert!(pw.message.contains("PasswordAuthentication yes"), "{}", pw.message);
}

#[test]
fn a_match_block_names_its_criteria_and_the_connections_it_weakens() {
    let mut p = good();
    let profiles = p["effective"]["sshd"]["profiles"].as_array().unwrap().len();
    // A second profile that only some connections get, from a Match block.
    let mut weak = p["effective"]["sshd"]["profiles"][0].clone();
    weak["blocks"] = json!([60]);
    weak["values"]["allowtcpforwarding"] = json!({"value": "yes", "line": 61});
    p["effective"]["sshd"]["profiles"].as_array_mut().unwrap().push(weak);
    p["effective"]["sshd"]["blocks"] = json!([{"line": 60, "criteria": ["User", "deploy"]}]);
    p["effective"]["sshd"]["lines"].as_array_mut().unwrap().push(json!({
        "line": 61, "keyword": "AllowTcpForwarding", "canonical": "allowtcpforwarding", "value": "yes",
        "origin": {"option": "services.openssh.extraConfig", "files": []}
    }));
    let first = p["effective"]["sshd"]["contexts"][0]["id"].as_str().unwrap().to_string();
    p["effective"]["sshd"]["contexts"][0]["profile"] = json!(profiles);
    let got = check_posture(&posture(), &p);
    assert_eq!(ids(&got), BTreeSet::from(["ssh.tcp-forwarding".to_string()]), "{got:#?}");
    assert!(got[0].message.contains("`Match User deploy` (line 60)") && got[0].message.contains(&first), "{}", got[0].message);
}

#[test]
fn off_areas_are_not_held_to_anything_but_the_store() {
    let off = Posture::default();
    let mut p = good();
    sshd_value(&mut p, "passwordauthentication", "yes");
    set(&mut p, "/options/users.mutableUsers", json!(true));
    assert!(check_posture(&off, &p).is_empty());
    let i = mount_at(&p, "/nix", "fileSystems");
    set(&mut p, &format!("/mounts/{i}/options"), json!(["noexec"]));
    assert_eq!(ids(&check_posture(&off, &p)), BTreeSet::from(["noexec.store-exec".to_string()]));
}

#[test]
fn a_plain_bind_of_an_excepted_persist_path_is_caught() {
    let mut pos = posture();
    pos.knobs.insert("noexec.exceptions".into(), json!(["/nix/persist"]));
    let mut p = good();
    let i = mount_at(&p, "/nix/persist", "fileSystems");
    set(&mut p, &format!("/mounts/{i}/options"), json!(["bind", "x-initrd.mount"]));
    let got = check_posture(&pos, &p);
    assert_eq!(ids(&got), BTreeSet::from(["noexec.persisted".to_string()]), "{got:#?}");
    assert!(got[0].fix.contains("paranoid.noexec.exceptions"), "{}", got[0].fix);
}

fn catalogue() -> Catalogue {
    Catalogue::from_json(json!({
        "knobs": [
            {"name": "ssh.enable", "type": "bool", "values": [false, true], "default": false, "kind": "switch", "area": "ssh", "off": false},
            {"name": "sudo.mode", "type": "enum", "values": ["upstream", "wheel-only", "removed"], "default": "upstream", "kind": "switch", "area": "sudo", "off": "upstream"}
        ],
        "constraints": [
            {"id": "admin-path-root-login-off", "guard": "admin-path", "description": "d", "set": {"sudo.mode": "removed"}, "when": [{"sudo.mode": "removed", "ssh.enable": false}], "alsoFails": ["Neither the root"]}
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
            "[paranoid:admin-path] ... Fix: x",
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
            Some("admin-path-root-login-off"),
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

/// NixOS has no execWheelOnly for doas: its setuid binary is executable by every user, which a
/// wheel-only host promises nobody outside wheel gets (catalogue entry doas-beside-sudo-wheel-only).
#[test]
fn doas_on_a_wheel_only_host_is_flagged_because_everyone_can_execute_it() {
    let mut p = good();
    let mut pos = posture();
    pos.knobs.insert("sudo.mode".into(), json!("wheel-only"));
    assert!(check_posture(&pos, &p).is_empty(), "wheel-only alone is clean here");
    set(&mut p, "/effective/sudo/tools/doas", json!({"enabled": true, "execWheelOnly": false, "unjudged": []}));
    let v = check_posture(&pos, &p);
    assert_eq!(ids(&v), BTreeSet::from(["sudo.mode".to_string()]), "{v:#?}");
    assert!(v[0].message.contains("security.doas.enable = true"), "{}", v[0].message);
    assert_eq!(v[0].apply, vec![force("security.doas.enable", json!(false))]);
}
