# networking.firewall (firewall.nix) with its nftables backend (firewall-nftables.nix) and
# networking.nftables: the input chain NixOS loads, rendered into networking.nftables.tables.
{ config, lib, pkgs, ... }:
let
  inherit (lib) mkOption types mkIf optionalString concatStringsSep;
  cfg = config.networking.firewall;

  canonicalizePorts = ports: lib.unique (lib.sort builtins.lessThan ports);
  commonOptions = {
    allowedTCPPorts = mkOption { type = types.listOf types.port; default = [ ]; apply = canonicalizePorts; description = "TCP ports on which incoming connections are accepted."; };
    allowedUDPPorts = mkOption { type = types.listOf types.port; default = [ ]; apply = canonicalizePorts; description = "UDP ports on which incoming packets are accepted."; };
    allowedTCPPortRanges = mkOption { type = types.listOf (types.attrsOf types.port); default = [ ]; description = "Ranges of open TCP ports."; };
    allowedUDPPortRanges = mkOption { type = types.listOf (types.attrsOf types.port); default = [ ]; description = "Ranges of open UDP ports."; };
  };

  allInterfaces = { default = lib.mapAttrs (name: _: cfg.${name}) commonOptions; } // cfg.interfaces;
  portsToNftSet = ports: ranges: concatStringsSep ", " (map toString ports ++ map (r: "${toString r.from}-${toString r.to}") ranges);
  trusted = concatStringsSep ", " (map (i: ''"${i}"'') cfg.trustedInterfaces);

  # The rules are those of upstream's nixos-fw table; layout is ours.
  nixosFw = ''
    set temp-ports {
      comment "Temporarily opened ports"
      type inet_proto . inet_service
      flags interval
      auto-merge
    }
    ${optionalString (cfg.checkReversePath != false) ''
      chain rpfilter {
        type filter hook prerouting priority mangle + 10; policy drop;
        meta nfproto ipv4 udp sport . udp dport { 67 . 68, 68 . 67 } accept comment "DHCPv4 client/server"
        fib saddr . mark ${optionalString (cfg.checkReversePath != "loose") ". iif"} oif exists accept
        jump rpfilter-allow
        ${optionalString cfg.logReversePathDrops ''log level info prefix "rpfilter drop: "''}
      }
    ''}
    chain rpfilter-allow {
      ${cfg.extraReversePathFilterRules}
    }
    chain input {
      type filter hook input priority filter; policy drop;
      ${optionalString (trusted != "") ''iifname { ${trusted} } accept comment "trusted interfaces"''}
      ct state vmap {
        invalid : drop,
        established : accept,
        related : accept,
        new : jump input-allow,
        untracked: jump input-allow,
      }
      ${optionalString cfg.logRefusedConnections ''tcp flags syn / fin,syn,rst,ack log level info prefix "refused connection: "''}
      ${optionalString (cfg.logRefusedPackets && !cfg.logRefusedUnicastsOnly) ''
        pkttype broadcast log level info prefix "refused broadcast: "
        pkttype multicast log level info prefix "refused multicast: "
      ''}
      ${optionalString cfg.logRefusedPackets ''pkttype host log level info prefix "refused packet: "''}
      ${optionalString cfg.rejectPackets ''
        meta l4proto tcp reject with tcp reset
        reject
      ''}
    }
    chain input-allow {
      ${lib.concatStrings (lib.mapAttrsToList (iface: c:
        let
          ifaceExpr = optionalString (iface != "default") "iifname ${iface}";
          tcpSet = portsToNftSet c.allowedTCPPorts c.allowedTCPPortRanges;
          udpSet = portsToNftSet c.allowedUDPPorts c.allowedUDPPortRanges;
        in
        optionalString (tcpSet != "") "${ifaceExpr} tcp dport { ${tcpSet} } accept\n"
        + optionalString (udpSet != "") "${ifaceExpr} udp dport { ${udpSet} } accept\n") allInterfaces)}
      meta l4proto . th dport @temp-ports accept
      ${optionalString cfg.allowPing ''icmp type echo-request ${optionalString (cfg.pingLimit != null) "limit rate ${cfg.pingLimit}"} accept comment "allow ping"''}
      icmpv6 type != { nd-redirect, 139 } accept comment "Accept all ICMPv6 messages except redirects and node information queries (type 139).  See RFC 4890, section 4.4."
      ip6 daddr fe80::/64 udp dport 546 accept comment "DHCPv6 client"
      ${cfg.extraInputRules}
    }
    ${optionalString cfg.filterForward ''
      chain forward {
        type filter hook forward priority filter; policy drop;
        ct state vmap {
          invalid : drop,
          established : accept,
          related : accept,
          new : jump forward-allow,
          untracked : jump forward-allow,
        }
      }
      chain forward-allow {
        icmpv6 type != { router-renumbering, 139 } accept
        ct status dnat accept comment "allow port forward"
        ${cfg.extraForwardRules}
      }
    ''}
  '';

  tableOpts = { name, ... }: {
    options = {
      enable = mkOption { type = types.bool; default = true; description = "Whether the table is loaded."; };
      name = mkOption { type = types.str; default = name; description = "Table name."; };
      family = mkOption { type = types.enum [ "ip" "ip6" "inet" "arp" "bridge" "netdev" ]; description = "Table family."; };
      content = mkOption { type = types.lines; default = ""; description = "The table content (chains, sets)."; };
    };
  };
