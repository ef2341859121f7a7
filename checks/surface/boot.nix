# boot.resumeDevice (system/boot/stage-1.nix; disko sets it for a swap partition marked for
# hibernation). A declaration only: the initrd's resume script is not part of the surface.
{ lib, ... }:
{
  options.boot.resumeDevice = lib.mkOption {
    type = lib.types.str;
    default = "";
    example = "/dev/sda3";
    description = "Device for manual resume attempt during boot (hibernation).";
  };

  config.surface.provenance = [
    { options = [ "boot.resumeDevice" ]; upstream = "nixos/modules/system/boot/stage-1.nix"; repo = "Swarsel/nixpkgs"; commit = "4aa6836a648ca76c68866decf0c8965e36ec2a3b"; surface = "boot.nix"; reread = false; notes = "Declaration only (disko sets it)."; }
  ];
}
