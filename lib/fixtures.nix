# Host facts the matrix evaluates every permutation against: what any real server has (disks,
# an admin with a key, a service, a log receiver) and nothing a knob should provide. `host` is
# plain NixOS; `paranoid` holds the knob parameters that need host facts (never a switch).
{ lib }:
let
  key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMatrixFixtureKeyDoNotUseAnywhere0000000 admin@deployer";
in
{
  matrix = {
    host = { pkgs, ... }: {
      networking.hostName = "matrix";
      system.stateVersion = "26.05";
      # A server whose / may become a tmpfs: defined below mkDefault, as a host prepared for
      # paranoid.amnesia would (it lets amnesia's tmpfs win when that knob is on).
      fileSystems."/" = lib.mkOverride 1200 { device = "/dev/disk/by-label/root"; fsType = "ext4"; };
      fileSystems."/nix" = { device = "/dev/disk/by-label/nix"; fsType = "ext4"; };
      fileSystems."/boot" = { device = "/dev/disk/by-label/boot"; fsType = "vfat"; options = [ "umask=0077" ]; };
      users.users.root.openssh.authorizedKeys.keys = [ key ];
      users.users.admin = {
        isNormalUser = true;
        uid = 1000;
        extraGroups = [ "wheel" ];
        # A secret manager puts it there at every boot (sops-nix's neededForUsers path).
        hashedPasswordFile = "/run/secrets-for-users/admin-password";
        openssh.authorizedKeys.keys = [ key ];
      };
      # A server is reachable somehow: sshd runs (paranoid.ssh only hardens it) and a
      # WireGuard interface stands for the VPN that paranoid.vpn can hide SSH behind.
      services.openssh.enable = true;
      networking.wireguard.interfaces.wg0 = {
        ips = [ "10.100.0.2/24" ];
        privateKeyFile = "/run/keys/wg0.key";
        peers = [ { publicKey = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="; allowedIPs = [ "10.100.0.1/32" ]; } ];
      };
      systemd.services.demo = {
        description = "A network daemon paranoid sandboxes";
        wantedBy = [ "multi-user.target" ];
        serviceConfig.ExecStart = "${pkgs.coreutils}/bin/sleep infinity";
        serviceConfig.StateDirectory = "demo";
      };
    };
    paranoid = {
      paranoid.vpn.interface = "wg0";
      paranoid.services.demo = { };
      # The deployer's key, for rows that turn paranoid.management on.
      paranoid.management.keys = [ key ];
      paranoid.logs.remote = {
        url = "https://logs.example.internal:19532";
        serverKeyFile = "/run/keys/journal-upload.key";
        serverCertificateFile = "/run/keys/journal-upload.crt";
        trustedCertificateFile = "/run/keys/journal-ca.crt";
      };
    };
  };
}
