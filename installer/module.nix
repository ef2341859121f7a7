# The unattended installer: a live system that, at boot, partitions the target disk from the
# chosen host's disko layout, installs that host's system closure (carried on the image, nothing
# is downloaded) and powers off. No password anywhere: root's account is locked, and sshd runs
# only when `sshKeys` are given, keys only. The interlock (./interlock.sh) refuses a disk that
# is not blank unless the kernel command line names it: paranoid.install.wipe=<device>.
#
# Used by nixosConfigurations.installer (with ./iso.nix, the bootable image) and by the vm-install
# test (booted as a test VM). Needs paranoid's ssh module (nixosModules.ssh or all) alongside.
{ config, lib, pkgs, ... }:
let
  inherit (lib) mkOption types mkIf mkDefault;
  cfg = config.paranoid.installer;
  target = cfg.system.config;
  # (A target without disko's module has no disko option at all: the guard below says so.)
  disks = lib.catAttrs "device" (lib.attrValues (target.disko.devices.disk or { }));
  toplevel = target.system.build.toplevel;
  partition = "${target.system.build.destroyFormatMount}/bin/disko-destroy-format-mount";
  interlock = ./interlock.sh;
  h = import ../lib/module-helpers.nix { inherit lib; };
  targetFailed = map (a: a.message) (lib.filter (a: !a.assertion) target.assertions);
in
{
  options.paranoid.installer = {
    system = mkOption {
      type = types.raw;
      example = lib.literalExpression "self.nixosConfigurations.managed";
      description = ''
        The NixOS system to install (a `nixosSystem` result) whose configuration imports disko's
        module and a layout (e.g. paranoid.lib.disko.amnesiac). Its closure and its disko
        script are carried on the image.
      '';
    };
    sshKeys = mkOption {
      type = types.listOf types.str;
      default = [ ];
      description = "Keys that may log in as root to the live installer (to watch an install). Empty: no sshd at all.";
    };
    powerOff = mkOption {
      type = types.bool;
      default = true;
      description = "Power off after a successful install (the machine then boots the installed system once the medium is removed).";
    };
  };

  config = {
    # No bootstrap password: locked root, declarative users only.
    users.mutableUsers = false;
    users.users.root.hashedPassword = "!";
    users.users.root.openssh.authorizedKeys.keys = cfg.sshKeys;
    # Unattended: nobody needs to log in for the install to run.
    users.allowNoPasswordLogin = mkIf (cfg.sshKeys == [ ]) true;

    paranoid.ssh.enable = cfg.sshKeys != [ ];
    services.openssh.enable = mkIf (cfg.sshKeys == [ ]) false;

    networking.hostName = mkDefault "paranoid-installer";

    assertions = [
      {
        assertion = disks != [ ];
        message = h.guard "installer-no-layout" ''
          paranoid.installer.system (${target.networking.hostName}) declares no disk in disko.devices.disk, so there is nothing to partition.
          Fix: import disko's NixOS module and a layout into that system, e.g. (paranoid.lib.disko.amnesiac { device = "/dev/sda"; }).'';
      }
      {
        # The image carries the target's closure; a target NixOS would refuse is no install.
        assertion = targetFailed == [ ];
        message = h.guard "installer-target-refused" ''
          paranoid.installer.system (${target.networking.hostName}) fails its own assertions:
          ${lib.concatStringsSep "\n" targetFailed}
          Fix: make that configuration evaluate on its own (nix build .#nixosConfigurations.<host>.config.system.build.toplevel).'';
      }
    ];

    systemd.services.paranoid-install = {
      description = "Install ${target.networking.hostName} onto ${lib.concatStringsSep " " disks}";
      wantedBy = [ "multi-user.target" ];
      after = [ "systemd-udev-settle.service" "local-fs.target" ];
      path = [ pkgs.util-linux pkgs.coreutils pkgs.bash config.nix.package config.system.build.nixos-install pkgs.nixos-enter ];
      serviceConfig = {
        Type = "oneshot";
        # The progress and any refusal on the console, where the person who booted it looks.
        StandardOutput = "journal+console";
        StandardError = "journal+console";
      };
      script = ''
        set -euo pipefail
        udevadm settle
        echo "paranoid-install: installing ${target.networking.hostName} (${toplevel}) onto ${lib.concatStringsSep " " disks}"
        # Refuses (and stops here, with nothing written) unless every disk is blank or named
        # with paranoid.install.wipe=<device> on the kernel command line.
        bash ${interlock} --cmdline /proc/cmdline ${lib.escapeShellArgs disks}
        # disko: wipe, partition, format and mount under /mnt (its own prompt is the interlock's job).
        ${partition} --yes-wipe-all-disks
        # The closure comes from this image's store; no channel, no root password (keys only).
        nixos-install --root /mnt --system ${toplevel} --no-root-passwd --no-channel-copy
        umount -R /mnt
        sync
        echo "paranoid-install: done"
        ${lib.optionalString cfg.powerOff "systemctl --no-block poweroff"}
      '';
    };
  };
}
