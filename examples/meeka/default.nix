# meeka: the recipe's host, done today. Profile "paranoid" (firewall, hardened sshd reachable
# only over Tailscale, execve auditing, immutable users, sudo for wheel), plus amnesia: / is a
# 2 GiB tmpfs and only /etc/nixos, /srv, /var/lib, /var/log and the machine id survive a reboot.
# This file is the paranoid part; ./hardware.nix carries what only a real machine needs.
{ lib, pkgs, ... }:
{
  networking.hostName = "meeka";
  system.stateVersion = "26.05";

  paranoid = {
    enable = true;
    profile = "paranoid";
    vpn.tailscale.enable = true;
    amnesia.enable = true;
    logs.remote = {
      enable = true;
      url = "https://logs.example.com:19532";
      serverKeyFile = "/nix/persist/secrets/journal-upload.key";
      serverCertificateFile = "/nix/persist/secrets/journal-upload.crt";
      trustedCertificateFile = "/nix/persist/secrets/journal-ca.crt";
    };
  };

  # "Each service gets its own user account": the website, as a sandboxed system user.
  # Its files live in /srv, which amnesia persists; the strict preset leaves it read-only.
  systemd.services.website = {
    description = "meeka's static website";
    wantedBy = [ "multi-user.target" ];
    serviceConfig.ExecStart = "${pkgs.darkhttpd}/bin/darkhttpd /srv/www --port 8080 --no-listing";
  };
  paranoid.services.website.sandbox = "strict";

  # The recipe's layout: /boot and /nix on disk; / comes from paranoid.amnesia.
  fileSystems."/nix" = { device = "/dev/disk/by-label/nix"; fsType = "ext4"; };
  fileSystems."/boot" = { device = "/dev/disk/by-label/boot"; fsType = "ext4"; };

  users.users.root.openssh.authorizedKeys.keys = [
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleDeployerKeyReplaceMe00000000000000 deployer@central"
  ];
  users.users.cadey = {
    isNormalUser = true;
    uid = 1000;
    extraGroups = [ "wheel" ];
    # Immutable users: the password hash comes from persistent storage, never the store.
    hashedPasswordFile = "/nix/persist/secrets/cadey.hash";
    openssh.authorizedKeys.keys = [
      "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleCadeyKeyReplaceMe0000000000000000000 cadey@laptop"
    ];
  };
}
