# systemd.services and the unit text NixOS generates for them (nixos/lib/systemd-unit-options.nix,
# systemd-lib.nix). serviceConfig values merge like upstream's "systemd option" type: lists from
# several definitions concatenate, single values must agree, priorities decide first.
{ config, lib, pkgs, ... }:
let
  inherit (lib) mkOption types;
  render = import ../../lib/render.nix { inherit lib; };

  unitOption = lib.mkOptionType {
    name = "systemd option";
    description = "systemd option (bool, int, string, path, package or a list of them)";
    check = v: builtins.isBool v || builtins.isInt v || lib.isStringLike v || builtins.isList v || builtins.isFloat v;
    merge = loc: defs:
      let defs' = lib.filterOverrides defs; in
      if lib.any (def: builtins.isList def.value) defs' then lib.concatMap (def: lib.toList def.value) defs'
      else lib.mergeEqualOption loc defs';
  };
  unitList = mkOption { type = types.listOf types.str; default = [ ]; description = "Unit names."; };

  serviceOpts = { name, config, ... }: {
    options = {
      enable = mkOption { type = types.bool; default = true; description = "Whether the unit is installed."; };
      description = mkOption { type = types.singleLineStr; default = ""; description = "Unit description."; };
      documentation = mkOption { type = types.listOf types.str; default = [ ]; description = "Documentation URIs."; };
      wantedBy = unitList; requiredBy = unitList; before = unitList; after = unitList; wants = unitList;
      requires = unitList; bindsTo = unitList; partOf = unitList; conflicts = unitList; onFailure = unitList;
      unitConfig = mkOption { type = types.attrsOf unitOption; default = { }; description = "[Unit] section entries."; };
      serviceConfig = mkOption { type = types.attrsOf unitOption; default = { }; description = "[Service] section entries (systemd.exec(5), systemd.service(5))."; };
      environment = mkOption { type = types.attrsOf (types.nullOr (types.oneOf [ types.str types.path types.package ])); default = { }; description = "Environment variables."; };
      path = mkOption { type = types.listOf (types.oneOf [ types.package types.str ]); default = [ ]; description = "Packages added to PATH."; };
      script = mkOption { type = types.lines; default = ""; description = "Shell commands run as the main process."; };
      preStart = mkOption { type = types.lines; default = ""; description = "Shell commands run before the main process."; };
      postStart = mkOption { type = types.lines; default = ""; description = "Shell commands run after the main process started."; };
      restartTriggers = mkOption { type = types.listOf types.unspecified; default = [ ]; description = "Values whose change restarts the unit."; };
      restartIfChanged = mkOption { type = types.bool; default = true; description = "Restart the unit when it changed on switch."; };
      stopIfChanged = mkOption { type = types.bool; default = true; description = "Stop, then start (instead of restart) on change."; };
      startAt = mkOption { type = types.either types.str (types.listOf types.str); default = [ ]; description = "Calendar times to start the unit."; };
    };
    config.serviceConfig = lib.mkMerge [
      (lib.mkIf (config.script != "") { ExecStart = "${pkgs.writeShellScript "${name}-start" config.script}"; })
      (lib.mkIf (config.preStart != "") { ExecStartPre = [ "${pkgs.writeShellScript "${name}-pre-start" config.preStart}" ]; })
    ];
  };

  unitText = name: s:
    let
      unitSection = {
        Description = if s.description == "" then null else s.description;
        After = if s.after == [ ] then null else lib.concatStringsSep " " s.after;
        Before = if s.before == [ ] then null else lib.concatStringsSep " " s.before;
        Wants = if s.wants == [ ] then null else lib.concatStringsSep " " s.wants;
        Requires = if s.requires == [ ] then null else lib.concatStringsSep " " s.requires;
      } // s.unitConfig;
      environment = lib.mapAttrsToList (k: v: "\"${k}=${toString v}\"") (lib.filterAttrs (_: v: v != null) s.environment);
      serviceSection = s.serviceConfig // lib.optionalAttrs (environment != [ ]) { Environment = environment; };
    in
    "[Unit]\n" + render.unitSection unitSection + "\n[Service]\n" + render.unitSection serviceSection;

  unitOpts = types.submodule {
    options.text = mkOption { type = types.nullOr types.str; default = null; description = "Text of the unit file."; };
    options.enable = mkOption { type = types.bool; default = true; description = "Whether the unit is installed."; };
  };
in
{
  options.systemd = {
    services = mkOption { type = types.attrsOf (types.submodule serviceOpts); default = { }; description = "Definition of systemd service units."; };
    units = mkOption { type = types.attrsOf unitOpts; default = { }; internal = true; description = "Generated unit files."; };
    tmpfiles.rules = mkOption { type = types.listOf types.str; default = [ ]; description = "systemd-tmpfiles rules."; };
  };

  config.systemd.units = lib.mapAttrs' (n: s: lib.nameValuePair "${n}.service" { text = unitText n s; inherit (s) enable; })
    config.systemd.services;
}
