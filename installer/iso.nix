# The installer as a bootable image (nixosConfigurations.installer, packages.<system>.installer-iso):
# a hybrid ISO for a USB stick or a virtual CD, UEFI and BIOS, with every driver NixOS ships for
# disks. Deliberately not NixOS's installation-cd profiles: those log a `nixos` user in on the
# console with an empty password; this image has no password at all (./module.nix).
{ modulesPath, lib, ... }:
{
  imports = [
    (modulesPath + "/installer/cd-dvd/iso-image.nix")
    (modulesPath + "/profiles/all-hardware.nix")
    ./module.nix
  ];

  isoImage.makeEfiBootable = true;
  isoImage.makeUsbBootable = true;
  # The install starts by itself; a short menu timeout leaves time to add
  # paranoid.install.wipe=<device> to the kernel command line.
  boot.loader.timeout = lib.mkForce 10;

  system.stateVersion = "26.05";
}
