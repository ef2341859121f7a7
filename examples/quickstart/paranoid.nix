# paranoid on a host that uses Tailscale, and what its guard rails ask of every host.
{
  paranoid.enable = true; # profile "paranoid" (see Profiles)
  paranoid.vpn.tailscale.enable = true; # SSH is then reachable over tailscale0 only

  # The profile makes accounts exactly what this file says (users.mutableUsers = false) and
  # SSH keys the only way in, so an admin needs a key, and a password hash for sudo.
  users.users.admin = {
    isNormalUser = true;
    extraGroups = [ "wheel" ];
    openssh.authorizedKeys.keys = [ "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIReplaceWithYourOwnPublicKey000000000000000 admin@laptop" ];
    hashedPasswordFile = "/etc/nixos/secrets/admin.hash"; # mkpasswd -m yescrypt > it; never in the store
  };
}
