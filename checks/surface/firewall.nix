# networking.firewall (firewall.nix) with its backends (firewall-nftables.nix, firewall-iptables.nix)
# and networking.nftables (nftables.nix): the input chain NixOS loads, rendered into
# networking.nftables.tables as firewall-nftables.nix writes it. The iptables backend's script is
# not rendered (its options are declared; `extraCommands` is read as free text).
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

  allInterfaces = cfg.allInterfaces;
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
      # Multicast ICMPv6 echo replies get marked as invalid by conntrack.
      icmpv6 type echo-reply accept
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
        icmpv6 type != { router-renumbering, 139 } accept comment "Accept all ICMPv6 messages except renumbering and node information queries (type 139).  See RFC 4890, section 4.3."
        ct status dnat accept comment "allow port forward"
        ${cfg.extraForwardRules}
      }
    ''}
  '';

  tableOpts = { name, ... }: {
    options = {
      enable = mkOption { type = types.bool; default = true; description = "Whether the table is loaded."; };
      name = mkOption { type = types.str; description = "Table name."; };
      family = mkOption { type = types.enum [ "ip" "ip6" "inet" "arp" "bridge" "netdev" ]; description = "Table family."; };
      content = mkOption { type = types.lines; description = "The table content (chains, sets)."; };
    };
    config.name = lib.mkDefault name;
  };

  provenance = upstream: options: extra: { inherit upstream options; repo = "Swarsel/nixpkgs"; commit = "4aa6836a648ca76c68866decf0c8965e36ec2a3b"; surface = "firewall.nix"; } // extra;
