# One system user and a systemd sandbox per service: paranoid.services.<unit name>.
{ config, lib, ... }:
let
  inherit (lib) mkOption types mkIf mkDefault;
  h = import ../lib/module-helpers.nix { inherit lib; };
  presets = import ../lib/systemd-presets.nix;
  cfg = config.paranoid.services;


  serviceOpts = { name, ... }: {
    options = {
      sandbox = mkOption {
        type = types.enum (lib.attrNames presets);
        default = "strict";
        description = ''
          systemd sandboxing preset merged into `systemd.services.${name}.serviceConfig` (each key at
          mkDefault, so the service's own settings win): `none`, `baseline` (NoNewPrivileges,
          ProtectSystem=full, ProtectHome, private /tmp and /dev, kernel protections) or `strict`
          (baseline + ProtectSystem=strict, no capabilities, system-call filter, no namespaces,
          W^X memory, PrivateUsers, UMask 0077). Check the result with
          `systemd-analyze security ${name}.service`.
        '';
      };
      dedicatedUser = mkOption {
        type = types.bool;
        default = true;
        description = "Run the service as its own system user and group (created here), not root or a shared account.";
      };
      user = mkOption {
        type = types.str;
        default = name;
        description = "Name of the dedicated user and group.";
      };
      readWritePaths = mkOption {
        type = types.listOf types.str;
        default = [ ];
        example = [ "/srv/website" ];
        description = "Paths the service may write besides its StateDirectory/RuntimeDirectory (`ReadWritePaths`).";
      };
    };
  };
in
{
  options.paranoid.services = mkOption {
    type = types.attrsOf (types.submodule serviceOpts);
    default = { };
    example = lib.literalExpression ''{ website = { sandbox = "strict"; readWritePaths = [ "/srv/website" ]; }; }'';
    description = "Services (by systemd unit name) to give a dedicated user and a sandbox preset.";
  };

  config = {
    systemd.services = lib.mapAttrs (name: s: {
      serviceConfig = lib.mapAttrs (_: mkDefault) presets.${s.sandbox}
        // lib.optionalAttrs s.dedicatedUser { User = mkDefault s.user; Group = mkDefault s.user; }
        // lib.optionalAttrs (s.readWritePaths != [ ]) { ReadWritePaths = s.readWritePaths; };
    }) cfg;

    # The dedicated account, unless it exists already: every field is a default, so an account
    # NixOS or the host defines (sshd, nginx, ...) keeps its own description, group and kind.
    users.users = lib.mkMerge (lib.mapAttrsToList (name: s: mkIf s.dedicatedUser {
      ${s.user} = { config, ... }: {
        isSystemUser = mkIf (!config.isNormalUser) (mkDefault true);
        group = mkDefault s.user;
        # No colon: /etc/passwd fields are colon-separated (users-groups.nix refuses one).
        description = mkDefault "paranoid dedicated account of ${name}.service";
      };
    }) cfg);
    users.groups = lib.mkMerge (lib.mapAttrsToList (name: s: mkIf s.dedicatedUser { ${s.user} = { }; }) cfg);

    assertions = lib.mapAttrsToList (name: s: {
      assertion = config.systemd.services.${name}.serviceConfig ? ExecStart;
      message = h.guard "service-undefined" ''
        paranoid.services.${name} hardens systemd.services.${name}, but nothing defines that service
        (it has no ExecStart or script), so the sandbox would apply to an empty unit.
        Fix: use the unit's exact name (without .service), or remove paranoid.services.${name}.'';
    }) cfg;
  };
}
