# managed's machine-specific part: boot loader and kernel modules. Needs full nixpkgs. The
# filesystems come from ./disk.nix through disko's module.
{ modulesPath, ... }:
{
  imports = [ (modulesPath + "/profiles/qemu-guest.nix") ];
  boot.loader.systemd-boot.enable = true;
  # The installer and nixos-anywhere run on another system; the loader must not depend on
  # NVRAM entries they could not write.
  boot.loader.efi.canTouchEfiVariables = false;
  boot.initrd.availableKernelModules = [ "virtio_pci" "virtio_blk" "xhci_pci" "sd_mod" ];
  nixpkgs.hostPlatform = "x86_64-linux";
}