in
{
  options.networking = {
    firewall = commonOptions // {
      enable = mkOption { type = types.bool; default = true; description = "Whether to enable the firewall (stateful, input filtering)."; };
      package = mkOption { type = types.package; default = if config.networking.nftables.enable then pkgs.nftables else pkgs.iptables; defaultText = lib.literalExpression "pkgs.nftables or pkgs.iptables"; description = "The package running the firewall."; };
      allInterfaces = mkOption {
        type = types.attrsOf (types.submodule [ { options = commonOptions; } ]);
        default = { default = lib.mapAttrs (name: _: cfg.${name}) commonOptions; } // cfg.interfaces;
        internal = true;
        visible = false;
        description = "All open ports: `default` (every interface) and each interface's own.";
      };
      backend = mkOption {
        type = types.enum [ "iptables" "nftables" "firewalld" ];
        default = if config.services.firewalld.enable or false then "firewalld" else if config.networking.nftables.enable then "nftables" else "iptables";
        description = "Underlying implementation of the firewall.";
      };
      interfaces = mkOption { type = types.attrsOf (types.submodule [ { options = commonOptions; } ]); default = { }; description = "Interface-specific open ports."; };
      trustedInterfaces = mkOption { type = types.listOf types.str; default = [ ]; description = "Interfaces whose traffic is accepted unconditionally (lo always is)."; };
      allowPing = mkOption { type = types.bool; default = true; description = "Answer ICMPv4 echo requests."; };
      autoLoadConntrackHelpers = mkOption { type = types.bool; default = false; description = "Auto-load connection-tracking helpers (kernels before 6)."; };
      connectionTrackingModules = mkOption { type = types.listOf types.str; default = [ ]; description = "Connection-tracking helpers that are loaded."; };
      extraPackages = mkOption { type = types.listOf types.package; default = [ ]; description = "Packages on the PATH of extraCommands and in the system profile."; };
      logRefusedConnections = mkOption { type = types.bool; default = false; description = "Log rejected or dropped incoming connections."; };
      logRefusedPackets = mkOption { type = types.bool; default = false; description = "Log all rejected or dropped incoming packets."; };
      logRefusedUnicastsOnly = mkOption { type = types.bool; default = true; description = "With logRefusedPackets, log only unicast packets."; };
      logReversePathDrops = mkOption { type = types.bool; default = false; description = "Log packets dropped by the reverse path filter."; };
      rejectPackets = mkOption { type = types.bool; default = false; description = "Reject instead of dropping refused packets."; };
      pingLimit = mkOption { type = types.nullOr (types.separatedString " "); default = null; description = "Rate limit for ping replies."; };
      checkReversePath = mkOption { type = types.either types.bool (types.enum [ "strict" "loose" ]); default = true; description = "Reverse path filtering: true/\"strict\", \"loose\" or false."; };
      filterForward = mkOption { type = types.bool; default = false; description = "Filter forwarded packets (nftables only)."; };
      # firewall-iptables.nix
      extraCommands = mkOption { type = types.lines; default = ""; description = "Shell commands run when the iptables firewall starts, before the final refuse rule."; };
      extraStopCommands = mkOption { type = types.lines; default = ""; description = "Shell commands run when the iptables firewall stops."; };
      # firewall-nftables.nix
      extraInputRules = mkOption { type = types.lines; default = ""; description = "nftables rules appended to the input-allow chain."; };
      extraForwardRules = mkOption { type = types.lines; default = ""; description = "nftables rules appended to the forward-allow chain."; };
      extraReversePathFilterRules = mkOption { type = types.lines; default = ""; description = "nftables rules appended to the rpfilter-allow chain."; };
    };
    nftables = {
      enable = mkOption { type = types.bool; default = false; description = "Use nftables (and the nftables backend of the firewall)."; };
      checkRuleset = mkOption { type = types.bool; default = true; description = "Run nft --check on the ruleset at build time."; };
      extraDeletions = mkOption { type = types.lines; default = ""; description = "Deletions run on every start, reload and stop."; };
      flattenRulesetFile = mkOption { type = types.bool; default = false; description = "Read rulesetFile instead of including it."; };
      flushRuleset = mkOption { type = types.bool; default = false; description = "Flush the whole ruleset on each reload."; };
      preCheckRuleset = mkOption { type = types.lines; default = ""; description = "Script run before the ruleset check."; };
      ruleset = mkOption { type = types.lines; default = ""; description = "Ruleset loaded after the tables."; };
      rulesetFile = mkOption { type = types.nullOr types.path; default = null; description = "File holding a ruleset."; };
      tables = mkOption { type = types.attrsOf (types.submodule tableOpts); default = { }; description = "Tables loaded by nftables.service."; };
    };
  };

  config = lib.mkMerge [
    {
      surface.provenance = [
        (provenance "nixos/modules/services/networking/firewall.nix" [ "networking.firewall" ] { })
        (provenance "nixos/modules/services/networking/firewall-nftables.nix" [ "networking.firewall.extraInputRules" "networking.firewall.extraForwardRules" "networking.firewall.extraReversePathFilterRules" ] { notes = "The nixos-fw table is rendered with upstream's rules; blank lines differ."; })
        (provenance "nixos/modules/services/networking/firewall-iptables.nix" [ "networking.firewall.extraCommands" "networking.firewall.extraStopCommands" ] { notes = "The iptables scripts are not rendered; the kernel is assumed to have rpfilter."; })
        (provenance "nixos/modules/services/networking/nftables.nix" [ "networking.nftables" ] { notes = "checkRulesetRedirects is not declared; nftables.service is not modelled."; })
      ];
    }
    (mkIf cfg.enable {
      # The module lists lo itself; users' lists are concatenated.
      networking.firewall.trustedInterfaces = [ "lo" ];
      environment.systemPackages = [ cfg.package ] ++ cfg.extraPackages;
      boot.kernelModules = lib.optional cfg.autoLoadConntrackHelpers "nf_conntrack" ++ map (x: "nf_conntrack_${x}") cfg.connectionTrackingModules;
      assertions = [
        { assertion = cfg.filterForward -> config.networking.nftables.enable; message = "filterForward only works with the nftables based firewall"; }
      ];
    })
    (mkIf config.networking.nftables.enable {
      boot.blacklistedKernelModules = [ "ip_tables" ];
      environment.systemPackages = [ pkgs.nftables ];
      networking.nftables.flushRuleset = lib.mkDefault (lib.versionOlder config.system.stateVersion "23.11"
        || (config.networking.nftables.rulesetFile != null || config.networking.nftables.ruleset != ""));
    })
    (mkIf (cfg.enable && cfg.backend == "nftables") {
      networking.nftables.tables."nixos-fw" = { family = "inet"; content = nixosFw; };
      assertions = [
        { assertion = cfg.extraCommands == ""; message = "extraCommands is incompatible with the nftables based firewall: ${cfg.extraCommands}"; }
        { assertion = cfg.extraStopCommands == ""; message = "extraStopCommands is incompatible with the nftables based firewall: ${cfg.extraStopCommands}"; }
        { assertion = cfg.pingLimit == null || !(lib.hasPrefix "--" cfg.pingLimit); message = "nftables syntax like \"2/second\" should be used in networking.firewall.pingLimit"; }
        { assertion = config.networking.nftables.rulesetFile == null; message = "networking.nftables.rulesetFile conflicts with the firewall"; }
      ];
    })
  ];
}
