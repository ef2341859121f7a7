# VPNs SSH can hide behind: services.tailscale (services/networking/tailscale.nix) and
# WireGuard (networking.wireguard, networking.wg-quick).
{ config, lib, pkgs, ... }:
let
  inherit (lib) mkOption types mkIf;
  cfg = config.services.tailscale;

  peerOpts = types.submodule {
    options = {
      publicKey = mkOption { type = types.singleLineStr; description = "The base64 public key of the peer."; };
      allowedIPs = mkOption { type = types.listOf types.str; default = [ ]; description = "IP ranges routed to this peer."; };
      endpoint = mkOption { type = types.nullOr types.str; default = null; description = "Endpoint host:port."; };
      persistentKeepalive = mkOption { type = types.nullOr types.int; default = null; description = "Keepalive interval in seconds."; };
      presharedKeyFile = mkOption { type = types.nullOr types.str; default = null; description = "File with a preshared key."; };
    };
  };
  wireguardInterface = types.submodule {
    options = {
      ips = mkOption { type = types.listOf types.str; default = [ ]; description = "Addresses of the interface."; };
      privateKeyFile = mkOption { type = types.nullOr types.str; default = null; description = "File with the private key."; };
      generatePrivateKeyFile = mkOption { type = types.bool; default = false; description = "Generate a private key with `wg genkey` at privateKeyFile if it does not exist."; };
      listenPort = mkOption { type = types.nullOr types.int; default = null; description = "UDP port to listen on."; };
      peers = mkOption { type = types.listOf peerOpts; default = [ ]; description = "Peers."; };
    };
  };
  wgQuickInterface = types.submodule {
    options = {
      address = mkOption { type = types.listOf types.str; default = [ ]; description = "Addresses of the interface."; };
      privateKeyFile = mkOption { type = types.nullOr types.str; default = null; description = "File with the private key."; };
      listenPort = mkOption { type = types.nullOr types.int; default = null; description = "UDP port to listen on."; };
      autostart = mkOption { type = types.bool; default = true; description = "Start the interface at boot."; };
      peers = mkOption { type = types.listOf peerOpts; default = [ ]; description = "Peers."; };
    };
  };
