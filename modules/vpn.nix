# VPN: run Tailscale (or name a WireGuard interface) and make SSH reachable over it only.
{ config, lib, ... }:
let
  inherit (lib) mkOption types mkIf mkDefault mkMerge;
  h = import ../lib/module-helpers.nix { inherit lib; };
  cfg = config.paranoid.vpn;
  fw = config.networking.firewall;
  # The ports sshd listens on: a ListenAddress with a port replaces `ports` for that address.
  ossh = config.services.openssh;
  sshPorts = if ossh.listenAddresses == [ ] then ossh.ports
    else lib.unique (lib.concatMap (l: if l.port != null then [ l.port ] else ossh.ports) ossh.listenAddresses);

  providers =
    lib.optional (config.services.tailscale.enable && config.services.tailscale.interfaceName == cfg.interface) "services.tailscale"
    ++ lib.optional (config.networking.wireguard.interfaces ? ${cfg.interface}) "networking.wireguard.interfaces.${cfg.interface}"
    ++ lib.optional (config.networking.wg-quick.interfaces ? ${cfg.interface}) "networking.wg-quick.interfaces.${cfg.interface}";
  posture = import ../lib/posture { inherit lib; render = import ../lib/render.nix { inherit lib; }; };
  # Where SSH answers outside the VPN, as sshd and the firewall will really behave: global and
  # per-interface ports and ranges, trusted interfaces, free-text rules, the ports sshd listens on.
  # (openFirewall has its own guard below.)
  publicSsh = lib.filter (r: !(lib.any (x: x.option == "services.openssh.openFirewall") r.routes))
    (let f = (posture.of { inherit config; }).firewall; in if f == null then [ ] else f.publicSsh);
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
          # A disabled firewall has its own guard (vpn-no-firewall).
          assertion = !fw.enable || publicSsh == [ ];
          message = h.guard "vpn-ssh-port-open" ''
            paranoid.vpn.sshOnlyOverVpn = true, but sshd can be reached outside the VPN "${cfg.interface}":
            ${lib.concatMapStringsSep "\n" (r: "  - port ${toString r.port} on ${r.interface}: ${lib.concatMapStringsSep "; " (x: "${x.option}${lib.optionalString (x.files != [ ]) " (in ${lib.concatStringsSep ", " x.files})"} ${x.text}") r.routes}") publicSsh}
            Fix: remove the SSH port from those options (paranoid opens it on "${cfg.interface}" only), or set
            paranoid.vpn.sshOnlyOverVpn = false.'';
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
