# sshd's effective configuration, from the sshd_config NixOS renders, read with sshd's own
# semantics (OpenSSH servconf.c, auth.c):
# - keywords are case-insensitive; ChallengeResponseAuthentication, SKeyAuthentication and the
#   *KeyTypes names are aliases;
# - for a connection, the FIRST value of a keyword among the Match blocks that match wins; only
#   if none sets it, the first global value; else the compiled-in default;
# - AllowUsers/DenyUsers/AllowGroups/DenyGroups add up within a section, and a matching Match
#   block's list replaces the global one;
# - Match criteria on one line are ANDed; patterns are comma lists with `!` negation, globs, and
#   CIDR blocks for addresses (sshd -T -C fails a criterion it was given no value for);
# - Port, ListenAddress, HostKey, Subsystem… are global only.
# Every line keeps the option (and the files) that produced it, so a finding names what the host
# really set. `Include` cannot be followed offline: the posture is then not judged, and says so.
{ lib, net, render, origin }:
{ config, options ? null, accounts, network }:
let
  inherit (lib) filter head tail elem elemAt length concatMap concatLists imap1 splitString hasPrefix toLower optional optionals unique attrNames attrValues any all mapAttrs listToAttrs nameValuePair;

  ossh = config.services.openssh;

  aliases = {
    challengeresponseauthentication = "kbdinteractiveauthentication";
    skeyauthentication = "kbdinteractiveauthentication";
    pubkeyacceptedkeytypes = "pubkeyacceptedalgorithms";
    hostbasedacceptedkeytypes = "hostbasedacceptedalgorithms";
    dsaauthentication = "pubkeyauthentication";
    keepalive = "tcpkeepalive";
    hostdsakey = "hostkey";
  };
  canonical = k: let l = toLower k; in aliases.${l} or l;

  # Keywords sshd refuses inside a Match block (SSHCFG_GLOBAL in servconf.c), by the name as
  # written: an old name can be global-only where its canonical one is not (DSAAuthentication;
  # `sshd -t` refuses it in a Match block, PubkeyAuthentication is fine there).
  globalOnly = [
    "dsaauthentication"
    "port" "listenaddress" "addressfamily" "hostkey" "hostcertificate" "hostkeyagent" "hostkeyalgorithms"
    "ciphers" "macs" "kexalgorithms" "compression" "logingracetime" "maxstartups" "persourcemaxstartups"
    "persourcenetblocksize" "persourcepenalties" "persourcepenaltyexemptlist" "pidfile" "printmotd"
    "printlastlog" "strictmodes" "tcpkeepalive" "usedns" "usepam" "xauthlocation" "syslogfacility"
    "permituserenvironment" "modulifile" "securitykeyprovider" "versionaddendum" "fingerprinthash"
    "gssapicleanupcredentials" "gssapistrictacceptorcheck" "kerberosorlocalpasswd" "kerberosticketcleanup"
    "sshdsessionpath" "sshdauthpath" "ignoreuserknownhosts"
  ];
  accumulating = [ "allowusers" "denyusers" "allowgroups" "denygroups" ];

  # ---- key algorithm lists (PubkeyAcceptedAlgorithms, HostKeyAlgorithms) ----------------------
  # Every key and signature algorithm sshd knows, in the order of sshkey.c's table (`ssh -Q
  # key-sig`), as NixOS's OpenSSH 10 has it (DSA is gone there), and the compiled-in default
  # (KEX_DEFAULT_PK_ALG, the same in 9.x and 10.x).
  allKeyAlgorithms = [
    "ssh-ed25519" "ssh-ed25519-cert-v01@openssh.com" "sk-ssh-ed25519@openssh.com" "sk-ssh-ed25519-cert-v01@openssh.com"
    "ecdsa-sha2-nistp256" "ecdsa-sha2-nistp256-cert-v01@openssh.com" "ecdsa-sha2-nistp384" "ecdsa-sha2-nistp384-cert-v01@openssh.com"
    "ecdsa-sha2-nistp521" "ecdsa-sha2-nistp521-cert-v01@openssh.com" "sk-ecdsa-sha2-nistp256@openssh.com"
    "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com" "webauthn-sk-ecdsa-sha2-nistp256@openssh.com"
    "ssh-rsa" "ssh-rsa-cert-v01@openssh.com" "rsa-sha2-256" "rsa-sha2-256-cert-v01@openssh.com" "rsa-sha2-512" "rsa-sha2-512-cert-v01@openssh.com"
  ];
  defaultKeyAlgorithms = [
    "ssh-ed25519-cert-v01@openssh.com" "ecdsa-sha2-nistp256-cert-v01@openssh.com" "ecdsa-sha2-nistp384-cert-v01@openssh.com"
    "ecdsa-sha2-nistp521-cert-v01@openssh.com" "sk-ssh-ed25519-cert-v01@openssh.com" "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com"
    "rsa-sha2-512-cert-v01@openssh.com" "rsa-sha2-256-cert-v01@openssh.com" "ssh-ed25519" "ecdsa-sha2-nistp256"
    "ecdsa-sha2-nistp384" "ecdsa-sha2-nistp521" "sk-ssh-ed25519@openssh.com" "sk-ecdsa-sha2-nistp256@openssh.com"
    "rsa-sha2-512" "rsa-sha2-256"
  ];
  # kex.c kex_assemble_names: `+list` appends to the default, `-list` removes from it (an empty
  # result is the default again: sshd re-assembles it for every connection), `^list` puts the
  # names first; each remaining entry is a wildcard pattern expanded against the known
  # algorithms in their table order, a name already present kept once. Names no sshd knows add
  # nothing (sshd -t refuses them; the check's sshd drops names only a newer OpenSSH knows).
  resolveAlgorithms =
    v:
    let
      first = builtins.substring 0 1 v;
      rest = if elem first [ "+" "-" "^" ] then builtins.substring 1 (-1) v else v;
      pats = filter (x: x != "") (splitString "," rest);
      hit = p: a: net.patternList { } p a == 1;
      cat = a: b: a ++ filter (x: !(elem x a)) b;
      expand = ps: lib.foldl' (acc: p: cat acc (filter (hit p) allKeyAlgorithms)) [ ] ps;
      removed = filter (a: !(any (p: hit p a) pats)) defaultKeyAlgorithms;
      list =
        if v == "" then defaultKeyAlgorithms
        else if first == "-" then (if removed == [ ] then defaultKeyAlgorithms else removed)
        else if first == "+" then expand (cat defaultKeyAlgorithms pats)
        else if first == "^" then expand (cat pats defaultKeyAlgorithms)
        else expand pats;
    in
    lib.concatStringsSep "," list;
  algorithmLists = [ "pubkeyacceptedalgorithms" "hostkeyalgorithms" ];

  # The keywords the posture is judged on, with sshd -T's compiled-in defaults (OpenSSH 9/10).
  defaults = {
    passwordauthentication = "yes";
    kbdinteractiveauthentication = "yes";
    pubkeyauthentication = "yes";
    permitemptypasswords = "no";
    permitrootlogin = "prohibit-password";
    authenticationmethods = "any";
    allowtcpforwarding = "yes";
    allowstreamlocalforwarding = "yes";
    allowagentforwarding = "yes";
    x11forwarding = "no";
    disableforwarding = "no";
    permittunnel = "no";
    gatewayports = "no";
    permittty = "yes";
    authorizedkeysfile = ".ssh/authorized_keys .ssh/authorized_keys2";
    authorizedkeyscommand = "none";
    authorizedprincipalsfile = "none";
    trustedusercakeys = "none";
    hostbasedauthentication = "no";
    gssapiauthentication = "no";
    kerberosauthentication = "no";
    permituserenvironment = "no";
    forcecommand = "none";
    chrootdirectory = "none";
    maxauthtries = "6";
    loglevel = "INFO";
    usepam = "no";
    allowusers = "";
    denyusers = "";
    allowgroups = "";
    denygroups = "";
    pubkeyacceptedalgorithms = lib.concatStringsSep "," defaultKeyAlgorithms;
    hostkeyalgorithms = lib.concatStringsSep "," defaultKeyAlgorithms;
  };
  tracked = attrNames defaults;

  # sshd -T prints a multistate by the first name of its value.
  normalise =
    kw: v:
    let l = toLower v; in
    if elem kw [ "allowtcpforwarding" "allowstreamlocalforwarding" ] && l == "all" then "yes"
    else if kw == "permitrootlogin" && l == "without-password" then "prohibit-password"
    # Log levels are names sshd prints in capitals, however they are written, DEBUG1 by its
    # first name DEBUG (log.c's table; `sshd -T`).
    else if kw == "loglevel" then (let u = lib.toUpper v; in if u == "DEBUG1" then "DEBUG" else u)
    else if elem kw algorithmLists then resolveAlgorithms v
    else if elem kw [ "authorizedkeysfile" "authorizedkeyscommand" "forcecommand" "chrootdirectory"
      "authorizedprincipalsfile" "trustedusercakeys" "allowusers" "denyusers" "allowgroups" "denygroups" "authenticationmethods" ] then v
    else l;

  # ---- the rendered lines, each with its origin ------------------------------------------------

  settingFiles = origin.settingFiles options [ "services" "openssh" "settings" ];

  # The module's own lines in extraConfig (mkOrder 0) come from these options.
  moduleOptions = {
    port = "services.openssh.ports";
    listenaddress = "services.openssh.listenAddresses";
    subsystem = "services.openssh.allowSFTP";
    authorizedkeysfile = "services.openssh.authorizedKeysInHomedir";
    hostkey = "services.openssh.hostKeys";
    addressfamily = "networking.enableIPv6";
    xauthlocation = "programs.ssh.setXAuthLocation";
    authorizedkeyscommand = "services.openssh.authorizedKeysCommand";
    authorizedkeyscommanduser = "services.openssh.authorizedKeysCommandUser";
  };

  settings = lib.filterAttrs (_: v: v != null) ossh.settings;
  settingsLines = concatMap (k:
    map (text: { inherit text; origin = { option = "services.openssh.settings.${k}"; files = settingFiles k; }; })
      (splitString "\n" (render.sshdLine k settings.${k}))) (attrNames settings);

  extraOpt = origin.at options [ "services" "openssh" "extraConfig" ];
  moduleFile = if extraOpt == null then null else toString (head (extraOpt.declarations ++ [ "" ]));
  extraDefs = if extraOpt == null then [ ] else extraOpt.definitionsWithLocations;
  attributed = concatMap (d: map (text: { inherit text; file = toString d.file; }) (splitString "\n" d.value)) extraDefs;
  # Only trust the attribution if it reproduces the merged text exactly.
  extraLines =
    if extraDefs != [ ] && lib.concatMapStringsSep "\n" (l: l.text) attributed == ossh.extraConfig then
      map (l: {
        inherit (l) text;
        origin =
          let kw = canonical (head (splitString " " (lib.trim l.text) ++ [ "" ])); in
          if l.file == moduleFile && moduleOptions ? ${kw} then { option = moduleOptions.${kw}; files = [ ]; }
          else { option = "services.openssh.extraConfig"; files = [ (origin.pretty l.file) ]; };
      }) attributed
    else map (text: { inherit text; origin = { option = "services.openssh.extraConfig"; files = [ ]; }; }) (splitString "\n" ossh.extraConfig);

  # The file as sshd reads it: settings, then extraConfig, then the final newline.
  rawLines = imap1 (n: l: l // { line = n; }) (settingsLines ++ extraLines);

  # ---- parsing ---------------------------------------------------------------------------------

  # `Keyword args` or `Keyword=args`; quotes stripped from arguments.
  parseLine =
    l:
    let
      t = lib.trim l.text;
      m = builtins.match "([^[:space:]=]+)[[:space:]]*=?[[:space:]]*(.*)" t;
      args = filter (a: a != "") (map (lib.removePrefix "\"") (map (lib.removeSuffix "\"") (splitString " " (builtins.replaceStrings [ "\t" ] [ " " ] (elemAt m 1)))));
    in
    if t == "" || hasPrefix "#" t || m == null then null
    else l // { keyword = elemAt m 0; canonical = canonical (elemAt m 0); inherit args; value = lib.concatStringsSep " " args; };

  directives = filter (d: d != null) (map parseLine rawLines);

  # Split into the global section and the Match blocks (each with its directives).
  sections = lib.foldl' (acc: d:
    if d.canonical == "match" then acc // { blocks = acc.blocks ++ [ { line = d.line; criteria = d.args; text = d.text; origin = d.origin; directives = [ ]; } ]; }
    else if acc.blocks == [ ] then acc // { global = acc.global ++ [ d ]; }
    else acc // { blocks = lib.init acc.blocks ++ [ (lib.last acc.blocks // { directives = (lib.last acc.blocks).directives ++ [ d ]; }) ]; })
    { global = [ ]; blocks = [ ]; } directives;
  global = sections.global;
  blocks = lib.imap0 (i: b: b // { index = i; }) sections.blocks;

  # ---- findings about the file itself ----------------------------------------------------------

  includes = filter (d: d.canonical == "include") directives;
  unjudged = map (d: {
    inherit (d) line text origin;
    reason =
      if all (p: hasPrefix "/nix/store/" p) d.args
      then "sshd reads ${d.value} here, a store file paranoid does not open: the effective posture cannot be judged offline"
      else "sshd reads ${d.value} at run time, a file the configuration does not contain: the effective posture cannot be judged";
  }) includes;

  notInMatch = concatMap (b: map (d: {
    inherit (d) line text origin;
    reason = "`${d.keyword}` is not allowed within a Match block (`Match ${lib.concatStringsSep " " b.criteria}` on line ${toString b.line}): sshd refuses to start";
  }) (filter (d: elem d.canonical globalOnly || elem (toLower d.keyword) globalOnly) b.directives)) blocks;

  # sshd.c at startup: with AuthenticationMethods set in the global section, at least one of its
  # lists must name only methods that are enabled there (auth2_methods_valid(list, 1)), or sshd
  # refuses to start ("AuthenticationMethods cannot be satisfied by enabled authentication
  # methods"); an unknown method is refused when the file is read. Lists in Match blocks are
  # checked only when a connection matches (judged per connection, loginOf).
  globalValue = kw:
    let d = lib.findFirst (d: d.canonical == kw) null global; in
    if d == null then { value = defaults.${kw}; } else d // { value = normalise kw d.value; };
  methodSwitch = {
    publickey = "pubkeyauthentication";
    password = "passwordauthentication";
    keyboard-interactive = "kbdinteractiveauthentication";
    hostbased = "hostbasedauthentication";
    gssapi-with-mic = "gssapiauthentication";
  };
  unsatisfiable =
    let
      am = globalValue "authenticationmethods";
      lists = map (splitString ",") (words am.value);
      base = m: head (splitString ":" m);
      unknown = filter (m: !(methodSwitch ? ${base m})) (concatMap (x: x) lists);
      enabled = m: (globalValue methodSwitch.${base m}).value == "yes";
      disabled = unique (filter (m: !enabled m) (concatMap (x: x) lists));
    in
    if am.value == "any" || !(am ? line) then [ ]
    else if unknown != [ ] then [ (am // { reason = "AuthenticationMethods names ${lib.concatStringsSep ", " unknown}, which sshd does not know: sshd refuses to start"; fix = "use only publickey, password, keyboard-interactive, hostbased or gssapi-with-mic in ${am.origin.option or "services.openssh.settings.AuthenticationMethods"}"; }) ]
    else optional (!(any (all enabled) lists)) (am // {
      reason = "AuthenticationMethods ${am.value}: every list needs a method this sshd_config disables (${lib.concatMapStringsSep ", " (m: "${m}: ${methodSwitch.${base m}} ${(globalValue methodSwitch.${base m}).value}") disabled}), so sshd refuses to start (\"AuthenticationMethods cannot be satisfied by enabled authentication methods\"): nobody can log in over SSH";
      fix = "give AuthenticationMethods a list of enabled methods (\"publickey\" with paranoid.ssh), or remove your definition of ${am.origin.option or "services.openssh.settings.AuthenticationMethods"}";
    });

  # ---- Match evaluation ------------------------------------------------------------------------

  # Criteria → list of { name; arg; } (both `User x` and `User=x` forms).
  criteriaOf =
    args:
    let
      go = xs:
        if xs == [ ] then [ ]
        else
          let
            a = head xs;
            kv = builtins.match "([A-Za-z-]+)=(.*)" a;
            name = toLower (if kv != null then elemAt kv 0 else a);
          in
          if hasPrefix "#" a then [ ]
          else if elem name [ "all" "invalid-user" ] then [ { inherit name; arg = null; } ] ++ go (tail xs)
          else if kv != null then [ { inherit name; arg = elemAt kv 1; } ] ++ go (tail xs)
          else [ { inherit name; arg = if tail xs == [ ] then null else head (tail xs); } ] ++ go (lib.drop 2 xs);
    in
    go args;

  knownCriteria = [ "all" "user" "group" "host" "address" "localaddress" "localport" "rdomain" "invalid-user" ];

  # true / false for a connection; criteria this model cannot evaluate count as matching, so a
  # block that could weaken some connection is never assumed away.
  criterionMatches =
    ctx: c:
    if c.name == "all" then true
    else if c.name == "user" then net.patternList { } c.arg ctx.user == 1
    else if c.name == "group" then ctx.exists && any (g: net.patternList { } c.arg g == 1) ctx.groups && !(any (g: net.patternList { } c.arg g == -1) ctx.groups)
    else if c.name == "host" then net.patternList { lower = true; } c.arg ctx.host == 1
    else if c.name == "address" then net.addrList c.arg ctx.addr == 1
    else if c.name == "localaddress" then net.addrList c.arg ctx.laddr == 1
    else if c.name == "localport" then c.arg == toString ctx.lport
    else if c.name == "rdomain" then false
    else if c.name == "invalid-user" then !ctx.exists
    else true;

  blockMatches = ctx: b: all (criterionMatches ctx) (criteriaOf b.criteria);

  # `Match RDomain` tests the routing domain of the connection's socket: on Linux the VRF device
  # it is bound to, an empty name when none (port-net.c sys_get_rdomain), which `*` or `!vrf`
  # match. `sshd -T -C` without rdomain= never matches it (OpenSSH 9.2: test mode fails a
  # criterion it was given no value for), so neither the model nor sshd -T can say which real
  # connections the block applies to.
  rdomainBlocks = filter (b: any (c: c.name == "rdomain") (criteriaOf b.criteria)) blocks;
  rdomainUnjudged = map (b: {
    inherit (b) line text origin;
    reason = "`Match ${lib.concatStringsSep " " b.criteria}` depends on the routing domain (VRF) of each connection's socket, which the configuration does not say (a socket bound to no VRF has an empty one, which `*` matches; `sshd -T -C` without rdomain= never matches): the effective posture cannot be judged";
  }) rdomainBlocks;

  unknownCriteria = concatMap (b: map (c: {
    line = b.line; text = b.text; origin = b.origin;
    reason = "Match criterion `${c.name}` is not modelled: the block is assumed to apply to every connection";
  }) (filter (c: !(elem c.name knownCriteria)) (criteriaOf b.criteria))) blocks;

  # ---- effective values ------------------------------------------------------------------------

  firstIn = ds: kw: let m = filter (d: d.canonical == kw) ds; in if m == [ ] then null else head m;

  # The effective value of every tracked keyword for the set of matching blocks.
  profileFor =
    matching:
    let
      matchDirs = concatMap (b: b.directives) matching;
      entry = kw:
        if elem kw accumulating then
          let
            fromMatch = filter (d: d.canonical == kw) matchDirs;
            fromGlobal = filter (d: d.canonical == kw) global;
            chosen = if fromMatch != [ ] then fromMatch else fromGlobal;
          in
          { value = lib.concatStringsSep " " (concatMap (d: d.args) chosen); lines = map (d: d.line) chosen; }
        else
          let d = let m = firstIn matchDirs kw; in if m != null then m else firstIn global kw; in
          if d == null then { value = defaults.${kw}; line = null; }
          else { value = normalise kw d.value; inherit (d) line; };
    in
    {
      blocks = map (b: b.line) matching;
      values = lib.genAttrs tracked entry;
    };

  # ---- connections -----------------------------------------------------------------------------

  ports =
    let
      portDirs = filter (d: d.canonical == "port") global;
      listen = filter (d: d.canonical == "listenaddress") global;
      portsDeclared = if portDirs == [ ] then [ 22 ] else map (d: lib.toInt (head d.args)) portDirs;
      # ListenAddress host[:port] / [v6]:port; without a port it takes every Port.
      parseListen = d:
        let
          a = head d.args;
          v6 = builtins.match "[[]([0-9a-fA-F:.]*)[]]:([0-9]+)" a;
          v4 = builtins.match "([^:]*):([0-9]+)" a;
        in
        if v6 != null then [ { address = elemAt v6 0; port = lib.toInt (elemAt v6 1); inherit (d) line origin; } ]
        else if v4 != null then [ { address = elemAt v4 0; port = lib.toInt (elemAt v4 1); inherit (d) line origin; } ]
        else map (p: { address = a; port = p; inherit (d) line origin; }) portsDeclared;
      wildcard = a: elem a [ "0.0.0.0" "::" "*" "" ];
    in
    if socketStreams != null then socketListeners
    else if listen == [ ] then map (p: { port = p; address = null; line = null; origin = null; }) portsDeclared
    else map (l: l // { address = if wildcard l.address then null else l.address; }) (concatMap parseListen listen);

  # startWhenNeeded: systemd's sshd.socket listens and starts `sshd -i` per connection, which
  # ignores Port and ListenAddress; where sshd is reached is the socket's ListenStream=
  # (listenStreams and socketConfig.ListenStream: a port, addr:port, [v6]:port; paths and
  # vsock are not TCP).
  socket = config.systemd.sockets.sshd or null;
  socketStreams =
    if !(ossh.startWhenNeeded or false) || socket == null then null
    else
      map (x: { value = toString x; option = "systemd.sockets.sshd.listenStreams"; }) (socket.listenStreams or [ ])
      ++ map (x: { value = toString x; option = "systemd.sockets.sshd.socketConfig.ListenStream"; }) (lib.toList (socket.socketConfig.ListenStream or [ ]));
  socketListeners = concatMap (s:
    let
      a = s.value;
      port = builtins.match "([0-9]+)" a;
      v6 = builtins.match "[[]([0-9a-fA-F:.]*)[]]:([0-9]+)" a;
      v4 = builtins.match "([0-9.]+|[*]):([0-9]+)" a;
      at = address: p: [ { address = if elem address [ "0.0.0.0" "::" "*" "" ] then null else address; port = lib.toInt p; line = null; origin = { inherit (s) option; files = [ ]; }; } ];
    in
    if port != null then at "" (head port)
    else if v6 != null then at (elemAt v6 0) (elemAt v6 1)
    else if v4 != null then at (elemAt v4 0) (elemAt v4 1)
    else [ ]) socketStreams;

  # Where sshd listens: one entry per (port, address); address null means every interface.
  listeners = map (l: l // { interface = if l.address == null then null else network.interfaceOf l.address; }) ports;
  sshPorts = unique (map (l: l.port) listeners);

  accountList = attrValues accounts.accounts;
  allowUsersLiteral = filter (u: !(lib.hasInfix "*" u) && !(lib.hasInfix "?" u) && !(hasPrefix "!" u))
    (map (p: head (splitString "@" p)) (concatMap (d: d.args) (filter (d: elem d.canonical [ "allowusers" ]) directives)));
  allowGroups = concatMap (d: d.args) (filter (d: d.canonical == "allowgroups") directives);
  matchUserWitnesses = concatMap (b: concatMap (c:
    if c.name == "user" && c.arg != null
    then map (p: builtins.replaceStrings [ "*" "?" ] [ "x" "x" ] p) (filter (p: !(hasPrefix "!" p)) (splitString "," c.arg))
    else [ ]) (criteriaOf b.criteria)) blocks;

  principalNames = unique (
    [ "root" ]
    ++ map (a: a.name) (filter (a: a.admin || a.isNormalUser) accountList)
    ++ allowUsersLiteral
    ++ concatMap accounts.membersOf allowGroups
    ++ matchUserWitnesses
    # An account nobody configured: what any other login name meets.
    ++ [ "paranoid-nobody" ]);

  principal = name:
    let a = accounts.accounts.${name} or null; in
    {
      user = name;
      exists = a != null;
      groups = if a == null then [ ] else a.groups;
      home = if a == null then "/home/${name}" else a.home;
    };

  # Extra client addresses taken from Address criteria, so a block naming some network is
  # evaluated for a connection from it.
  addressWitnesses = unique (filter (x: x != null) (concatMap (b: concatMap (c:
    if elem c.name [ "address" ] && c.arg != null then map net.witness (splitString "," c.arg) else [ ]) (criteriaOf b.criteria)) blocks));
  origins =
    network.representatives
    ++ map (addr: {
      network = network.classify addr;
      inherit addr;
      laddr = (lib.findFirst (r: r.network == network.classify addr) (head network.representatives) network.representatives).laddr;
      interface = (lib.findFirst (r: r.network == network.classify addr) (head network.representatives) network.representatives).interface;
    }) (filter (a: !(elem a (map (r: r.addr) network.representatives))) addressWitnesses);

  contexts = concatMap (name:
    concatMap (o: map (port: principal name // {
      inherit (o) network addr laddr interface;
      # UseDNS no (NixOS's default): sshd matches Host against the address itself.
      host = o.addr;
      lport = port;
      id = "${name}@${o.network}${lib.optionalString (o.addr != (lib.findFirst (r: r.network == o.network) o network.representatives).addr) "(${o.addr})"}:${toString port}";
    }) sshPorts) origins) principalNames;

  # Contexts grouped by the blocks they match: each distinct set evaluated once.
  withBlocks = map (ctx: ctx // { matching = filter (blockMatches ctx) blocks; key = toString (map (b: b.index) (filter (blockMatches ctx) blocks)); }) contexts;
  keys = unique (map (c: c.key) withBlocks);
  profiles = map (k: profileFor (head (filter (c: c.key == k) withBlocks)).matching) keys;
  profileIndex = listToAttrs (lib.imap0 (i: k: nameValuePair k i) keys);

  # ---- who may log in, and how (auth.c allowed_user, auth_root_allowed) -------------------------

  userPatternMatches = ctx: p:
    let parts = splitString "@" p; in
    net.patternList { } (head parts) ctx.user == 1
    && (length parts == 1 || net.addrList (elemAt parts 1) ctx.addr == 1 || net.patternList { lower = true; } (elemAt parts 1) ctx.host == 1);
  words = s: filter (x: x != "") (splitString " " s);

  loginOf =
    ctx: v:
    let
      val = kw: v.${kw}.value;
      denyU = any (userPatternMatches ctx) (words (val "denyusers"));
      allowU = words (val "allowusers");
      denyG = any (g: any (p: net.patternList { } p g == 1) (words (val "denygroups"))) ctx.groups;
      allowG = words (val "allowgroups");
      rootMode = val "permitrootlogin";
      methods = val "authenticationmethods";
      # publickey alone completes authentication ("any", or a method list that is just publickey).
      keyAlone = methods == "any" || any (l: l == "publickey") (words methods);
      reasons =
        optional (!ctx.exists) "the account does not exist"
        ++ optional denyU "DenyUsers ${val "denyusers"} names it"
        ++ optional (allowU != [ ] && !(any (userPatternMatches ctx) allowU)) "AllowUsers ${val "allowusers"} does not name it"
        ++ optional denyG "DenyGroups ${val "denygroups"} names one of its groups"
        ++ optional (allowG != [ ] && !(any (g: any (p: net.patternList { } p g == 1) allowG) ctx.groups)) "AllowGroups ${val "allowgroups"} names none of its groups ([${toString ctx.groups}])"
        ++ optional (ctx.user == "root" && rootMode == "no") "PermitRootLogin no"
        ++ optional (ctx.user == "root" && rootMode == "forced-commands-only") "PermitRootLogin forced-commands-only (only keys with a forced command)"
        # Without PAM, sshd itself refuses a locked account ("!" in /etc/shadow), key or not.
        ++ optional (val "usepam" == "no" && (accounts.accounts.${ctx.user}.locked or false))
          "UsePAM no and its password is locked (NixOS writes \"!\" to /etc/shadow for an account without one): sshd refuses a locked account even with a key (leave services.openssh.settings.UsePAM on, or give ${ctx.user} a password hash)";
      # sshd accepts a key only by an algorithm in PubkeyAcceptedAlgorithms (auth2-pubkey.c):
      # each declared key with the algorithms it can sign with; a key of unknown type (a
      # keyFile) is assumed to fit.
      accepted = splitString "," (val "pubkeyacceptedalgorithms");
      keys = accounts.accounts.${ctx.user}.keyAlgorithms or [ ];
      keyFits = k: k.algorithms == null || any (a: elem a accepted) k.algorithms;
      algorithmsRefuse = keys != [ ] && !(any keyFits keys);
      keyReasons =
        optional (val "pubkeyauthentication" != "yes") "PubkeyAuthentication ${val "pubkeyauthentication"}"
        ++ optional (!keyAlone) "AuthenticationMethods ${methods} needs more than a key"
        ++ optional algorithmsRefuse "PubkeyAcceptedAlgorithms ${val "pubkeyacceptedalgorithms"} accepts none of its keys (${lib.concatStringsSep ", " (unique (map (k: k.type) keys))})";
      # The keywords behind each refusal, so a fix can name the lines (and options) to change.
      blame =
        optional denyU "denyusers"
        ++ optional (allowU != [ ] && !(any (userPatternMatches ctx) allowU)) "allowusers"
        ++ optional denyG "denygroups"
        ++ optional (allowG != [ ] && !(any (g: any (p: net.patternList { } p g == 1) allowG) ctx.groups)) "allowgroups"
        ++ optional (ctx.user == "root" && elem rootMode [ "no" "forced-commands-only" ]) "permitrootlogin";
      keyBlame =
        optional (val "pubkeyauthentication" != "yes") "pubkeyauthentication"
        ++ optional (!keyAlone) "authenticationmethods"
        ++ optional algorithmsRefuse "pubkeyacceptedalgorithms";
    in
    {
      allowed = reasons == [ ];
      inherit reasons blame keyBlame;
      withKey = reasons == [ ] && keyReasons == [ ];
      keyReasons = keyReasons;
    };

  # AuthorizedKeysFile entries for a user: %% %u %h expanded, relative paths under the home.
  keyFilesOf =
    ctx: v:
    let
      raw = words v.authorizedkeysfile.value;
      expand = f: builtins.replaceStrings [ "%%" "%u" "%h" "%U" ] [ "%" ctx.user ctx.home "%U" ] f;
      absolute = f: let e = expand f; in if hasPrefix "/" e then e else "${ctx.home}/${e}";
    in
    map (f: {
      path = absolute f;
      kind =
        if f == "none" then "none"
        else if hasPrefix "/etc/ssh/authorized_keys.d/" (absolute f) then "declared"
        else if lib.hasInfix "%h" f || !(hasPrefix "/" f) || lib.hasPrefix (ctx.home + "/") (absolute f) || hasPrefix "/home/" (absolute f) || hasPrefix "/root/" (absolute f) then "home"
        else "unmanaged";
    }) (filter (f: f != "none") raw)
    # Keys printed by a program at login: nothing the configuration (or this model) can read.
    ++ optional (v.authorizedkeyscommand.value != "none") { path = v.authorizedkeyscommand.value; kind = "command"; };

  # ---- host keys: does any connection get past key exchange? ----------------------------------
  # sshd offers, for every host key it loaded, the algorithms of its type that HostKeyAlgorithms
  # allows (sshd.c list_hostkey_types; RSA also as rsa-sha2-512/256). None: sshd starts, and
  # every connection ends in key exchange ("No supported key exchange algorithms"; measured
  # with OpenSSH 9.2 on loopback). A HostKey whose type the configuration does not say
  # (not from services.openssh.hostKeys) is assumed to fit.
  hostKeyAlgorithmsOf =
    k:
    if k.type == "rsa" then [ "rsa-sha2-512" "rsa-sha2-256" "ssh-rsa" ]
    else if k.type == "ed25519" then [ "ssh-ed25519" ]
    else if k.type == "ecdsa" then [ "ecdsa-sha2-nistp${toString (if (k.bits or null) == null then 256 else k.bits)}" ]
    else if k.type == "dsa" then [ "ssh-dss" ]
    else null;
  hostKeyLines = filter (d: d.canonical == "hostkey" && d.args != [ ]) global;
  hostKeyTypes = map (d:
    let k = lib.findFirst (k: toString (k.path or "") == head d.args) null (ossh.hostKeys or [ ]); in
    { path = head d.args; type = if k == null then null else k.type; algorithms = if k == null then null else hostKeyAlgorithmsOf k; }) hostKeyLines;
  certified = any (d: d.canonical == "hostcertificate") global;
  hostKeyOffer =
    let
      allowed = splitString "," (globalValue "hostkeyalgorithms").value;
      mine = concatMap (k: k.algorithms ++ optionals certified (map (a: "${a}-cert-v01@openssh.com") k.algorithms)) hostKeyTypes;
    in
    if hostKeyLines == [ ] || any (k: k.algorithms == null) hostKeyTypes then null
    else filter (a: elem a allowed) mine;
  unusable =
    let hka = globalValue "hostkeyalgorithms"; in
    optional (hostKeyOffer == [ ]) {
      line = hka.line or null;
      text = if hka ? text then hka.text else "HostKeyAlgorithms ${hka.value}";
      origin = hka.origin or { option = "services.openssh.settings.HostKeyAlgorithms"; files = [ ]; };
      reason = "HostKeyAlgorithms ${hka.value} allows no algorithm of sshd's host keys (${lib.concatMapStringsSep ", " (k: "${k.path}: ${toString k.type}") hostKeyTypes}): sshd starts, and every connection fails in key exchange (\"No supported key exchange algorithms\")";
      fix = "let HostKeyAlgorithms name an algorithm of a host key in services.openssh.hostKeys (ssh-ed25519 for an ed25519 key), or remove your definition of ${hka.origin.option or "services.openssh.settings.HostKeyAlgorithms"}";
    };
in
if !ossh.enable then null
else
{
  judged = unjudged == [ ] && rdomainUnjudged == [ ];
  unjudged = unjudged ++ rdomainUnjudged;
  # What sshd starts with but refuses every connection for.
  inherit unusable;
  hostKeys = hostKeyTypes;
  errors = map (e: e // { fix = "move it out of the Match block (before the first Match line of services.openssh.extraConfig), or into services.openssh.settings"; }) notInMatch
    ++ map (e: { inherit (e) line text origin reason fix; }) unsatisfiable;
  notModelled = unknownCriteria;
  # The lines a finding can point at: every value a connection gets, Match lines, Includes.
  lines = let
    used = unique (concatMap (p: concatMap (v: if v ? lines then v.lines else optional (v.line != null) v.line) (attrValues p.values)) profiles
      ++ map (b: b.line) blocks ++ map (d: d.line) includes ++ map (e: e.line) (notInMatch ++ unsatisfiable)
      ++ concatMap (e: optional (e.line != null) e.line) unusable
      ++ concatMap (l: optional (l.line != null) l.line) listeners
      ++ map (d: d.line) (filter (d: d.canonical == "subsystem") global));
  in map (d: { inherit (d) line keyword canonical value origin; }) (filter (d: elem d.line used) directives);
  blocks = map (b: { inherit (b) line criteria origin; }) blocks;
  inherit listeners;
  ports = sshPorts;
  subsystems = listToAttrs (map (d: nameValuePair (head d.args) { command = lib.concatStringsSep " " (tail d.args); inherit (d) line origin; })
    # sshd refuses a second Subsystem of one name; the first is the one it would use.
    (filter (d: d.canonical == "subsystem" && d.args != [ ]) global));
  inherit profiles;
  contexts = map (c:
    let v = (elemAt profiles profileIndex.${c.key}).values; in
    {
      inherit (c) id user exists groups network addr laddr lport host interface;
      profile = profileIndex.${c.key};
      login = loginOf c v;
      keyFiles = keyFilesOf c v;
    }) withBlocks;
}
