# paranoid.enable and paranoid.profile: switch on a whole profile's knobs at preset priority.
{ config, lib, ... }:
let
  inherit (lib) mkOption types mkIf;
  cfg = config.paranoid;
  data = import ../lib/profiles.nix;
  chosen = data.profiles.${cfg.profile};
  # Every knob any profile sets gets a definition whose *presence* is static (so the module
  # system can enumerate it without evaluating the chosen profile) and whose value is decided
  # lazily: no definition at all when the chosen profile leaves the knob alone.
  allKnobs = lib.unique (lib.concatMap lib.attrNames (lib.attrValues data.profiles));
  preset = name: lib.setAttrByPath ([ "paranoid" ] ++ lib.splitString "." name)
    (mkIf (cfg.enable && chosen ? ${name}) (lib.mkOverride data.priority chosen.${name}));
in
{
  options.paranoid = {
    enable = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Turn on every knob of {option}`paranoid.profile`. The profile only sets defaults (at
        priority ${toString data.priority}): any knob you set yourself wins, so a single
        `paranoid.ssh.allowSFTP = true;` opts out of one thing without leaving the profile.
        Importing paranoid's modules without enabling anything changes nothing.
      '';
    };
    profile = mkOption {
      type = types.enum (lib.attrNames data.profiles);
      default = data.default;
      example = "maximum";
      description = ''
        How far to go.
        - `baseline`: firewall, hardened sshd, sudo for wheel only (with password), Nix daemon for @wheel.
        - `paranoid`: baseline + SSH only over the VPN, execve auditing, no channels, immutable users.
          Needs a VPN: set {option}`paranoid.vpn.tailscale.enable` or name a WireGuard interface.
        - `maximum`: paranoid + noexec everywhere but the store, sudo removed (root over SSH with a key),
          default packages stripped, no SFTP, Nix for root only, audit rules locked until reboot.
        amnesia, remote logs, the binary cache block and the antivirus are never implied.
      '';
    };
  };

  config = lib.mkMerge (map preset allKnobs);
}