in
{
  options.networking = {
    firewall = commonOptions // {
      enable = mkOption { type = types.bool; default = true; description = "Whether to enable the firewall (stateful, input filtering)."; };
      backend = mkOption {
        type = types.enum [ "iptables" "nftables" "firewalld" ];
        default = if config.networking.nftables.enable then "nftables" else "iptables";
        description = "Underlying implementation of the firewall.";
      };
      interfaces = mkOption { type = types.attrsOf (types.submodule { options = commonOptions; }); default = { }; description = "Interface-specific open ports."; };
      trustedInterfaces = mkOption { type = types.listOf types.str; default = [ ]; description = "Interfaces whose traffic is accepted unconditionally."; };
      logRefusedConnections = mkOption { type = types.bool; default = false; description = "Log rejected or dropped incoming connections."; };
      logRefusedPackets = mkOption { type = types.bool; default = false; description = "Log all rejected or dropped incoming packets."; };
      logRefusedUnicastsOnly = mkOption { type = types.bool; default = true; description = "With logRefusedPackets, log only unicast packets."; };
      logReversePathDrops = mkOption { type = types.bool; default = false; description = "Log packets dropped by the reverse path filter."; };
      rejectPackets = mkOption { type = types.bool; default = false; description = "Reject instead of dropping refused packets."; };
      allowPing = mkOption { type = types.bool; default = true; description = "Answer ICMP echo requests."; };
      pingLimit = mkOption { type = types.nullOr (types.separatedString " "); default = null; description = "Rate limit for ping replies."; };
      checkReversePath = mkOption { type = types.either types.bool (types.enum [ "strict" "loose" ]); default = true; description = "Reverse path filtering."; };
      filterForward = mkOption { type = types.bool; default = false; description = "Filter forwarded packets (nftables only)."; };
      extraCommands = mkOption { type = types.lines; default = ""; description = "iptables commands run when the firewall starts (iptables backend)."; };
      extraStopCommands = mkOption { type = types.lines; default = ""; description = "iptables commands run when the firewall stops (iptables backend)."; };
      extraInputRules = mkOption { type = types.lines; default = ""; description = "nftables rules appended to the input-allow chain."; };
      extraForwardRules = mkOption { type = types.lines; default = ""; description = "nftables rules appended to the forward-allow chain."; };
      extraReversePathFilterRules = mkOption { type = types.lines; default = ""; description = "nftables rules appended to the rpfilter-allow chain."; };
    };
    nftables = {
      enable = mkOption { type = types.bool; default = false; description = "Use nftables instead of iptables (also selects the firewall's nftables backend)."; };
      ruleset = mkOption { type = types.lines; default = ""; description = "Ruleset loaded before the tables."; };
      rulesetFile = mkOption { type = types.nullOr types.path; default = null; description = "File holding the ruleset."; };
      flushRuleset = mkOption { type = types.bool; default = config.networking.nftables.tables == { }; description = "Flush the whole ruleset on reload."; };
      tables = mkOption { type = types.attrsOf (types.submodule tableOpts); default = { }; description = "Tables loaded by nftables.service."; };
    };
  };

  config = lib.mkMerge [
    {
      # The module lists lo itself; users' lists are concatenated.
      networking.firewall.trustedInterfaces = [ "lo" ];
    }
    (mkIf (cfg.enable && cfg.backend == "nftables") {
      networking.nftables.tables."nixos-fw" = { family = "inet"; content = nixosFw; };
      assertions = [
        { assertion = cfg.extraCommands == ""; message = "extraCommands is incompatible with the nftables based firewall: ${cfg.extraCommands}"; }
        { assertion = cfg.extraStopCommands == ""; message = "extraStopCommands is incompatible with the nftables based firewall: ${cfg.extraStopCommands}"; }
        { assertion = config.networking.nftables.rulesetFile == null; message = "networking.nftables.rulesetFile conflicts with the firewall"; }
      ];
    })
    (mkIf (cfg.enable && cfg.backend == "iptables") {
      assertions = [
        { assertion = !cfg.filterForward; message = "filterForward only works with the nftables based firewall"; }
      ];
    })
  ];
}
