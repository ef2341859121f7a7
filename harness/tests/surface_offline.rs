//! Issue 11 items 1 and 2 over the offline surface: any host module evaluates, what the surface
//! does not declare is reported as not judged (never hidden, never a hole), typos under fully
//! declared namespaces still fail with NixOS's suggestion, `pkgs.<any name>` has a stand-in, and
//! the differences the audit found against upstream stay fixed.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use common::{harness, json, module, repo};
use paranoid_harness::nix::{self, EvalOptions, Flake, Item, Outcome};
use serde_json::{json, Value};

fn fixture(name: &str) -> PathBuf {
    repo().join("harness/tests/fixtures/cases").join(name)
}

/// `check --module` in human and JSON form: (exit code, stdout, JSON report).
fn check(path: &std::path::Path) -> (Option<i32>, String, Value) {
    let human = harness().args(["check", "--module"]).arg(path).output().unwrap();
    let (code, report, _) = common::check_module(path, "paranoid");
    assert_eq!(human.status.code(), code, "human and JSON agree on the exit code");
    (code, String::from_utf8_lossy(&human.stdout).into_owned(), report)
}

/// `eval --module` on a module written from `text`: (exit code, stdout, stderr).
fn eval_text(text: &str) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let m = module(&dir, "host.nix", text);
    let out = harness().args(["eval", "--format", "json", "--module"]).arg(&m).output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned(), common::stderr(&out))
}

fn eval_ok(text: &str) -> Value {
    let (code, stdout, stderr) = eval_text(text);
    assert!(matches!(code, Some(0) | Some(6)), "eval exit {code:?}: {stderr}");
    json(stdout.as_bytes())
}

fn eval_fails(text: &str) -> String {
    let (code, _, stderr) = eval_text(text);
    assert_eq!(code, Some(5), "expected Nix to refuse the module; stderr: {stderr}");
    stderr
}

/// Several modules in one batch (no stand-in names: they use only the base packages).
fn projections(texts: &[(&str, &str)]) -> BTreeMap<String, Result<Value, String>> {
    let dir = tempfile::tempdir().unwrap();
    let items = texts
        .iter()
        .map(|(id, text)| Item {
            id: id.to_string(),
            modules: vec![module(&dir, &format!("{id}.nix"), text)],
            ..Default::default()
        })
        .collect();
    let opts = EvalOptions { jobs: 2, timeout: Duration::from_secs(300), ..Default::default() };
    nix::evaluate(&Flake::open(&repo()).unwrap(), items, &opts, &|_, _| {})
        .expect("evaluate")
        .into_iter()
        .map(|(id, o)| match o {
            Outcome::Projection(p) => (id, Ok(p)),
            Outcome::Failed { message } => (id, Err(message)),
        })
        .collect()
}

