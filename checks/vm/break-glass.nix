# vm-break-glass: paranoid.breakGlass. The main entry is locked down (no sudo, noexec, SSH over
# wg0 only, root has no password) and its break-glass entry is only bootable: the bootspec
# lists it, it has no switch-to-configuration. Booting the entry (its kernel, initrd and init,
# exactly what its boot-menu entry starts, through kexec as nixpkgs' own kexec test does) gives
# the relaxed posture: a copied ELF runs, a wheel member becomes root with sudo and a password,
# SSH answers on eth1, root logs in at the console; while sshd still takes keys only. The
# banner is on the console and shown to SSH clients, and the boot left an alert in the journal
# and a record in the audit log.
{ common, pkgs, lib }:
let
  inherit (common) postures keys;
  p = postures;
  sshOpts = "-F /dev/null -i /root/id_ed25519 -o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=10";
in
common.mkTest { name = "break-glass"; } {
  nodes.machine = common.node p.breakGlass.machine {
    imports = [ common.wireguardKeys ];
    environment.systemPackages = [ pkgs.kexec-tools ];
  };
  # On the LAN (eth1 of the machine): the "public" side.
  nodes.client = { };

  testScript = { nodes, ... }: common.prelude + ''
    machine_lan = "${nodes.machine.networking.primaryIPAddress}"
    password = "${p.breakGlassRootPassword}"
    alice_password = "${p.passwords.alice}"


    def console_login(user, secret):
        """Log in on tty1 and say whether the shell came up."""
        machine.send_key("alt-f1")
        machine.wait_until_tty_matches("1", "login: ")
        machine.send_chars(f"{user}\n")
        machine.wait_until_tty_matches("1", "Password: ")
        machine.send_chars(f"{secret}\n")
        machine.sleep(3)
        machine.send_chars("echo console-login-$((6*7)) > /run/console-login\n")
        status, _ = machine.execute("for i in $(seq 20); do test -e /run/console-login && exit 0; sleep 0.5; done; exit 1")
        return status == 0


    start_all()
    machine.wait_for_unit("multi-user.target")
    client.wait_for_unit("multi-user.target")
    client.succeed("install -m 600 ${keys.private} /root/id_ed25519")
    machine.succeed("install -m 600 ${keys.private} /root/id_ed25519")
    copied_elf = "cp $(readlink -f $(command -v bash)) /root/paranoid-probe && chmod 700 /root/paranoid-probe && /root/paranoid-probe -c true"

    with subtest("the main entry is locked down and carries the break-glass entry, bootable only"):
        entry = machine.succeed("readlink -f /run/current-system/specialisation/break-glass").strip()
        machine.succeed(f"test -x {entry}/init -a -e {entry}/kernel -a -e {entry}/initrd")
        machine.fail(f"test -e {entry}/bin/switch-to-configuration")
        # What boot loaders read to build the menu (bootspec) names the entry.
        expect_in("break-glass", machine.succeed("cat /run/current-system/boot.json"), "boot.json")
        machine.fail("test -e /run/wrappers/bin/sudo")
        expect_in("Permission denied", failing(machine, copied_elf, "a copied ELF"), "a copied ELF")
        assert tcp_banner(client, machine_lan, 22) == "", "port 22 answered on the LAN in the main entry"
        machine.fail("systemctl cat paranoid-break-glass.service")
        assert machine.succeed("journalctl -t paranoid-break-glass --no-pager -q").strip() == ""
        machine.succeed("mkdir -p -m 700 $(dirname ${p.breakGlassRootHash})")
        machine.succeed(f"${pkgs.openssl}/bin/openssl passwd -6 {sh(password)} > ${p.breakGlassRootHash}")
        assert not console_login("root", password), "root logged in at the console of the main entry"

    with subtest("booting the break-glass entry"):
        cmdline = machine.succeed("cat /proc/cmdline").split()
        params = " ".join([w for w in cmdline if not w.startswith("init=")] + [f"init={entry}/init"])
        machine.succeed(f"kexec --load {entry}/kernel --initrd {entry}/initrd --command-line {sh(params)}")
        machine.execute("systemctl kexec >&2 &", check_return=False)
        machine.connected = False
        machine.connect()
        machine.wait_for_unit("multi-user.target")
        assert machine.succeed("readlink -f /run/booted-system").strip() == entry, "did not boot the break-glass entry"

    with subtest("the boot left an alert in the journal and a record in the audit log"):
        machine.wait_for_unit("paranoid-break-glass.service")
        alert = machine.succeed("journalctl -b -t paranoid-break-glass -p alert --no-pager -q")
        expect_in("booted the break-glass entry", alert, "journal alert")
        machine.wait_for_unit("auditd.service")
        machine.wait_until_succeeds("ausearch -m USER -i | grep -q 'break-glass entry'", timeout=30)

    with subtest("the banner: on the console and before SSH authentication"):
        expect_in("BREAK-GLASS SYSTEM", machine.succeed("cat /etc/issue"), "/etc/issue")
        machine.send_key("alt-f1")
        machine.wait_until_tty_matches("1", "BREAK-GLASS SYSTEM")
        out = client.succeed(f"ssh ${sshOpts} -o BatchMode=yes alice@{machine_lan} true 2>&1")
        expect_in("BREAK-GLASS SYSTEM", out, "ssh banner")

    with subtest("the relaxed posture: noexec off, sudo for wheel with a password, SSH on eth1, root at the console"):
        machine.succeed(copied_elf)
        sudo_as_alice = f"echo {alice_password} | /run/wrappers/bin/sudo -S -p ''' id -u"
        out = machine.succeed(f"su -s /bin/sh alice -c {sh(sudo_as_alice)}")
        assert out.strip().splitlines()[-1] == "0", f"sudo as alice: {out!r}"
        failing(machine, "su -s /bin/sh bob -c '/run/wrappers/bin/sudo -n true'", "sudo as bob (not in wheel)")
        expect_in("SSH-", tcp_banner(client, machine_lan, 22), "port 22 on eth1")
        assert console_login("root", password), "root could not log in at the console of the break-glass entry"

    with subtest("what must hold still holds: keys only, even on eth1"):
        out = failing(client, f"ssh ${sshOpts} -o BatchMode=yes -o PreferredAuthentications=password,keyboard-interactive -o PubkeyAuthentication=no root@{machine_lan} true", "password login")
        expect_in("Permission denied", out, "password login")
        out = client.succeed(f"ssh ${sshOpts} -o BatchMode=yes root@{machine_lan} id -u 2>/dev/null")
        assert out.strip() == "0", f"root with a key over eth1: {out!r}"
  '';
}
