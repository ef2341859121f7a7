//! The command line as a user meets it: bad input gets a clear message and a documented exit
//! code (docs/harness.md), never a panic; a missing tool or missing root says which check needs
//! what.

mod sandbox_support;
use sandbox_support::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

fn stderr_of(args: &[&str]) -> (i32, String) {
    let out = harness()
        .arg("sandbox")
        .args(args)
        .arg("--flake")
        .arg(repo_root())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!err.contains("panicked"), "{err}");
    (out.status.code().unwrap_or(-1), err)
}

#[test]
fn usage_errors_exit_2_with_a_message() {
    let (c, e) = stderr_of(&["--host", "bastion", "--jobs", "0"]);
    assert_eq!(c, 2, "{e}");
    assert!(e.contains("--jobs must be at least 1"), "{e}");
    let (c, e) = stderr_of(&["--host", "bastion", "--checks", "sshd,telnetd"]);
    assert_eq!(c, 2, "{e}");
    assert!(
        e.contains("unknown check `telnetd`") && e.contains("nix-daemon"),
        "{e}"
    );
    let (c, e) = stderr_of(&[]);
    assert_eq!(c, 2, "{e}");
    assert!(e.contains("say what to sandbox"), "{e}");
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("x.json");
    std::fs::write(&f, "{ not json").unwrap();
    let (c, e) = stderr_of(&["--projection", f.to_str().unwrap()]);
    assert_eq!(c, 2, "{e}");
    assert!(e.contains("not JSON"), "{e}");
    std::fs::write(&f, "{\"schema\": 7}").unwrap();
    let (c, e) = stderr_of(&["--projection", f.to_str().unwrap()]);
    assert_eq!(c, 2, "{e}");
    assert!(e.contains("not a schema-1 projection"), "{e}");
    let (c, e) = stderr_of(&["--module", "/nonexistent/host.nix"]);
    assert_eq!(c, 2, "{e}");
    let (c, e) = stderr_of(&["--strategy", "bogus"]);
    assert_eq!(c, 2, "{e}");
    assert!(e.contains("unknown strategy `bogus`"), "{e}");
    let (c, e) = stderr_of(&["--strategy", "pairwise", "--set", "nope=1"]);
    assert_eq!(c, 2, "{e}");
    assert!(
        e.contains("unknown knob `nope`") && e.contains("ssh.enable"),
        "{e}"
    );
}

#[test]
fn a_module_nix_cannot_evaluate_exits_5_with_nix_s_message() {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("broken.nix");
    std::fs::write(
        &f,
        "{ lib, ... }: { paranoid.ssh.enable = true; services.openssh.settings.PasswordAuthentication = ; }",
    )
    .unwrap();
    let (c, e) = stderr_of(&["--module", f.to_str().unwrap()]);
    assert_eq!(c, 5, "{e}");
    assert!(e.contains("syntax error"), "{e}");
}

#[test]
fn a_configuration_that_fails_its_assertions_is_not_sandboxed_and_exits_6() {
    require_root();
    let d = tempfile::tempdir().unwrap();
    // SSH only over a VPN that does not exist: paranoid's vpn-missing guard rail.
    let m = host_module(
        d.path(),
        "meeka",
        "  paranoid.vpn.tailscale.enable = lib.mkForce false;",
    );
    let (code, r) = sandbox_json(&["--module", m.to_str().unwrap()]);
    assert_eq!(code, 6, "{r:#}");
    let p = &r["permutations"][0];
    assert!(
        p["assertions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a.as_str().unwrap().contains("[paranoid:vpn-missing]")),
        "{p:#}"
    );
    assert!(
        statuses(&r)
            .iter()
            .all(|(_, s, sum)| s == "not-applicable" && sum.contains("would not build")),
        "{r:#}"
    );
}

/// A PATH with every program of /usr/bin and /usr/sbin except `hide`.
fn path_without(dir: &Path, hide: &str) -> String {
    for src in ["/usr/sbin", "/usr/bin", "/sbin", "/bin"] {
        for e in std::fs::read_dir(src).unwrap().flatten() {
            let name = e.file_name();
            let dst = dir.join(&name);
            if name.to_string_lossy() != hide && !dst.exists() {
                let _ = std::os::unix::fs::symlink(e.path(), dst);
            }
        }
    }
    dir.to_string_lossy().into_owned()
}

/// A scratch directory with bastion's projection and an empty `bin/` for a doctored PATH.
fn bastion_with_bin_dir() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let proj = d.path().join("bastion.json");
    std::fs::write(&proj, projection_of("bastion").to_string()).unwrap();
    let bin = d.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    (d, proj, bin)
}

