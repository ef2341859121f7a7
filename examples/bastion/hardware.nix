# bastion's machine-specific part: boot loader and kernel modules. Needs full nixpkgs.
{ modulesPath, ... }:
{
  imports = [ (modulesPath + "/profiles/qemu-guest.nix") ];
  boot.loader.systemd-boot.enable = true;
  boot.loader.efi.canTouchEfiVariables = true;
  boot.initrd.availableKernelModules = [ "virtio_pci" "virtio_blk" "xhci_pci" "sd_mod" ];
  nixpkgs.hostPlatform = "x86_64-linux";
}
