# Renderers for the configuration files NixOS writes, shared by the offline surface (which uses
# them as the upstream modules' implementation) and by the projection (which renders the same
# files from a real NixOS configuration without building anything).
{ lib }:
let
  inherit (lib) concatStringsSep concatMapStrings attrNames filterAttrs isList isInt isString isPath isBool elem;
in
rec {
  # sshd_config as services.openssh writes it: the `settings` block first (keys in attribute
  # order, null keys dropped, booleans as yes/no, the documented list joins), then
  # `extraConfig`, which carries the module's own lines at mkOrder 0 ahead of the user's.
  # sshd keeps the FIRST value it reads for most keywords, so `settings` beats `extraConfig`.
  sshdCommaKeys = [ "Ciphers" "KexAlgorithms" "Macs" ];
  sshdSpaceKeys = [ "AcceptEnv" "AuthorizedKeysFile" "AllowGroups" "AllowUsers" "DenyGroups" "DenyUsers" ];

  sshdValue =
    v:
    if isInt v then toString v
    else if isString v || isPath v then toString v
    else if v == true then "yes"
    else if v == false then "no"
    else throw "unsupported type ${builtins.typeOf v}: ${lib.generators.toPretty { } v}";

  sshdLine =
    key: value:
    let
      joined =
        if !(isList value) then value
        else if elem key sshdCommaKeys then concatStringsSep "," value
        else if elem key sshdSpaceKeys then concatStringsSep " " value
        else throw "list value for unknown key ${key}: ${lib.generators.toPretty { } value}";
    in
    "${key} ${sshdValue joined}";

  sshdConfig =
    openssh:
    let
      settings = filterAttrs (_: v: v != null) openssh.settings;
    in
    concatMapStrings (k: sshdLine k settings.${k} + "\n") (attrNames settings) + openssh.extraConfig + "\n";

  # nix.conf as nix.nix writes it: plain keys, then extra-* keys, then extraOptions verbatim.
  # Nix applies the LAST assignment, so extraOptions can override settings (unlike sshd).
  nixValue =
    v:
    if v == null then ""
    else if isBool v then lib.boolToString v
    else if isList v then concatStringsSep " " (map nixValue v)
    else if isInt v || builtins.isFloat v then toString v
    else toString v;

  nixConf =
    nix:
    let
      settings = filterAttrs (_: v: v != null) nix.settings;
      isExtra = k: lib.hasPrefix "extra-" k;
      keys = attrNames settings;
      line = k: "${k} = ${nixValue settings.${k}}\n";
    in
    "# WARNING: this file is generated from the nix.* options in\n# your NixOS configuration, typically\n# /etc/nixos/configuration.nix.  Do not edit it!\n"
    + concatMapStrings line (lib.filter (k: !isExtra k) keys)
    + concatMapStrings line (lib.filter isExtra keys)
    + nix.extraOptions;

  # /etc/fstab lines as filesystems.nix writes them (spaces escaped as \040).
  escapeFstab = builtins.replaceStrings [ " " "\t" ] [ "\\040" "\\011" ];
  fstabLine =
    fs:
    let
      device = if fs.device != null then fs.device else "none";
      # fsck is skipped for pseudo filesystems, bind mounts and the types fsck cannot handle.
      skipCheck = fs.noCheck or false || device == "none" || elem "bind" fs.options
        || elem fs.fsType [ "none" "auto" "overlay" "iso9660" "bindfs" "udf" "btrfs" "zfs" "tmpfs" "bcachefs" "nfs" "nfs4" "nilfs2" "vboxsf" "squashfs" "glusterfs" "apfs" "9p" "cifs" "prl_fs" "vmhgfs" ];
      pass = if skipCheck then "0" else if fs.mountPoint == "/" then "1" else "2";
    in
    "${escapeFstab device} ${escapeFstab fs.mountPoint} ${fs.fsType} ${concatStringsSep "," fs.options} 0 ${pass}";

  # A systemd unit section: one `Key=value` per line, lists as repeated keys, booleans as
  # true/false (nixos/lib/systemd-lib.nix's attrsToSection).
  unitValue =
    v:
    if isBool v then lib.boolToString v
    else toString v;
  unitSection =
    attrs:
    concatMapStrings
      (k:
        let v = attrs.${k}; in
        if isList v then concatMapStrings (x: "${k}=${unitValue x}\n") v else "${k}=${unitValue v}\n")
      (attrNames (filterAttrs (_: v: v != null) attrs));

  # The rules file audit-rules-nixos.service loads: reset, limits, the rules, then enable
  # (2 = immutable until reboot, for security.audit.enable = "lock").
  auditRules =
    audit:
    concatStringsSep "\n" (
      [ "-D" "-b ${toString audit.backlogLimit}" "-f ${toString ({ silent = 0; printk = 1; panic = 2; }.${audit.failureMode})}" "-r ${toString audit.rateLimit}" ]
      ++ audit.rules
      ++ [ "-e ${if audit.enable == "lock" then "2" else "1"}" ]
    ) + "\n";

  # /etc/systemd/journal-upload.conf (pkgs.formats.systemd): [Section] then `Key = value`.
  systemdIni =
    sections:
    concatStringsSep "\n" (lib.mapAttrsToList (name: section:
      "[${name}]\n" + concatMapStrings (k:
        let v = section.${k}; in
        if v == null then "# ${k} is unset\n"
        else if isList v then concatMapStrings (x: "${k} = ${unitValue x}\n") v
        else "${k} = ${unitValue v}\n") (attrNames section)) sections);

  hasWheelRule = rules: lib.any (r: (r.groups or [ ]) == [ "wheel" ] && (r.users or [ ]) == [ ]) rules;

  # A sudoers rule line as security.sudo(-rs) writes extraRules: one line per user and group,
  # `who<TAB>host=(runAs)<TAB>TAG:TAG: cmd, …` (nixos/modules/security/sudo.nix).
  sudoersRuleLines =
    rule:
    let
      who = map (u: if lib.isInt u then "#${toString u}" else u) rule.users
        ++ map (g: if lib.isInt g then "%#${toString g}" else "%${g}") rule.groups;
      command = c: if isString c then c else "${concatMapStrings (o: "${o}:") c.options}${lib.optionalString (c.options != [ ]) " "}${c.command}";
    in
    lib.optionals (rule.commands != [ ]) (map (w: "${w}\t${rule.host}=(${rule.runAs})\t${concatStringsSep ", " (map command rule.commands)}") who);

  # /etc/sudoers from the options, for configurations whose declarations lack `configFile`:
  # the root rule, extraRules (the wheel rule among them), then extraConfig.
  sudoers =
    cfg:
    "# Don't edit this file. Set the NixOS options ‘security.sudo.configFile’\n# or ‘security.sudo.extraRules’ instead.\n\n"
    + "# extraRules\n"
    + concatMapStrings (l: l + "\n") (sudoersRuleLines { users = [ "root" ]; groups = [ ]; host = "ALL"; runAs = "ALL:ALL"; commands = [ { command = "ALL"; options = cfg.defaultOptions or [ "SETENV" ]; } ]; })
    # Upstream puts the wheel rule into extraRules itself (mkOrder 600); add it only if absent.
    + lib.optionalString (!hasWheelRule (cfg.extraRules or [ ])) (concatMapStrings (l: l + "\n") (sudoersRuleLines { users = [ ]; groups = [ "wheel" ]; host = "ALL"; runAs = "ALL:ALL"; commands = [ { command = "ALL"; options = lib.optional (!cfg.wheelNeedsPassword) "NOPASSWD" ++ cfg.defaultOptions or [ "SETENV" ]; } ]; }))
    + concatMapStrings (r: concatMapStrings (l: l + "\n") (sudoersRuleLines r)) (cfg.extraRules or [ ])
    + lib.optionalString ((cfg.extraConfig or "") != "") "\n# extraConfig\n${cfg.extraConfig}\n";

  # /etc/doas.conf as security.doas writes it (nixos/modules/security/doas.nix): the rules
  # (the wheel rule first), extraConfig, then root's own rule. doas obeys the LAST match.
  doasRuleLines =
    rule:
    let
      opts = concatStringsSep " " (lib.filter (x: x != "") [
        (lib.optionalString (rule.noPass or false) "nopass")
        (lib.optionalString (rule.noLog or false) "nolog")
        (lib.optionalString (rule.persist or false) "persist")
        (lib.optionalString (rule.keepEnv or false) "keepenv")
        "setenv { SSH_AUTH_SOCK TERMINFO TERMINFO_DIRS ${concatStringsSep " " (rule.setEnv or [ ])} }"
      ]);
      tail = concatStringsSep " " (lib.filter (x: x != "") [
        (lib.optionalString ((rule.runAs or null) != null) "as ${rule.runAs}")
        (lib.optionalString ((rule.cmd or null) != null) "cmd ${rule.cmd}")
        (if (rule.args or null) == null then "" else if rule.args == [ ] then "args" else "args ${concatStringsSep " " rule.args}")
      ]);
    in
    map (u: "permit ${opts} ${toString u} ${tail}") (rule.users or [ ])
    ++ map (g: "permit ${opts} :${toString g} ${tail}") (rule.groups or [ ]);

  doasConf =
    cfg:
    "# To modify this file, set the NixOS options\n# `security.doas.extraRules` or `security.doas.extraConfig`. To\n# completely replace the contents of this file, use\n# `environment.etc.\"doas.conf\"`.\n\n# extraRules\n"
    + lib.optionalString (!hasWheelRule (cfg.extraRules or [ ])) (concatMapStrings (l: l + "\n") (doasRuleLines { groups = [ "wheel" ]; noPass = !cfg.wheelNeedsPassword; }))
    + concatMapStrings (r: concatMapStrings (l: l + "\n") (doasRuleLines r)) (cfg.extraRules or [ ])
    + "\n# extraConfig\n${cfg.extraConfig or ""}\n\n# \"root\" is allowed to do anything.\npermit nopass keepenv root\n";
}

