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
      package = mkOption { type = types.package; default = pkgs.tailscale; description = "The tailscale package."; };
      port = mkOption { type = types.port; default = 41641; description = "UDP port to listen on for tunnel traffic (0 = automatic)."; };
      interfaceName = mkOption { type = types.str; default = "tailscale0"; description = "The TUN interface name, or \"userspace-networking\"."; };
      openFirewall = mkOption { type = types.bool; default = false; description = "Open the UDP port in the firewall."; };
      authKeyFile = mkOption { type = types.nullOr types.path; default = null; description = "File with an auth key for unattended `tailscale up`."; };
      extraUpFlags = mkOption { type = types.listOf types.str; default = [ ]; description = "Extra flags for `tailscale up` (only with authKeyFile)."; };
      extraSetFlags = mkOption { type = types.listOf types.str; default = [ ]; description = "Extra flags for `tailscale set`."; };
      extraDaemonFlags = mkOption { type = types.listOf types.str; default = [ ]; description = "Extra flags for tailscaled."; };
      useRoutingFeatures = mkOption { type = types.enum [ "none" "client" "server" "both" ]; default = "none"; description = "Enable subnet router / exit node support."; };
      disableUpstreamLogging = mkOption { type = types.bool; default = false; description = "Disable logging to the Tailscale log server."; };
    };
    networking.wireguard = {
      enable = mkOption { type = types.bool; default = config.networking.wireguard.interfaces != { }; description = "Whether to enable WireGuard."; };
      interfaces = mkOption { type = types.attrsOf wireguardInterface; default = { }; description = "WireGuard interfaces."; };
    };
    networking.wg-quick.interfaces = mkOption { type = types.attrsOf wgQuickInterface; default = { }; description = "wg-quick interfaces."; };
  };

  config = mkIf cfg.enable {
    environment.systemPackages = [ cfg.package ];
    networking.firewall.allowedUDPPorts = lib.optional cfg.openFirewall cfg.port;
    networking.firewall.checkReversePath = mkIf (cfg.useRoutingFeatures == "client" || cfg.useRoutingFeatures == "both") (lib.mkDefault "loose");
    systemd.services.tailscaled = {
      description = "Tailscale node agent";
      wantedBy = [ "multi-user.target" ];
      serviceConfig.ExecStart = "${cfg.package}/bin/tailscaled --port=${toString cfg.port} --tun=${cfg.interfaceName}";
    };
  };
}
