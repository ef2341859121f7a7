//! The sshd check judges every connection of paranoid's model with `sshd -T -C`, holds the model
//! to sshd, and shows the admin path's account logging in over the live sshd; a host with no
//! admin path fails (never "skipped"). As root: real sshd, namespaces, throwaway users.

mod common;
mod sandbox_support;
mod weakening_support;
use sandbox_support::*;
use std::path::Path;

/// `sandbox --checks sshd` on a module importing a reference host plus `body`.
fn sshd_on(host: &str, body: &str, extra: &[&str]) -> (i32, serde_json::Value, String) {
    require_root();
    let d = tempfile::tempdir().unwrap();
    let m = host_module(d.path(), host, body);
    let mut args = vec!["--module", m.to_str().unwrap(), "--checks", "sshd"];
    args.extend_from_slice(extra);
    let (code, r) = sandbox_json(&args);
    let ev = evidence_text(check(&r, "sshd"));
    assert!(
        leftovers(r["runId"].as_str().unwrap(), Path::new(DEFAULT_STATE_DIR)).is_empty(),
        "the run left something behind"
    );
    (code, r, ev)
}

fn status(r: &serde_json::Value) -> String {
    check(r, "sshd")["status"].as_str().unwrap().to_string()
}

#[test]
fn without_a_root_key_the_wheel_admin_logs_in_over_the_live_sshd() {
    // meeka's way in is then cadey (wheel, sudo with a persisted password); cadey exists only
    // in the configuration, so sshd must run where the configuration's accounts exist.
    let (code, r, ev) = sshd_on(
        "meeka",
        "  users.users.root.openssh.authorizedKeys.keys = lib.mkForce [ ];",
        &[],
    );
    assert_eq!((code, status(&r)), (0, "pass".into()), "{ev}");
    assert!(
        ev.contains(
            "[true] the admin path's first account cadey logs in over the live sshd from vpn"
        ) && ev.contains("LOGIN_OK user=cadey"),
        "{ev}"
    );
    assert!(
        ev.contains("admin path: cadey over vpn") && ev.contains("root through sudo"),
        "{ev}"
    );
    assert!(ev.contains("installed for cadey alone"), "{ev}");
}

#[test]
fn allow_users_naming_only_the_admin_no_longer_skips_the_live_probes() {
    // Neither the run's users nor root may log in: the probes log in as the admin, from the
    // admin path's own connection, instead of being skipped.
    let (code, r, ev) = sshd_on(
        "meeka",
        "  paranoid.ssh.allowUsers = [ \"cadey\" ];\n  paranoid.ssh.permitRootLogin = \"no\";\n  users.users.root.openssh.authorizedKeys.keys = lib.mkForce [ ];",
        &[],
    );
    assert_eq!((code, status(&r)), (0, "pass".into()), "{ev}");
    assert!(ev.contains("the live probes log in as cadey"), "{ev}");
    for probe in [
        "[true] forward -W refused",
        "[true] agent forwarding refused",
        "[true] key login works for the allowed user cadey",
    ] {
        assert!(ev.contains(probe), "{probe}: {ev}");
    }
}

#[test]
fn a_host_with_no_admin_path_fails_with_the_broken_links_never_skips() {
    // Handed case c08's kind: sudo removed, and AllowUsers names an account that cannot become
    // root. With the guard switched off the host builds; the sandbox must fail it.
    let (code, r, ev) = sshd_on(
        "bastion",
        "  users.users.ops = { isNormalUser = true; openssh.authorizedKeys.keys = [ \"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIQaTestKeyNotRealReplaceMe000000000000000000 ops\" ]; };\n  paranoid.ssh.allowUsers = lib.mkForce [ \"ops\" ];\n  paranoid.adminPath.guard = false;",
        &[],
    );
    assert_eq!((code, status(&r)), (1, "fail".into()), "{ev}");
    assert!(r["counts"]["skipped"] == 0, "{r}");
    assert!(
        ev.contains("[false] no admin path: after a reboot nobody can reach root from the network")
            && ev.contains("root: sshd refuses root: AllowUsers ops does not name it")
            && ev.contains("ops cannot become root: no sudo, sudo-rs or doas is enabled"),
        "{ev}"
    );
}

