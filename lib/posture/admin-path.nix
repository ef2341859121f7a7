# Is there still a way in? At least one path must lead from the network (over the VPN when SSH
# is VPN-only) to root, with credentials that survive a reboot:
#   SSH port reachable on that network → sshd admits the account with a key alone → the account
#   has a declared key sshd accepts (PubkeyAcceptedAlgorithms) → its login shell runs sessions
#   (not nologin/false) → (root) done, or (another account) sudo / sudo-rs / doas lets it run a
#   shell as root, with no password or with one the account (or root, for rootpw) still has.
# Every link is read from the effective models (sshd, firewall, sudo, accounts), so a Match
# block, an AllowUsers, a locked hash or an unpersisted hashedPasswordFile breaks the path the
# same way it breaks the real host. When nothing leads in, `broken` says, for each account that
# could have been the way in, which links failed and what fixes them.
{ lib }:
{ sshd, firewall, sudo, accounts, network, vpnOnly }:
let
  inherit (lib) filter concatMap any head optional unique elem attrNames;

  # The networks an administrator comes from.
  networks = if vpnOnly then [ "vpn" ] else [ "vpn" "public" ];
  networkText = if vpnOnly then "over the VPN (${toString network.vpn})" else "from the network";

  reachable = ctx: firewall != null && any (t: t.port == ctx.lport && any (i: i.interface == ctx.interface && i.reachable) t.interfaces) firewall.ssh;
  declaredKeys = ctx: any (f: f.kind == "declared") ctx.keyFiles && (accounts.accounts.${ctx.user}.keys or 0) > 0;

  # sshd that starts but ends every connection in key exchange (no host key algorithm left).
  unusable = sshd != null && (sshd.unusable or [ ]) != [ ];
  shellRefuses = user: accounts.accounts.${user}.refusesSessions or false;

  entries = if sshd == null || unusable then [ ] else filter (c: elem c.network networks && c.exists) sshd.contexts;

  # How an account, once logged in, becomes root (null if it cannot).
  escalation =
    user:
    let
      usable = p: p.password == "none"
        || (p.password == "own" && (accounts.accounts.${user}.password or null) != null)
        || (p.password == "root" && (accounts.accounts.root.password or null) != null);
      ok = filter (p: p.account == user && usable p) sudo.paths;
    in
    if user == "root" then { via = "root"; }
    else if ok == [ ] then null
    else { via = (head ok).tool; inherit (head ok) password line text; };

  paths = concatMap (ctx:
    let esc = escalation ctx.user; in
    optional (reachable ctx && ctx.login.withKey && declaredKeys ctx && !(shellRefuses ctx.user) && esc != null) {
      account = ctx.user;
      inherit (ctx) network interface;
      port = ctx.lport;
      context = ctx.id;
      escalation = esc;
    }) entries;

  # ---- why each candidate fails ----------------------------------------------------------------

  candidates = unique ([ "root" ]
    ++ filter (n: accounts.accounts.${n}.admin) (attrNames accounts.accounts)
    ++ map (p: p.account) (filter (p: p.account != sudo.otherUser) sudo.paths)
    ++ (if sshd == null then [ ] else map (c: c.user) (filter (c: c.exists && c.login.allowed) sshd.contexts)));

  linksOf =
    user:
    let
      mine = filter (c: c.user == user) entries;
      a = accounts.accounts.${user};
      reach = filter reachable mine;
      admitted = filter (c: c.login.allowed) reach;
      withKey = filter (c: c.login.withKey) admitted;
      esc = escalation user;
      ownPaths = filter (p: p.account == user) sudo.paths;
    in
    (if sshd == null then [ "sshd is not running (services.openssh.enable = false)" ]
    else if sshd.errors != [ ] then [ "sshd refuses to start with this sshd_config: ${lib.concatMapStringsSep "; " (e: "line ${toString e.line}: ${e.reason}") sshd.errors}" ]
    else if unusable then [ "sshd refuses every connection: ${lib.concatMapStringsSep "; " (e: "${lib.optionalString (e.line != null) "line ${toString e.line}: "}${e.reason}") sshd.unusable}" ]
    else if mine == [ ] then [ "no connection ${networkText} can reach sshd: ${if vpnOnly then "SSH is VPN-only (paranoid.vpn.sshOnlyOverVpn) but the VPN interface ${toString network.vpn} has no address this host declares (set paranoid.vpn.tailscale.enable, or declare networking.wireguard.interfaces.${toString network.vpn})" else "no network"}" ]
    else if reach == [ ] then [ "the firewall admits SSH port(s) ${toString (unique (map (c: c.lport) mine))} on no interface ${networkText}" ]
    else if admitted == [ ] then [ "sshd refuses ${user}: ${lib.concatStringsSep "; " (unique (concatMap (c: c.login.reasons) reach))}" ]
    else if withKey == [ ] then [ "sshd does not let ${user} in with a key alone: ${lib.concatStringsSep "; " (unique (concatMap (c: c.login.keyReasons) admitted))}" ]
    else if !(any declaredKeys withKey) then [ "${user} has no key sshd reads: users.users.${user}.openssh.authorizedKeys is empty${lib.optionalString (!(any (c: any (f: f.kind == "declared") c.keyFiles) withKey)) " and AuthorizedKeysFile does not include /etc/ssh/authorized_keys.d/%u"}" ]
    else [ ])
    ++ optional (shellRefuses user)
      "${user}'s login shell ${a.shell} refuses every session (users.users.${user}.shell): sshd accepts the key, then the shell ends the login"
    ++ optional (user != "root" && esc == null) (
      if sudo.removed then "${user} cannot become root: no sudo, sudo-rs or doas is enabled"
      else if ownPaths == [ ] then "${user} cannot become root: no sudo, sudo-rs or doas rule lets it run a shell as root"
      else "${user} can become root only with a password it does not have after a reboot: ${
        let lost = a.passwordLost; in if lost != null then lost else "users.users.${user} sets no hashedPassword or hashedPasswordFile"}");

  broken = map (u: { account = u; links = linksOf u; }) candidates;
in
{
  ok = paths != [ ];
  inherit paths broken vpnOnly;
  networks = networks;
}
