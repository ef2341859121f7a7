# What the Nix daemon reads: /etc/nix/nix.conf as nix.nix renders it (settings, extra-*
# settings, then nix.extraOptions), then NIX_CONFIG from the daemon's environment. Nix's own
# semantics (libutil config.cc): lines in order, the LAST plain assignment wins and replaces,
# `extra-<name>` appends to <name>, `include`/`!include` read another file (which this model
# cannot see: the posture is then not judged). `@group` and `*` in user lists are expanded
# with the host's accounts, as nix-daemon's matchUser does.
#
# The daemon's environment is the one systemd gives it (systemd.exec(5), systemd-lib.nix
# serviceToUnit): one `Environment="NAME=value"` line per attribute of systemd.globalEnvironment
# // nix.envVars // systemd.services.nix-daemon.environment, then serviceConfig's own
# Environment= lines; each line is split into words with systemd's quoting and C escapes, a
# later assignment of a name overrides an earlier one, an empty `Environment=` resets the list,
# UnsetEnvironment= removes a name last. An EnvironmentFile= (read at start), PassEnvironment=
# of a variable below, or a variable that makes Nix read another configuration (NIX_CONF_DIR:
# another nix.conf; NIX_USER_CONF_FILES, XDG_CONFIG_HOME, XDG_CONFIG_DIRS, HOME: other "user"
# files the daemon also reads) leaves what the daemon acts on unknown: not judged.
{ lib, render, origin }:
{ config, options ? null, accounts }:
let
  inherit (lib) filter head tail elem splitString hasPrefix concatMap unique optional attrNames imap1;
  nix = config.nix;

  settings = lib.filterAttrs (_: v: v != null) nix.settings;
  isExtra = k: hasPrefix "extra-" k;
  settingLine = k: {
    text = "${k} = ${render.nixValue settings.${k}}";
    origin = { option = "nix.settings.${k}"; files = origin.settingFiles options [ "nix" "settings" ] k; }
      # For a list, which files put each entry there (so a fix names the one that added `@wheel`).
      // lib.optionalAttrs (builtins.isList settings.${k}) {
        byEntry = lib.genAttrs (map toString settings.${k}) (e:
          origin.settingFilesWhere options [ "nix" "settings" ] k (v: builtins.isList v && elem e (map toString v)));
      };
  };
  extraOptionsFiles = origin.files (origin.at options [ "nix" "extraOptions" ]);

  # ---- the daemon's environment, as systemd builds it -----------------------------------------
  unit = config.systemd.services.nix-daemon or { };
  serviceConfig = unit.serviceConfig or { };
  svcPath = [ "systemd" "services" "nix-daemon" ];
  # Which option an attribute of the rendered `environment` comes from (the last that sets it).
  attrSources = [
    { path = [ "systemd" "globalEnvironment" ]; env = config.systemd.globalEnvironment or { }; }
    { path = [ "nix" "envVars" ]; env = nix.envVars or { }; }
    { path = svcPath ++ [ "environment" ]; env = unit.environment or { }; }
  ];
  envAttrs = lib.filterAttrs (_: v: v != null) (lib.foldl' (a: s: a // s.env) { } attrSources);
  attrOrigin = k:
    let s = lib.last (filter (s: s.env ? ${k}) attrSources); in
    { option = lib.concatStringsSep "." (s.path ++ [ k ]); files = origin.settingFiles options s.path k; };
  svcOption = k: { option = "systemd.services.nix-daemon.serviceConfig.${k}"; files = origin.settingFiles options (svcPath ++ [ "serviceConfig" ]) k; };
  # Each Environment= line with the option behind it: `environment` first, then serviceConfig's.
  envLinesRaw =
    map (k: { value = builtins.toJSON "${k}=${toString envAttrs.${k}}"; origin = attrOrigin k; }) (attrNames envAttrs)
    ++ map (v: { value = toString v; origin = svcOption "Environment"; }) (lib.toList (serviceConfig.Environment or [ ]));
  # systemd's extract_first_word(EXTRACT_UNQUOTE|EXTRACT_CUNESCAPE): words split on blanks,
  # '…' and "…" quote, a backslash escapes (C escapes \n \t; any other character stands for itself).
  splitWords = str:
    let
      unesc = { n = "\n"; t = "\t"; r = "\r"; };
      step = st: c:
        if st.esc then st // { esc = false; cur = st.cur + (unesc.${c} or c); any = true; }
        else if c == "\\" then st // { esc = true; }
        else if st.quote != null then (if c == st.quote then st // { quote = null; } else st // { cur = st.cur + c; })
        else if c == "\"" || c == "'" then st // { quote = c; any = true; }
        else if elem c [ " " "\t" "\n" ] then (if st.any then st // { words = st.words ++ [ st.cur ]; cur = ""; any = false; } else st)
        else st // { cur = st.cur + c; any = true; };
      end = lib.foldl' step { words = [ ]; cur = ""; any = false; quote = null; esc = false; } (lib.stringToCharacters (builtins.replaceStrings [ "%%" ] [ "%" ] str));
    in
    end.words ++ optional end.any end.cur;
  validName = n: builtins.match "[A-Za-z_][A-Za-z0-9_]*" n != null;
  # name -> { value; origin; text } after every line in order (later overrides, empty resets).
  envAssigned = lib.foldl' (acc: l:
    if lib.trim l.value == "" then { }
    else lib.foldl' (a: w:
      let m = builtins.match "([^=]*)=(.*)" w; in
      if m == null || !validName (head m) then a
      else a // { ${head m} = { value = builtins.elemAt m 1; inherit (l) origin; text = w; }; }) acc (splitWords l.value)) { } envLinesRaw;
  unsetNames = concatMap (v: map (w: head (splitString "=" w)) (splitWords (toString v))) (lib.toList (serviceConfig.UnsetEnvironment or [ ]));
  daemonEnv = removeAttrs envAssigned unsetNames;

  # Variables that send the daemon to another configuration than /etc/nix/nix.conf + NIX_CONFIG.
  elsewhere = {
    NIX_CONF_DIR = "the daemon reads $NIX_CONF_DIR/nix.conf instead of /etc/nix/nix.conf";
    NIX_USER_CONF_FILES = "the daemon also reads these files as user configuration, after nix.conf";
    XDG_CONFIG_HOME = "the daemon also reads $XDG_CONFIG_HOME/nix/nix.conf as user configuration";
    XDG_CONFIG_DIRS = "the daemon also reads nix/nix.conf under each of these directories";
    HOME = "the daemon also reads $HOME/.config/nix/nix.conf as user configuration";
  };
  envUnjudged =
    map (k: { line = null; text = "${k}=${daemonEnv.${k}.value}"; origin = daemonEnv.${k}.origin;
      reason = "${k} in the daemon's environment: ${elsewhere.${k}}, which this model cannot read: the daemon's settings cannot be judged"; })
      (filter (k: daemonEnv ? ${k} && !(k == "NIX_CONF_DIR" && lib.removeSuffix "/" daemonEnv.${k}.value == "/etc/nix")) (attrNames elsewhere))
    ++ map (f: { line = null; text = "EnvironmentFile=${toString f}"; origin = svcOption "EnvironmentFile";
      reason = "systemd reads ${toString f} when it starts the daemon, and its assignments (NIX_CONFIG, NIX_CONF_DIR, …) override Environment=: the daemon's settings cannot be judged"; })
      (filter (f: toString f != "") (lib.toList (serviceConfig.EnvironmentFile or [ ])))
    ++ map (w: { line = null; text = "PassEnvironment=${w}"; origin = svcOption "PassEnvironment";
      reason = "the daemon takes ${w} from the service manager's own environment, which this model cannot see: the daemon's settings cannot be judged"; })
      (filter (w: elem w ([ "NIX_CONFIG" ] ++ attrNames elsewhere)) (concatMap (v: splitWords (toString v)) (lib.toList (serviceConfig.PassEnvironment or [ ]))));

  nixConfig = daemonEnv.NIX_CONFIG or null;
  nixConfigEnv = if nixConfig == null then null else nixConfig.value;

  fileLines =
    map settingLine (filter (k: !isExtra k) (attrNames settings))
    ++ map settingLine (filter isExtra (attrNames settings))
    ++ map (text: { inherit text; origin = { option = "nix.extraOptions"; files = extraOptionsFiles; }; }) (splitString "\n" nix.extraOptions);
  envLines = if nixConfigEnv == null then [ ] else
    map (text: { inherit text; inherit (nixConfig) origin; source = "NIX_CONFIG"; }) (splitString "\n" nixConfigEnv);

  # Numbered as in /etc/nix/nix.conf (three header comment lines first); NIX_CONFIG lines by their own count.
  numbered = imap1 (n: l: l // { line = n + 3; source = "/etc/nix/nix.conf"; }) fileLines ++ imap1 (n: l: l // { line = n; }) envLines;

  tokens = s: filter (t: t != "") (splitString " " (builtins.replaceStrings [ "\t" ] [ " " ] s));
  parse =
    l:
    let
      body = head (splitString "#" l.text);
      t = tokens body;
    in
    if t == [ ] then null
    else if elem (head t) [ "include" "!include" ] then l // { kind = "include"; path = lib.concatStringsSep " " (tail t); optional = head t == "!include"; }
    else if builtins.length t >= 2 && builtins.elemAt t 1 == "=" then l // { kind = "set"; name = head t; values = lib.drop 2 t; }
    else l // { kind = "invalid"; };
  entries = filter (e: e != null) (map parse numbered);

  # Apply the entries in order to one setting: replace on `name`, append on `extra-name`.
  effective =
    name: default:
    lib.foldl' (acc: e:
      if e.kind != "set" then acc
      else if e.name == name then { value = e.values; lines = [ e ]; }
      else if e.name == "extra-${name}" then { value = acc.value ++ e.values; lines = acc.lines ++ [ e ]; }
      else acc) { value = default; lines = [ ]; } entries;

  # Which accounts a user list admits (nix-daemon matchUser: name, `*`, `@group`).
  admits = list: name:
    let a = accounts.accounts.${name}; in
    elem "*" list || elem name list || lib.any (g: elem "@${g}" list) a.groups;
  expand = list: filter (admits list) (attrNames accounts.accounts);

  show = e: { inherit (e) line text origin source; };
  trusted = effective "trusted-users" [ "root" ];
  allowed = effective "allowed-users" [ "*" ];
in
if !nix.enable then null
else
{
  judged = filter (e: e.kind == "include") entries == [ ] && envUnjudged == [ ];
  unjudged = map (e: show e // {
    reason = "nix.conf ${if e.optional then "!include" else "include"}s ${e.path}, which this model cannot read: the daemon's settings cannot be judged";
  }) (filter (e: e.kind == "include") entries) ++ envUnjudged;
  # The daemon's environment as systemd gives it (name -> value), for the sandbox and reports.
  environment = lib.mapAttrs (_: a: a.value) daemonEnv;
  trustedUsers = { inherit (trusted) value; lines = map show trusted.lines; accounts = expand trusted.value; };
  allowedUsers = { inherit (allowed) value; lines = map show allowed.lines; accounts = unique (expand allowed.value ++ expand trusted.value); };
  substituters = let s = effective "substituters" [ "https://cache.nixos.org/" ]; in { inherit (s) value; lines = map show s.lines; };
  requireSigs = let s = effective "require-sigs" [ "true" ]; in { value = s.value == [ "true" ]; lines = map show s.lines; };
  sandbox = let s = effective "sandbox" [ "true" ]; in { value = lib.concatStringsSep " " s.value; lines = map show s.lines; };
  files = {
    "/etc/nix/nix.conf" = render.nixConf nix;
  } // lib.optionalAttrs (nixConfigEnv != null) { NIX_CONFIG = toString nixConfigEnv; };
}
