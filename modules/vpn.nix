# VPN: run Tailscale (or name a WireGuard interface) and make SSH reachable over it only.
{ config, lib, ... }:
let
  inherit (lib) mkOption types mkIf mkDefault mkMerge;
  h = import ../lib/module-helpers.nix { inherit lib; };
  cfg = config.paranoid.vpn;
  fw = config.networking.firewall;
  sshPorts = config.services.openssh.ports;

  providers =
    lib.optional (config.services.tailscale.enable && config.services.tailscale.interfaceName == cfg.interface) "services.tailscale"
    ++ lib.optional (config.networking.wireguard.interfaces ? ${cfg.interface}) "networking.wireguard.interfaces.${cfg.interface}"
    ++ lib.optional (config.networking.wg-quick.interfaces ? ${cfg.interface}) "networking.wg-quick.interfaces.${cfg.interface}";
  inRanges = port: lib.any (r: r.from <= port && port <= r.to) fw.allowedTCPPortRanges;
  sshOpenEverywhere = lib.filter (p: lib.elem p fw.allowedTCPPorts || inRanges p) sshPorts;
in
{
  options.paranoid.vpn = {
    tailscale.enable = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Run Tailscale (`services.tailscale.enable`). Join the tailnet once with `tailscale up`, or
        unattended with `services.tailscale.authKeyFile`. Tailscale's ACLs then decide which
        devices may reach this host at all.
      '';
    };
    interface = mkOption {
      type = types.str;
      default = "tailscale0";
      example = "wg0";
      description = ''
        The VPN's network interface: `tailscale0` for Tailscale, or the name of an interface in
        `networking.wireguard.interfaces` / `networking.wg-quick.interfaces`.
      '';
    };
    trust = mkOption {
      type = types.enum [ "interface" "ssh" ];
      default = "interface";
      description = ''
        What arrives over the VPN is let in:
        - `interface`: everything (`networking.firewall.trustedInterfaces`, the recipe's choice);
          the VPN's own ACLs are the filter.
        - `ssh`: only the SSH ports (`networking.firewall.interfaces.<interface>.allowedTCPPorts`).
      '';
    };
    sshOnlyOverVpn = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Stop opening SSH on every interface (`services.openssh.openFirewall = false`) so it is
        reachable over the VPN interface only. Breaks: SSH from anywhere outside the VPN; keep
        a console (or a second VPN) as a way back in.
      '';
    };
  };

  config = mkMerge [
    (mkIf cfg.tailscale.enable {
      services.tailscale.enable = mkDefault true;
    })
    (mkIf (cfg.tailscale.enable || cfg.sshOnlyOverVpn) {
      networking.firewall.trustedInterfaces = mkIf (cfg.trust == "interface") [ cfg.interface ];
      networking.firewall.interfaces.${cfg.interface}.allowedTCPPorts = mkIf (cfg.trust == "ssh") sshPorts;
    })
    (mkIf cfg.sshOnlyOverVpn {
      services.openssh.openFirewall = mkDefault false;
      assertions = [
        {
          assertion = providers != [ ];
          message = h.guard "vpn-missing" ''
            paranoid.vpn.sshOnlyOverVpn = true, but nothing provides the VPN interface "${cfg.interface}"
            (paranoid.vpn.interface), so SSH would be reachable from nowhere.
            Fix: set paranoid.vpn.tailscale.enable = true, or declare networking.wireguard.interfaces."${cfg.interface}"
            (or networking.wg-quick.interfaces."${cfg.interface}") and point paranoid.vpn.interface at it,
            or set paranoid.vpn.sshOnlyOverVpn = false.'';
        }
        {
          assertion = !config.services.openssh.openFirewall;
          message = h.guard "vpn-ssh-open" ''
            paranoid.vpn.sshOnlyOverVpn = true, but services.openssh.openFirewall = true is set elsewhere,
            which opens SSH on every interface.
            Fix: remove services.openssh.openFirewall = true, or set paranoid.vpn.sshOnlyOverVpn = false.'';
        }
        {
          # When openFirewall put them there, vpn-ssh-open already said so.
          assertion = config.services.openssh.openFirewall || sshOpenEverywhere == [ ];
          message = h.guard "vpn-ssh-port-open" ''
            paranoid.vpn.sshOnlyOverVpn = true, but networking.firewall.allowedTCPPorts (or allowedTCPPortRanges)
            opens the SSH port(s) ${h.showList sshOpenEverywhere} on every interface.
            Fix: remove them from networking.firewall.allowedTCPPorts / allowedTCPPortRanges (paranoid opens them
            on "${cfg.interface}"), or set paranoid.vpn.sshOnlyOverVpn = false.'';
        }
        {
          assertion = fw.enable;
          message = h.guard "vpn-no-firewall" ''
            paranoid.vpn.sshOnlyOverVpn = true needs the firewall, but networking.firewall.enable = false,
            so SSH answers on every interface.
            Fix: set networking.firewall.enable = true (or paranoid.firewall.enable = true), or set
            paranoid.vpn.sshOnlyOverVpn = false.'';
        }
      ];
    })
  ];
}
