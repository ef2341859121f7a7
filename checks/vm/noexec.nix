# vm-noexec: paranoid.noexec on bastion's layout (/ on disk, /nix a filesystem of its own) and
# on meeka's (/ a tmpfs from paranoid.amnesia, persisted directories bound from /nix/persist).
#
# The mounts are paranoid's own: checks/vm/lib.nix switches off qemu-vm's fileSystems override
# (which would otherwise replace them) and adds only the VM's 9p shares. Proves behaviour:
#   - every filesystem paranoid hardens, /dev/shm and every persisted directory is mounted
#     noexec,nosuid,nodev, and a copied ELF fails there with "Permission denied";
#   - store binaries still run;
#   - an ordinary user, logged in over SSH as an intruder would be, can execute nothing they
#     can write anywhere on the system (a sweep of every writable directory).
{ common, pkgs, lib }:
let
  p = common.postures;
  storeMounts = [ "/nix" "/nix/store" ];

  # What the sweep runs as the logged-in user: copy an ELF from the store into every directory
  # the user can write, and try to run it.
  sweep = pkgs.writeShellScript "paranoid-noexec-sweep" ''
    set -u
    elf=$(readlink -f "$(command -v bash)")
    echo "SESSION uid=$(id -u) runtime=''${XDG_RUNTIME_DIR:-none}"
    while read -r d; do
      f="$d/.paranoid-exec-probe-$$"
      if cp "$elf" "$f" 2>/dev/null && chmod 700 "$f" 2>/dev/null; then
        out=$("$f" -c 'echo RAN' 2>&1)
        rc=$?
        rm -f "$f"
        case "$out" in
          RAN) echo "EXECUTABLE $d" ;;
          *"Permission denied"*) echo "denied $d" ;;
          *) echo "UNEXPECTED $d rc=$rc $out" ;;
        esac
      else
        rm -f "$f" 2>/dev/null
        echo "nocopy $d"
      fi
    done < <(find / \( -path /proc -o -path /sys -o -path /nix/store \) -prune -o -type d -writable -print 2>/dev/null | sort)
  '';

  # Mount points the test expects hardened on a node, from the node's own configuration.
  hardenedOf = node:
    let
      fileSystems = lib.filter (fs: fs.enable) (lib.attrValues node.fileSystems);
      exempt = storeMounts ++ node.paranoid.noexec.exceptions;
      persistence = node.environment.persistence.${node.paranoid.amnesia.persistPath} or null;
      persisted = lib.optionals (node.paranoid.amnesia.enable && persistence != null) (map (d: d.dirPath) persistence.directories);
    in
    lib.unique (map (fs: fs.mountPoint) (lib.filter (fs: !(lib.elem fs.mountPoint exempt)) fileSystems) ++ [ "/dev/shm" ] ++ persisted);
in
common.mkTest { name = "noexec"; } {
  nodes.disk = common.node p.noexec.disk { };
  nodes.amnesic = common.node p.noexec.amnesic { };

  testScript = { nodes, ... }: common.prelude + ''
    import json

    hardened = {
        "disk": json.loads(${builtins.toJSON (builtins.toJSON (hardenedOf nodes.disk))}),
        "amnesic": json.loads(${builtins.toJSON (builtins.toJSON (hardenedOf nodes.amnesic))}),
    }
    machines = {"disk": disk, "amnesic": amnesic}

    start_all()
    for m in machines.values():
        m.wait_for_unit("multi-user.target")
        m.wait_for_unit("sshd.service")
        m.succeed("install -m 600 ${common.keys.private} /root/id_ed25519")

    for name, m in machines.items():
        with subtest(f"{name}: the mount table, for the record"):
            m.succeed("findmnt -rn -o TARGET,FSTYPE,OPTIONS >&2")

        with subtest(f"{name}: paranoid's filesystems, /dev/shm and persisted directories are noexec,nosuid,nodev"):
            assert "/" in hardened[name], f"{name}: / is not among the hardened mounts {hardened[name]}"
            for target in hardened[name]:
                options = m.succeed(f"findmnt -no OPTIONS --mountpoint {sh(target)} | tail -n 1").strip().split(",")
                for flag in ["noexec", "nosuid", "nodev"]:
                    assert flag in options, f"{name}: {target} is mounted {','.join(options)}, without {flag}"

        with subtest(f"{name}: a copied ELF fails with Permission denied on each of them"):
            for target in hardened[name]:
                probe = f"{target.rstrip('/')}/.paranoid-noexec-probe"
                m.succeed(f"cp $(readlink -f $(command -v bash)) {sh(probe)} && chmod 700 {sh(probe)}")
                out = failing(m, f"{sh(probe)} -c true", f"{name}: executing a copy in {target}")
                expect_in("Permission denied", out, f"{name}: executing a copy in {target}")
                m.succeed(f"rm -f {sh(probe)}")

        with subtest(f"{name}: store binaries still run"):
            m.succeed("$(readlink -f $(command -v bash)) -c true", "/run/current-system/sw/bin/ls / >/dev/null")

        with subtest(f"{name}: a user logged in over SSH can execute nothing they can write"):
            out = m.succeed(
                "ssh -F /dev/null -i /root/id_ed25519 -o IdentitiesOnly=yes -o BatchMode=yes "
                "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null alice@127.0.0.1 ${sweep}"
            )
            lines = out.splitlines()
            expect_in("SESSION uid=1000", out, f"{name}: sweep session")
            bad = [line for line in lines if line.startswith(("EXECUTABLE", "UNEXPECTED"))]
            assert not bad, f"{name}: alice can execute what she writes in: {bad}\nfull sweep:\n{out}"
            denied = {line.split(" ", 1)[1] for line in lines if line.startswith("denied ")}
            for must in ["/tmp", "/var/tmp", "/dev/shm", "/home/alice"]:
                assert must in denied, f"{name}: the sweep did not try {must} (denied: {sorted(denied)})"
  '';
}
