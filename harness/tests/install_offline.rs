//! From a blank disk to a managed host, judged offline (no nixpkgs, no network):
//! - the disk layouts (paranoid.lib.disko) become, through disko's own library, the mounts
//!   paranoid expects, and a host on each passes `check` clean with amnesia and noexec;
//! - a layout with / on ext4 and noexec trips noexec-store-on-root; persistent storage on a
//!   partition of its own trips amnesia-persist-not-at-boot (disko never sets neededForBoot);
//! - paranoid.management leaves one deploy path (account, key, sudo rule) and no local rebuild;
//!   each of its guard rails names its fix;
//! - the installer has no password, and checks the disk before it partitions and installs.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::{json, Value};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Nix with every download sent to a closed port on loopback: offline for certain.
fn nix_eval(body: &str) -> Output {
    let dead = "http://127.0.0.1:9";
    let expr = format!(
        r#"let
             flake = builtins.getFlake "git+file://{repo}";
             p = flake.lib;
             lib = flake.inputs.nixpkgs-lib.lib;
             d = p.disko;
             ev = modules: (p.evalSurface {{ inherit modules; }}).config;
             failed = c: map (a: a.message) (lib.filter (a: !a.assertion) c.assertions);
             fs = c: lib.mapAttrs (_: f: {{ inherit (f) device fsType options neededForBoot; }}) (lib.filterAttrs (_: f: f.enable) c.fileSystems);
           in {body}"#,
        repo = common::repo().display()
    );
    Command::new("nix")
        .args(["--extra-experimental-features", "nix-command flakes"])
        .args(["eval", "--impure", "--json", "--expr", &expr])
        .env("http_proxy", dead)
        .env("https_proxy", dead)
        .env("all_proxy", dead)
        .env_remove("no_proxy")
        .stdin(Stdio::null())
        .output()
        .expect("these tests run real Nix: `nix` must be on PATH")
}

fn eval(body: &str) -> Value {
    let out = nix_eval(body);
    assert!(out.status.success(), "nix eval failed:\n{}", text(&out.stderr));
    common::json(&out.stdout)
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

// ---------------------------------------------------------------------------------------------
// Layouts

#[test]
fn disko_turns_each_layout_into_the_mounts_paranoid_expects() {
    let r = eval(
        r#"let
             show = layout: let c = ev [ layout ]; in {
               fileSystems = fs c;
               swap = map (s: { inherit (s) device; encrypted = s.randomEncryption.enable; }) c.swapDevices;
               grub = c.boot.loader.grub.devices;
               # disko's pure conversion, without the module system around it: the mount points.
               pure = lib.attrNames (lib.foldl' (a: b: a // b) { } (d.nixosConfig layout).fileSystems.contents);
             };
           in {
             amnesiac = show (d.amnesiac { device = "/dev/vda"; });
             amnesiacBios = show (d.amnesiac { device = "/dev/sda"; firmware = "bios"; swapSize = "1G"; rootSize = "1G"; });
             classic = show (d.classic { device = "/dev/nvme0n1"; });
             classicBios = show (d.classic { device = "/dev/sda"; firmware = "bios"; swapSize = "2G"; });
           }"#,
    );
    let part = |name: &str| format!("/dev/disk/by-partlabel/disk-main-{name}");
    for (layout, boot_fs) in [("amnesiac", "vfat"), ("amnesiacBios", "ext4"), ("classic", "vfat"), ("classicBios", "ext4")] {
        let l = &r[layout];
        let f = &l["fileSystems"];
        assert_eq!(keys(f), BTreeSet::from(["/".into(), "/boot".into(), "/nix".into()]), "{layout}: {f}");
        assert_eq!(
            strs(&l["pure"]).into_iter().collect::<BTreeSet<_>>(),
            keys(f),
            "{layout}: disko's own conversion and the surface agree"
        );
        assert_eq!(f["/nix"]["fsType"], "ext4", "{layout}");
        assert_eq!(f["/nix"]["device"], json!(part("nix")), "{layout}");
        assert_eq!(f["/boot"]["fsType"], boot_fs, "{layout}");
        let bios = layout.ends_with("Bios");
        assert_eq!(l["grub"], if bios { json!(["/dev/sda"]) } else { json!([]) }, "{layout}: GRUB's device comes from the BIOS boot partition");
        if boot_fs == "vfat" {
            assert!(strs(&f["/boot"]["options"]).contains(&"umask=0077".to_string()), "{layout}: the ESP is root's only");
        }
        if layout.starts_with("amnesiac") {
            assert_eq!(f["/"]["fsType"], "tmpfs", "{layout}");
            let size = if bios { "size=1G" } else { "size=2G" };
            let o = strs(&f["/"]["options"]);
            assert!(o.contains(&"mode=755".to_string()) && o.contains(&size.to_string()), "{layout}: {o:?}");
        } else {
            assert_eq!(f["/"]["fsType"], "ext4", "{layout}");
            assert_eq!(f["/"]["device"], json!(part("root")), "{layout}");
        }
        if layout == "amnesiac" || layout == "classic" {
            assert_eq!(l["swap"], json!([]), "{layout}: no swap unless asked");
        } else {
            assert_eq!(l["swap"], json!([{ "device": part("swap"), "encrypted": true }]), "{layout}: swap, with a key that dies at every boot");
        }
    }
}

/// A host module in a temporary directory: examples/managed (profile maximum over WireGuard,
/// amnesia, noexec, management) with its disk layout replaced by `layout` and `extra` added.
fn host(dir: &tempfile::TempDir, layout: &str, extra: &str) -> std::path::PathBuf {
    common::module(
        dir,
        "host.nix",
        &format!(
            "{{ lib, ... }}: let d = import {{repo}}/lib/disko.nix {{ inherit lib; }}; in {{
               imports = [ {{repo}}/examples/managed ];
               disko.devices = lib.mkForce ({layout}).disko.devices;
               {extra}
             }}"
        ),
    )
}

