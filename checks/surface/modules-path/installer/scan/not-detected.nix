# Upstream nixos/modules/installer/scan/not-detected.nix: firmware for devices
# nixos-generate-config does not recognise.
{ lib, ... }:
{
  hardware.enableRedistributableFirmware = lib.mkDefault true;
}
