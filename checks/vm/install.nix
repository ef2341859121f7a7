# vm-install: from a blank disk to a managed paranoid host, through the installer. The
# `installer` node boots the installer (installer/module.nix, as on the image) with a blank
# virtual disk as /dev/vda; its service runs the interlock (blank: go), partitions the disk from
# the amnesiac layout with disko, installs the target system's closure and powers off. The same
# disk then boots as `target` from its own boot loader (upstream's installer tests do the same).
# Proves, over SSH as the deploy account with the deployer's key:
#   - the deploy path works (key login, sudo without a password) and another key is refused;
#   - amnesia: / is a tmpfs, /nix the disk's nix partition, and across a reboot only persisted
#     paths, the host key and the machine id survive;
#   - noexec: every mount but the store's is noexec, and the deploy account can execute nothing
#     it can write;
#   - management: no nixos-rebuild, no nix-channel, no /etc/nixos;
#   - the interlock: booted again, the installer refuses the now installed disk, and the target
#     still boots with its data.
{ common, pkgs, lib }:
let
  p = common.postures;
  installed = common.installable [ p.install.target.posture ];
  cfg = installed.config;
  deployKey = pkgs.writeText "deploy-key" common.keys.private;
  disk = lib.head (lib.catAttrs "device" (lib.attrValues cfg.disko.devices.disk));
  storeMounts = [ "/nix" "/nix/store" ];
  # Mount points the target must show noexec: its declared filesystems but the store's, and
  # every persisted directory (bound from the noexec persist path).
  hardened =
    let
      fileSystems = lib.filter (fs: fs.enable) (lib.attrValues cfg.fileSystems);
      persistence = cfg.environment.persistence.${cfg.paranoid.amnesia.persistPath};
    in
    lib.unique (map (fs: fs.mountPoint) (lib.filter (fs: !(lib.elem fs.mountPoint storeMounts)) fileSystems)
      ++ map (d: d.dirPath) persistence.directories);
  # Both nodes share one disk image: the installer writes it, the target boots it.
  sharedDisk = {
    virtualisation.diskImage = "./target.qcow2";
    virtualisation.diskSize = 4096;
    virtualisation.memorySize = 2048;
  };
