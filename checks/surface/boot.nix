# Boot loader and early boot options that disk layouts set: boot.loader.grub.devices
# (system/boot/loader/grub/grub.nix; disko sets it for a BIOS boot partition) and
# boot.resumeDevice (system/boot/stage-1.nix; disko sets it for a swap partition marked for
# hibernation). Declarations only: the boot loader itself is not part of the surface.
{ lib, ... }:
let
  inherit (lib) mkOption types;
in
{
  options.boot = {
    loader.grub.devices = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "/dev/disk/by-id/wwn-0x500001234567890a" ];
      description = "The devices on which the boot loader, GRUB, will be installed.";
    };
    resumeDevice = mkOption {
      type = types.str;
      default = "";
      example = "/dev/sda3";
      description = "Device for manual resume attempt during boot (hibernation).";
    };
  };
}
