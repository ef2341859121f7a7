# vm-nix: paranoid.nix with allowedUsers = "wheel". The Nix daemon itself refuses a user outside
# allowed-users, serves a wheel member as an untrusted user, and trusts root alone.
{ common, pkgs, lib }:
let
  p = common.postures;
in
common.mkTest { name = "nix"; } {
  nodes.machine = common.node p.nix.machine { };

  testScript = { nodes, ... }: common.prelude + ''
    import re

    nix = "${nodes.machine.nix.package.out}/bin/nix --extra-experimental-features nix-command"

    machine.wait_for_unit("multi-user.target")
    machine.wait_for_unit("nix-daemon.socket")

    # `nix store ping` was renamed `nix store info` (the old name stays as a deprecated alias
    # for a while); ask the pinned Nix which one it has.
    sub = "info" if machine.execute(f"{nix} store info --help >/dev/null 2>&1")[0] == 0 else "ping"


    def store_as(user):
        return f"su -s /bin/sh {user} -c {sh(nix + ' store ' + sub + ' --store daemon')}"


    def daemon_log():
        return machine.succeed("journalctl --no-pager -o cat -u nix-daemon.service")

    with subtest("a wheel member is served by the daemon, untrusted"):
        out = machine.succeed(store_as("alice"))
        expect_in("Store URL", out, f"nix store {sub} as alice")
        machine.wait_until_succeeds("journalctl --no-pager -o cat -u nix-daemon.service | grep -q 'user alice'", timeout=30)
        log = daemon_log()
        assert re.search(r"accepted connection from pid \d+, user alice$", log, re.M), f"no untrusted connection from alice in:\n{log}"
        expect_not_in("user alice (trusted)", log, "nix-daemon log")

    with subtest("a user outside allowed-users is refused by the daemon"):
        out = failing(machine, store_as("bob"), f"nix store {sub} as bob")
        expect_not_in("Store URL", out, f"nix store {sub} as bob")
        # The client only sees a dropped connection; the daemon says why.
        machine.wait_until_succeeds(
            "journalctl --no-pager -o cat -u nix-daemon.service | grep -Eq \"user .bob. is not allowed to connect to the Nix daemon\"",
            timeout=30,
        )

    with subtest("root, and only root, is trusted"):
        out = machine.succeed(f"{nix} store {sub} --store daemon")
        expect_in("Store URL", out, f"nix store {sub} as root")
        machine.wait_until_succeeds("journalctl --no-pager -o cat -u nix-daemon.service | grep -q 'user root (trusted)'", timeout=30)
        trusted = re.findall(r"user (\S+) \(trusted\)", daemon_log())
        assert set(trusted) == {"root"}, f"trusted daemon clients: {sorted(set(trusted))}, expected only root"
  '';
}
