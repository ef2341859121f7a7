# managed: a host that goes from a blank disk to production without anyone logging in by hand.
# Installed by nixos-anywhere or paranoid's installer image onto the amnesiac disk layout
# (./disk.nix: / a tmpfs, /nix on disk), then changed only by pushes from a central deployer
# (paranoid.management): root logs in with the deployer's key (profile "maximum" removes sudo),
# and the host has no nixos-rebuild, no channels and no /etc/nixos. Profile "maximum" over
# WireGuard otherwise, as bastion. ./hardware.nix carries what only a real machine needs; a
# real system also imports disko's NixOS module (flake.nix does), which turns ./disk.nix into
# fileSystems.
{ ... }:
{
  imports = [ ./disk.nix ];

  networking.hostName = "managed";
  system.stateVersion = "26.05";

  paranoid = {
    enable = true;
    profile = "maximum";
    vpn.interface = "wg0";
    amnesia.enable = true;
    management = {
      enable = true;
      user = "root";
      keys = [ "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleDeployerKeyReplaceMe00000000000000 deployer@central" ];
    };
  };

  networking.wireguard.interfaces.wg0 = {
    ips = [ "10.100.0.3/24" ];
    listenPort = 51820;
    # Generated on first boot into persisted /var/lib (or placed there by
    # `nixos-anywhere --extra-files`, under nix/persist/var/lib/wireguard/); the deployer's
    # peer must learn its public key before SSH over wg0 works.
    privateKeyFile = "/var/lib/wireguard/private.key";
    generatePrivateKeyFile = true;
    peers = [
      {
        publicKey = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";
        allowedIPs = [ "10.100.0.1/32" ];
        endpoint = "vpn.example.com:51820";
        persistentKeepalive = 25;
      }
    ];
  };
  # WireGuard itself must be reachable from outside; it is the only port opened.
  networking.firewall.allowedUDPPorts = [ 51820 ];
}
