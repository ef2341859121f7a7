# What the Nix daemon reads: /etc/nix/nix.conf as nix.nix renders it (settings, extra-*
# settings, then nix.extraOptions), then NIX_CONFIG from the daemon's environment. Nix's own
# semantics (libutil config.cc): lines in order, the LAST plain assignment wins and replaces,
# `extra-<name>` appends to <name>, `include`/`!include` read another file (which this model
# cannot see: the posture is then not judged). `@group` and `*` in user lists are expanded
# with the host's accounts, as nix-daemon's matchUser does.
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
  daemonEnv = (config.systemd.services.nix-daemon or { }).environment or { };
  nixConfigEnv = daemonEnv.NIX_CONFIG or (nix.envVars.NIX_CONFIG or null);

  fileLines =
    map settingLine (filter (k: !isExtra k) (attrNames settings))
    ++ map settingLine (filter isExtra (attrNames settings))
    ++ map (text: { inherit text; origin = { option = "nix.extraOptions"; files = extraOptionsFiles; }; }) (splitString "\n" nix.extraOptions);
  envLines = if nixConfigEnv == null then [ ] else
    map (text: { inherit text; origin = { option = "systemd.services.nix-daemon.environment.NIX_CONFIG"; files = [ ]; }; source = "NIX_CONFIG"; }) (splitString "\n" (toString nixConfigEnv));

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
  judged = filter (e: e.kind == "include") entries == [ ];
  unjudged = map (e: show e // {
    reason = "nix.conf ${if e.optional then "!include" else "include"}s ${e.path}, which this model cannot read: the daemon's settings cannot be judged";
  }) (filter (e: e.kind == "include") entries);
  trustedUsers = { inherit (trusted) value; lines = map show trusted.lines; accounts = expand trusted.value; };
  allowedUsers = { inherit (allowed) value; lines = map show allowed.lines; accounts = unique (expand allowed.value ++ expand trusted.value); };
  substituters = let s = effective "substituters" [ "https://cache.nixos.org/" ]; in { inherit (s) value; lines = map show s.lines; };
  requireSigs = let s = effective "require-sigs" [ "true" ]; in { value = s.value == [ "true" ]; lines = map show s.lines; };
  sandbox = let s = effective "sandbox" [ "true" ]; in { value = lib.concatStringsSep " " s.value; lines = map show s.lines; };
  files = {
    "/etc/nix/nix.conf" = render.nixConf nix;
  } // lib.optionalAttrs (nixConfigEnv != null) { NIX_CONFIG = toString nixConfigEnv; };
}