fn assertions(p: &Value) -> Vec<String> {
    p["assertions"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect()
}

fn options_listed(p: &Value, key: &str) -> Vec<String> {
    p["unjudged"][key].as_array().unwrap().iter().map(|d| d["option"].as_str().unwrap().to_string()).collect()
}

// A host the surface accepts: root has a key, / exists, nothing paranoid is on.
const HOST: &str = r#"fileSystems."/" = { device = "/dev/vda"; fsType = "ext4"; }; users.users.root.openssh.authorizedKeys.keys = [ "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIQaTestKeyNotRealReplaceMe000000000000000000 t@t" ];"#;

fn host(body: &str) -> String {
    format!("{{ config, lib, pkgs, ... }}: {{ {HOST} {body} }}")
}

/// A host with a root filesystem and no credential at all.
fn bare(body: &str) -> String {
    format!("{{ config, lib, pkgs, ... }}: {{ fileSystems.\"/\" = {{ device = \"/dev/vda\"; fsType = \"ext4\"; }}; {body} }}")
}

// ------------------------------------------------------------------------------------------
// The handed cases.

#[test]
fn c15_tmpfiles_settings_is_an_ordinary_option() {
    let (code, out, report) = check(&fixture("c15-tmpfiles-settings.nix"));
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(report["unjudged"]["count"], json!(0), "systemd.tmpfiles.settings is declared: {report}");
}

#[test]
fn c16_realistic_host_is_clean_and_lists_what_it_could_not_judge() {
    let (code, out, report) = check(&fixture("c16-realistic-host.nix"));
    assert_eq!(code, Some(0), "{out}");
    let defs = options_listed(&report, "definitions");
    for want in ["services.caddy.*", "services.postgresql.*", "programs.git.*"] {
        assert!(defs.iter().any(|d| d == want), "{want} in {defs:?}");
    }
    // Declared now, so judged: the loader, interfaces, DHCP, time zone, locale, nix.gc.
    for judged in ["boot.loader", "networking", "time", "i18n", "nix"] {
        assert!(!defs.iter().any(|d| d.starts_with(judged)), "{judged} is declared, yet reported: {defs:?}");
    }
    let effects = options_listed(&report, "effects");
    assert!(effects.iter().any(|e| e == "services.caddy.enable"), "{effects:?}");
    assert!(out.contains("not judged offline: 3 definitions (programs.git.*, services.caddy.*, services.postgresql.*)"), "{out}");
    assert!(out.contains("effects that could not be judged"), "{out}");
    // The names `with pkgs;` uses came from the file itself.
    let p = eval_ok(&format!("{{ imports = [ {} ]; }}", fixture("c16-realistic-host.nix").display()));
    let pkgs = p["options"]["environment.systemPackages"].as_array().unwrap();
    for name in ["vim", "tmux", "git"] {
        assert!(pkgs.contains(&json!(name)), "{name} in {pkgs:?}");
    }
}

// ------------------------------------------------------------------------------------------
// Undeclared definitions: recorded, readable, and not hiding anything.

/// Real hosts import upstream modules from `modulesPath` and read options their hardware file
/// leaves to upstream's default.
#[test]
fn a_generated_hardware_file_and_upstream_profiles_evaluate_offline() {
    let (code, out, report) = check(&fixture("generated-hardware.nix"));
    // The hardened profile's mkDefault [ "@users" ] merges with paranoid's mkDefault [ "@wheel" ].
    assert_eq!(code, Some(1), "{out}");
    let violations: Vec<&str> = report["violations"].as_array().unwrap().iter().map(|v| v["invariant"].as_str().unwrap()).collect();
    assert_eq!(violations, vec!["nix.allowed-users"], "{out}");
    assert!(out.contains("\"@users\", \"@wheel\""), "{out}");
    let effects = options_listed(&report, "effects");
    assert!(effects.iter().any(|e| e == "imports: <modulesPath>/virtualisation/vmware-guest.nix"), "{effects:?}");
    assert!(out.contains("imports: <modulesPath>/virtualisation/vmware-guest.nix"), "{out}");
    // The hardened profile's kernel hardening is recorded; the hardware file leaves nothing unjudged
    // but swapDevices.
    let defs = options_listed(&report, "definitions");
    assert!(defs.iter().any(|d| d == "security.lockKernelModules"), "{defs:?}");
    for judged in ["hardware", "nixpkgs", "boot"] {
        assert!(!defs.iter().any(|d| d.starts_with(judged)), "{judged} is declared, yet reported: {defs:?}");
    }
    // What the stand-ins define is judged like the host's own definitions.
    let p = eval_ok(r#"{ modulesPath, ... }: { imports = [ (modulesPath + "/profiles/hardened.nix") (modulesPath + "/installer/scan/not-detected.nix") ]; }"#);
    assert_eq!(p["options"]["nix.settings"]["allowed-users"], json!(["@users"]), "{}", p["options"]["nix.settings"]);
    let p = eval_ok(r#"{ config, modulesPath, ... }: { imports = [ (modulesPath + "/installer/scan/not-detected.nix") ];
        networking.hostName = if config.hardware.enableRedistributableFirmware then "firmware" else "none"; }"#);
    assert_eq!(p["host"], json!("firmware"));
}

#[test]
fn undeclared_definitions_are_recorded_and_readable() {
    let p = eval_ok(&host(r#"
        imports = [ { services.foo.enable = lib.mkDefault false; } ];
        services.foo.port = 8080;
        services.foo.enable = true;
        services.bar = lib.mkIf false { enable = true; };
        services.baz.openFirewall = true;
        # A host reads what it defines.
        networking.firewall.allowedTCPPorts = [ config.services.foo.port ];
        time.timeZone = lib.mkIf config.services.foo.enable "UTC";
    "#));
    assert_eq!(p["options"]["networking.firewall.allowedTCPPorts"], json!([8080]));
    let defs = options_listed(&p, "definitions");
    assert!(defs.iter().any(|d| d == "services.foo.*"), "{defs:?}");
    assert!(!defs.iter().any(|d| d.starts_with("services.bar")), "a definition under mkIf false is no definition: {defs:?}");
    assert!(defs.iter().any(|d| d == "services.baz.*"), "{defs:?}");
    let effects = options_listed(&p, "effects");
    assert!(effects.contains(&"services.foo.enable".to_string()), "{effects:?}");
    assert!(effects.contains(&"services.baz.openFirewall".to_string()), "{effects:?}");
    // One per module definition where it left declared territory: services.foo in the imported
    // module and in the host, services.baz (services.bar is under mkIf false).
    assert_eq!(p["unjudged"]["count"], json!(3), "{}", p["unjudged"]);
}

#[test]
fn reference_hosts_and_the_matrix_fixture_leave_nothing_unjudged() {
    let flake = Flake::open(&repo()).unwrap();
    let items = vec![
        Item { id: "meeka".into(), host: Some("meeka".into()), ..Default::default() },
        Item { id: "bastion".into(), host: Some("bastion".into()), ..Default::default() },
        Item { id: "matrix".into(), fixture: Some("matrix".into()), ..Default::default() },
    ];
    let opts = EvalOptions { jobs: 2, timeout: Duration::from_secs(300), ..Default::default() };
    for (id, o) in nix::evaluate(&flake, items, &opts, &|_, _| {}).unwrap() {
        let Outcome::Projection(p) = o else { panic!("{id} did not evaluate: {o:?}") };
        assert_eq!(p["unjudged"], json!({ "count": 0, "definitions": [], "effects": [] }), "{id}: the surface and paranoid define only declared options");
    }
}

#[test]
fn typos_under_fully_declared_namespaces_fail_with_the_suggestion() {
    let err = eval_fails(&host("services.openssh.setings.PasswordAuthentication = false;"));
    assert!(err.contains("The option `services.openssh.setings' does not exist."), "{err}");
    assert!(err.contains("`services.openssh.settings'"), "{err}");
    let err = eval_fails(&host("paranoid.ssh.enabel = true;"));
    assert!(err.contains("The option `paranoid.ssh.enabel' does not exist.") && err.contains("`paranoid.ssh.enable'"), "{err}");
    let err = eval_fails(&host("security.sudo.wheelNeedPassword = false;"));
    assert!(err.contains("`security.sudo.wheelNeedsPassword'"), "{err}");
    let err = eval_fails(&host("nix.gcc.automatic = true;"));
    assert!(err.contains("The option `nix.gcc' does not exist."), "{err}");
    // Inside submodules NixOS's own check applies.
    let err = eval_fails(&host(r#"users.users.ops = { isNormalUser = true; extraGroup = [ "wheel" ]; };"#));
    assert!(err.contains("users.users.ops.extraGroup' does not exist") && err.contains("extraGroups"), "{err}");
    let err = eval_fails(&host(r#"systemd.services.x.serviceConfg.User = "x";"#));
    assert!(err.contains("systemd.services.x.serviceConfg' does not exist") && err.contains("serviceConfig"), "{err}");
}

/// NixOS builds every unit, PAM service and interface it is given, so a typo inside one fails
/// even where no invariant reads it.
#[test]
fn typos_inside_elements_nothing_reads_fail_too() {
    for (text, wrong, right) in [
        ("security.pam.services.login.googleAuthenticatr.enable = true;", "security.pam.services.login.googleAuthenticatr'", "googleAuthenticator"),
        ("systemd.timers.backup.timerConfg.OnCalendar = \"daily\";", "systemd.timers.backup.timerConfg'", "timerConfig"),
        ("networking.interfaces.eth0.ipv4.adresses = [ ];", "networking.interfaces.eth0.ipv4.adresses'", "addresses"),
        ("users.groups.ops.member = [ \"a\" ];", "users.groups.ops.member'", "members"),
    ] {
        let err = eval_fails(&host(text));
        assert!(err.contains(&format!("The option `{wrong} does not exist")) && err.contains(right), "{text}: {err}");
    }
}

/// users.groups and boot.specialFileSystems build plain entries without evaluating a submodule
/// each (checks/surface/users.nix, filesystems.nix): the result must be the submodule's, which a
/// host extending the entry's submodule gets.
#[test]
fn entries_built_directly_equal_the_submodules_result() {
    let defs = r#"{ lib, ... }: { users.users.bob = { isNormalUser = true; extraGroups = [ "kvm" "ops" ]; };
        users.groups.kvm.members = [ "alice" ]; users.groups.ops = { gid = 900; members = [ "carol" ]; };
        users.groups.named = { name = "other"; }; users.groups.forced.gid = lib.mkForce 901;
        boot.specialFileSystems."/x" = { fsType = "tmpfs"; options = [ "mode=700" ]; depends = [ "/run" ]; };
        boot.specialFileSystems."/y" = { device = "none"; fsType = "ramfs"; enable = false; };
        boot.specialFileSystems."/run/keys".options = [ "noexec" ]; }"#;
    let more = r#"{ users.groups.kvm.members = [ "dave" ]; }"#;
    let extend = "{ lib, ... }: { options.users.groups = lib.mkOption { type = lib.types.attrsOf (lib.types.submodule { }); }; \
        options.boot.specialFileSystems = lib.mkOption { type = lib.types.attrsOf (lib.types.submodule { }); }; }";
    let out = nix_eval(false, &format!(
        "let c = ms: (l.evalSurface {{ modules = [ l.fixtures.matrix.host ({defs}) ({more}) ] ++ ms; }}).config; \
         fast = c [ ]; slow = c [ ({extend}) ]; in {{ groups = fast.users.groups == slow.users.groups; \
         special = fast.boot.specialFileSystems == slow.boot.specialFileSystems; n = builtins.length (builtins.attrNames fast.users.groups); \
         ops = fast.users.groups.ops.members; shm = fast.boot.specialFileSystems.\"/dev/shm\".options; }}"));
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["groups"], json!(true), "{v}");
    assert_eq!(v["special"], json!(true), "{v}");
    assert_eq!(v["ops"], json!(["bob", "carol"]), "{v}");
    assert!(v["shm"].as_array().unwrap().contains(&json!("nosuid")), "{v}");
    assert!(v["n"].as_u64().unwrap() >= 26, "{v}");
}

/// `nix eval` of an expression over the checkout's flake (`f`: the flake, `l`: paranoid's lib,
/// `lib`: nixpkgs' lib).
fn nix_eval(raw: bool, expr: &str) -> String {
    let out = std::process::Command::new("nix")
        .args(["--extra-experimental-features", "nix-command flakes", "eval", if raw { "--raw" } else { "--json" }, "--impure", "--expr"])
        .arg(format!("let f = builtins.getFlake \"{}\"; l = f.lib; lib = f.inputs.nixpkgs-lib.lib; in {expr}", repo().display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn every_namespace_declared_in_full_is_declared() {
    let list: Value = serde_json::from_str(&nix_eval(false,
        "let o = (l.evalSurface { }).options; in map (n: { inherit (n) path; declared = lib.hasAttrByPath (lib.splitString \".\" n.path) o; }) l.surfaceNamespaces")).unwrap();
    assert!(list.as_array().unwrap().len() >= 15, "{list}");
    for ns in list.as_array().unwrap() {
        assert_eq!(ns["declared"], json!(true), "{ns}: a namespace declared in full must be declared");
    }
}

// ------------------------------------------------------------------------------------------
// Stand-in packages.

#[test]
fn pkgs_stand_ins_behave_like_packages_and_builders() {
    let p = eval_ok(&host(r#"
        environment.systemPackages = with pkgs; [
          htop
          (python3.withPackages (ps: [ ps.requests ]))
          (writeShellScriptBin "hello" "echo hi")
          (ripgrep.override { withPCRE2 = true; })
          (fd.overrideAttrs (_: { pname = "fd"; }))
          linuxPackages.perf
        ];
        systemd.services.x = { serviceConfig.ExecStart = "${lib.getExe pkgs.htop} --version"; wantedBy = [ "multi-user.target" ]; };
    "#));
    let pkgs = p["options"]["environment.systemPackages"].as_array().unwrap();
    for name in ["htop", "hello", "ripgrep", "fd"] {
        assert!(pkgs.contains(&json!(name)), "{name} in {pkgs:?}");
    }
}

#[test]
fn names_nix_reports_missing_are_retried_and_a_useless_one_is_reported_as_nix_said_it() {
    let dir = tempfile::tempdir().unwrap();
    // Imported by a computed path: the scan cannot see `hiddenpackage`.
    module(&dir, "extra.nix", "{ pkgs, ... }: { environment.systemPackages = [ pkgs.hiddenpackage ]; }");
    let m = module(&dir, "host.nix", &format!("{{ config, lib, pkgs, ... }}: {{ imports = [ (./. + \"/extra.nix\") ]; {HOST} }}"));
    let out = harness().args(["eval", "--format", "json", "--module"]).arg(&m).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
    assert!(json(&out.stdout)["options"]["environment.systemPackages"].as_array().unwrap().contains(&json!("hiddenpackage")));

    let err = eval_fails(&host(r#"networking.hostName = ({ a = "b"; }).nosuchattr;"#));
    assert!(err.contains("attribute 'nosuchattr' missing"), "{err}");
}

// ------------------------------------------------------------------------------------------
// Differences the audit found against upstream (issue 11 item 2).

#[test]
fn upstream_fidelity_differences_stay_fixed() {
    let r = projections(&[
        ("sudors", &host("security.sudo-rs.enable = true;")),
        ("x11", &host("services.openssh.enable = true; services.openssh.settings.X11Forwarding = true;")),
        ("upload", &host(r#"services.journald.upload = { enable = true; settings.Upload.URL = "https://logs.example:19532"; };"#)),
        ("locked", &bare(r#"users.mutableUsers = false; users.users.root.hashedPassword = "!";"#)),
        ("wheelprimary", &bare(r#"users.mutableUsers = false; users.users.ops = { isNormalUser = true; group = "wheel"; openssh.authorizedKeys.keys = [ "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIQaTestKeyNotRealReplaceMe000000000000000000 t@t" ]; };"#)),
        ("nogroup", &host(r#"users.users.svc = { isSystemUser = true; group = "svc"; };"#)),
        ("initrddepends", &host(r#"fileSystems."/var/lib/secrets" = { device = "/dev/vdb"; fsType = "ext4"; neededForBoot = true; depends = [ "/persist" ]; }; fileSystems."/persist" = { device = "/dev/vdc"; fsType = "ext4"; };"#)),
        ("fstaborder", &host(r#"fileSystems."/a" = { device = "/z/data"; fsType = "none"; options = [ "bind" ]; }; fileSystems."/z" = { device = "/dev/vdb"; fsType = "ext4"; };"#)),
        ("clamscanner", &host("services.clamav.scanner.enable = true;")),
        ("clamdaemon", &host("services.clamav.daemon.enable = true;")),
        ("clamnodaemon", &host("services.clamav.scanner.enable = true; services.clamav.updater.enable = true;")),
        ("renames", &host(r#"
            nix.useChroot = true;
            nix.chrootDirs = [ "/bin/sh" ];
            services.openssh.knownHosts.gw.publicKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIQaTestKeyNotRealReplaceMe000000000000000000";
            users.extraUsers.legacy = { isNormalUser = true; };
            users.extraGroups.legacygroup = { };
            security.initialRootPassword = "!";
        "#)),
        ("sshduser", &host("services.openssh.enable = true; paranoid.services.sshd = { sandbox = \"none\"; };")),
    ]);
    let ok = |id: &str| r[id].as_ref().unwrap_or_else(|e| panic!("{id} did not evaluate: {e}")).clone();

    // Enabling sudo-rs turns classic sudo off by default.
    let p = ok("sudors");
    assert_eq!(p["options"]["security.sudo.enable"], json!(false));
    assert!(assertions(&p).is_empty(), "{:?}", assertions(&p));

    // XAuthLocation follows X11Forwarding.
    let p = ok("x11");
    assert!(assertions(&p).is_empty(), "{:?}", assertions(&p));
    assert!(p["rendered"]["sshd_config"].as_str().unwrap().contains("XAuthLocation /nix/store/"), "{}", p["rendered"]["sshd_config"]);

    // Upload with a URL alone: the key file and the timeout default to null.
    let p = ok("upload");
    assert_eq!(p["options"]["services.journald.upload.settings"]["Upload"]["ServerKeyFile"], json!(null));
    assert_eq!(p["options"]["services.journald.upload.settings"]["Upload"]["NetworkTimeoutSec"], json!(null));

    // A locked hash is no credential; an admin by primary group is one.
    assert!(assertions(&ok("locked")).iter().any(|a| a.contains("Neither the root account nor any wheel user")), "{:?}", assertions(&ok("locked")));
    assert!(assertions(&ok("wheelprimary")).is_empty(), "{:?}", assertions(&ok("wheelprimary")));
    assert_eq!(ok("locked")["options"]["users.users"]["root"]["hasPassword"], json!(false), "\"!\" locks the password");

    // A primary group nobody declares.
    assert!(assertions(&ok("nogroup")).iter().any(|a| a.contains("primary group that is undefined: svc")), "{:?}", assertions(&ok("nogroup")));

    // Initrd mounts wait for /sysroot paths; fstab is in dependency order.
    let p = ok("initrddepends");
    let opts = &p["options"]["fileSystems"]["/var/lib/secrets"]["options"];
    assert!(opts.as_array().unwrap().contains(&json!("x-systemd.requires-mounts-for=/sysroot/persist")), "{opts}");
    let fstab = ok("fstaborder")["rendered"]["fstab"].as_str().unwrap().to_string();
    let (z, a) = (fstab.find("/dev/vdb /z ").expect("/z in fstab"), fstab.find("/z/data /a ").expect("/a in fstab"));
    assert!(z < a, "/z holds /a's source, so it is mounted first:\n{fstab}");

    // ClamAV: the scanner alone does nothing and asks for nothing; the package is installed.
    assert!(assertions(&ok("clamscanner")).is_empty(), "{:?}", assertions(&ok("clamscanner")));
    assert!(ok("clamdaemon")["options"]["environment.systemPackages"].as_array().unwrap().contains(&json!("clamav")));
    assert!(assertions(&ok("clamnodaemon")).iter().any(|a| a.contains("ClamAV scanner requires ClamAV daemon")));

    // The renames land on their targets, with NixOS's warnings.
    let p = ok("renames");
    assert_eq!(p["options"]["nix.settings"]["sandbox"], json!(true));
    assert_eq!(p["options"]["nix.settings"]["extra-sandbox-paths"], json!(["/bin/sh"]));
    assert!(p["options"]["users.users"].get("legacy").is_some());
    assert!(p["options"]["users.groups"].as_array().unwrap().contains(&json!("legacygroup")));
    let warnings = p["warnings"].to_string();
    for old in ["nix.useChroot", "nix.chrootDirs", "security.initialRootPassword"] {
        assert!(warnings.contains(old), "{old} warns as renamed: {warnings}");
    }

    // paranoid.services.sshd leaves the sshd account NixOS defines as it is.
    let p = ok("sshduser");
    assert_eq!(p["options"]["users.users"]["sshd"]["group"], json!("sshd"));
}

#[test]
fn tailscale_loose_reverse_path_conflicts_with_a_hosts_own_value() {
    // The nftables ruleset reads the value (the iptables script is not rendered).
    let err = eval_fails(&host(r#"networking.nftables.enable = true; services.tailscale = { enable = true; useRoutingFeatures = "client"; }; networking.firewall.checkReversePath = "strict";"#));
    assert!(err.contains("networking.firewall.checkReversePath' has conflicting definition values"), "{err}");
}

#[test]
fn a_filesystem_without_a_device_is_an_error() {
    let err = eval_fails(&host(r#"fileSystems."/data".fsType = "ext4";"#));
    assert!(err.contains("No device specified for mount point ‘/data’."), "{err}");
}

#[test]
fn conflicting_account_fields_fail_offline_as_they_would_at_build() {
    // Two plain descriptions of one account: /etc/passwd cannot be written.
    let err = eval_fails(&host(r#"imports = [ { users.users.svc.description = "one"; } ]; users.users.svc = { isSystemUser = true; group = "svc"; description = "two"; }; users.groups.svc = { };"#));
    assert!(err.contains("users.users.svc.description' has conflicting definition values"), "{err}");
}

#[test]
fn sudoers_and_doas_conf_are_rendered_as_upstream_builds_them() {
    let dir = tempfile::tempdir().unwrap();
    let m = module(&dir, "host.nix", &host(r#"
        security.sudo.extraRules = [ { users = [ "deploy" ]; commands = [ { command = "/run/current-system/sw/bin/systemctl"; options = [ "NOPASSWD" ]; } ]; } ];
        security.doas = { enable = true; wheelNeedsPassword = false; extraRules = [ { users = [ "backup" ]; cmd = "/bin/true"; args = [ ]; } ]; };
    "#));
    let text = nix_eval(true, &format!(
        "let c = (l.evalSurface {{ modules = [ {} ]; }}).config; in c.environment.etc.sudoers.text + \"----\\n\" + c.environment.etc.\"doas.conf\".text",
        m.display()
    ));
    // sudo.nix: root at order 400, wheel at 600, the host's rule after; upstream's columns.
    let root = text.find("root     ALL=(ALL:ALL)    SETENV: ALL").expect(&text);
    let wheel = text.find("%wheel  ALL=(ALL:ALL)    SETENV: ALL").expect(&text);
    let deploy = text.find("deploy     ALL=(ALL:ALL)    NOPASSWD: /run/current-system/sw/bin/systemctl").expect(&text);
    assert!(root < wheel && wheel < deploy, "{text}");
    assert!(text.contains("Defaults:root,%wheel env_keep+=TERMINFO_DIRS"), "keepTerminfo: {text}");
    // doas.nix: wheel's rule (order 600) before the host's, the root rule last; doas applies the
    // last matching rule.
    let wheel = text.find("permit nopass    setenv { SSH_AUTH_SOCK TERMINFO TERMINFO_DIRS  } :wheel").expect(&text);
    let backup = text.find("setenv { SSH_AUTH_SOCK TERMINFO TERMINFO_DIRS  } backup  cmd /bin/true args").expect(&text);
    assert!(wheel < backup, "{text}");
    assert!(text.trim_end().ends_with("permit nopass keepenv root"), "{text}");
}

#[test]
fn a_specialisation_is_evaluated_with_its_own_assertions_and_projected() {
    // Upstream evaluates each specialisation with extendModules; its assertions are its own (its
    // toplevel fails, and with it the parent's build), and its posture is projected beside the
    // main entry's (break_glass.rs judges it).
    let p = eval_ok(&host(r#"specialisation.rescue.configuration = { users.users.svc = { isSystemUser = true; group = "missing"; }; };"#));
    assert!(assertions(&p).is_empty(), "the main entry's own assertions hold: {:?}", assertions(&p));
    let child = p["specialisations"]["rescue"]["assertions"].as_array().expect("the entry is projected");
    assert!(child.iter().any(|a| a.as_str().unwrap().starts_with("The following users have a primary group that is undefined")), "{child:?}");
    assert!(!options_listed(&p, "effects").contains(&"specialisation.rescue".to_string()), "a judged entry is not named as unjudged");
}

#[test]
fn a_near_miss_of_a_fully_declared_namespace_is_a_typo_too() {
    let err = eval_fails(&host("services.opensh.enable = true;"));
    assert!(err.contains("The option `services.opensh' does not exist.") && err.contains("`services.openssh'"), "{err}");
    let err = eval_fails(&host("networking.firewal.enable = false;"));
    assert!(err.contains("`networking.firewall'"), "{err}");
    // An unrelated name beside them is not judged, and not an error.
    let p = eval_ok(&host("services.nginx.enable = true;"));
    assert!(options_listed(&p, "definitions").contains(&"services.nginx.*".to_string()));
}

#[test]
fn every_declared_option_names_the_upstream_file_and_commit_it_was_checked_against() {
    assert_eq!(nix_eval(false, "l.docs.uncovered").trim(), "[]", "options no provenance entry covers");
    let entries: Value = serde_json::from_str(&nix_eval(false, "(l.evalSurface { }).config.surface.provenance")).unwrap();
    for e in entries.as_array().unwrap() {
        assert!(e["commit"].as_str().is_some_and(|c| c.len() == 40) && !e["upstream"].as_str().unwrap().is_empty(), "{e}");
    }
    // The generated page is the committed one (CI checks it too, with the same command).
    let generated = nix_eval(true, "l.docs.surfaceMarkdown");
    let committed = std::fs::read_to_string(repo().join("docs/surface.md")).unwrap();
    assert!(generated == committed, "docs/surface.md is stale: nix eval --raw .#lib.docs.surfaceMarkdown > docs/surface.md");
}
