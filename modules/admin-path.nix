# Never lock the admin out: refuse a configuration in which no path leads from the network to
# root (lib/posture/admin-path.nix reads sshd, the firewall, sudo/sudo-rs/doas and the accounts
# as the daemons will after the next reboot).
{ config, lib, ... }:
let
  inherit (lib) mkOption types mkIf;
  h = import ../lib/module-helpers.nix { inherit lib; };
  posture = import ../lib/posture { inherit lib; render = import ../lib/render.nix { inherit lib; }; };
  cfg = config.paranoid.adminPath;
  p = config.paranoid;

  # Only knobs that change who can get in make this module judge; importing changes nothing.
  active = (p.ssh.enable or false) || (p.sudo.mode or "upstream") != "upstream" || (p.users.immutable or false)
    || (p.vpn.sshOnlyOverVpn or false) || (p.amnesia.enable or false);
  analysis = (posture.of { inherit config; }).adminPath;
  broken = lib.filter (b: b.links != [ ]) analysis.broken;
in
{
  options.paranoid.adminPath.guard = mkOption {
    type = types.bool;
    default = true;
    description = ''
      Refuse to build a configuration in which nobody can reach root from the network after the
      next reboot: every path (root with a key; or an account with a key, then sudo, sudo-rs or
      doas with no password or with a password that survives the reboot) is checked link by link
      against what sshd, the firewall and the escalation tools will really do (Match blocks,
      AllowUsers/DenyUsers/AllowGroups/DenyGroups, PermitRootLogin, keys sshd reads, VPN-only
      SSH, locked or unpersisted password hashes). Set to false only for a host administered
      from its console or out-of-band.
    '';
  };

  config = mkIf (cfg.guard && active) {
    assertions = [
      {
        assertion = analysis.ok;
        message = h.guard "admin-path" ''
          no path leads ${if analysis.vpnOnly then "over the VPN" else "from the network"} to root after the next reboot, so nobody could administer this host:
          ${lib.concatMapStringsSep "\n" (b: "  - ${b.account}: ${lib.concatStringsSep "; " b.links}") broken}
          Fix: mend one link of one path: give root a key (users.users.root.openssh.authorizedKeys.keys) that sshd
          accepts (PermitRootLogin prohibit-password, paranoid.ssh.permitRootLogin; AllowUsers naming root), or give a
          wheel member a key and a password that survives a reboot (hashedPassword, or hashedPasswordFile on persistent
          storage) with sudo for wheel (paranoid.sudo.mode = "wheel-only"). Or set paranoid.adminPath.guard = false if
          this host is administered from its console.'';
      }
    ];
  };
}
