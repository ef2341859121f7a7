# Network interfaces (tasks/network-interfaces.nix): addresses, routes, DHCP, and the global
# switches real hosts set (useDHCP, useNetworkd, nameservers, gateways); dhcpcd's interface deny
# list (services/networking/dhcpcd.nix). How the interfaces are brought up is not modelled.
{ config, lib, ... }:
let
  inherit (lib) mkOption types;
  cfg = config.networking;

  addrOpts = v: {
    options = {
      address = mkOption { type = types.str; description = "IPv${toString v} address of the interface."; };
      prefixLength = mkOption { type = types.ints.between 0 (if v == 4 then 32 else 128); description = "Prefix length of the subnet."; };
    };
  };
  routeOpts = v: {
    options = {
      options = mkOption { type = types.attrsOf types.str; default = { }; description = "Other route options (ip-route(8))."; };
      address = mkOption { type = types.str; description = "IPv${toString v} address of the network."; };
      prefixLength = mkOption { type = types.ints.between 0 (if v == 4 then 32 else 128); description = "Prefix length of the network."; };
      type = mkOption { type = types.nullOr (types.enum [ "unicast" "local" "broadcast" "multicast" ]); default = null; description = "Route type."; };
      via = mkOption { type = types.nullOr types.str; default = null; description = "Next hop."; };
    };
  };
  gatewayType = types.coercedTo types.str (address: { inherit address; }) (types.submodule {
    options = {
      address = mkOption { type = types.str; description = "The default gateway address."; };
      interface = mkOption { type = types.nullOr types.str; default = null; description = "The default gateway interface."; };
      metric = mkOption { type = types.nullOr types.int; default = null; description = "The default gateway metric."; };
      source = mkOption { type = types.nullOr types.str; default = null; description = "The default source address."; };
    };
  });
  tempaddrValues = [ "default" "disabled" "enabled" ];

  interfaceOpts = { name, ... }: {
    options = {
      ipv4.addresses = mkOption { type = types.listOf (types.submodule (addrOpts 4)); default = [ ]; description = "Static IPv4 addresses."; };
      ipv4.routes = mkOption { type = types.listOf (types.submodule (routeOpts 4)); default = [ ]; description = "Static IPv4 routes."; };
      ipv6.addresses = mkOption { type = types.listOf (types.submodule (addrOpts 6)); default = [ ]; description = "Static IPv6 addresses."; };
      ipv6.routes = mkOption { type = types.listOf (types.submodule (routeOpts 6)); default = [ ]; description = "Static IPv6 routes."; };
      macAddress = mkOption { type = types.nullOr types.str; default = null; description = "MAC address of the interface."; };
      mtu = mkOption { type = types.nullOr types.int; default = null; description = "MTU of the interface."; };
      name = mkOption { type = types.str; description = "Name of the interface."; };
      proxyARP = mkOption { type = types.bool; default = false; description = "Turn on proxy_arp (and IP routing) for this device."; };
      tempAddress = mkOption { type = types.enum tempaddrValues; default = cfg.tempAddresses; description = "IPv6 temporary addresses on this interface."; };
      useDHCP = mkOption { type = types.nullOr types.bool; default = null; description = "Whether DHCP configures this interface (null: when it has no static IPv4 address)."; };
      virtual = mkOption { type = types.bool; default = false; description = "Whether this is a virtual (tun/tap) interface."; };
      virtualOwner = mkOption { type = types.nullOr types.str; default = "root"; description = "Owner of the virtual device."; };
      virtualType = mkOption { type = types.enum [ "tun" "tap" ]; default = if lib.hasPrefix "tun" name then "tun" else "tap"; description = "Type of the virtual interface."; };
      wakeOnLan.enable = mkOption { type = types.bool; default = false; description = "Whether to enable Wake-on-LAN."; };
      wakeOnLan.policy = mkOption { type = types.listOf (types.enum [ "phy" "unicast" "multicast" "broadcast" "arp" "magic" "secureon" ]); default = [ "magic" ]; description = "Wake-on-LAN policy."; };
    };
    config.name = lib.mkDefault name;
  };
in
{
  options.networking = {
    interfaces = mkOption { type = types.attrsOf (types.submodule interfaceOpts); default = { }; description = "The configuration of each network interface."; };
    useDHCP = mkOption { type = types.bool; default = true; description = "Whether interfaces without static IPv4 addresses use DHCP by default."; };
    useNetworkd = mkOption { type = types.bool; default = false; description = "Configure interfaces with systemd-networkd."; };
    tempAddresses = mkOption { type = types.enum tempaddrValues; default = if cfg.enableIPv6 then "default" else "disabled"; description = "IPv6 temporary addresses (privacy extensions) on every interface."; };
    nameservers = mkOption { type = types.listOf types.str; default = [ ]; description = "Name servers used when no DHCP server provides one."; };
    search = mkOption { type = types.listOf types.str; default = [ ]; description = "Search domains."; };
    domain = mkOption { type = types.nullOr types.str; default = null; description = "The system's domain name."; };
    hostId = mkOption { type = types.nullOr types.str; default = null; description = "The 32-bit host ID (8 hex digits)."; };
    defaultGateway = mkOption { type = types.nullOr gatewayType; default = null; description = "The default IPv4 gateway."; };
    defaultGateway6 = mkOption { type = types.nullOr gatewayType; default = null; description = "The default IPv6 gateway."; };
    dhcpcd.denyInterfaces = mkOption { type = types.listOf types.str; default = [ ]; description = "Interfaces dhcpcd leaves alone (services/networking/dhcpcd.nix)."; };
  };

  config = {
    surface.provenance = [
      { options = [ "networking.interfaces" "networking.useDHCP" "networking.useNetworkd" "networking.tempAddresses" "networking.nameservers" "networking.search" "networking.domain" "networking.hostId" "networking.defaultGateway" "networking.defaultGateway6" ]; upstream = "nixos/modules/tasks/network-interfaces.nix"; repo = "Swarsel/nixpkgs"; commit = "4aa6836a648ca76c68866decf0c8965e36ec2a3b"; surface = "network.nix"; notes = "Interface renames (ip4, ipAddress, ...) and bonds, bridges, vlans, sits are not declared (recorded as not judged)."; }
      { options = [ "networking.dhcpcd.denyInterfaces" ]; upstream = "nixos/modules/services/networking/dhcpcd.nix"; repo = "Swarsel/nixpkgs"; commit = "4aa6836a648ca76c68866decf0c8965e36ec2a3b"; surface = "network.nix"; reread = false; notes = "Only this option of the module."; }
    ];
    assertions = [
      { assertion = cfg.hostId == null || (lib.stringLength cfg.hostId == 8 && lib.all (c: lib.elem c (lib.stringToCharacters "0123456789abcdef")) (lib.stringToCharacters (lib.toLower cfg.hostId))); message = "Invalid value given to the networking.hostId option."; }
    ];
  };
}
