# The networks a host's daemons are judged from: the VPN interface and its addresses, the
# loopback, and everything else ("public": any interface that is neither, named in the
# configuration or not). Each network gets one representative connection (client and local
# address) so the other models can evaluate address-dependent rules concretely.
{ lib, net }:
{ config }:
let
  inherit (lib) attrNames filter unique concatMap optional optionals head;

  fw = config.networking.firewall;
  tailscale = config.services.tailscale or { enable = false; };
  tsName = tailscale.interfaceName or "tailscale0";
  wireguard = config.networking.wireguard.interfaces or { };
  wgQuick = config.networking.wg-quick.interfaces or { };
  ifaces = config.networking.interfaces or { };

  # The VPN is paranoid's VPN interface when the knob exists, else Tailscale's when it runs.
  vpn =
    if config ? paranoid && config.paranoid ? vpn then config.paranoid.vpn.interface
    else if tailscale.enable then tsName
    else null;

  # Addresses (CIDR) an interface carries, as the configuration declares them.
  addressesOf =
    i:
    map (a: "${a.address}/${toString a.prefixLength}") ((ifaces.${i}.ipv4.addresses or [ ]) ++ (ifaces.${i}.ipv6.addresses or [ ]))
    ++ (wireguard.${i}.ips or [ ])
    ++ (wgQuick.${i}.address or [ ])
    # Tailscale hands out addresses from the CGNAT range and its ULA prefix.
    ++ optionals (tailscale.enable && i == tsName) [ "100.64.0.0/10" "fd7a:115c:a1e0::/48" ];

  # The addresses the VPN's peers connect from.
  peersOf =
    i:
    concatMap (p: p.allowedIPs or [ ]) (wireguard.${i}.peers or [ ] ++ wgQuick.${i}.peers or [ ])
    ++ addressesOf i;

  hostPart = cidr: head (lib.splitString "/" cidr);
  firstWitness = cidrs: let w = filter (x: x != null) (map net.witness cidrs); in if w == [ ] then null else head w;

  named = unique (filter (i: i != "default") (
    attrNames ifaces ++ attrNames (fw.interfaces or { }) ++ (fw.trustedInterfaces or [ ])
    ++ attrNames wireguard ++ attrNames wgQuick
    ++ optional tailscale.enable tsName ++ optional (vpn != null) vpn));
in
rec {
  inherit vpn named addressesOf;

  # The interface standing for every interface the configuration does not name.
  uplink = "<unnamed uplink>";
  loopback = "lo";

  # Whether an address belongs to the VPN's networks.
  inVpn = addr: vpn != null && lib.any (c: net.inCidr c addr) (addressesOf vpn ++ peersOf vpn);

  # "vpn", "loopback" or "public" for a client address.
  classify =
    addr:
    if net.inCidr "127.0.0.0/8" addr || addr == "::1" then "loopback"
    else if inVpn addr then "vpn"
    else "public";

  # The interface that owns a local address: a named one declaring it, lo, or the uplink.
  interfaceOf =
    addr:
    let owners = filter (i: lib.any (c: hostPart c == addr || (lib.hasInfix "/" c && net.inCidr c addr && i == vpn)) (addressesOf i)) named; in
    if addr == "127.0.0.1" || addr == "::1" || net.inCidr "127.0.0.0/8" addr then loopback
    else if owners != [ ] then head owners
    else uplink;

  # One representative connection per network: where the client is, where it arrives.
  representatives =
    [ { network = "loopback"; addr = "127.0.0.1"; laddr = "127.0.0.1"; interface = loopback; } ]
    ++ optional (vpn != null && firstWitness (peersOf vpn) != null) {
      network = "vpn";
      addr = let own = map hostPart (addressesOf vpn); peers = filter (a: !(lib.elem a own)) (filter (x: x != null) (map net.witness (peersOf vpn))); in
        if peers != [ ] then head peers else firstWitness (peersOf vpn);
      laddr = let own = filter (c: net.parseIP (hostPart c) != null) (addressesOf vpn); in if own != [ ] then hostPart (head own) else firstWitness (addressesOf vpn);
      interface = vpn;
    }
    # Documentation ranges (RFC 5737): a client on the internet reaching the uplink.
    ++ [ { network = "public"; addr = "203.0.113.10"; laddr = "198.51.100.2"; interface = uplink; } ];
}
