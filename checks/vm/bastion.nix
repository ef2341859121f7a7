# vm-bastion: the reference host examples/bastion (profile "maximum", WireGuard) boots to
# multi-user in a VM and passes a smoke script. Adapted, and only these: / is the VM's disk and
# /nix a filesystem of its own (a tmpfs standing in for the labelled partition), no /boot (the VM
# boots the kernel directly), the store comes from the host over 9p, the WireGuard key the real
# host keeps in /var/lib/wireguard is generated at first boot, and the test's key is added to
# root's so the script can log in. The paranoid part is untouched.
{ common, pkgs, lib }:
common.mkTest { name = "bastion"; } {
  nodes.bastion = { config, lib, ... }: {
    imports = [ ../../examples/bastion common.vmShares ];
    fileSystems."/".device = lib.mkForce config.virtualisation.rootDevice;
    fileSystems."/nix" = lib.mkForce { device = "tmpfs"; fsType = "tmpfs"; options = [ "mode=755" ]; neededForBoot = true; };
    fileSystems."/boot".enable = lib.mkForce false;
    networking.wireguard.interfaces.wg0.generatePrivateKeyFile = true;
    users.users.root.openssh.authorizedKeys.keys = [ common.keys.public ];
  };

  testScript = { nodes, ... }:
    let
      cfg = nodes.bastion;
    in
    common.prelude + ''
      import re

      sshd = "${cfg.services.openssh.package}/bin/sshd"
      nix = "${cfg.nix.package.out}/bin/nix --extra-experimental-features nix-command"

      bastion.wait_for_unit("multi-user.target")
      bastion.succeed("systemctl --no-pager --failed >&2")

      with subtest("the daemons paranoid configures are running"):
          for unit in ["sshd.service", "auditd.service", "nftables.service", "wireguard-wg0.service", "nix-daemon.socket"]:
              bastion.wait_for_unit(unit)

      with subtest("noexec: / is noexec,nosuid,nodev and a copied ELF does not run; the store does"):
          options = bastion.succeed("findmnt -no OPTIONS / | tail -n 1").strip().split(",")
          for flag in ["noexec", "nosuid", "nodev"]:
              assert flag in options, f"/ is mounted {options}, without {flag}"
          bastion.succeed("cp $(readlink -f $(command -v bash)) /root/paranoid-probe && chmod 700 /root/paranoid-probe")
          expect_in("Permission denied", failing(bastion, "/root/paranoid-probe -c true", "a copied ELF in /root"), "a copied ELF in /root")
          bastion.succeed("$(readlink -f $(command -v bash)) -c true")

      with subtest("sudo is gone; root logs in over SSH with a key"):
          wrappers = bastion.succeed("ls /run/wrappers/bin").split()
          for name in ["sudo", "sudoedit", "doas"]:
              assert name not in wrappers, f"/run/wrappers/bin still has {name}"
          bastion.succeed("install -m 600 ${common.keys.private} /root/id_ed25519")
          out = bastion.succeed(
              "ssh -F /dev/null -i /root/id_ed25519 -o IdentitiesOnly=yes -o BatchMode=yes "
              "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null root@127.0.0.1 id -u"
          )
          assert out.strip() == "0", f"root over SSH: {out!r}"

      with subtest("sshd: the effective configuration is paranoid's, without SFTP"):
          effective = sshd_t(bastion, sshd)
          for key, value in ${builtins.toJSON common.postures.expect.sshdT}.items():
              assert effective.get(key) == value, f"sshd -T: {key} is {effective.get(key)!r}, expected {value!r}"
          assert "subsystem" not in effective, "sshd still offers a subsystem (SFTP)"
          assert effective.get("allowusers") == "root", f"AllowUsers is {effective.get('allowusers')!r}"

      with subtest("audit: locked until reboot"):
          expect_in("enabled 2", bastion.succeed("auditctl -s"), "auditctl -s")
          failing(bastion, "auditctl -e 0", "disabling auditing")

      with subtest("nix: for root only; no channels"):
          failing(bastion, f"su -s /bin/sh nobody -c {sh(nix + ' store info --store daemon || ' + nix + ' store ping --store daemon')}", "nix as nobody")
          bastion.succeed(f"{nix} store info --store daemon || {nix} store ping --store daemon")
          bastion.fail("command -v nix-channel")

      with subtest("packages: the defaults are stripped"):
          for tool in ["nano", "perl", "rsync", "strace"]:
              bastion.fail(f"command -v {tool}")

      with subtest("services: healthz runs as its own user, strictly sandboxed, on the VPN address"):
          bastion.wait_for_unit("healthz.service")
          assert bastion.succeed("systemctl show -P User healthz.service").strip() == "healthz"
          expect_in("ok", bastion.succeed("curl -sf http://10.100.0.2:8080/"), "the health page")
          exposure = bastion.succeed("systemd-analyze security --no-pager healthz.service | tail -n 1")
          score = float(re.search(r"exposure level for healthz.service: ([0-9.]+)", exposure).group(1))
          assert score <= 2.0, f"healthz.service exposure {score} > 2.0:\n{exposure}"

      with subtest("firewall: wg0 trusted, SSH not opened everywhere"):
          ruleset = bastion.succeed("nft list ruleset")
          assert re.search(r'iifname .*"wg0".* accept', ruleset), f"wg0 is not trusted in the live ruleset:\n{ruleset}"
          global_ssh = [
              line for line in ruleset.splitlines()
              if "dport" in line and re.search(r"\b22\b", line) and "iifname" not in line and "accept" in line
          ]
          assert not global_ssh, f"port 22 is opened on every interface: {global_ssh}"
    '';
}
