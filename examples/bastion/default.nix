# bastion: profile "maximum" on an ordinary disk install (no reinstall needed): SSH only over
# WireGuard, no sudo (root logs in with a key), nothing executable outside /nix/store, no
# SFTP, Nix for root only, audit rules locked until reboot, default packages stripped.
# This file is the paranoid part; ./hardware.nix carries what only a real machine needs.
{ lib, pkgs, ... }:
{
  networking.hostName = "bastion";
  system.stateVersion = "26.05";

  paranoid = {
    enable = true;
    profile = "maximum";
    vpn.interface = "wg0";
    ssh.allowUsers = [ "root" ];
  };

  networking.wireguard.interfaces.wg0 = {
    ips = [ "10.100.0.2/24" ];
    listenPort = 51820;
    privateKeyFile = "/var/lib/wireguard/private.key";
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

  # The one service besides sshd: a health page for the monitoring host, on the VPN only
  # (wg0 is trusted; nothing opens 8080 publicly), run as its own sandboxed user.
  systemd.services.healthz = {
    description = "bastion health page";
    wantedBy = [ "multi-user.target" ];
    # It binds the WireGuard address, which exists once wg0 is up.
    wants = [ "wireguard-wg0.service" ];
    after = [ "wireguard-wg0.service" ];
    serviceConfig.ExecStart = "${pkgs.darkhttpd}/bin/darkhttpd /etc/healthz --addr 10.100.0.2 --port 8080 --no-listing";
  };
  environment.etc."healthz/index.html".text = "ok\n";
  paranoid.services.healthz.sandbox = "strict";

  # /nix on its own filesystem keeps the store executable while / gets noexec.
  fileSystems."/" = { device = "/dev/disk/by-label/root"; fsType = "ext4"; };
  fileSystems."/nix" = { device = "/dev/disk/by-label/nix"; fsType = "ext4"; };
  fileSystems."/boot" = { device = "/dev/disk/by-label/ESP"; fsType = "vfat"; options = [ "umask=0077" ]; };

  users.users.root.openssh.authorizedKeys.keys = [
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleDeployerKeyReplaceMe00000000000000 deployer@central"
  ];
}
