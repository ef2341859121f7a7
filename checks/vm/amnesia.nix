# vm-amnesia: paranoid.amnesia on meeka's layout (/ a tmpfs, /nix on disk). Across a real reboot
# of the VM: what was written outside persistence is gone, persisted directories are the very
# same directories on disk (impermanence's own check: device and inode on both sides of the bind
# mount) with their owner and mode, and the SSH host key and machine id do not change.
{ common, pkgs, lib }:
let
  p = common.postures;
in
common.mkTest { name = "amnesia"; } {
  nodes.machine = common.node p.amnesia.machine { };

  testScript = { nodes, ... }:
    let
      cfg = nodes.machine.paranoid.amnesia;
      persistence = nodes.machine.environment.persistence.${cfg.persistPath};
      # Every persisted directory as impermanence resolved it (paranoid's list plus additions).
      # (impermanence leaves group null when only user is given: the user's primary group.)
      dirs = map (d: {
        inherit (d) dirPath persistentStoragePath user mode;
        group = if d.group == null then nodes.machine.users.users.${d.user}.group else d.group;
      }) persistence.directories;
      hostKeys = map (k: k.path) nodes.machine.services.openssh.hostKeys;
    in
    common.prelude + ''
      import json
      import re

      persist = "${cfg.persistPath}"
      root_size = "${cfg.rootSize}"
      dirs = json.loads(${builtins.toJSON (builtins.toJSON dirs)})
      host_keys = json.loads(${builtins.toJSON (builtins.toJSON hostKeys)})


      def size_bytes(text):
          units = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
          number, unit = text[:-1], text[-1].upper()
          if unit.isdigit():
              number, unit = text, ""
          return int(number) * units[unit]


      def check_root():
          fstype = machine.succeed("findmnt -no FSTYPE /").strip()
          assert fstype == "tmpfs", f"/ is {fstype}, expected tmpfs"
          block, count = machine.succeed("stat -f -c '%S %b' /").split()
          assert int(block) * int(count) == size_bytes(root_size), (
              f"/ holds {int(block) * int(count)} bytes, expected {root_size}"
          )
          mode = machine.succeed("stat -c %a /").strip()
          assert mode == "755", f"/ has mode {mode}, expected 755"


      def check_persisted_dirs():
          for d in dirs:
              source = d["persistentStoragePath"] + d["dirPath"]
              machine.succeed(f"diff <(stat -c '%Hd %Ld %i' {source}) <(stat -c '%Hd %Ld %i' {d['dirPath']})")
              user, group, mode = machine.succeed(f"stat -c '%U %G %a' {d['dirPath']}").split()
              assert [user, group] == [d["user"], d["group"]], (
                  f"{d['dirPath']} is owned by {user}:{group}, expected {d['user']}:{d['group']}"
              )
              assert re.fullmatch(r"[0-7]{3,4}", d["mode"]), f"{d['dirPath']}: this test compares octal modes, got {d['mode']!r}"
              assert int(mode, 8) == int(d["mode"], 8), f"{d['dirPath']} has mode {mode}, expected {d['mode']}"


      def identity():
          machine.wait_until_succeeds(f"diff {persist}/etc/machine-id /etc/machine-id", timeout=60)
          machine_id = machine.succeed("cat /etc/machine-id").strip()
          assert re.fullmatch(r"[0-9a-f]{32}", machine_id), f"machine id is {machine_id!r}"
          keys = {k: machine.succeed(f"ssh-keygen -lf {k}.pub").split()[1] for k in host_keys}
          served = machine.succeed("ssh-keyscan -t ed25519 127.0.0.1 2>/dev/null").split()
          return machine_id, keys, served[-1]

      machine.start(allow_reboot=True)
      machine.wait_for_unit("multi-user.target")
      machine.wait_for_unit("sshd.service")

      with subtest("/ is a tmpfs of the configured size"):
          check_root()

      with subtest("persisted directories are the directories on disk, with owner and mode"):
          assert any(d["dirPath"] == "/etc/paranoid-probe" for d in dirs), "the test's own persisted directory is missing"
          check_persisted_dirs()

      with subtest("SSH host keys live in persistent storage"):
          for k in host_keys:
              assert k.startswith(persist + "/"), f"host key {k} is not under {persist}"
              machine.succeed(f"test -s {k}")

      first_id, first_keys, first_served = identity()
      machine.succeed(
          "echo ephemeral > /root/paranoid-ephemeral",
          "echo ephemeral > /etc/paranoid-ephemeral",
          "mkdir -p /var/cache/paranoid && echo ephemeral > /var/cache/paranoid/ephemeral",
          "echo persistent > /var/lib/paranoid-persistent",
          "echo persistent > /etc/paranoid-probe/persistent",
          "sync",
      )

      machine.reboot()
      machine.wait_for_unit("multi-user.target")
      machine.wait_for_unit("sshd.service")

      with subtest("after the reboot: what was written outside persistence is gone"):
          for f in ["/root/paranoid-ephemeral", "/etc/paranoid-ephemeral", "/var/cache/paranoid/ephemeral"]:
              machine.fail(f"test -e {f}")
          # The control: the same kind of write, into persisted directories, survived.
          expect_in("persistent", machine.succeed("cat /var/lib/paranoid-persistent"), "/var/lib survived")
          expect_in("persistent", machine.succeed("cat /etc/paranoid-probe/persistent"), "/etc/paranoid-probe survived")

      with subtest("after the reboot: root, persisted directories and identity are unchanged"):
          check_root()
          check_persisted_dirs()
          second_id, second_keys, second_served = identity()
          assert second_id == first_id, f"machine id changed across reboot: {first_id} -> {second_id}"
          assert second_keys == first_keys, f"host key fingerprints changed: {first_keys} -> {second_keys}"
          assert second_served == first_served, "sshd serves a different host key after the reboot"
    '';
}
