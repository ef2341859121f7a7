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
}

