# vm-ssh: sshd as paranoid.ssh leaves it, probed from a stock OpenSSH client over a WireGuard
# tunnel (the VPN) and over the plain LAN. Proves behaviour: which logins and channels the
# server really grants, not what sshd_config says.
{ common, pkgs, lib }:
let
  inherit (common) postures keys;
  p = postures;
  server = p.ssh.server;

  # Client-side probes; the server address comes as $1.
  sshOpts = "-F /dev/null -i /root/id_ed25519 -o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=10";

  # -L: the local end listens (client side), the server must refuse the channel when used.
  localForwardProbe = pkgs.writeShellScript "paranoid-probe-forward-local" ''
    set -u
    ssh ${sshOpts} -o BatchMode=yes -o ExitOnForwardFailure=yes \
      -L 127.0.0.1:2222:127.0.0.1:22 "alice@$1" 'sleep 20' </dev/null >/dev/null 2>/tmp/forward-local.err &
    pid=$!
    listening=no
    for _ in $(seq 1 100); do
      if ss -Htln 'sport = :2222' | grep -q .; then listening=yes; break; fi
      sleep 0.2
    done
    banner=$(timeout 5 bash -c 'exec 3<>/dev/tcp/127.0.0.1/2222 && head -c 8 <&3' 2>/dev/null || true)
    sleep 2
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    echo "LISTENING=$listening"
    echo "BANNER=$banner"
    cat /tmp/forward-local.err
  '';

  # -A: the agent works locally; the remote session must not get a socket.
  agentProbe = pkgs.writeShellScript "paranoid-probe-agent" ''
    set -u
    eval "$(ssh-agent -s)" >/dev/null
    trap 'ssh-agent -k >/dev/null' EXIT
    ssh-add /root/id_ed25519 2>/dev/null
    echo "LOCAL_KEYS=$(ssh-add -l | wc -l)"
    ssh ${sshOpts} -o BatchMode=yes -A "alice@$1" \
      'echo "REMOTE_SOCK=''${SSH_AUTH_SOCK:-unset}"; echo "REMOTE_AGENT_DIRS=$(ls -d /tmp/ssh-* 2>/dev/null | wc -l)"'
  '';