#[test]
fn a_missing_tool_skips_its_check_and_exits_3_unless_skips_are_allowed() {
    require_root();
    let (_d, proj, bin) = bastion_with_bin_dir();
    let path = path_without(&bin, "ssh-audit");
    let run = |extra: &[&str]| {
        let out = harness()
            .env("PATH", &path)
            .args([
                "sandbox",
                "--projection",
                proj.to_str().unwrap(),
                "--checks",
                "ssh-audit,units",
                "--format",
                "json",
            ])
            .args(extra)
            .output()
            .unwrap();
        let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (out.status.code().unwrap(), r)
    };
    let (code, r) = run(&[]);
    assert_eq!(code, 3, "{r:#}");
    let a = check(&r, "ssh-audit");
    assert_eq!(a["status"], "skipped");
    assert_eq!(
        a["summary"],
        "ssh-audit not installed (apt-get install ssh-audit)"
    );
    let (code, _) = run(&["--allow-skips"]);
    assert_eq!(code, 0);
}

#[test]
fn without_root_each_check_says_what_it_needs_and_the_run_exits_7() {
    require_root();
    let d = tempfile::tempdir().unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let proj = d.path().join("bastion.json");
    std::fs::write(&proj, projection_of("bastion").to_string()).unwrap();
    std::fs::set_permissions(&proj, std::fs::Permissions::from_mode(0o644)).unwrap();
    let bin = assert_cmd::cargo::cargo_bin("paranoid-harness");
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&bin)
        .args([
            "sandbox",
            "--projection",
            proj.to_str().unwrap(),
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    let r: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(out.status.code(), Some(7), "{r:#}");
    for name in ["sshd", "ssh-audit", "nix-daemon", "mounts", "firewall"] {
        let c = check(&r, name);
        assert_eq!(c["status"], "skipped", "{c}");
        assert!(
            c["summary"].as_str().unwrap().starts_with("needs root: "),
            "{c}"
        );
    }
}

#[test]
fn without_network_namespaces_the_checks_that_need_them_say_so_and_the_run_exits_7() {
    require_root();
    let (_d, proj, bin) = bastion_with_bin_dir();
    // An `ip` that cannot create namespaces, as in a container without CAP_SYS_ADMIN.
    let fake = bin.join("ip");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho 'mount --make-shared /run/netns failed: Operation not permitted' >&2\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = path_without(&bin, "ip");
    let out = harness()
        .env("PATH", &path)
        .args([
            "sandbox",
            "--projection",
            proj.to_str().unwrap(),
            "--checks",
            "sshd,firewall,units",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(7), "{r:#}");
    for name in ["sshd", "firewall"] {
        let c = check(&r, name);
        assert_eq!(c["status"], "skipped", "{c}");
        assert!(
            c["summary"]
                .as_str()
                .unwrap()
                .starts_with("needs network namespaces"),
            "{c}"
        );
        assert!(
            c["summary"]
                .as_str()
                .unwrap()
                .contains("Operation not permitted"),
            "{c}"
        );
    }
}

#[test]
fn a_projection_path_that_climbs_out_of_the_scratch_directory_is_refused() {
    require_root();
    let mut p = projection_of("bastion");
    p["mounts"].as_array_mut().unwrap().push(serde_json::json!({
        "mountPoint": "/srv/../../../etc", "device": "/../../etc", "fsType": "none",
        "options": ["bind"], "neededForBoot": false, "origin": "systemd.mounts"
    }));
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("climb.json");
    std::fs::write(&f, p.to_string()).unwrap();
    let out = harness()
        .args([
            "sandbox",
            "--projection",
            f.to_str().unwrap(),
            "--checks",
            "mounts",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{r:#}");
    let m = check(&r, "mounts");
    assert_eq!(m["status"], "fail");
    assert!(
        evidence_text(m).contains("refusing path \"/srv/../../../etc\""),
        "{m}"
    );
}
