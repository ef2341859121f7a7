# meeka's machine-specific part: boot loader and kernel modules. Needs full nixpkgs.
{ modulesPath, ... }:
{
  imports = [ (modulesPath + "/profiles/qemu-guest.nix") ];
  boot.loader.grub.enable = true;
  boot.loader.grub.device = "/dev/vda";
  boot.initrd.availableKernelModules = [ "virtio_pci" "virtio_blk" "ahci" "sd_mod" ];
  nixpkgs.hostPlatform = "x86_64-linux";
}
