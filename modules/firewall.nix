# Firewall: NixOS's stateful input filter, on, with the nftables backend; paranoid opens nothing.
{ config, lib, ... }:
let
  inherit (lib) mkOption types mkIf mkDefault;
  h = import ../lib/module-helpers.nix { inherit lib; };
  cfg = config.paranoid.firewall;
in
{
  options.paranoid.firewall = {
    enable = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Keep the NixOS firewall on (input policy drop, nothing opened by paranoid) and use its
        nftables backend (`networking.nftables.enable`), which the binary-cache egress block
        builds on. Breaks: anything listening that is not in `networking.firewall.allowedTCPPorts`
        (or opened by its module) becomes unreachable; iptables-only tooling
        (`networking.firewall.extraCommands`) must move to `extraInputRules`.
      '';
    };
    logRefused = mkOption {
      type = types.bool;
      default = false;
      description = "Log refused incoming connections to the kernel log (`networking.firewall.logRefusedConnections`). Costs log volume on an internet-facing host.";
    };
  };

  config = mkIf cfg.enable {
    networking.firewall.enable = mkDefault true;
    networking.nftables.enable = mkDefault true;
    networking.firewall.logRefusedConnections = mkDefault cfg.logRefused;

    assertions = [
      {
        assertion = config.networking.firewall.enable;
        message = h.guard "firewall-off" ''
          paranoid.firewall.enable = true, but networking.firewall.enable = false is set elsewhere in
          this configuration, so every listening port is reachable.
          Fix: remove networking.firewall.enable = false, or set paranoid.firewall.enable = false.'';
      }
    ];
  };
}