#[test]
fn a_match_address_block_only_sshd_t_c_sees_fails_the_check() {
    // The catalogue's sshd-match-address-password: passwords come back for 192.168.0.0/16 only.
    // The global `sshd -T` shows `no`; the model's connection from that network gets `yes`.
    let (code, r, ev) = sshd_on(
        "bastion",
        "  services.openssh.extraConfig = \"Match Address 192.168.0.0/16\\n  PasswordAuthentication yes\\n\";",
        &[],
    );
    assert_eq!((code, status(&r)), (1, "fail".into()), "{ev}");
    assert!(
        ev.contains("[false] effective values for")
            && ev.contains("@public(192.168.0.1):22")
            && ev.contains("passwordauthentication yes (promised no)"),
        "{ev}"
    );
    assert!(
        ev.contains("[true] paranoid's model agrees with sshd"),
        "{ev}"
    );
}

#[test]
fn match_group_applies_to_the_configurations_own_wheel_members() {
    // Handed case c01's kind on meeka: `Match Group wheel` turns ~/.ssh/authorized_keys back on
    // for cadey, who exists only in the configuration.
    let (code, r, ev) = sshd_on(
        "meeka",
        "  services.openssh.extraConfig = \"Match Group wheel\\n  AuthorizedKeysFile .ssh/authorized_keys\\n\";",
        &[],
    );
    assert_eq!((code, status(&r)), (1, "fail".into()), "{ev}");
    assert!(
        ev.contains("cadey@vpn:22")
            && ev.contains(
                "authorizedkeysfile reads keys from the home directory: .ssh/authorized_keys"
            ),
        "{ev}"
    );
}

#[test]
fn a_model_that_disagrees_with_sshd_fails_the_check() {
    // A model bug is a failure, not a footnote: the projection's model says cadey gets
    // X11Forwarding yes, sshd says no.
    require_root();
    let mut p = projection_of("meeka");
    let n = p["effective"]["sshd"]["profiles"].as_array().unwrap().len();
    for i in 0..n {
        p["effective"]["sshd"]["profiles"][i]["values"]["x11forwarding"]["value"] = "yes".into();
    }
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("meeka-wrong-model.json");
    std::fs::write(&f, p.to_string()).unwrap();
    let (code, r) = sandbox_json(&["--projection", f.to_str().unwrap(), "--checks", "sshd"]);
    let ev = evidence_text(check(&r, "sshd"));
    assert_eq!((code, status(&r)), (1, "fail".into()), "{ev}");
    assert!(
        ev.contains(
            "[false] paranoid's model disagrees with sshd for root@vpn:22 on x11forwarding"
        ) && ev.contains("model: \"yes\"; sshd -T -C: \"no\""),
        "{ev}"
    );
}

#[test]
fn without_pam_a_locked_account_is_refused_as_the_model_says() {
    // UsePAM no: sshd itself refuses an account whose /etc/shadow entry is locked ("!", what
    // NixOS writes for an account without a password), key or not. Found by the live admin
    // login; the model now says so, and the host has no admin path.
    let (code, r, ev) = sshd_on(
        "bastion",
        "  services.openssh.settings.UsePAM = lib.mkForce false;\n  paranoid.adminPath.guard = false;",
        &[],
    );
    assert_eq!((code, status(&r)), (1, "fail".into()), "{ev}");
    assert!(
        ev.contains("[false] no admin path")
            && ev.contains("root: sshd refuses root: UsePAM no and its password is locked"),
        "{ev}"
    );
    // With a password hash root is not locked: the model admits it and so does the live sshd.
    let (code, r, ev) = sshd_on(
        "bastion",
        "  services.openssh.settings.UsePAM = lib.mkForce false;\n  users.users.root.hashedPassword = \"$6$paranoid$Q0bQ5uM2oWJp7x1Jf3wqzv7f2Kc6o0mX3h8gkQm9o4s3rJ1Yp2e7VvXy8zN5tL6uQ1aR0bS2cT3dU4eV5fW6g.\";",
        &[],
    );
    assert_eq!((code, status(&r)), (0, "pass".into()), "{ev}");
    assert!(
        ev.contains("[true] the admin path's first account root logs in"),
        "{ev}"
    );
}