in
common.mkTest { name = "install"; } {
  nodes.installer = {
    imports = [ ../../installer/module.nix sharedDisk ];
    paranoid.installer.system = installed;
    # The installer's own root is a small second disk, formatted at boot, so the target disk is
    # /dev/vda both while installing and when it boots.
    virtualisation.emptyDiskImages = [ 512 ];
    virtualisation.rootDevice = "/dev/vdb";
    virtualisation.fileSystems."/".autoFormat = true;
  };

  nodes.target = {
    imports = [ sharedDisk ];
    # Boot the disk's own boot loader and system; this node's configuration only starts QEMU.
    virtualisation.useBootLoader = true;
    virtualisation.useDefaultFilesystems = false;
    virtualisation.fileSystems."/" = { device = "/dev/disk/by-label/never-used"; fsType = "ext4"; };
  };

  testScript = common.prelude + ''
    import json

    disk = "${disk}"
    user = "${cfg.paranoid.management.user}"
    persist = "${cfg.paranoid.amnesia.persistPath}"
    root_size = "${cfg.paranoid.amnesia.rootSize}"
    hardened = json.loads(${builtins.toJSON (builtins.toJSON hardened)})
    ssh_opts = "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o IdentitiesOnly=yes"


    def as_deployer(command, key="/run/deploy-key"):
        """A command run over SSH on the target as the deploy account, as the deployer would."""
        return f"ssh {ssh_opts} -i {key} {user}@127.0.0.1 {sh(command)}"


    def boot_target():
        target.start(allow_reboot=True)
        target.wait_for_unit("multi-user.target")
        target.wait_for_unit("sshd.service")
        target.copy_from_host_via_shell("${deployKey}", "/run/deploy-key")
        target.succeed("chmod 600 /run/deploy-key")


    with subtest("the installer finds a blank disk, partitions it, installs and powers off"):
        installer.start()
        installer.wait_for_console_text(f"interlock: {disk} is blank")
        installer.wait_for_console_text("paranoid-install: done", timeout=1800)
        installer.wait_for_shutdown()

    # The target is the same disk, booted from its own boot loader.
    target.state_dir = installer.state_dir
    boot_target()

    with subtest("the deploy account logs in with its key and becomes root without a password"):
        expect_in("0", target.succeed(as_deployer("sudo -n id -u")).strip(), "sudo -n id -u")
        target.succeed("ssh-keygen -q -t ed25519 -N ''' -f /run/other-key")
        failing(target, as_deployer("true", key="/run/other-key"), "a key the configuration does not list")

    with subtest("/ is a tmpfs of the configured size, /nix the installed disk"):
        assert target.succeed("findmnt -no FSTYPE /").strip() == "tmpfs", "/ is not a tmpfs"
        expect_in(f"size={int(root_size[:-1]) * 1024}k", target.succeed("findmnt -no OPTIONS /"), "tmpfs size")
        nix_source = target.succeed("readlink -f $(findmnt -no SOURCE /nix)").strip()
        nix_part = target.succeed("readlink -f /dev/disk/by-partlabel/disk-main-nix").strip()
        assert nix_source == nix_part, f"/nix is {nix_source}, expected the layout's nix partition {nix_part}"
        assert nix_part.startswith(disk), f"the nix partition {nix_part} is not on {disk}"
        target.succeed(f"test -s {persist}/etc/ssh/ssh_host_ed25519_key")

    with subtest("noexec: every non-store mount is noexec, and the deployer can execute nothing it can write"):
        for mount in hardened:
            options = target.succeed(f"findmnt -no OPTIONS {sh(mount)}").strip().split(",")
            assert "noexec" in options, f"{mount} is mounted {options}"
        expect_not_in("noexec", target.succeed("findmnt -no OPTIONS /nix"), "the store's filesystem")
        target.succeed(as_deployer("$(readlink -f $(command -v true))"))
        for d in ["/tmp", "/var/tmp", "/dev/shm", f"/home/{user}"]:
            out = failing(
                target,
                as_deployer(f"cp $(readlink -f $(command -v true)) {d}/probe && chmod 700 {d}/probe && {d}/probe"),
                f"an ELF copied to {d}",
            )
            expect_in("Permission denied", out, f"running a copy in {d}")
        for d in ["/var/lib", "/var/log"]:
            out = failing(target, f"cp $(readlink -f $(command -v true)) {d}/probe && {d}/probe", f"an ELF copied to {d}")
            expect_in("Permission denied", out, f"running a copy in {d}")
            target.succeed(f"rm -f {d}/probe")

    with subtest("managed only from outside: no nixos-rebuild, no channels, no /etc/nixos"):
        for tool in ["nixos-rebuild", "nix-channel", "nixos-generate-config"]:
            target.fail(f"command -v {tool}")
        target.fail("test -e /etc/nixos")

    with subtest("amnesia across a reboot: only persisted state, the host key and the machine id survive"):
        machine_id = target.succeed("cat /etc/machine-id").strip()
        host_key = target.succeed("ssh-keyscan -t ed25519 127.0.0.1 2>/dev/null").split()[-1]
        target.succeed(
            "echo persistent > /var/lib/paranoid-persistent",
            "echo ephemeral > /etc/paranoid-ephemeral",
            "echo ephemeral > /root/paranoid-ephemeral",
            "sync",
        )
        target.reboot()
        target.wait_for_unit("multi-user.target")
        target.wait_for_unit("sshd.service")
        target.fail("test -e /etc/paranoid-ephemeral")
        target.fail("test -e /root/paranoid-ephemeral")
        expect_in("persistent", target.succeed("cat /var/lib/paranoid-persistent"), "/var/lib survived")
        assert target.succeed("cat /etc/machine-id").strip() == machine_id, "the machine id changed"
        assert target.succeed("ssh-keyscan -t ed25519 127.0.0.1 2>/dev/null").split()[-1] == host_key, "the host key changed"
        target.shutdown()

    with subtest("booted again, the installer refuses the installed disk and writes nothing"):
        installer.start()
        installer.wait_for_console_text(f"interlock: refusing {disk}: it is not blank")
        installer.wait_until_succeeds("systemctl is-failed paranoid-install.service")
        installer.shutdown()
        boot_target()
        expect_in("persistent", target.succeed("cat /var/lib/paranoid-persistent"), "data on the refused disk")
        expect_in("0", target.succeed(as_deployer("sudo -n id -u")).strip(), "the deploy path after the refusal")
        target.shutdown()
  '';
}
