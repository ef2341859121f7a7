//! Positive controls: each deliberately weakened configuration, built from a real evaluation
//! of a small host module (or a minimal edit of a real projection), fails the RIGHT check, and
//! only that one. Every test here fails if its check stops looking.

mod sandbox_support;
use sandbox_support::*;

/// Run all default checks on `args`, expect exit 1 and exactly `failing` to fail.
fn only_fails(args: &[&str], failing: &str, expect_in_evidence: &[&str]) -> serde_json::Value {
    require_root();
    let (code, r) = sandbox_json(args);
    let st = statuses(&r);
    let failed: Vec<&str> = st
        .iter()
        .filter(|(_, s, _)| s == "fail")
        .map(|(n, _, _)| n.as_str())
        .collect();
    let detail: Vec<String> = failed
        .iter()
        .map(|n| format!("{n}:\n{}", evidence_text(check(&r, n))))
        .collect();
    assert_eq!(failed, vec![failing], "{st:#?}\n{}", detail.join("\n"));
    assert_eq!(code, 1, "a failed check must exit 1");
    let ev = evidence_text(check(&r, failing));
    for needle in expect_in_evidence {
        assert!(
            ev.contains(needle),
            "{failing} evidence lacks {needle:?}:\n{ev}"
        );
    }
    r
}

#[test]
fn password_authentication_on_fails_the_sshd_check() {
    let d = tempfile::tempdir().unwrap();
    let m = host_module(
        d.path(),
        "bastion",
        "  services.openssh.settings.PasswordAuthentication = lib.mkForce true;",
    );
    only_fails(
        &["--module", m.to_str().unwrap()],
        "sshd",
        &["passwordauthentication yes (promised no)"],
    );
}

#[test]
fn allow_tcp_forwarding_yes_first_in_the_file_fails_the_sshd_check() {
    require_root();
    let mut p = projection_of("bastion");
    let cfg = p["rendered"]["sshd_config"].as_str().unwrap().to_string();
    p["rendered"]["sshd_config"] = format!("AllowTcpForwarding yes\n{cfg}").into();
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("bastion-forwarding.json");
    std::fs::write(&f, p.to_string()).unwrap();
    only_fails(
        &["--projection", f.to_str().unwrap()],
        "sshd",
        &["allowtcpforwarding yes (promised no)"],
    );
}

