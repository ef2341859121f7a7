# vm-firewall: paranoid.firewall + paranoid.vpn.sshOnlyOverVpn with trust = "ssh". Port 22 is
# closed to a node on the public side, open over the VPN (a WireGuard tunnel), and nothing but
# the SSH port is let in over the VPN either.
{ common, pkgs, lib }:
let
  inherit (common) postures;
  p = postures;
  probePort = 8080;
  vpnPeer = {
    imports = [ common.wireguardKeys ];
    networking.wireguard.interfaces.wg0 = {
      ips = [ "${p.vpn.peer}/24" ];
      listenPort = 51820;
      privateKeyFile = "/var/lib/wireguard/private.key";
    };
    networking.firewall.allowedUDPPorts = [ 51820 ];
  };
in
common.mkTest { name = "firewall"; } {
  nodes.server = common.node p.firewall.server {
    imports = [ common.wireguardKeys ];
    # A second service on the server, opened nowhere: with trust = "ssh" the VPN must not
    # reach it either.
    systemd.services.paranoid-probe-listener = {
      wantedBy = [ "multi-user.target" ];
      serviceConfig.ExecStart = "${pkgs.python3}/bin/python3 -m http.server ${toString probePort} --bind 0.0.0.0 --directory /var/empty";
    };
  };
  nodes.vpnpeer = vpnPeer;
  # On the public side only: same LAN, no tunnel.
  nodes.outsider = { };

  testScript = { nodes, ... }: common.prelude + ''
    server_lan = "${nodes.server.networking.primaryIPAddress}"
    peer_lan = "${nodes.vpnpeer.networking.primaryIPAddress}"
    server_vpn = "${p.vpn.server}"
    peer_vpn = "${p.vpn.peer}"

    start_all()
    server.wait_for_unit("sshd.service")
    server.wait_for_unit("paranoid-probe-listener.service")
    server.wait_for_open_port(${toString probePort})
    outsider.wait_for_unit("multi-user.target")
    wg_peers(server, server_lan, server_vpn, vpnpeer, peer_lan, peer_vpn)

    with subtest("the firewall is loaded (nftables) and both services listen on every address"):
        ruleset = server.succeed("nft list ruleset")
        expect_in("table inet nixos-fw", ruleset, "nft list ruleset")
        server.succeed("ss -Htln 'sport = :22' | grep -q .")
        server.succeed("ss -Htln 'sport = :${toString probePort}' | grep -q .")
        # Loopback is trusted: the listener itself works.
        expect_in("HTTP/", server.succeed("curl -sSI --max-time 5 http://127.0.0.1:${toString probePort}/"), "probe listener on loopback")

    with subtest("port 22 is closed from the public side"):
        assert tcp_banner(outsider, server_lan, 22) == "", "port 22 answered an outsider on the LAN"
        # The VPN peer is on the same LAN: the LAN address is closed to it as well.
        assert tcp_banner(vpnpeer, server_lan, 22) == "", "port 22 answered on the LAN address"

    with subtest("port 22 is open over the VPN"):
        expect_in("SSH-", tcp_banner(vpnpeer, server_vpn, 22), "port 22 over wg0")

    with subtest("nothing else is let in over the VPN (trust = ssh)"):
        # The same request that works on loopback times out from the VPN and from the LAN.
        vpnpeer.fail(f"curl -sSI --max-time 5 http://{server_vpn}:${toString probePort}/")
        outsider.fail(f"curl -sSI --max-time 5 http://{server_lan}:${toString probePort}/")
  '';
}
