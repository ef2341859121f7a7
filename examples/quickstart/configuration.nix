# Stands in for the host's own configuration.nix in the quick start (README.md): yours, as
# nixos-generate-config wrote it, has the boot loader and hardware-configuration.nix too. Only
# what the offline checks read is here; the harness's tests evaluate it with ./paranoid.nix,
# exactly as ./flake.nix lists them.
{
  networking.hostName = "myhost";
  system.stateVersion = "26.05";
  fileSystems."/" = { device = "/dev/disk/by-label/nixos"; fsType = "ext4"; };
  fileSystems."/boot" = { device = "/dev/disk/by-label/boot"; fsType = "vfat"; options = [ "umask=0077" ]; };
}