#[test]
fn forwarding_enabled_for_real_is_caught_by_the_live_probes() {
    // Not only the static value: with DisableForwarding off too, the live -L/-W/-R probes
    // themselves must see the forward work.
    require_root();
    let mut p = projection_of("bastion");
    let cfg = p["rendered"]["sshd_config"].as_str().unwrap().to_string();
    p["rendered"]["sshd_config"] =
        format!("AllowTcpForwarding yes\nDisableForwarding no\n{cfg}").into();
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("bastion-forwarding-live.json");
    std::fs::write(&f, p.to_string()).unwrap();
    let r = only_fails(
        &["--projection", f.to_str().unwrap(), "--checks", "sshd"],
        "sshd",
        &["forward -L refused"],
    );
    let sshd = check(&r, "sshd");
    let failed: Vec<String> = sshd["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["ok"] == false)
        .map(|e| e["what"].as_str().unwrap().to_string())
        .collect();
    for probe in [
        "forward -W refused",
        "forward -L refused",
        "forward -R refused",
    ] {
        assert!(
            failed.iter().any(|w| w == probe),
            "{probe} did not fail: {failed:?}"
        );
    }
}

#[test]
fn persisted_bind_without_noexec_fails_the_mounts_check() {
    let d = tempfile::tempdir().unwrap();
    let m = host_module(
        d.path(),
        "meeka",
        "  paranoid.noexec.enable = true;\n  fileSystems.\"/nix/persist\".options = lib.mkForce [ \"bind\" ];",
    );
    only_fails(
        &["--module", m.to_str().unwrap()],
        "mounts",
        &["[false] /var/lib: execution denied (noexec promised) → executed"],
    );
}

#[test]
fn allowed_users_star_fails_the_nix_daemon_check() {
    let d = tempfile::tempdir().unwrap();
    let m = host_module(
        d.path(),
        "bastion",
        "  nix.settings.allowed-users = lib.mkForce [ \"*\" ];",
    );
    only_fails(
        &["--module", m.to_str().unwrap()],
        "nix-daemon",
        &[
            "[false] any other user (an account the configuration does not name, in no group) is refused (paranoid.nix.allowedUsers = root) → rc=0: Version:",
        ],
    );
}

#[test]
fn port_22_opened_globally_fails_the_firewall_check() {
    // paranoid's firewall model reads this free-text rule and vpn-ssh-port-open refuses it at
    // evaluation; --ignore-assertions sandboxes it anyway, so the real packet filter must show
    // SSH open to everyone on its own.
    let d = tempfile::tempdir().unwrap();
    let m = host_module(
        d.path(),
        "meeka",
        "  networking.firewall.extraInputRules = \"tcp dport 22 accept\";",
    );
    only_fails(
        &["--module", m.to_str().unwrap(), "--ignore-assertions"],
        "firewall",
        &[
            "[false] SSH port 22 does not answer on <unnamed uplink> (public) with vpn.sshOnlyOverVpn → connected",
        ],
    );
}

#[test]
fn a_unit_with_no_sandboxing_fails_the_units_check_and_the_preset_itself_passes() {
    let d = tempfile::tempdir().unwrap();
    let service = "  paranoid.services.web = { sandbox = \"strict\"; };\n  systemd.services.web.serviceConfig.ExecStart = \"${pkgs.coreutils}/bin/sleep infinity\";";
    let good = host_module(d.path(), "bastion", service);
    require_root();
    let (code, r) = sandbox_json(&["--module", good.to_str().unwrap(), "--checks", "units"]);
    assert_eq!(code, 0, "{r:#}");
    assert!(
        evidence_text(check(&r, "units")).contains("web.service (preset strict) exposure ≤ 2.0")
    );

    let bare = d.path().join("bare");
    std::fs::create_dir(&bare).unwrap();
    let bad = host_module(
        &bare,
        "bastion",
        "  paranoid.services.web = { sandbox = \"strict\"; };\n  systemd.services.web.serviceConfig = lib.mkForce { ExecStart = \"${pkgs.coreutils}/bin/sleep infinity\"; };",
    );
    only_fails(
        &["--module", bad.to_str().unwrap()],
        "units",
        &[
            "[false] web.service (preset strict) exposure ≤ 2.0",
            "largest contributors",
        ],
    );
}

#[test]
fn a_weak_mac_fails_the_ssh_audit_check() {
    let d = tempfile::tempdir().unwrap();
    let m = host_module(
        d.path(),
        "bastion",
        "  services.openssh.settings.Macs = lib.mkForce [ \"hmac-sha2-256-etm@openssh.com\" \"hmac-sha1\" ];",
    );
    only_fails(
        &["--module", m.to_str().unwrap()],
        "ssh-audit",
        &["hmac-sha1", "Failed"],
    );
}

#[test]
fn wheel_without_a_password_fails_the_sudo_check() {
    let d = tempfile::tempdir().unwrap();
    let m = host_module(
        d.path(),
        "meeka",
        "  security.sudo.wheelNeedsPassword = lib.mkForce false;",
    );
    only_fails(
        &["--module", m.to_str().unwrap(), "--ignore-assertions"],
        "sudo",
        &[
            "[true] model agrees with sudo's parser: cadey becomes root without a password through sudo",
            "[false] wheel is asked a password (paranoid.sudo.mode = \"wheel-only\"): cadey becomes root through sudo without one",
        ],
    );
}

#[test]
fn a_model_that_disagrees_with_the_programs_fails_their_checks() {
    require_root();
    let base = projection_of("meeka");
    let d = tempfile::tempdir().unwrap();
    // Each edit makes the model claim what the real program does not do.
    let cases: Vec<(&str, &str, Box<dyn Fn(&mut serde_json::Value)>)> = vec![
        (
            "nix-daemon",
            "[false] model agrees with Nix: allowed-users = *",
            Box::new(|p| p["effective"]["nix"]["allowedUsers"]["value"] = serde_json::json!(["*"])),
        ),
        (
            "firewall",
            "[false] model agrees with the packet filter: SSH port 22 on <unnamed uplink> (public) answers",
            Box::new(|p| {
                for i in p["effective"]["firewall"]["ssh"][0]["interfaces"]
                    .as_array_mut()
                    .unwrap()
                {
                    if i["interface"] == "<unnamed uplink>" {
                        i["reachable"] = true.into();
                    }
                }
            }),
        ),
        (
            "sudo",
            "[false] model agrees with sudo's parser: cadey becomes root without a password through sudo",
            Box::new(|p| {
                for x in p["effective"]["sudo"]["tools"]["sudo"]["paths"]
                    .as_array_mut()
                    .unwrap()
                {
                    if x["account"] == "cadey" {
                        x["password"] = "none".into();
                    }
                }
            }),
        ),
    ];
    for (check_name, needle, edit) in cases {
        let mut p = base.clone();
        edit(&mut p);
        let f = d.path().join(format!("meeka-{check_name}.json"));
        std::fs::write(&f, p.to_string()).unwrap();
        let (code, r) =
            sandbox_json(&["--projection", f.to_str().unwrap(), "--checks", check_name]);
        let st = statuses(&r);
        assert_eq!(code, 1, "{check_name}: {st:#?}");
        let ev = evidence_text(check(&r, check_name));
        assert!(
            ev.contains(needle),
            "{check_name} evidence lacks {needle:?}:\n{ev}"
        );
    }
}
