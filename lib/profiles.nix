# Profiles are nothing but knob defaults. They are applied at `priority`, between lib.mkDefault
# (1000) and a plain definition (100): a profile beats upstream defaults and other mkDefaults,
# and any ordinary definition of the same knob in the user's configuration wins over it.
#
# amnesia, logs.remote, nix.blockBinaryCache and antivirus are never implied: they need facts
# only the host knows (a disk layout, a log server, a deploy path), and switching amnesia on by
# surprise would erase / at the next boot.
let
  baseline = {
    "firewall.enable" = true;
    "ssh.enable" = true;
    "sudo.mode" = "wheel-only";
    "nix.enable" = true;
    "nix.allowedUsers" = "wheel";
  };
  paranoid = baseline // {
    "vpn.sshOnlyOverVpn" = true;
    "audit.enable" = true;
    "audit.alertForeignExec.enable" = true;
    "nix.disableChannels" = true;
    "users.immutable" = true;
  };
  maximum = paranoid // {
    "noexec.enable" = true;
    "sudo.mode" = "removed";
    "packages.stripDefaults" = true;
    "ssh.allowSFTP" = false;
    "nix.allowedUsers" = "root";
    "audit.immutable" = true;
  };
in
{
  priority = 900;
  default = "paranoid";
  profiles = { inherit baseline paranoid maximum; };
  neverImplied = [ "amnesia.enable" "logs.remote.enable" "nix.blockBinaryCache" "antivirus.mode" "vpn.tailscale.enable" ];
}
