# sudo: for wheel only and with a password, or gone (root over SSH with a key administers).
{ config, lib, ... }:
let
  inherit (lib) mkOption types mkIf mkDefault mkMerge;
  h = import ../lib/module-helpers.nix { inherit lib; };
  cfg = config.paranoid.sudo;
  enabledTools = lib.filter (t: config.security.${t}.enable or false) [ "sudo" "sudo-rs" "doas" ];
in
{
  options.paranoid.sudo.mode = mkOption {
    type = types.enum [ "upstream" "wheel-only" "removed" ];
    default = "upstream";
    description = ''
      - `upstream`: leave sudo as NixOS configures it.
      - `wheel-only`: only members of wheel can even execute sudo (`execWheelOnly`, a setuid
        wrapper with mode 4510), and they must type their password (`wheelNeedsPassword`).
        Shrinks the attack surface of sudo's own bugs (CVE-2021-3156) to wheel.
      - `removed`: no sudo, sudo-rs nor doas at all; root logs in over SSH with a key. Breaks:
        every workflow that escalates with sudo; needs a root key and PermitRootLogin
        prohibit-password (paranoid's `admin-path` guard refuses a host nobody could reach).
    '';
  };

  config = mkMerge [
    (mkIf (cfg.mode == "wheel-only") {
      security.sudo.execWheelOnly = mkDefault true;
      security.sudo.wheelNeedsPassword = mkDefault true;
      security.sudo-rs.execWheelOnly = mkDefault true;
      security.sudo-rs.wheelNeedsPassword = mkDefault true;
    })
    (mkIf (cfg.mode == "removed") {
      security.sudo.enable = mkDefault false;
      security.sudo-rs.enable = mkDefault false;
      security.doas.enable = mkDefault false;
      assertions = [
        {
          assertion = enabledTools == [ ];
          message = h.guard "sudo-still-enabled" ''
            paranoid.sudo.mode = "removed", but ${lib.concatMapStringsSep " and " (t: "security.${t}.enable") enabledTools} = true is set elsewhere.
            Fix: remove that setting, or use paranoid.sudo.mode = "wheel-only".'';
        }
      ];
    })
  ];
}
