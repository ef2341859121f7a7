# Who can become root through sudo, sudo-rs and doas, and whether a password is asked, from
# the files the tools will read: /etc/sudoers (security.sudo(-rs).configFile, or
# environment.etc.sudoers.text where a host writes it directly) and /etc/doas.conf.
# Semantics: sudoers (5): continuation lines, `Defaults` (`!authenticate`, `rootpw`,
# `targetpw`, per-user scopes), User_Alias, user lists with `%group`, `#uid`, `ALL` and `!`
# (the last matching item decides), `(runas)` and tags carried along a command list, and the
# LAST matching rule decides; doas.conf(5): `permit|deny [opts] identity [as target] [cmd …]`,
# the LAST matching rule decides. execWheelOnly makes the binary executable by wheel only.
# "Can become root" means: may run any command (ALL, or a shell) as root.
{ lib, render, origin }:
{ config, options ? null, accounts }:
let
  inherit (lib) filter head tail elem elemAt length concatMap splitString hasPrefix optional unique attrNames any;

  filesOf = path: origin.files (origin.at options path);

  trim = lib.trim;
  words = s: filter (x: x != "") (splitString " " (builtins.replaceStrings [ "\t" ] [ " " ] s));
  shells = [ "sh" "bash" "zsh" "dash" "fish" "ksh" "csh" "tcsh" "su" "sudo" "doas" "env" "nu" "xonsh" ];
  anyCommand = c: c == "ALL" || elem (lib.last (splitString "/" (head (words c ++ [ "" ])))) shells;

  accountNames = attrNames accounts.accounts;
  # Somebody with an account the configuration does not give to an admin.
  other = "<any other user>";
  groupsOf = name: if name == other then [ ] else accounts.accounts.${name}.groups;
  uidOf = name: if name == other then null else accounts.accounts.${name}.uid;
  inWheel = name: name == "root" || elem "wheel" (groupsOf name);

  # ---- sudoers ---------------------------------------------------------------------------------

  # Lines with continuations joined, comments removed (`#` followed by a digit is a uid/gid).
  logical =
    text:
    let
      raw = lib.imap1 (n: t: { line = n; text = t; }) (splitString "\n" text);
      joined = lib.foldl' (acc: l:
        if acc.open != null then
          let t = acc.open.text + l.text; in
          if lib.hasSuffix "\\" t then acc // { open = acc.open // { text = lib.removeSuffix "\\" t; }; }
          else acc // { done = acc.done ++ [ (acc.open // { text = t; }) ]; open = null; }
        else if lib.hasSuffix "\\" l.text then acc // { open = l // { text = lib.removeSuffix "\\" l.text; }; }
        else acc // { done = acc.done ++ [ l ]; }) { done = [ ]; open = null; } raw;
      stripComment = t:
        let
          t' = trim t;
          parts = splitString "#" t';
          kept = lib.foldl' (acc: p: if acc.stop then acc else if builtins.match "[0-9].*" p != null then acc // { s = acc.s + "#" + p; } else acc // { stop = true; }) { s = head parts; stop = false; } (tail parts);
        in
        if builtins.match "[#@]include(dir)?[[:space:]].*" t' != null then t' else trim kept.s;
    in
    filter (l: l.text != "") (map (l: l // { text = stripComment l.text; }) (joined.done ++ optional (joined.open != null) joined.open));

  commaList = s: filter (x: x != "") (map trim (splitString "," s));

  # Does an item list (users, with `!`, %group, #uid, aliases) admit `name`? Last match decides.
  listAdmits =
    aliases: items: name:
    lib.foldl' (acc: item:
      let
        neg = hasPrefix "!" item;
        i = trim (lib.removePrefix "!" item);
        hit =
          if i == "ALL" then true
          else if hasPrefix "%#" i then false
          else if hasPrefix "%:" i then elem (lib.removePrefix "%:" i) (groupsOf name)
          else if hasPrefix "%" i then elem (lib.removePrefix "%" i) (groupsOf name)
          else if hasPrefix "#" i then uidOf name != null && toString (uidOf name) == lib.removePrefix "#" i
          else if aliases ? ${i} then listAdmits aliases aliases.${i} name != null && listAdmits aliases aliases.${i} name
          else i == name;
      in
      if hit then !neg else acc) null items;

  runsAsRoot = runas:
    let users = commaList (head (splitString ":" runas)); in
    # `(:group)` keeps the invoking user; `()` and no runas mean root.
    (runas == "" ) || users == [ ] && !(lib.hasInfix ":" runas) || elem "ALL" users || elem "root" users || elem "#0" users;

  # `(runas) TAG: TAG: cmd, (runas2) cmd2` → commands with the runas and tags in effect.
  commandSpecs =
    text:
    (lib.foldl' (acc: item:
      let
        r = builtins.match "\\(([^)]*)\\)[[:space:]]*(.*)" item;
        runas = if r != null then elemAt r 0 else acc.runas;
        rest = if r != null then elemAt r 1 else item;
        peel = s: tags:
          let m = builtins.match "([A-Z_]+):[[:space:]]*(.*)" s; in
          if m != null && elem (elemAt m 0) [ "NOPASSWD" "PASSWD" "SETENV" "NOSETENV" "NOEXEC" "EXEC" "LOG_INPUT" "NOLOG_INPUT" "LOG_OUTPUT" "NOLOG_OUTPUT" "MAIL" "NOMAIL" "FOLLOW" "NOFOLLOW" "INTERCEPT" "NOINTERCEPT" ]
          then peel (elemAt m 1) (tags ++ [ (elemAt m 0) ]) else { command = s; inherit tags; };
        p = peel rest [ ];
        tags = acc.tags ++ p.tags;
        nopasswd = lib.foldl' (n: t: if t == "NOPASSWD" then true else if t == "PASSWD" then false else n) false tags;
      in
      { inherit runas tags; specs = acc.specs ++ [ { inherit runas nopasswd; command = trim p.command; } ]; })
      { runas = ""; tags = [ ]; specs = [ ]; } (commaList text)).specs;

  parseSudoers =
    text:
    let
      ls = logical text;
      classify = l:
        let
          t = l.text;
          inc = builtins.match "[#@](include(dir)?)[[:space:]]+(.*)" t;
          dflt = builtins.match "Defaults([:>@!][^[:space:]]*)?[[:space:]]+(.*)" t;
          alias = builtins.match "(User_Alias|Runas_Alias|Host_Alias|Cmnd_Alias|Cmd_Alias)[[:space:]]+(.*)" t;
          eq = builtins.match "([^=]*)=(.*)" t;
          before = if eq == null then [ ] else words (builtins.replaceStrings [ ", " " ," ] [ "," "," ] (trim (elemAt eq 0)));
        in
        if inc != null then l // { kind = "include"; path = elemAt inc 2; }
        else if dflt != null then l // { kind = "defaults"; scope = elemAt dflt 0; params = commaList (elemAt dflt 1); }
        else if alias != null then l // { kind = "alias"; aliasType = elemAt alias 0; defs = map (d: let m = builtins.match "[[:space:]]*([A-Z][A-Z0-9_]*)[[:space:]]*=(.*)" d; in if m == null then null else { name = elemAt m 0; items = commaList (elemAt m 1); }) (splitString ":" (elemAt alias 1)); }
        else if eq != null && length before == 2 && !(lib.hasInfix "=" (elemAt eq 1) && lib.hasInfix ":" (elemAt eq 1) && builtins.match ".*[^A-Z_]:[[:space:]]*[A-Za-z_]+[[:space:]]*=.*" (elemAt eq 1) != null)
        then l // { kind = "rule"; users = commaList (head before); hosts = commaList (elemAt before 1); specs = commandSpecs (elemAt eq 1); }
        else l // { kind = "unreadable"; };
      entries = map classify ls;
      userAliases = lib.listToAttrs (concatMap (e: map (d: lib.nameValuePair d.name d.items) (filter (d: d != null) e.defs)) (filter (e: e.kind == "alias" && e.aliasType == "User_Alias") entries));
    in
    { inherit entries userAliases; };

  # Whether sudo asks `name` for a password under the Defaults in force (last setting wins);
  # `by` is the Defaults line that last set `authenticate`, so a finding can point at it.
  defaultsFor =
    parsed: name:
    lib.foldl' (acc: e:
      let
        applies = e.scope == null || (hasPrefix ":" e.scope && listAdmits parsed.userAliases (commaList (lib.removePrefix ":" e.scope)) name == true);
        set = p: acc: if p == "!authenticate" then acc // { authenticate = false; by = e; } else if p == "authenticate" then acc // { authenticate = true; by = e; }
          else if elem p [ "rootpw" "targetpw" "runaspw" ] then acc // { whose = "root"; } else if elem p [ "!rootpw" "!targetpw" "!runaspw" ] then acc // { whose = "own"; } else acc;
      in
      if e.kind == "defaults" && applies then lib.foldl' (a: p: set (builtins.replaceStrings [ " " ] [ "" ] p) a) acc e.params else acc)
      { authenticate = true; whose = "own"; by = null; } parsed.entries;

  # ---- doas.conf -------------------------------------------------------------------------------

  parseDoas =
    text:
    map (l:
      let
        ws = words (builtins.replaceStrings [ "{" "}" ] [ " { " " } " ] l.text);
        action = head ws;
        # Drop options up to the identity; setenv { … } is skipped as a block.
        optsAndRest = lib.foldl' (acc: w:
          if acc.identity != null then acc // { rest = acc.rest ++ [ w ]; }
          else if acc.brace then acc // { brace = w != "}"; }
          else if w == "{" then acc // { brace = true; }
          else if elem w [ "nopass" "nolog" "persist" "keepenv" "setenv" ] then acc // { opts = acc.opts ++ [ w ]; }
          else acc // { identity = w; }) { opts = [ ]; identity = null; brace = false; rest = [ ]; } (tail ws);
        rest = optsAndRest.rest;
        after = k: let i = lib.lists.findFirstIndex (w: w == k) null rest; in if i == null || i + 1 >= length rest then null else elemAt rest (i + 1);
      in
      if !(elem action [ "permit" "deny" ]) || optsAndRest.identity == null then l // { kind = "unreadable"; }
      else l // {
        kind = "rule";
        inherit action;
        identity = optsAndRest.identity;
        nopass = elem "nopass" optsAndRest.opts;
        target = after "as";
        cmd = after "cmd";
      }) (logical text);

  doasAdmits = identity: name:
    if hasPrefix ":" identity then elem (lib.removePrefix ":" identity) (groupsOf name)
    else identity == name || (uidOf name != null && identity == toString (uidOf name));

  # ---- the tools -------------------------------------------------------------------------------

  etcText = name: let e = (config.environment.etc or { }).${name} or null; in if e != null && (e.enable or true) && (e.text or null) != null then e.text else null;

  sudoLike =
    prefix: cfg:
    let
      text = let t = etcText "sudoers"; in if t != null then t else cfg.configFile or (render.sudoers cfg);
      parsed = parseSudoers text;
      extraConfigLines = map trim (splitString "\n" (cfg.extraConfig or ""));
      wheelDefault = render.sudoersRuleLines { users = [ ]; groups = [ "wheel" ]; host = "ALL"; runAs = "ALL:ALL"; commands = [ { command = "ALL"; options = optional (!cfg.wheelNeedsPassword) "NOPASSWD" ++ cfg.defaultOptions or [ "SETENV" ]; } ]; };
      ruleLines = map trim (concatMap render.sudoersRuleLines (cfg.extraRules or [ ]));
      # sudoers ignores blanks between tags and around separators (`NOPASSWD: SETENV: ALL` is
      # `NOPASSWD:SETENV: ALL`), so a line is traced to its option modulo blanks.
      squeeze = t: builtins.replaceStrings [ " " "\t" ] [ "" "" ] t;
      among = t: ls: elem (squeeze t) (map squeeze ls);
      originOf = t:
        if among t extraConfigLines then { option = "${prefix}.extraConfig"; files = filesOf (splitString "." "${prefix}.extraConfig"); }
        else if among t wheelDefault then { option = "${prefix}.wheelNeedsPassword"; files = filesOf (splitString "." "${prefix}.wheelNeedsPassword"); }
        else if among t ruleLines then { option = "${prefix}.extraRules"; files = filesOf (splitString "." "${prefix}.extraRules"); }
        else if hasPrefix "root" t then { option = prefix; files = [ ]; }
        else { option = "${prefix}.configFile"; files = filesOf (splitString "." "${prefix}.configFile"); };
      rules = map (e: e // { origin = originOf e.text; }) (filter (e: e.kind == "rule") parsed.entries);
      # The rule that decides whether `name` runs a shell as root: the last one that matches.
      decisive = name:
        lib.foldl' (acc: r:
          let
            who = listAdmits parsed.userAliases r.users name;
            spec = lib.findFirst (s: anyCommand s.command && runsAsRoot s.runas) null r.specs;
          in
          if who == true && spec != null then r // { inherit (spec) nopasswd; } else acc) null rules;
      pathFor = name:
        let d = decisive name; dflt = defaultsFor parsed name; in
        if d == null || (cfg.execWheelOnly or false) && !(inWheel name) then null
        else {
          account = name;
          password = if d.nopasswd || !dflt.authenticate then "none" else dflt.whose;
          inherit (d) line text origin;
          # The `Defaults !authenticate` that waives the password, when the rule itself asks one.
          passwordBy = if !d.nopasswd && !dflt.authenticate then { inherit (dflt.by) line text; origin = originOf dflt.by.text; } else null;
        };
    in
    {
      enabled = cfg.enable;
      execWheelOnly = cfg.execWheelOnly or false;
      file = text;
      unjudged = map (e: { inherit (e) line text; origin = originOf e.text; reason = if e.kind == "include" then "sudo reads ${e.path} too, which this model cannot see" else "this sudoers line is not modelled"; })
        (filter (e: elem e.kind [ "include" "unreadable" ]) parsed.entries);
      paths = filter (p: p != null) (map pathFor (accountNames ++ [ other ]));
    };

  doasTool =
    let
      cfg = config.security.doas or { enable = false; };
      text = let t = etcText "doas.conf"; in if t != null then t else render.doasConf cfg;
      entries = parseDoas text;
      extraConfigLines = map trim (splitString "\n" (cfg.extraConfig or ""));
      originOf = t:
        if elem t extraConfigLines then { option = "security.doas.extraConfig"; files = filesOf [ "security" "doas" "extraConfig" ]; }
        else if hasPrefix "permit nopass keepenv root" t then { option = "security.doas"; files = [ ]; }
        else if hasPrefix "permit" t && lib.hasInfix ":wheel" t then { option = "security.doas.wheelNeedsPassword"; files = filesOf [ "security" "doas" "wheelNeedsPassword" ]; }
        else { option = "security.doas.extraRules"; files = filesOf [ "security" "doas" "extraRules" ]; };
      rules = map (e: e // { origin = originOf e.text; }) (filter (e: e.kind == "rule") entries);
      decisive = name: lib.foldl' (acc: r:
        if doasAdmits r.identity name && (r.target == null || r.target == "root") && (r.cmd == null || anyCommand r.cmd) then r else acc) null rules;
      pathFor = name:
        let d = decisive name; in
        if d == null || d.action == "deny" then null
        else { account = name; password = if d.nopass then "none" else "own"; inherit (d) line text origin; };
    in
    {
      enabled = cfg.enable;
      execWheelOnly = false;
      file = text;
      unjudged = map (e: { inherit (e) line text; origin = originOf e.text; reason = "this doas.conf line is not modelled"; }) (filter (e: e.kind == "unreadable") entries);
      paths = filter (p: p != null) (map pathFor (accountNames ++ [ other ]));
    };

  tools = {
    sudo = sudoLike "security.sudo" config.security.sudo;
    sudo-rs = sudoLike "security.sudo-rs" (config.security.sudo-rs or { enable = false; });
    doas = doasTool;
  };
  enabledTools = lib.filterAttrs (_: t: t.enabled) tools;
in
{
  removed = enabledTools == { };
  tools = lib.mapAttrs (_: t: { inherit (t) enabled execWheelOnly; } // lib.optionalAttrs t.enabled { inherit (t) file unjudged paths; }) tools;
  judged = lib.all (t: t.unjudged == [ ]) (lib.attrValues enabledTools);
  # Every way an account becomes root, with the tool and the password asked ("own", "root", "none").
  paths = concatMap (n: map (p: p // { tool = n; }) enabledTools.${n}.paths) (attrNames enabledTools);
  otherUser = other;
}
