# vm-sudo: paranoid.sudo.mode. "wheel-only": a non-wheel user cannot even execute sudo, a wheel
# member must type the password. "removed": no sudo at all, root administers over SSH with a
# key. "upstream" is the control: there sudo itself answers the non-wheel user.
{ common, pkgs, lib }:
let
  inherit (common) postures keys;
  p = postures;
  sudo = "/run/wrappers/bin/sudo";
in
common.mkTest { name = "sudo"; } {
  nodes.wheelonly = common.node p.sudo.wheelonly { };
  nodes.removed = common.node p.sudo.removed { };
  nodes.upstream = common.node p.sudo.upstream { };

  testScript = common.prelude + ''
    start_all()
    for m in [wheelonly, removed, upstream]:
        m.wait_for_unit("multi-user.target")


    def as_user(user, command):
        return f"su -s /bin/sh {user} -c {sh(command)}"

    with subtest("wheel-only: a user outside wheel cannot execute sudo"):
        out = failing(wheelonly, as_user("bob", "${sudo} -n true"), "sudo as bob")
        expect_in("Permission denied", out, "sudo as bob")
        expect_not_in("sudoers", out, "sudo as bob (sudo must not even run)")

    with subtest("wheel-only: a wheel member needs the password"):
        out = failing(wheelonly, as_user("alice", "${sudo} -n true"), "sudo -n as alice")
        expect_in("password is required", out, "sudo -n as alice")
        failing(wheelonly, as_user("alice", "echo not-the-password | ${sudo} -S -p ''' true"), "sudo with a wrong password")
        out = wheelonly.succeed(as_user("alice", "echo ${p.passwords.alice} | ${sudo} -S -p ''' id -u"))
        assert out.strip().splitlines()[-1] == "0", f"sudo with the right password did not run as root: {out!r}"

    with subtest("wheel-only: the wrapper is executable by root and wheel only"):
        mode = wheelonly.succeed("stat -c '%a %U %G' ${sudo}").strip()
        assert mode == "4510 root wheel", f"sudo wrapper is {mode!r}, expected '4510 root wheel'"

    with subtest("control (upstream): sudo itself answers the same user"):
        out = failing(upstream, as_user("bob", "${sudo} -n true"), "sudo as bob on the control node")
        expect_in("sudo:", out, "sudo as bob on the control node")
        expect_not_in("Permission denied", out, "sudo as bob on the control node")

    with subtest("removed: no sudo, sudoedit or doas anywhere"):
        wrappers = removed.succeed("ls /run/wrappers/bin")
        for name in ["sudo", "sudoedit", "doas"]:
            assert name not in wrappers.split(), f"/run/wrappers/bin still has {name}: {wrappers.split()}"
        removed.fail("command -v sudo", "command -v sudoedit", "command -v doas")
        out = failing(removed, as_user("alice", "sudo true"), "sudo as alice")
        expect_in("not found", out, "sudo as alice")

    with subtest("removed: root administers over SSH with a key"):
        removed.wait_for_unit("sshd.service")
        removed.succeed("install -m 600 ${keys.private} /root/id_ed25519")
        out = removed.succeed(
            "ssh -F /dev/null -i /root/id_ed25519 -o IdentitiesOnly=yes -o BatchMode=yes "
            "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null root@127.0.0.1 id -u"
        )
        assert out.strip() == "0", f"root over SSH: {out!r}"
  '';
}