/// The catalogue's `Match` weakenings whose observable is sshd: each is sandboxed on its base host
/// plus its weakening (as the catalogue's tests build it) and the sshd check must fail, naming
/// the connections the Match block reaches and the broken promise.
#[test]
fn the_catalogues_match_weakenings_fail_the_sshd_check_naming_their_connections() {
    require_root();
    let cases: &[(&str, &[&str], &[&str])] = &[
        (
            "sshd-match-group-homedir-keys",
            &["cadey@loopback:22, cadey@vpn:22, cadey@public:22"],
            &[
                "authorizedkeysfile reads keys from the home directory: .ssh/authorized_keys",
                // Its only key file is a home directory: no throwaway key goes there.
                "effective profile 1 is not probed live, only judged by sshd -T -C",
            ],
        ),
        (
            "sshd-match-address-password",
            &["root@public(192.168.0.1):22"],
            &[
                "passwordauthentication yes (promised no)",
                "live probes as root from 192.168.0.1 to 198.51.100.2:22",
            ],
        ),
        (
            "sshd-match-user-tcp-forwarding",
            &["cadey@loopback:22, cadey@vpn:22, cadey@public:22"],
            &[
                "allowtcpforwarding yes (promised no)",
                "live probes as cadey from 127.0.0.1",
            ],
        ),
        (
            "sshd-match-group-disable-forwarding",
            &["cadey@loopback:22, cadey@vpn:22, cadey@public:22"],
            &[
                "disableforwarding no (promised yes)",
                "live probes as cadey from 127.0.0.1",
            ],
        ),
    ];
    let entries = weakening_support::catalogue();
    let d = tempfile::tempdir().unwrap();
    for (id, connections, texts) in cases {
        let e = entries
            .iter()
            .find(|e| e.id == *id)
            .unwrap_or_else(|| panic!("{id} is not in checks/weakenings.nix"));
        assert_eq!(e.observable.as_deref(), Some("sshd"), "{id}");
        let m = weakening_support::write(
            d.path(),
            &format!("{id}.nix"),
            &weakening_support::entry_text(e),
        );
        let (code, r) = sandbox_json(&[
            "--module",
            m.to_str().unwrap(),
            "--checks",
            "sshd",
            "--ignore-assertions",
        ]);
        let c = check(&r, "sshd");
        let ev = evidence_text(c);
        assert_eq!((code, status(&r)), (1, "fail".into()), "{id}: {ev}");
        for conn in *connections {
            assert!(
                ev.contains(&format!(
                    "[false] effective values for {} connection(s) ({conn}) match paranoid.ssh",
                    conn.split(", ").count()
                )),
                "{id}: {conn}: {ev}"
            );
        }
        for t in *texts {
            assert!(ev.contains(t), "{id}: {t}: {ev}");
        }
        let ms = c["duration_ms"].as_u64().unwrap();
        assert!(ms < 10_000, "{id}: the sshd check took {ms} ms");
        assert!(
            leftovers(r["runId"].as_str().unwrap(), Path::new(DEFAULT_STATE_DIR)).is_empty(),
            "{id}: the run left something behind"
        );
    }
}

#[test]
fn live_probes_log_in_as_the_account_and_from_the_address_a_match_block_selects() {
    // With the layers that hold the catalogue's weakenings back live (AuthenticationMethods
    // publickey, DisableForwarding yes) also undone inside the Match block, the real client,
    // logging in as the connection the model names, must see passwords and forwarding back.
    let (code, r, ev) = sshd_on(
        "bastion",
        "  services.openssh.extraConfig = \"Match Address 192.168.0.0/16\\n  AuthenticationMethods publickey password\\n  PasswordAuthentication yes\\n\";",
        &[],
    );
    assert_eq!((code, status(&r)), (1, "fail".into()), "{ev}");
    assert!(
        ev.contains(
            "[false] root@public(192.168.0.1):22: password refused (live, from 192.168.0.1)"
        ) && ev.contains("(the server still offers publickey,password)"),
        "{ev}"
    );
    // The default probes, from the loopback, see nothing: only the Match Address connection does.
    assert!(ev.contains("[true] password refused"), "{ev}");
    let (code, r, ev) = sshd_on(
        "meeka",
        "  services.openssh.extraConfig = \"Match Group wheel\\n  DisableForwarding no\\n  AllowTcpForwarding yes\\n\";",
        &[],
    );
    assert_eq!((code, status(&r)), (1, "fail".into()), "{ev}");
    assert!(
        ev.contains("[false] cadey@loopback:22: forward -L refused (live, from 127.0.0.1)")
            && ev.contains("[true] cadey@loopback:22: key login works"),
        "{ev}"
    );
    assert!(ev.contains("[true] forward -L refused"), "{ev}");
}