in
common.mkTest { name = "ssh"; } {
  nodes.server = common.node server common.wireguardKeys;

  nodes.client = { pkgs, ... }: {
    imports = [ common.wireguardKeys ];
    networking.wireguard.interfaces.wg0 = {
      ips = [ "${p.vpn.peer}/24" ];
      listenPort = 51820;
      privateKeyFile = "/var/lib/wireguard/private.key";
    };
    networking.firewall.allowedUDPPorts = [ 51820 ];
    # sshpass types the right password when asked: if the server ever offered password or
    # keyboard-interactive authentication, the login would succeed and the test would fail.
    environment.systemPackages = [ pkgs.sshpass ];
  };

  testScript = { nodes, ... }: common.prelude + ''
    server_lan = "${nodes.server.networking.primaryIPAddress}"
    client_lan = "${nodes.client.networking.primaryIPAddress}"
    server_vpn = "${p.vpn.server}"
    client_vpn = "${p.vpn.peer}"
    sshd = "${nodes.server.services.openssh.package}/bin/sshd"
    opts = "${sshOpts}"

    start_all()
    server.wait_for_unit("sshd.service")
    client.wait_for_unit("multi-user.target")
    wg_peers(server, server_lan, server_vpn, client, client_lan, client_vpn)
    client.succeed("install -m 600 ${keys.private} /root/id_ed25519")

    with subtest("sshd listens everywhere, but only the VPN reaches it"):
        listening = server.succeed("ss -Htln 'sport = :22'")
        assert listening.strip() != "", "sshd is not listening on port 22"
        expect_in("SSH-", tcp_banner(client, server_vpn, 22), "port 22 over wg0")
        assert tcp_banner(client, server_lan, 22) == "", "port 22 answered on the LAN address; it must be reachable over the VPN only"

    with subtest("public-key login works for a user and for root"):
        out = client.succeed(f"ssh {opts} -o BatchMode=yes alice@{server_vpn} 'echo LOGIN_OK $(id -un)'")
        expect_in("LOGIN_OK alice", out, "key login as alice")
        out = client.succeed(f"ssh {opts} -o BatchMode=yes root@{server_vpn} 'echo LOGIN_OK $(id -u)'")
        expect_in("LOGIN_OK 0", out, "key login as root")

    with subtest("password and keyboard-interactive are refused, even with the right password"):
        for method in ["password", "keyboard-interactive"]:
            out = failing(
                client,
                f"sshpass -p {sh('${p.passwords.alice}')} ssh {opts} -o PubkeyAuthentication=no "
                f"-o PreferredAuthentications={method} -o NumberOfPasswordPrompts=1 alice@{server_vpn} true",
                f"{method} login",
            )
            # The server offers nothing but publickey.
            expect_in("Permission denied (publickey)", out, f"{method} login")

    with subtest("keys in ~/.ssh/authorized_keys are ignored"):
        client.succeed("ssh-keygen -q -t ed25519 -N ''' -f /root/rogue")
        rogue = client.succeed("cat /root/rogue.pub").strip()
        server.succeed(
            "install -d -m 700 -o bob -g users /home/bob/.ssh",
            f"echo {sh(rogue)} > /home/bob/.ssh/authorized_keys",
            "chown bob:users /home/bob/.ssh/authorized_keys && chmod 600 /home/bob/.ssh/authorized_keys",
        )
        failing(
            client,
            f"ssh -F /dev/null -i /root/rogue -o IdentitiesOnly=yes -o StrictHostKeyChecking=no "
            f"-o UserKnownHostsFile=/dev/null -o BatchMode=yes bob@{server_vpn} true",
            "login with a key from ~/.ssh/authorized_keys",
        )
        client.succeed(f"ssh {opts} -o BatchMode=yes bob@{server_vpn} true")

    with subtest("stdio forwarding (-W) is refused"):
        out = failing(client, f"ssh {opts} -o BatchMode=yes -W 127.0.0.1:22 alice@{server_vpn} </dev/null", "ssh -W")
        expect_in("administratively prohibited", out, "ssh -W")

    with subtest("local forwarding (-L) is refused when used"):
        out = client.succeed(f"${localForwardProbe} {server_vpn}")
        expect_in("LISTENING=yes", out, "ssh -L local end")
        expect_not_in("BANNER=SSH-", out, "ssh -L: sshd's banner came through the tunnel")
        expect_in("administratively prohibited", out, "ssh -L")

    with subtest("remote forwarding (-R) is refused"):
        out = failing(
            client,
            f"ssh {opts} -o BatchMode=yes -o ExitOnForwardFailure=yes -R 127.0.0.1:2223:127.0.0.1:22 alice@{server_vpn} true",
            "ssh -R",
        )
        expect_in("remote port forwarding failed", out, "ssh -R")
        server.fail("ss -Htln 'sport = :2223' | grep -q .")

    with subtest("agent forwarding (-A) gives the session no agent socket"):
        out = client.succeed(f"${agentProbe} {server_vpn}")
        expect_in("LOCAL_KEYS=1", out, "the local agent holds the key")
        expect_in("REMOTE_SOCK=unset", out, "SSH_AUTH_SOCK in the remote session")
        expect_in("REMOTE_AGENT_DIRS=0", out, "agent socket directories on the server")

    with subtest("SFTP is refused"):
        out = failing(client, f"echo pwd | sftp {opts} -o BatchMode=yes -b - alice@{server_vpn}", "sftp")
        expect_in("subsystem request failed", out, "sftp")

    with subtest("sshd -T: the effective values"):
        effective = sshd_t(server, sshd)
        expected = ${builtins.toJSON p.expect.sshdT}
        for key, value in expected.items():
            assert effective.get(key) == value, f"sshd -T: {key} is {effective.get(key)!r}, expected {value!r}"
        for key in ${builtins.toJSON p.expect.sshdAbsent}:
            assert key not in effective, f"sshd -T: {key} must be absent, found {effective[key]!r}"
        expect_not_in(".ssh/authorized_keys", effective.get("authorizedkeysfile", ""), "AuthorizedKeysFile")
  '';
}
