# vm-rollback: paranoid.rollback with a one-minute window. Switched the way nixos-rebuild
# switches (the system profile set, then the new generation's switch-to-configuration switch):
# a generation whose admin keys are the wrong ones locks the admins out for real, and a minute
# later the previous generation runs again, the profile points back at it and the admin's key
# works; a new SSH login of an admin confirms a harmless switch, and so does paranoid-confirm;
# the re-activation arms nothing, and neither does a reboot.
{ common, pkgs, lib }:
let
  inherit (common) postures keys;
  p = postures;
  sshOpts = "-F /dev/null -i /root/id_ed25519 -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=10";
in
common.mkTest { name = "rollback"; } {
  nodes.machine = common.node p.rollback.machine { };
  nodes.client = { };

  testScript = { nodes, ... }: common.prelude + ''
    machine_lan = "${nodes.machine.networking.primaryIPAddress}"
    profile = "/nix/var/nix/profiles/system"


    def running():
        return machine.succeed("readlink -f /run/current-system").strip()


    def switch(system):
        """What nixos-rebuild switch does once the system is built."""
        machine.succeed(f"nix-env -p {profile} --set {system}")
        machine.succeed(f"{system}/bin/switch-to-configuration switch")


    def armed():
        return machine.succeed("paranoid-rollback status").startswith("armed at")


    def alice_logs_in():
        status, _ = client.execute(f"ssh ${sshOpts} alice@{machine_lan} true")
        return status == 0


    start_all()
    machine.wait_for_unit("sshd.service")
    client.wait_for_unit("multi-user.target")
    client.succeed("install -m 600 ${keys.private} /root/id_ed25519")
    base = running()
    good = machine.succeed("readlink -f /run/current-system/specialisation/good").strip()
    wrongkey = machine.succeed("readlink -f /run/current-system/specialisation/wrongkey").strip()
    machine.succeed(f"nix-env -p {profile} --set {base}")
    assert alice_logs_in(), "alice cannot log in to begin with"

    with subtest("booting armed nothing"):
        assert not armed(), "armed at boot"

    with subtest("a new SSH login of an admin confirms a switch"):
        switch(good)
        assert armed(), "the switch did not arm"
        assert alice_logs_in(), "alice cannot log in after the harmless switch"
        assert not armed(), "alice's login did not confirm"
        machine.sleep(75)
        assert running() == good, "a confirmed switch was rolled back"

    with subtest("paranoid-confirm confirms a switch"):
        switch(base)
        assert armed(), "the switch did not arm"
        machine.succeed("paranoid-confirm")
        assert not armed(), "paranoid-confirm did not confirm"
        machine.sleep(75)
        assert running() == base, "a confirmed switch was rolled back"

    with subtest("a switch that locks the admins out is rolled back"):
        switch(wrongkey)
        assert running() == wrongkey
        assert not alice_logs_in(), "the wrong keys did not lock alice out: the test proves nothing"
        machine.wait_until_succeeds(f"test $(readlink -f /run/current-system) = {base}", timeout=180)
        assert machine.succeed(f"readlink -f {profile}").strip() == base, "the profile does not point back at the previous generation"
        assert alice_logs_in(), "alice still cannot log in after the rollback"
        expect_in("re-activating", machine.succeed("journalctl -u paranoid-rollback.service --no-pager -q"), "the rollback's alert")

    with subtest("the rollback armed no rollback of its own"):
        assert not armed(), "the re-activation armed a rollback"
        machine.sleep(75)
        assert running() == base, "the rollback was rolled back"

    with subtest("a reboot arms nothing"):
        machine.reboot()
        machine.wait_for_unit("multi-user.target")
        assert not armed(), "armed after a reboot"
  '';
}
