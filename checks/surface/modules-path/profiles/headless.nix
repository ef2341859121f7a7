# Upstream nixos/modules/profiles/headless.nix: no consoles, reboot on panic.
{ lib, ... }:
{
  systemd.services = {
    "serial-getty@ttyS0".enable = lib.mkDefault false;
    "serial-getty@hvc0".enable = false;
    "getty@tty1".enable = false;
    "autovt@".enable = false;
  };
  boot.kernelParams = [ "panic=1" "boot.panic_on_fail" "vga=0x317" "nomodeset" ];
  systemd.enableEmergencyMode = false;
  boot.loader.grub.splashImage = null;
}
