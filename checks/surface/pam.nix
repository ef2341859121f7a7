# PAM services (nixos/modules/security/pam.nix): the `rules` interface (account, auth,
# password, session; each rule a control, a module path, arguments or settings, and an
# order) and /etc/pam.d/<name> rendered from them as upstream renders them: enabled rules by
# ascending order, arguments with spaces bracketed, each line commented with its name and order.
# Upstream adds its own built-in rules (pam_unix, pam_systemd, ...) to every service; the
# surface renders only the rules a configuration declares.
{ config, lib, pkgs, ... }:
let
  inherit (lib) mkOption types;

  moduleSettingsType = types.attrsOf (types.nullOr (types.oneOf [ types.bool types.str types.int types.path ]));

  ruleType = types.submodule ({ name, config, ... }: {
    options = {
      name = mkOption { type = types.str; internal = true; readOnly = true; description = "Name of this rule."; };
      enable = mkOption { type = types.bool; default = true; description = "Whether this rule is added to the PAM service config file."; };
      order = mkOption { type = types.int; description = "Order of this rule in the service file; rules are arranged in ascending order of this value."; };
      control = mkOption { type = types.str; description = "The behaviour of the PAM API should the module fail (`control` in pam.conf(5))."; };
      modulePath = mkOption { type = types.str; description = "The PAM module: an absolute file name, or one relative to the default module location."; };
      args = mkOption { type = types.listOf types.str; description = "The module's arguments (`module-arguments`); `settings` are added automatically."; };
      settings = mkOption { type = moduleSettingsType; default = { }; description = "Settings added as `module-arguments`: true renders the key, false and null nothing, others key=value."; };
    };
    config = {
      inherit name;
      args = lib.concatLists (lib.mapAttrsToList (k: v:
        if builtins.isBool v then lib.optional v k else lib.optional (v != null) "${k}=${toString v}") config.settings);
    };
  });

  ruleTypes = [ "account" "auth" "password" "session" ];

  pamOpts = { name, config, ... }: {
    options = {
      name = mkOption { type = types.str; example = "sshd"; description = "Name of the PAM service."; };
      rules = mkOption {
        visible = false;
        description = "PAM rules for this service (experimental upstream).";
        type = types.submodule { options = lib.genAttrs ruleTypes (type: mkOption { type = types.attrsOf ruleType; default = { }; description = "PAM `${type}` rules for this service."; }); };
      };
      unixAuth = mkOption { type = types.bool; default = true; description = "Whether users can log in with passwords defined in /etc/shadow."; };
      text = mkOption { type = types.nullOr types.lines; description = "Contents of the PAM service file."; };
    };
    config = {
      name = lib.mkDefault name;
      text =
        let
          formatArgument = token: if lib.hasInfix " " token then "[${lib.replaceStrings [ "]" ] [ "\\]" ] token}]" else token;
          formatRules = type: lib.concatMapStringsSep "\n"
            (rule: lib.concatStringsSep " " ([ type rule.control rule.modulePath ] ++ map formatArgument rule.args ++ [ "# ${rule.name} (order ${toString rule.order})" ]))
            (lib.sort (a: b: a.order < b.order) (lib.filter (r: r.enable) (lib.attrValues config.rules.${type})));
        in
        lib.mkDefault ''
          # Account management.
          ${formatRules "account"}

          # Authentication management.
          ${formatRules "auth"}

          # Password management.
          ${formatRules "password"}

          # Session management.
          ${formatRules "session"}
        '';
    };
  };
in
{
  options.security.pam.services = mkOption {
    type = types.attrsOf (types.submodule pamOpts);
    default = { };
    description = "The PAM services, each rendered to /etc/pam.d/<name>.";
  };

  config.environment.etc = lib.mapAttrs' (name: service: lib.nameValuePair "pam.d/${name}" {
    source = pkgs.writeText "${name}.pam" service.text;
  }) config.security.pam.services;
}
