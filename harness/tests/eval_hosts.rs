//! Issue 2's acceptance, over the real modules and the offline surface: the reference hosts,
//! knob-off means untouched, profiles and knobs alone, every guard rail, sshd_config snapshots,
//! and settings beating extraConfig.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::{harness, json, module, repo};
use paranoid_harness::catalogue::{Catalogue, Kind};
use paranoid_harness::invariants::{self, Proj};
use paranoid_harness::mounts::Table;
use paranoid_harness::nix::{self, EvalOptions, Flake, Item, Outcome};
use paranoid_harness::sshd::SshdConfig;
use serde_json::{json, Value};

fn flake() -> Flake {
    Flake::open(&repo()).expect("the checkout is a flake")
}

fn opts() -> EvalOptions {
    EvalOptions {
        jobs: 2,
        timeout: Duration::from_secs(300),
        ..Default::default()
    }
}

fn eval_host(host: &str) -> Value {
    let out = harness()
        .args(["eval", "--host", host, "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "eval --host {host}: {}",
        common::stderr(&out)
    );
    json(&out.stdout)
}

fn projections(items: Vec<Item>) -> BTreeMap<String, Value> {
    nix::evaluate(&flake(), items, &opts(), &|_, _| {})
        .expect("evaluate")
        .into_iter()
        .map(|(id, o)| match o {
            Outcome::Projection(p) => (id, p),
            Outcome::Failed { message } => panic!("{id} did not evaluate: {message}"),
        })
        .collect()
}

#[test]
fn bastion_has_the_maximum_posture() {
    let p = eval_host("bastion");
    let sshd = SshdConfig::parse(p["rendered"]["sshd_config"].as_str().expect("sshd on"));
    let settings = &p["options"]["services.openssh.settings"];
    assert_eq!(settings["PasswordAuthentication"], json!(false));
    assert_eq!(settings["KbdInteractiveAuthentication"], json!(false));
    assert_eq!(settings["AllowTcpForwarding"], json!("no"));
    assert_eq!(sshd.get("PasswordAuthentication").as_deref(), Some("no"));
    assert_eq!(sshd.get("AllowTcpForwarding").as_deref(), Some("no"));
    assert_eq!(p["options"]["services.openssh.allowSFTP"], json!(false));
    assert!(!sshd.subsystems.contains_key("sftp"));
    assert_eq!(
        p["options"]["nix.settings"]["allowed-users"],
        json!(["root"])
    );
    assert_eq!(p["options"]["security.sudo.enable"], json!(false));
    assert_eq!(p["options"]["environment.defaultPackages"], json!([]));
    assert_eq!(p["assertions"], json!([]));
    // Every mount but the store's is effectively noexec (fileSystems, and /dev/shm).
    let t = Table::from_projection(&p);
    let mut seen = 0;
    for m in t
        .mounts
        .iter()
        .filter(|m| m.origin == "fileSystems" || m.mount_point == "/dev/shm")
    {
        let f = t.flags(m);
        if m.mount_point.starts_with("/nix") {
            assert!(!f.noexec, "{} must stay executable", m.mount_point);
        } else {
            assert!(f.hardened(), "{} lacks {:?}", m.mount_point, f.missing());
            seen += 1;
        }
    }
    assert!(seen >= 3, "/, /boot and /dev/shm at least");
}

#[test]
fn meeka_evaluates_clean() {
    let p = eval_host("meeka");
    assert_eq!(p["assertions"], json!([]));
    assert_eq!(p["options"]["fileSystems"]["/"]["fsType"], json!("tmpfs"));
    assert!(p["options"]["environment.persistence"]["/nix/persist"].is_object());
}

#[test]
fn sshd_config_of_the_reference_hosts() {
    for host in ["meeka", "bastion"] {
        let p = eval_host(host);
        insta::assert_snapshot!(
            format!("sshd_config_{host}"),
            p["rendered"]["sshd_config"].as_str().unwrap()
        );
    }
}

#[test]
fn human_eval_summary_of_bastion() {
    let out = harness()
        .args(["eval", "--host", "bastion"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    insta::assert_snapshot!("eval_human_bastion", String::from_utf8_lossy(&out.stdout));
}

/// sshd keeps the first value: a user's weakening line in extraConfig comes after settings
/// and loses, both in the rendered file and by `check`'s judgement.
#[test]
fn extra_config_cannot_weaken_what_settings_say() {
    let dir = tempfile::tempdir().unwrap();
    let m = module(
        &dir,
        "weak.nix",
        r#"{ imports = [ {repo}/examples/bastion ];
             services.openssh.extraConfig = ''
               PasswordAuthentication yes
               KbdInteractiveAuthentication yes
               AllowTcpForwarding yes
               X11Forwarding yes
               PermitTunnel yes
             ''; }"#,
    );
    let out = harness()
        .args(["eval", "--format", "json", "--module"])
        .arg(&m)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
    let p = json(&out.stdout);
    let text = p["rendered"]["sshd_config"].as_str().unwrap();
    assert!(
        text.contains("PasswordAuthentication yes"),
        "the user's line is in the file"
    );
    let sshd = SshdConfig::parse(text);
    for (k, want) in [
        ("PasswordAuthentication", "no"),
        ("KbdInteractiveAuthentication", "no"),
        ("AllowTcpForwarding", "no"),
        ("X11Forwarding", "no"),
        ("PermitTunnel", "no"),
    ] {
        assert_eq!(
            sshd.get(k).as_deref(),
            Some(want),
            "{k}: settings come first and win"
        );
        assert_eq!(
            sshd.shadowed(k).len(),
            1,
            "{k}: the extraConfig line is shadowed"
        );
    }
    let (code, r, _) = common::check_module(&m, "maximum");
    assert_eq!(r["violations"], json!([]), "{r:#}");
    assert_eq!(code, Some(0));
}

#[test]
fn importing_everything_with_nothing_enabled_changes_nothing() {
    // A plain host that sets no paranoid option at all (the matrix fixture declares a
    // paranoid.services entry, which is an opt-in of its own).
    let dir = tempfile::tempdir().unwrap();
    let host = module(
        &dir,
        "plain.nix",
        r#"{ networking.hostName = "plain"; system.stateVersion = "26.05";
             fileSystems."/" = { device = "/dev/disk/by-label/root"; fsType = "ext4"; };
             fileSystems."/nix" = { device = "/dev/disk/by-label/nix"; fsType = "ext4"; };
             services.openssh.enable = true;
             users.users.admin = { isNormalUser = true; extraGroups = [ "wheel" ]; openssh.authorizedKeys.keys = [ "ssh-ed25519 AAAA admin" ]; }; }"#,
    );
    let ps = projections(vec![
        Item {
            id: "imported".into(),
            modules: vec![host.clone()],
            ..Default::default()
        },
        Item {
            id: "without".into(),
            modules: vec![host],
            without_paranoid: true,
            ..Default::default()
        },
    ]);
    assert_eq!(ps["imported"]["paranoidImported"], json!(true));
    assert_eq!(ps["without"]["paranoidImported"], json!(false));
    let diff = invariants::differing_options(&ps["imported"], &ps["without"]);
    assert!(
        diff.is_empty(),
        "options changed by merely importing paranoid: {diff:?}"
    );
    let options = ps["imported"]["options"].as_object().unwrap();
    assert!(
        options.len() > 40,
        "the comparison covers the projected options ({})",
        options.len()
    );
    assert_eq!(
        ps["imported"]["rendered"]["sshd_config"],
        ps["without"]["rendered"]["sshd_config"]
    );
    assert_eq!(
        ps["imported"]["rendered"]["fstab"],
        ps["without"]["rendered"]["fstab"]
    );
}

#[test]
fn each_profile_alone_evaluates_without_failed_assertions() {
    let cat = Catalogue::load(&flake(), Duration::from_secs(120)).unwrap();
    let items = cat
        .profiles
        .keys()
        .map(|p| Item {
            id: p.clone(),
            fixture: Some("matrix".into()),
            knobs: BTreeMap::from([
                ("enable".into(), json!(true)),
                ("profile".into(), json!(p)),
                ("vpn.tailscale.enable".into(), json!(true)),
            ]),
            ..Default::default()
        })
        .collect();
    let ps = projections(items);
    assert_eq!(ps.len(), 3);
    for (p, proj) in &ps {
        assert_eq!(proj["assertions"], json!([]), "profile {p}");
        assert_eq!(proj["knobs"]["profile"], json!(p));
    }
    assert_eq!(
        ps["maximum"]["knobs"]["sudo.mode"],
        json!("removed"),
        "profiles set knob defaults"
    );
}

/// Each knob at each of its values, alone on the fixture: no failed assertion except the
/// guard rails whose `when` the knob values match.
#[test]
fn each_knob_alone_evaluates_without_unexpected_assertions() {
    let cat = Catalogue::load(&flake(), Duration::from_secs(120)).unwrap();
    let mut items = vec![];
    for k in cat.knobs.iter().filter(|k| k.kind != Kind::Meta) {
        for v in &k.values {
            items.push(Item {
                id: format!("{}={}", k.name, v),
                fixture: Some("matrix".into()),
                knobs: BTreeMap::from([(k.name.clone(), v.clone())]),
                ..Default::default()
            });
        }
    }
    let n = items.len();
    let ps = projections(items);
    assert_eq!(ps.len(), n);
    for (id, p) in &ps {
        let unexpected = invariants::check_assertions(&cat, &Proj(p).knobs(), None, p);
        assert!(unexpected.is_empty(), "{id}: {unexpected:#?}");
    }
}

#[test]
fn every_guard_rail_triggers_with_its_message() {
    let cat = Catalogue::load(&flake(), Duration::from_secs(120)).unwrap();
    assert!(
        cat.constraints.len() >= 7,
        "issue 2 lists at least seven guard rails"
    );
    let items = cat
        .constraints
        .iter()
        .map(|c| Item {
            id: c.id.clone(),
            fixture: Some("matrix".into()),
            knobs: c.set.clone(),
            constraint: Some(c.id.clone()),
            without_impermanence: c.without_impermanence,
            ..Default::default()
        })
        .collect();
    let ps = projections(items);
    for c in &cat.constraints {
        let failed = Proj(&ps[&c.id]).assertions();
        let hit: Vec<&&str> = failed
            .iter()
            .filter(|a| a.starts_with(&c.marker()))
            .collect();
        assert!(!hit.is_empty(), "{} did not fire; failed: {failed:?}", c.id);
        assert!(
            hit[0].contains("Fix:"),
            "{}: the message says how to fix it: {}",
            c.id,
            hit[0]
        );
        let ids: BTreeSet<String> =
            invariants::check_assertions(&cat, &c.set, Some(&c.id), &ps[&c.id])
                .into_iter()
                .map(|v| v.invariant)
                .collect();
        assert!(
            ids.is_empty(),
            "{}: only its own guard (and alsoFails) may fail: {ids:?} {failed:?}",
            c.id
        );
    }
}

#[test]
fn a_port_range_covering_ssh_trips_the_vpn_guard() {
    // allowedTCPPortRanges opens ports on every interface just as allowedTCPPorts does.
    let d = tempfile::tempdir().unwrap();
    let m = common::module(
        &d,
        "range.nix",
        "{ imports = [ {repo}/examples/bastion ]; networking.firewall.allowedTCPPortRanges = [ { from = 20; to = 30; } ]; }",
    );
    let ps = projections(vec![Item {
        id: "range".into(),
        modules: vec![m],
        ..Default::default()
    }]);
    let failed = Proj(&ps["range"]).assertions();
    assert!(
        failed
            .iter()
            .any(|a| a.starts_with("[paranoid:vpn-ssh-port-open]")
                && a.contains("allowedTCPPortRanges")),
        "{failed:?}"
    );
}

#[test]
fn each_area_module_the_flake_exports_works_on_its_own() {
    // nixosModules.<area> is importable alone: with its main knob on, over the matrix fixture's
    // host facts and without the rest of paranoid, it evaluates with no failed assertion. An
    // area added to the flake without a knob below fails here rather than going untested.
    let expr = format!(
        r#"
        let
          flake = builtins.getFlake "{repo}";
          lib = flake.inputs.nixpkgs-lib.lib;
          areas = builtins.attrNames (removeAttrs flake.nixosModules [ "all" "default" "paranoid" ]);
          knob = {{
            firewall = {{ paranoid.firewall.enable = true; }};
            vpn = {{ paranoid.vpn.tailscale.enable = true; paranoid.vpn.sshOnlyOverVpn = true; }};
            ssh = {{ paranoid.ssh.enable = true; }};
            services = {{ paranoid.services.demo.sandbox = "strict"; }};
            nix = {{ paranoid.nix.enable = true; paranoid.nix.blockBinaryCache = true; }};
            amnesia = {{ paranoid.amnesia.enable = true; }};
            noexec = {{ paranoid.noexec.enable = true; }};
            audit = {{ paranoid.audit.enable = true; }};
            logs = {{ paranoid.logs.remote = {{ enable = true; url = "https://logs.example:19532"; serverKeyFile = "/run/keys/upload.key"; serverCertificateFile = "/run/keys/upload.crt"; }}; }};
            sudo = {{ paranoid.sudo.mode = "removed"; }};
            packages = {{ paranoid.packages.stripDefaults = true; }};
            antivirus = {{ paranoid.antivirus.mode = "running"; }};
            users = {{ paranoid.users.immutable = true; }};
            management = {{ paranoid.management = {{ enable = true; keys = [ "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMatrixFixtureKeyDoNotUseAnywhere0000000 admin@deployer" ]; }}; }};
            rollback = {{ paranoid.rollback.enable = true; }};
          }};
          failed = area:
            let e = flake.lib.evalSurface {{
              withParanoid = false;
              modules = [ flake.nixosModules.${{area}} flake.lib.fixtures.matrix.host knob.${{area}} ];
            }};
            in map (a: a.message) (builtins.filter (a: !a.assertion) e.config.assertions);
        in lib.genAttrs areas failed
        "#,
        repo = repo().display()
    );
    let out = std::process::Command::new(common::which_nix())
        .args([
            "--extra-experimental-features",
            "nix-command flakes",
            "eval",
            "--json",
            "--impure",
            "--expr",
            &expr,
        ])
        .output()
        .expect("run nix");
    assert!(out.status.success(), "{}", common::stderr(&out));
    let failed: BTreeMap<String, Vec<String>> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(failed.len() >= 13, "every area is exported: {failed:?}");
    for (area, messages) in &failed {
        assert!(
            messages.is_empty(),
            "nixosModules.{area} alone: {messages:#?}"
        );
    }
}
