# One system user and a systemd sandbox per service: paranoid.services.<unit name>.
{ config, lib, ... }:
let
  inherit (lib) mkOption types mkIf mkDefault;
  h = import ../lib/module-helpers.nix { inherit lib; };
  presets = import ../lib/systemd-presets.nix;
  cfg = config.paranoid.services;

  # Units that must keep root and their privileges to work at all; each with what a preset or a
  # dedicated user would take from it. A sandbox on them is refused (service-needs-privileges).
  privileged = {
    sshd = "it binds port 22 (CAP_NET_BIND_SERVICE), reads /etc/shadow and every user's keys, switches to the user who logs in (CAP_SETUID, CAP_SETGID) and chroots its pre-auth child (CAP_SYS_CHROOT); every session it opens inherits its sandbox, so NoNewPrivileges would break sudo in SSH sessions and ProtectHome would hide the users' homes";
    nix-daemon = "it builds as the nixbld users (CAP_SETUID, CAP_SETGID), creates build sandboxes with namespaces and mounts (CAP_SYS_ADMIN) and owns /nix/store";
    systemd-logind = "it manages seats, sessions and user runtime directories (CAP_SYS_ADMIN, CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_SYS_TTY_CONFIG)";
    "getty@" = "it runs login on the console, which must switch to any user and read /etc/shadow: the console is the way back in";
    "serial-getty@" = "it runs login on a serial console, which must switch to any user and read /etc/shadow: the console is the way back in";
    "autovt@" = "it runs login on a virtual terminal, which must switch to any user and read /etc/shadow";
    "container-getty@" = "it runs login in a container console, which must switch to any user";
    console-getty = "it runs login on the console, which must switch to any user and read /etc/shadow";
    systemd-journald = "it must read every process's credentials and write the journal for everyone";
    dbus = "the system bus checks every peer's credentials and activates privileged services";
    auditd = "it must own the kernel's audit netlink socket (CAP_AUDIT_CONTROL) and write /var/log/audit";
    audit-rules-nixos = "it loads the kernel's audit rules (CAP_AUDIT_CONTROL)";
    polkit = "it decides privileged actions for every user";
  };
  privilegeOf = name: lib.findFirst (n: n == name || (lib.hasSuffix "@" n && lib.hasPrefix n name)) null (lib.attrNames privileged);
  misapplied = lib.filterAttrs (name: s: privilegeOf name != null && (s.sandbox != "none" || s.dedicatedUser)) cfg;

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
      assertion = false;
      message = h.guard "service-needs-privileges" ''
        paranoid.services.${name} = { sandbox = "${s.sandbox}"; dedicatedUser = ${lib.boolToString s.dedicatedUser}; } would take from
        ${name}.service what it cannot work without: ${privileged.${privilegeOf name}}.
        A host whose ${name} cannot start may be a host nobody can log in to.
        Fix: remove paranoid.services.${name} (or set paranoid.services.${name} = { sandbox = "none"; dedicatedUser = false; }).'';
    }) misapplied ++ lib.mapAttrsToList (name: s: {
      assertion = config.systemd.services.${name}.serviceConfig ? ExecStart;
      message = h.guard "service-undefined" ''
        paranoid.services.${name} hardens systemd.services.${name}, but nothing defines that service
        (it has no ExecStart or script), so the sandbox would apply to an empty unit.
        Fix: use the unit's exact name (without .service), or remove paranoid.services.${name}.'';
    }) cfg;
  };
}
