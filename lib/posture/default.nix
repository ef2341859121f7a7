# The effective posture: what each daemon will do, computed once from what NixOS renders, with
# the daemon's own semantics. Every consumer reads this one model: paranoid's guards (NixOS
# assertions), the projection (and so `check`, `matrix` and `eval`), and the sandbox, which holds
# it to the real programs (`sshd -T -C`, `nix show-config`, `visudo`, nft, auditd).
#
#   of { config; options ? null; } → { accounts; network; sshd; nix; firewall; sudo; audit; adminPath; }
#
# `options` (the evaluation's option tree) lets findings name the files that defined a value;
# without it they name the option only. Each part is lazy: a guard that reads only `adminPath`
# forces only what that needs.
{ lib, render }:
let
  net = import ./net.nix { inherit lib; };
  origin = import ./origin.nix { inherit lib; };
  accountsOf = import ./accounts.nix { inherit lib; };
  networkOf = import ./network.nix { inherit lib net; };
  sshdOf = import ./sshd.nix { inherit lib net render origin; };
  nixOf = import ./nixconf.nix { inherit lib render origin; };
  firewallOf = import ./firewall.nix { inherit lib net origin; };
  sudoOf = import ./sudo.nix { inherit lib render origin; };
  auditOf = import ./audit.nix { inherit lib origin; };
  adminPathOf = import ./admin-path.nix { inherit lib; };
in
{
  inherit net;

  of =
    { config, options ? null }:
    rec {
      accounts = accountsOf { inherit config; };
      network = networkOf { inherit config; };
      sshd = sshdOf { inherit config options accounts network; };
      nix = nixOf { inherit config options accounts; };
      firewall = if sshd == null then null else firewallOf { inherit config options sshd network; };
      sudo = sudoOf { inherit config options accounts; };
      audit = auditOf { inherit config options render; };
      adminPath = adminPathOf {
        inherit sshd firewall sudo network;
        accounts = accounts;
        vpnOnly = config.paranoid.vpn.sshOnlyOverVpn or false;
      };
    };
}
