# vm-meeka: the reference host examples/meeka (profile "paranoid" + amnesia, Tailscale, remote
# logs) boots to multi-user in a VM and passes a smoke script. Only its disks are adapted:
# /nix is the VM's disk instead of the labelled partition, there is no /boot (the VM boots the
# kernel directly), and the store comes from the host over 9p. The paranoid part is untouched.
{ common, pkgs, lib }:
common.mkTest { name = "meeka"; } {
  nodes.meeka = { config, lib, ... }: {
    imports = [ ../../examples/meeka common.vmShares ];
    fileSystems."/nix".device = lib.mkForce config.virtualisation.rootDevice;
    fileSystems."/boot".enable = lib.mkForce false;
  };

  testScript = { nodes, ... }:
    let
      cfg = nodes.meeka;
      persist = cfg.paranoid.amnesia.persistPath;
    in
    common.prelude + ''
      import re

      sshd = "${cfg.services.openssh.package}/bin/sshd"
      nix = "${cfg.nix.package.out}/bin/nix --extra-experimental-features nix-command"
      persist = "${persist}"

      meeka.wait_for_unit("multi-user.target")
      meeka.succeed("systemctl --no-pager --failed >&2")

      with subtest("the daemons paranoid configures are running"):
          for unit in ["sshd.service", "auditd.service", "nftables.service", "tailscaled.service", "nix-daemon.socket"]:
              meeka.wait_for_unit(unit)

      with subtest("amnesia: / is a 2 GiB tmpfs, state comes from ${persist}"):
          assert meeka.succeed("findmnt -no FSTYPE /").strip() == "tmpfs"
          block, count = meeka.succeed("stat -f -c '%S %b' /").split()
          assert int(block) * int(count) == 2 * 1024**3, f"/ holds {int(block) * int(count)} bytes, expected 2 GiB"
          for d in ${builtins.toJSON cfg.paranoid.amnesia.directories}:
              meeka.succeed(f"diff <(stat -c '%Hd %Ld %i' {persist}{d}) <(stat -c '%Hd %Ld %i' {d})")
          meeka.wait_until_succeeds(f"diff {persist}/etc/machine-id /etc/machine-id", timeout=60)
          meeka.succeed(f"test -s {persist}/etc/ssh/ssh_host_ed25519_key")

      with subtest("sshd: the effective configuration is paranoid's"):
          effective = sshd_t(meeka, sshd)
          for key, value in {
              "passwordauthentication": "no",
              "kbdinteractiveauthentication": "no",
              "authenticationmethods": "publickey",
              "allowtcpforwarding": "no",
              "allowagentforwarding": "no",
              "permitrootlogin": "without-password",
          }.items():
              assert effective.get(key) == value, f"sshd -T: {key} is {effective.get(key)!r}, expected {value!r}"
          assert effective.get("hostkey", "").startswith(persist + "/"), f"host key {effective.get('hostkey')!r} is not persisted"

      with subtest("firewall: SSH only over tailscale0"):
          ruleset = meeka.succeed("nft list ruleset")
          assert re.search(r'iifname .*"tailscale0".* accept', ruleset), f"tailscale0 is not trusted in the live ruleset:\n{ruleset}"
          global_ssh = [
              line for line in ruleset.splitlines()
              if "dport" in line and re.search(r"\b22\b", line) and "iifname" not in line and "accept" in line
          ]
          assert not global_ssh, f"port 22 is opened on every interface: {global_ssh}"

      with subtest("audit: on, with the execve rules"):
          expect_in("enabled 1", meeka.succeed("auditctl -s"), "auditctl -s")
          expect_in("execve", meeka.succeed("auditctl -l"), "auditctl -l")

      with subtest("nix: the daemon refuses a user outside wheel; no channels"):
          failing(meeka, f"su -s /bin/sh nobody -c {sh(nix + ' store info --store daemon || ' + nix + ' store ping --store daemon')}", "nix as nobody")
          meeka.succeed(f"{nix} store info --store daemon || {nix} store ping --store daemon")
          meeka.fail("command -v nix-channel")

      with subtest("services: the website runs as its own user, strictly sandboxed, from persisted /srv"):
          meeka.succeed("mkdir -p /srv/www && echo hello > /srv/www/index.html && systemctl restart website.service")
          meeka.wait_for_unit("website.service")
          meeka.wait_for_open_port(8080)
          assert meeka.succeed("systemctl show -P User website.service").strip() == "website"
          expect_in("hello", meeka.succeed("curl -sf http://127.0.0.1:8080/"), "the website")
          meeka.succeed(f"test -f {persist}/srv/www/index.html")
          exposure = meeka.succeed("systemd-analyze security --no-pager website.service | tail -n 1")
          score = float(re.search(r"exposure level for website.service: ([0-9.]+)", exposure).group(1))
          assert score <= 2.0, f"website.service exposure {score} > 2.0:\n{exposure}"

      with subtest("sudo: wheel only"):
          mode = meeka.succeed("stat -c '%a %U %G' /run/wrappers/bin/sudo").strip()
          assert mode == "4510 root wheel", f"sudo wrapper is {mode!r}"
    '';
}
