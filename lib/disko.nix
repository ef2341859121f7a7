# Disk layouts as data: disko configurations (`{ disko.devices = …; }`) for paranoid's two
# storage postures, importable next to disko's NixOS module (which turns them into fileSystems,
# swapDevices and the GRUB device) and readable by disko's CLI, nixos-anywhere and the installer.
#
#   amnesiac: boot partition, optional swap, /nix on ext4 holding paranoid.amnesia.persistPath
#             (/nix/persist), and / a tmpfs. For paranoid.amnesia (and noexec, which then covers
#             everything but the store).
#   classic:  boot partition, optional swap, / on ext4 and /nix on ext4 of its own, so
#             paranoid.noexec can put noexec on / while the store stays executable.
#
# Both keep the persistent state on /nix. disko never sets `neededForBoot`, and it need not here:
# /nix is one of NixOS's pathsNeededForBoot, so it is mounted in the initrd whatever the option
# says (what amnesia-persist-not-at-boot checks), and /nix/persist is no mount of its own, so
# impermanence's "persistent storage is neededForBoot" check has no entry to object to. A layout
# that puts persistent state on a partition of its own (say /persist) must set
# `fileSystems."/persist".neededForBoot = true` itself.
#
# `disko` (the source tree of the disko flake input) is only needed for `nixosConfig`; the
# layouts themselves are plain data.
{ lib, disko ? null }:
let
  needDisko = what: if disko == null then throw "paranoid.lib.disko.${what} needs disko's source (the flake input `disko`)" else disko;

  # UEFI: an ESP at /boot. BIOS: GRUB's 1 MiB BIOS boot partition (disko then sets
  # boot.loader.grub.devices) and /boot on ext4, which must persist whatever / is.
  bootPartitions = { firmware, bootSize }:
    if firmware == "uefi" then {
      ESP = {
        size = bootSize;
        type = "EF00";
        content = {
          type = "filesystem";
          format = "vfat";
          mountpoint = "/boot";
          # Kernels and the random seed: readable by root only.
          mountOptions = [ "umask=0077" ];
        };
      };
    } else if firmware == "bios" then {
      bios = { size = "1M"; type = "EF02"; };
      boot = {
        size = bootSize;
        content = { type = "filesystem"; format = "ext4"; mountpoint = "/boot"; };
      };
    } else throw ''paranoid.lib.disko: firmware = "${toString firmware}"; expected "uefi" or "bios".'';

  swapPartition = swapSize:
    lib.optionalAttrs (swapSize != null) {
      swap = {
        size = swapSize;
        # A fresh key at every boot: nothing in swap survives a reboot, as on an amnesiac /.
        content = { type = "swap"; randomEncryption = true; };
      };
    };

  # /nix last, with the rest of the disk (disko orders "100%" partitions last).
  nixPartition = {
    nix = {
      size = "100%";
      content = { type = "filesystem"; format = "ext4"; mountpoint = "/nix"; };
    };
  };

  disk = device: partitions: {
    type = "disk";
    inherit device;
    content = { type = "gpt"; inherit partitions; };
  };

  checkDevice = device:
    if lib.isString device && lib.hasPrefix "/dev/" device then device
    else throw ''paranoid.lib.disko: device = ${builtins.toJSON device}; expected a block device path such as "/dev/vda" or "/dev/disk/by-id/…".'';

  # Bad arguments fail when the layout is imported, not deep inside disko later.
  layout = { device, firmware, bootSize, swapSize }: partitions:
    builtins.seq (checkDevice device) (builtins.seq (bootPartitions { inherit firmware bootSize; }) {
      disk.main = disk device (bootPartitions { inherit firmware bootSize; } // swapPartition swapSize // partitions);
    });
in
{
  amnesiac =
    { device, bootSize ? "512M", swapSize ? null, rootSize ? "2G", firmware ? "uefi" }:
    {
      disko.devices = layout { inherit device firmware bootSize swapSize; } nixPartition // {
        # The same tmpfs paranoid.amnesia declares (keep rootSize equal to paranoid.amnesia.rootSize;
        # both end up in the mount options and the last size= wins). disko mounts it at /mnt
        # while installing, so /mnt/nix and /mnt/boot have a root to live on.
        nodev."/" = {
          fsType = "tmpfs";
          mountOptions = [ "defaults" "size=${rootSize}" "mode=755" ];
        };
      };
    };

  classic =
    { device, bootSize ? "512M", swapSize ? null, rootSize ? "8G", firmware ? "uefi" }:
    {
      disko.devices = layout { inherit device firmware bootSize swapSize; } ({
        root = {
          size = rootSize;
          content = { type = "filesystem"; format = "ext4"; mountpoint = "/"; };
        };
      } // nixPartition);
    };

  # disko's own pure conversion (its default.nix `config`, the `_config` of its device tree):
  # the NixOS definitions (fileSystems, swapDevices, boot.loader.grub.devices, …) disko's
  # module makes from a layout. Needs only nixpkgs' lib.
  nixosConfig = diskoConfig: (import (needDisko "nixosConfig") { inherit lib; }).config diskoConfig;
}
