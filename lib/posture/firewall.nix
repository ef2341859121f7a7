# Where each SSH port can be reached from: for every interface the configuration names, the
# loopback and one unnamed uplink, whether the NixOS firewall admits new TCP connections to the
# port there (firewall.nix / firewall-nftables.nix: global ports and ranges, per-interface ports
# and ranges with upstream's `default` entry meaning every interface, trustedInterfaces,
# extraInputRules for nftables, extraCommands for iptables) and whether sshd listens on an
# address of that interface. Free-text rules are read conservatively: an `accept` that could
# cover the port counts as opening it; a line this model cannot read is reported, never ignored.
{ lib, net, origin }:
{ config, options ? null, sshd, network }:
let
  inherit (lib) filter elem any concatMap unique optional head splitString hasPrefix hasInfix toInt;
  fw = config.networking.firewall;
  nftables = config.networking.nftables.enable or false;
  backend = if nftables then "nftables" else "iptables";

  # The files whose definitions of a port list contain `port`.
  filesWithPort = path: port: origin.filesWhere (origin.at options path) (v: builtins.isList v && elem port v);
  opensshModule = let o = origin.at options [ "services" "openssh" "openFirewall" ]; in if o == null then null else origin.pretty (head (o.declarations ++ [ "" ]));

  inRanges = port: ranges: any (r: r.from <= port && port <= r.to) ranges;

  # Routes through the declared options.
  declaredRoutes =
    port: iface:
    let
      globalFiles = filesWithPort [ "networking" "firewall" "allowedTCPPorts" ] port;
      ossh = config.services.openssh;
      # openFirewall adds `ports` to the global list (sshd.nix); name it rather than the list.
      viaOpenssh = ossh.openFirewall && elem port ossh.ports;
      perIface = name: c:
        optional (elem port (c.allowedTCPPorts or [ ])) { option = "networking.firewall.interfaces.${name}.allowedTCPPorts"; files = filesWithPort [ "networking" "firewall" "interfaces" name "allowedTCPPorts" ] port; text = "${toString port}"; }
        ++ optional (inRanges port (c.allowedTCPPortRanges or [ ])) { option = "networking.firewall.interfaces.${name}.allowedTCPPortRanges"; files = [ ]; text = "a range covering ${toString port}"; ranges = c.allowedTCPPortRanges; };
    in
    optional (elem port fw.allowedTCPPorts) (if viaOpenssh
      then { option = "services.openssh.openFirewall"; files = filesWithPort [ "services" "openssh" "openFirewall" ] port; text = "opens ${toString port} on every interface"; }
      else { option = "networking.firewall.allowedTCPPorts"; files = filter (f: f != opensshModule) globalFiles; text = "${toString port} on every interface"; })
    # Range routes carry the whole list, so a fix can split the range around the port.
    ++ optional (inRanges port fw.allowedTCPPortRanges) { option = "networking.firewall.allowedTCPPortRanges"; files = [ ]; text = "a range covering ${toString port}, on every interface"; ranges = fw.allowedTCPPortRanges; }
    ++ perIface "default" ((fw.interfaces or { }).default or { })
    ++ lib.optionals (iface != null && iface != "default") (perIface iface ((fw.interfaces or { }).${iface} or { }))
    ++ optional (iface != null && elem iface (fw.trustedInterfaces or [ ])) { option = "networking.firewall.trustedInterfaces"; files = [ ]; text = "${iface} is trusted: every port is open on it"; };

  # ---- free-text rules --------------------------------------------------------------------------

  # Port specs: `22`, `{ 22, 80 }`, `20-30`, `ssh`.
  services = { ssh = 22; http = 80; https = 443; };
  portSpec = s:
    let
      items = filter (x: x != "") (splitString "," (builtins.replaceStrings [ "{" "}" " " ] [ "" "" "" ] s));
      one = x:
        let r = builtins.match "([0-9]+)-([0-9]+)" x; in
        if r != null then { from = toInt (head r); to = toInt (lib.last r); }
        else if builtins.match "[0-9]+" x != null then { from = toInt x; to = toInt x; }
        else if services ? ${x} then { from = services.${x}; to = services.${x}; }
        else null;
      parsed = map one items;
    in
    if any (p: p == null) parsed then null else parsed;

  # One nftables rule line of extraInputRules → { ifaces (null: all); ports (null: all); } or
  # "unreadable"; null when it accepts nothing.
  nftRule =
    line:
    let
      l = lib.trim line;
      iif = builtins.match ".*iifname[[:space:]]+(\\{[^}]*}|\"[^\"]*\"|[^[:space:]]+).*" l;
      dport = builtins.match ".*(tcp|th)[[:space:]]+dport[[:space:]]+(\\{[^}]*}|[^[:space:]]+).*" l;
      ifaces = if iif == null then null else map (builtins.replaceStrings [ "\"" ] [ "" ]) (filter (x: x != "") (splitString "," (builtins.replaceStrings [ "{" "}" " " ] [ "" "" "" ] (head iif))));
      ports = if dport == null then null else portSpec (lib.last dport);
      negated = iif != null && hasPrefix "!=" (lib.trim (head iif));
    in
    if l == "" || hasPrefix "#" l || !(builtins.match ".*(^|[[:space:]])accept([[:space:]]|$).*" l != null) then null
    else if hasInfix "udp dport" l && dport == null then null
    else if (dport != null && ports == null) || hasInfix "@" l || negated || hasInfix "iifname !=" l then "unreadable"
    else { inherit ifaces ports; };

  # One iptables command of extraCommands → the same shape.
  iptRule =
    line:
    let
      l = lib.trim line;
      words = filter (x: x != "") (splitString " " l);
      after = flag: let i = lib.lists.findFirstIndex (w: w == flag) null words; in if i == null || i + 1 >= builtins.length words then null else builtins.elemAt words (i + 1);
      target = after "-j";
      chain = let a = after "-A"; in if a != null then a else after "-I";
      iface = after "-i";
      dport = let a = after "--dport"; in if a != null then a else after "--dports";
      ports = if dport == null then null else portSpec (builtins.replaceStrings [ ":" ] [ "-" ] dport);
    in
    if l == "" || hasPrefix "#" l || !(hasInfix "tables" (head (words ++ [ "" ]))) then null
    else if !(elem target [ "ACCEPT" "nixos-fw-accept" ]) || !(elem chain [ "nixos-fw" "INPUT" ]) then null
    else if after "-p" == "udp" then null
    else if dport != null && ports == null then "unreadable"
    else { ifaces = if iface == null then null else [ iface ]; inherit ports; };

  freeText =
    if nftables then { option = "networking.firewall.extraInputRules"; lines = splitString "\n" (fw.extraInputRules or ""); parse = nftRule; }
    else { option = "networking.firewall.extraCommands"; lines = splitString "\n" (fw.extraCommands or ""); parse = iptRule; };
  parsedFree = lib.imap1 (n: text: { line = n; inherit text; rule = freeText.parse text; }) freeText.lines;
  freeFiles = origin.files (origin.at options (splitString "." freeText.option));

  freeRoutes =
    port: iface:
    concatMap (r:
      let
        ifaceOk = r.rule.ifaces == null || any (p: ifaceMatches p iface) r.rule.ifaces;
        portOk = r.rule.ports == null || any (p: p.from <= port && port <= p.to) r.rule.ports;
      in
      optional (builtins.isAttrs r.rule && ifaceOk && portOk) {
        option = freeText.option; files = freeFiles;
        text = "line ${toString r.line}: ${lib.trim r.text}";
      }) parsedFree;

  unreadable = map (r: {
    option = freeText.option; files = freeFiles; line = r.line; text = lib.trim r.text;
    reason = "this ${if nftables then "nftables rule" else "iptables command"} may accept SSH and this model cannot read it: where SSH can be reached is not judged";
  }) (filter (r: r.rule == "unreadable") parsedFree);

  # ---- per port and interface -------------------------------------------------------------------

  # An interface name in a rule: exact, or a wildcard (nftables `en*`, iptables `en+`), which
  # can match the uplink whatever its name.
  ifaceMatches = p: i:
    let stem = lib.removeSuffix "*" (lib.removeSuffix "+" p); in
    p == i || (stem != p && (i == network.uplink || lib.hasPrefix stem i));
  # Every interface the configuration names, in its options or only inside a rule of its own
  # (`iifname eth0 accept`), then the loopback and one unnamed uplink.
  ruleIfaces = filter (i: !(lib.hasSuffix "*" i || lib.hasSuffix "+" i))
    (concatMap (r: if builtins.isAttrs r.rule && r.rule.ifaces != null then r.rule.ifaces else [ ]) parsedFree);
  interfaces = unique (network.named ++ ruleIfaces ++ [ network.loopback network.uplink ]);
  isPublic = i: i != network.loopback && i != network.vpn;

  listeningOn = port: iface: any (l: l.port == port && (l.address == null || l.interface == iface)) sshd.listeners;

  at = port: iface:
    let
      routes =
        if !fw.enable then [ { option = "networking.firewall.enable"; files = [ ]; text = "the firewall is off: every port is open"; } ]
        # The loopback is accepted because firewall.nix lists it in trustedInterfaces (a
        # definition lib.mkForce can remove, as the sandbox's packet filter showed): it is
        # judged like any named interface.
        else declaredRoutes port (if iface == network.uplink then null else iface) ++ freeRoutes port iface;
      listening = listeningOn port iface;
    in
    {
      interface = iface;
      public = isPublic iface;
      open = routes != [ ];
      inherit listening routes;
      reachable = routes != [ ] && listening;
    };

  ports = if sshd == null then [ ] else sshd.ports;
  table = map (port: { inherit port; interfaces = map (at port) interfaces; }) ports;
in
{
  enabled = fw.enable;
  inherit backend;
  vpn = network.vpn;
  inherit interfaces;
  judged = unreadable == [ ];
  unjudged = unreadable;
  ssh = table;
  # Every (port, interface) where SSH answers from outside the VPN.
  publicSsh = concatMap (t: map (i: { inherit (t) port; inherit (i) interface routes; }) (filter (i: i.public && i.reachable) t.interfaces)) table;
  vpnSsh = concatMap (t: map (i: { inherit (t) port; inherit (i) interface; }) (filter (i: i.interface == network.vpn && i.reachable) t.interfaces)) table;
}