in
{
  options = {
    services.tailscale = {
      enable = mkOption { type = types.bool; default = false; description = "Whether to enable Tailscale client daemon."; };
      package = mkOption { type = types.package; default = pkgs.tailscale; defaultText = lib.literalExpression "pkgs.tailscale"; description = "The tailscale package."; };
      authKeyFile = mkOption { type = types.nullOr types.path; default = null; description = "File with an auth key; tailscale connects at boot (tailscaled-autoconnect)."; };
      authKeyParameters = mkOption {
        default = { };
        description = "Parameters passed after the auth key.";
        type = types.submodule {
          options = {
            baseURL = mkOption { type = types.nullOr types.str; default = null; description = "Base URL for the Tailscale API."; };
            ephemeral = mkOption { type = types.nullOr types.bool; default = null; description = "Register as an ephemeral node."; };
            preauthorized = mkOption { type = types.nullOr types.bool; default = null; description = "Skip manual device approval."; };
          };
        };
      };
      disableTaildrop = mkOption { type = types.bool; default = false; description = "Disable Taildrop (file sending)."; };
      disableUpstreamLogging = mkOption { type = types.bool; default = false; description = "Disable logging to the Tailscale log server."; };
      extraDaemonFlags = mkOption { type = types.listOf types.str; default = [ ]; description = "Extra flags for tailscaled."; };
      extraSetFlags = mkOption { type = types.listOf types.str; default = [ ]; description = "Extra flags for `tailscale set` (tailscaled-set.service)."; };
      extraUpFlags = mkOption { type = types.listOf types.str; default = [ ]; description = "Extra flags for `tailscale up` (only with authKeyFile)."; };
      interfaceName = mkOption { type = types.str; default = "tailscale0"; description = "The TUN interface name, or \"userspace-networking\"."; };
      openFirewall = mkOption { type = types.bool; default = false; description = "Open the UDP port in the firewall."; };
      permitCertUid = mkOption { type = types.nullOr types.nonEmptyStr; default = null; description = "User allowed to fetch the node's TLS certificates."; };
      port = mkOption { type = types.port; default = 41641; description = "UDP port for tunnel traffic (0 = automatic)."; };
      useRoutingFeatures = mkOption { type = types.enum [ "none" "client" "server" "both" ]; default = "none"; description = "Subnet router / exit node support: client/both loosen reverse path filtering, server/both enable IP forwarding."; };
    };
    networking.wireguard = {
      enable = mkOption { type = types.bool; default = config.networking.wireguard.interfaces != { }; description = "Whether to enable WireGuard."; };
      interfaces = mkOption { type = types.attrsOf wireguardInterface; default = { }; description = "WireGuard interfaces."; };
    };
    networking.wg-quick.interfaces = mkOption { type = types.attrsOf wgQuickInterface; default = { }; description = "wg-quick interfaces."; };
  };

  config = lib.mkMerge [
    {
      surface.provenance = [
        { options = [ "services.tailscale" ]; upstream = "nixos/modules/services/networking/tailscale.nix"; repo = "Swarsel/nixpkgs"; commit = "4aa6836a648ca76c68866decf0c8965e36ec2a3b"; surface = "vpn.nix"; notes = "tailscaled's ExecStart comes from the package's own unit upstream; the surface records the Environment it sets."; }
        { options = [ "networking.wireguard" "networking.wg-quick.interfaces" ]; upstream = "nixos/modules/services/networking/wireguard.nix, wg-quick.nix"; repo = "Swarsel/nixpkgs"; commit = "4aa6836a648ca76c68866decf0c8965e36ec2a3b"; surface = "vpn.nix"; reread = false; notes = "Only the interface and peer options paranoid reads; others are recorded as not judged."; }
      ];
    }
    (mkIf cfg.enable {
      boot.kernel.sysctl = mkIf (cfg.useRoutingFeatures == "server" || cfg.useRoutingFeatures == "both") {
        "net.ipv4.conf.all.forwarding" = lib.mkOverride 97 true;
        "net.ipv6.conf.all.forwarding" = lib.mkOverride 97 true;
      };
      environment.systemPackages = [ cfg.package ];
      networking.dhcpcd.denyInterfaces = [ cfg.interfaceName ];
      networking.firewall.allowedUDPPorts = mkIf cfg.openFirewall [ cfg.port ];
      # A normal-priority definition: a host's own value conflicts rather than silently winning.
      networking.firewall.checkReversePath = mkIf (cfg.useRoutingFeatures == "client" || cfg.useRoutingFeatures == "both") "loose";
      systemd.services.tailscaled = {
        description = "Tailscale node agent";
        wantedBy = [ "multi-user.target" ];
        stopIfChanged = false;
        serviceConfig.Environment = [
          "PORT=${toString cfg.port}"
          ''"FLAGS=--tun ${lib.escapeShellArg cfg.interfaceName} ${lib.concatStringsSep " " cfg.extraDaemonFlags}"''
        ] ++ lib.optional (cfg.permitCertUid != null) "TS_PERMIT_CERT_UID=${cfg.permitCertUid}"
          ++ lib.optional cfg.disableTaildrop "TS_DISABLE_TAILDROP=true"
          ++ lib.optional cfg.disableUpstreamLogging "TS_NO_LOGS_NO_SUPPORT=true";
      };
      systemd.services.tailscaled-autoconnect = mkIf (cfg.authKeyFile != null) {
        after = [ "tailscaled.service" ];
        wants = [ "tailscaled.service" ];
        wantedBy = [ "multi-user.target" ];
        path = [ cfg.package ];
        serviceConfig.Type = "notify";
        script = "tailscale up --auth-key \"$(cat ${cfg.authKeyFile})\" ${lib.escapeShellArgs cfg.extraUpFlags}";
      };
      systemd.services.tailscaled-set = mkIf (cfg.extraSetFlags != [ ]) {
        after = [ "tailscaled.service" "tailscaled-autoconnect.service" ];
        wants = [ "tailscaled.service" ];
        wantedBy = [ "multi-user.target" ];
        serviceConfig.Type = "oneshot";
        script = "${lib.getExe cfg.package} set ${lib.escapeShellArgs cfg.extraSetFlags}";
      };
    })
  ];
}