fn ids(r: &Value) -> BTreeSet<String> {
    r["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["invariant"].as_str().unwrap().to_string())
        .collect()
}

fn messages(r: &Value) -> String {
    r["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["message"].as_str().unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_host_on_either_layout_passes_check_clean_with_amnesia_and_noexec() {
    let cases = [
        ("amnesiac", r#"d.amnesiac { device = "/dev/vda"; }"#, ""),
        ("amnesiac, BIOS, swap", r#"d.amnesiac { device = "/dev/sda"; firmware = "bios"; swapSize = "4G"; }"#, ""),
        ("classic", r#"d.classic { device = "/dev/vda"; }"#, "paranoid.amnesia.enable = lib.mkForce false;"),
        ("classic, BIOS, swap", r#"d.classic { device = "/dev/sda"; firmware = "bios"; swapSize = "4G"; }"#, "paranoid.amnesia.enable = lib.mkForce false;"),
    ];
    for (name, layout, extra) in cases {
        let dir = tempfile::tempdir().unwrap();
        let m = host(&dir, layout, extra);
        for profile in ["paranoid", "maximum"] {
            let (code, r, err) = common::check_module(&m, profile);
            assert_eq!(r["violations"], json!([]), "{name}, profile {profile}: {err}");
            assert_eq!(code, Some(0), "{name}, profile {profile}");
            let checked = strs(&r["checked"]);
            for id in ["noexec.mounts", "noexec.persisted", "noexec.store-exec", "nixos.assertions"] {
                assert!(checked.contains(&id.to_string()), "{name}: {id} was not checked: {checked:?}");
            }
        }
        // What check judged: the knobs are on and the layout's mounts carry them.
        let c = eval(&format!(
            r#"let c = ev [ {m} ]; in {{ amnesia = c.paranoid.amnesia.enable; noexec = c.paranoid.noexec.enable; fileSystems = fs c; }}"#,
            m = m.display()
        ));
        assert_eq!(c["noexec"], true, "{name}");
        let amnesiac = name.starts_with("amnesiac");
        assert_eq!(c["amnesia"], amnesiac, "{name}");
        let f = &c["fileSystems"];
        let root = strs(&f["/"]["options"]);
        assert!(root.ends_with(&["noexec".into(), "nosuid".into(), "nodev".into()]), "{name}: / is {root:?}");
        assert!(!strs(&f["/nix"]["options"]).contains(&"noexec".to_string()), "{name}: the store must stay executable");
        assert_eq!(f["/"]["fsType"], if amnesiac { "tmpfs" } else { "ext4" }, "{name}");
        if amnesiac {
            // persistPath is a noexec bind of itself, mounted in the initrd, on the /nix partition.
            assert_eq!(f["/nix/persist"]["neededForBoot"], true, "{name}");
            assert!(strs(&f["/nix"]["options"]).contains(&"x-initrd.mount".to_string()), "{name}: /nix is mounted in the initrd");
        }
    }
}

#[test]
fn root_on_ext4_with_noexec_trips_the_guard() {
    let dir = tempfile::tempdir().unwrap();
    // The store on /: one ext4 partition for everything, as a default install would have it.
    let m = host(
        &dir,
        r#"{ disko.devices.disk.main = { type = "disk"; device = "/dev/vda"; content = { type = "gpt"; partitions = {
              ESP = { size = "512M"; type = "EF00"; content = { type = "filesystem"; format = "vfat"; mountpoint = "/boot"; }; };
              root = { size = "100%"; content = { type = "filesystem"; format = "ext4"; mountpoint = "/"; }; };
            }; }; }; }"#,
        "paranoid.amnesia.enable = lib.mkForce false;",
    );
    let (code, r, _) = common::check_module(&m, "paranoid");
    assert_eq!(code, Some(1));
    assert_eq!(ids(&r), BTreeSet::from(["noexec.store-exec".to_string(), "nixos.assertions".to_string()]), "{r}");
    assert!(messages(&r).contains("[paranoid:noexec-store-on-root]"), "{}", messages(&r));
}

#[test]
fn persistent_storage_on_a_partition_of_its_own_needs_needed_for_boot() {
    // disko never sets neededForBoot: a layout that moves the persist path off /nix must.
    let layout = r#"{ disko.devices = {
        disk.main = { type = "disk"; device = "/dev/vda"; content = { type = "gpt"; partitions = {
          ESP = { size = "512M"; type = "EF00"; content = { type = "filesystem"; format = "vfat"; mountpoint = "/boot"; }; };
          nix = { size = "16G"; content = { type = "filesystem"; format = "ext4"; mountpoint = "/nix"; }; };
          persist = { size = "100%"; content = { type = "filesystem"; format = "ext4"; mountpoint = "/persist"; }; };
        }; }; };
        nodev."/" = { fsType = "tmpfs"; mountOptions = [ "defaults" "size=2G" "mode=755" ]; };
      }; }"#;
    // Without noexec: nothing marks /persist for the initrd.
    let without_noexec = r#"paranoid.amnesia.persistPath = "/persist"; paranoid.noexec.enable = lib.mkForce false;"#;
    let dir = tempfile::tempdir().unwrap();
    let m = host(&dir, layout, without_noexec);
    // (Held to a profile that does not expect noexec, so only the guard speaks.)
    let (code, r, _) = common::check_module(&m, "baseline");
    assert_eq!(code, Some(1));
    assert!(messages(&r).contains("[paranoid:amnesia-persist-not-at-boot]"), "{}", messages(&r));
    assert!(messages(&r).contains("fileSystems.\"/persist\".neededForBoot = true"), "the message names the fix: {}", messages(&r));

    // The fix the message names.
    let dir = tempfile::tempdir().unwrap();
    let m = host(&dir, layout, &format!(r#"{without_noexec} fileSystems."/persist".neededForBoot = true;"#));
    let (code, r, err) = common::check_module(&m, "baseline");
    assert_eq!(r["violations"], json!([]), "{err}");
    assert_eq!(code, Some(0));

    // With noexec, its noexec entry for the persist path (a self-bind where the path is no mount)
    // lands on the partition and marks it neededForBoot: clean with no edit.
    let dir = tempfile::tempdir().unwrap();
    let m = host(&dir, layout, r#"paranoid.amnesia.persistPath = "/persist";"#);
    let (code, r, err) = common::check_module(&m, "maximum");
    assert_eq!(r["violations"], json!([]), "{err}");
    assert_eq!(code, Some(0));
}

#[test]
fn layout_functions_refuse_bad_arguments_with_the_fix() {
    for (call, needle) in [
        (r#"d.amnesiac { device = "sda"; }"#, "expected a block device path"),
        (r#"d.classic { device = "/dev/sda"; firmware = "efi"; }"#, r#"expected "uefi" or "bios""#),
    ] {
        let out = nix_eval(&format!("fs (ev [ ({call}) ])"));
        assert!(!out.status.success(), "{call} evaluated");
        assert!(text(&out.stderr).contains(needle), "{call}: {}", text(&out.stderr));
    }
}

// ---------------------------------------------------------------------------------------------
// Management

const DEPLOY_HOST: &str = r#"{
    networking.hostName = "deployed"; system.stateVersion = "26.05";
    fileSystems."/" = { device = "/dev/disk/by-label/root"; fsType = "ext4"; };
    paranoid.ssh.enable = true;
    paranoid.management = {
      enable = true;
      user = "deploy";
      keys = [ "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDeployerKeyOfTheManagementTests000000000 deployer@central" ];
      trustedPublicKeys = [ "deployer-1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=" ];
    };
  }"#;

#[test]
fn the_managed_host_has_one_way_in_and_no_local_rebuild() {
    let r = eval(&format!(
        r#"let
             on = ev [ {repo}/examples/managed ];
             off = ev [ {repo}/examples/managed {{ paranoid.management.enable = lib.mkForce false; }} ];
             view = c: {{
               failed = failed c;
               rootKeys = c.users.users.root.openssh.authorizedKeys.keys;
               permitRootLogin = c.services.openssh.settings.PermitRootLogin;
               sudo = c.security.sudo.enable;
               tools = lib.mapAttrs (_: t: t.enable) c.system.tools;
               channels = c.nix.channel.enable;
               nixPath = c.nix.nixPath;
               persisted = map (d: d.dirPath) c.environment.persistence."/nix/persist".directories;
             }};
           in {{ on = view on; off = view off; }}"#,
        repo = common::repo().display()
    ));
    let on = &r["on"];
    assert_eq!(on["failed"], json!([]));
    assert_eq!(strs(&on["rootKeys"]).len(), 1, "root logs in with the deployer's key: {on}");
    assert_eq!(on["permitRootLogin"], "prohibit-password");
    assert_eq!(on["sudo"], false, "profile maximum: root over SSH is the deploy path");
    for tool in ["nixos-rebuild", "nixos-generate-config", "nixos-install", "nixos-option", "nixos-build-vms"] {
        assert_eq!(on["tools"][tool], false, "{tool} stays off a managed host");
        assert_eq!(r["off"]["tools"][tool], true, "control: {tool} is there without management");
    }
    assert_eq!(on["channels"], false);
    assert_eq!(on["nixPath"], json!([]), "no nixos-config=/etc/nixos/configuration.nix");
    assert!(!strs(&on["persisted"]).contains(&"/etc/nixos".to_string()), "{on}");
    assert!(strs(&r["off"]["persisted"]).contains(&"/etc/nixos".to_string()), "control: amnesia's default keeps /etc/nixos");
}

#[test]
fn a_deploy_account_is_a_declared_user_with_a_key_and_a_sudo_rule() {
    let r = eval(&format!(
        r#"let c = ev [ {DEPLOY_HOST} ]; in {{
             failed = failed c;
             user = {{ inherit (c.users.users.deploy) isNormalUser extraGroups; keys = c.users.users.deploy.openssh.authorizedKeys.keys; }};
             rules = c.security.sudo.extraRules;
             trusted = c.nix.settings.trusted-public-keys;
             trustedUsers = c.nix.settings.trusted-users;
           }}"#
    ));
    assert_eq!(r["failed"], json!([]));
    assert_eq!(r["user"]["isNormalUser"], true);
    assert_eq!(r["user"]["extraGroups"], json!(["wheel"]));
    assert_eq!(strs(&r["user"]["keys"]).len(), 1);
    // Upstream's own rules (root, and %wheel with a password) come first; management adds one
    // rule, for the deploy account alone.
    let rules = r["rules"].as_array().unwrap();
    let nopasswd: Vec<&Value> = rules.iter().filter(|r| r["commands"].to_string().contains("NOPASSWD")).collect();
    assert_eq!(
        nopasswd,
        vec![&json!({ "users": ["deploy"], "groups": [], "host": "ALL", "runAs": "ALL:ALL", "commands": [{ "command": "ALL", "options": ["NOPASSWD"] }] })],
        "one rule without a password, for the deploy account alone: {rules:?}"
    );
    assert!(rules.iter().all(|r| r["users"] == json!(["deploy"]) || r["users"] == json!(["root"]) || r["groups"] == json!(["wheel"])), "{rules:?}");
    assert!(strs(&r["trusted"]).contains(&"deployer-1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".to_string()));
    assert_eq!(r["trustedUsers"], json!(["root"]), "the deploy account is no trusted Nix user");
}

#[test]
fn each_management_guard_names_its_fix() {
    let cases = [
        ("management-no-key", "paranoid.management.keys = lib.mkForce [ ];", "paranoid.management.keys"),
        ("management-no-ssh", "paranoid.ssh.enable = lib.mkForce false;", "paranoid.ssh.enable = true"),
        ("management-ssh-user-refused", r#"paranoid.ssh.allowUsers = [ "root" ];"#, "paranoid.ssh.allowUsers"),
        ("management-no-escalation", r#"paranoid.sudo.mode = "removed"; users.users.root.openssh.authorizedKeys.keys = [ "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIRootKeyOfTheManagementTests00000000000000 root@central" ];"#, "paranoid.management.user = \"root\""),
        ("management-nix-refused", r#"paranoid.nix = { enable = true; allowedUsers = "root"; };"#, "paranoid.nix.allowedUsers = \"wheel\""),
        ("management-unsigned-closures", "paranoid.management.trustedPublicKeys = lib.mkForce [ ];", "paranoid.management.trustedPublicKeys"),
        ("management-root-login", r#"paranoid.management.user = lib.mkForce "root"; paranoid.ssh.permitRootLogin = "no";"#, "prohibit-password"),
    ];
    for (id, tweak, fix) in cases {
        let r = eval(&format!(
            r#"failed (ev [ {DEPLOY_HOST} ({{ lib, ... }}: {{ {tweak} }}) ])"#
        ));
        let failed = strs(&r);
        let mine: Vec<&String> = failed.iter().filter(|m| m.contains(&format!("[paranoid:{id}]"))).collect();
        assert_eq!(mine.len(), 1, "{id}: {failed:?}");
        assert!(mine[0].contains(fix), "{id} names its fix ({fix}): {}", mine[0]);
        // The deployer's path is this host's only way in, so where it breaks the admin-path
        // guard says so too; no other guard fires.
        assert!(
            failed.iter().all(|m| m.contains("[paranoid:management-") || m.contains("[paranoid:admin-path]")),
            "{id}: only management's guards fire: {failed:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The installer

/// The installer module on the surface, installing `target` (a module list), with stand-ins
/// for the target's build products (what offline.nix does for vm-install).
fn installer(target: &str, extra: &str) -> String {
    format!(
        r#"let
             stub = name: p.stubPkgs.writeText name "";
             t = (p.evalSurface {{ modules = {target}; }}).config;
             system = {{ config = t // {{ system = t.system // {{ build = t.system.build // {{
               toplevel = stub "nixos-system-${{t.networking.hostName}}";
               destroyFormatMount = stub "disko-destroy-format-mount";
             }}; }}; }}; }};
           in ev [
             {{ fileSystems."/" = {{ device = "/dev/disk/by-label/live"; fsType = "ext4"; }}; }}
             {repo}/installer/module.nix
             {{ paranoid.installer.system = system; }}
             {extra}
           ]"#,
        repo = common::repo().display()
    )
}

#[test]
fn the_installer_has_no_password_and_checks_the_disk_before_it_writes() {
    let managed = format!("[ {}/examples/managed ]", common::repo().display());
    let view = r#"{
        failed = failed c;
        sshd = c.services.openssh.enable;
        passwordAuth = c.services.openssh.settings.PasswordAuthentication;
        rootKeys = c.users.users.root.openssh.authorizedKeys.keys;
        # Every way a password could be set, for every account.
        passwords = lib.filterAttrs (_: v: v != [ ]) (lib.mapAttrs (_: u: lib.filter (x: x != null) [ u.password u.initialPassword u.hashedPasswordFile u.initialHashedPassword ]) c.users.users);
        rootHash = c.users.users.root.hashedPassword;
        mutable = c.users.mutableUsers;
        script = c.systemd.services.paranoid-install.script;
        wantedBy = c.systemd.services.paranoid-install.wantedBy;
      }"#;
    let r = eval(&format!(
        r#"{{ keyless = let c = {keyless}; in {view}; keyed = let c = {keyed}; in {view}; }}"#,
        keyless = installer(&managed, ""),
        keyed = installer(&managed, r#"{ paranoid.installer.sshKeys = [ "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIInstallerWatcherKey0000000000000000000000 ops@central" ]; }"#),
    ));
    for case in ["keyless", "keyed"] {
        let c = &r[case];
        assert_eq!(c["failed"], json!([]), "{case}");
        assert_eq!(c["passwords"], json!({}), "{case}: no account has a password");
        assert_eq!(c["rootHash"], "!", "{case}: root's password is locked");
        assert_eq!(c["mutable"], false, "{case}");
        assert_eq!(c["wantedBy"], json!(["multi-user.target"]), "{case}: the install starts by itself");
        let s = c["script"].as_str().unwrap();
        let at = |needle: &str| s.find(needle).unwrap_or_else(|| panic!("{case}: the script lacks {needle}:\n{s}"));
        let interlock = at("interlock.sh --cmdline /proc/cmdline /dev/vda");
        let disko = at("disko-destroy-format-mount --yes-wipe-all-disks");
        let install = at("nixos-install --root /mnt --system /nix/store/");
        let off = at("systemctl --no-block poweroff");
        assert!(interlock < disko && disko < install && install < off, "{case}: interlock, partition, install, power off:\n{s}");
        assert!(s.contains("--no-root-passwd"), "{case}: nixos-install must not ask for a root password");
        assert!(s.contains("set -euo pipefail"), "{case}: a refusal stops the script");
    }
    assert_eq!(r["keyless"]["sshd"], false, "no keys: no sshd");
    assert_eq!(r["keyed"]["sshd"], true);
    assert_eq!(r["keyed"]["passwordAuth"], false);
    assert_eq!(strs(&r["keyed"]["rootKeys"]).len(), 1);
}

#[test]
fn the_installer_refuses_a_target_without_a_layout_or_with_failing_assertions() {
    let repo = common::repo().display().to_string();
    let broken = format!("[ {repo}/examples/managed ({{ lib, ... }}: {{ paranoid.management.keys = lib.mkForce [ ]; }}) ]");
    let r = strs(&eval(&format!("failed ({})", installer(&broken, ""))));
    assert!(r.iter().any(|m| m.contains("[paranoid:installer-target-refused]") && m.contains("[paranoid:management-no-key]")), "{r:?}");

    let no_layout = r#"[ { networking.hostName = "bare"; fileSystems."/" = { device = "/dev/sda1"; fsType = "ext4"; }; } ]"#;
    let r = strs(&eval(&format!("failed ({})", installer(no_layout, ""))));
    assert!(r.iter().any(|m| m.contains("[paranoid:installer-no-layout]") && m.contains("paranoid.lib.disko.amnesiac")), "{r:?}");
}

#[test]
fn the_installer_and_its_image_are_exposed_without_nixpkgs() {
    let flake = common::repo();
    for (attr, name) in [("nixosConfigurations", "installer"), ("packages.x86_64-linux", "installer-iso"), ("nixosConfigurations", "managed"), ("checks.x86_64-linux", "vm-install")] {
        let out = nix_eval(&format!(
            r#"builtins.attrNames (builtins.getFlake "git+file://{}").{attr}"#,
            flake.display()
        ));
        assert!(out.status.success(), "listing {attr} offline: {}", text(&out.stderr));
        assert!(strs(&common::json(&out.stdout)).contains(&name.to_string()), "{attr} lacks {name}");
    }
    // The files behind them parse.
    for f in ["installer/module.nix", "installer/iso.nix", "examples/managed/default.nix", "examples/managed/disk.nix", "examples/managed/hardware.nix", "lib/disko.nix"] {
        let out = Command::new("nix-instantiate").arg("--parse").arg(flake.join(f)).stdout(Stdio::null()).output().unwrap();
        assert!(out.status.success(), "{f}: {}", text(&out.stderr));
    }
    assert!(Path::new(&flake.join("installer/interlock.sh")).exists());
}
