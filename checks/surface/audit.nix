# The kernel audit subsystem and auditd (security/audit.nix, security/auditd.nix): rules loaded by
# audit-rules-nixos.service, auditd with settings and plugins.
{ config, lib, pkgs, ... }:
let
  inherit (lib) mkOption types mkIf;
  cfg = config.security.audit;
  auditd = config.security.auditd;
  render = import ../../lib/render.nix { inherit lib; };

  settingsType = types.nullOr (types.oneOf [ types.bool types.nonEmptyStr types.path types.int ]);
  pluginOpts = types.submodule {
    options = {
      active = mkOption { type = types.bool; default = false; description = "Whether to enable this plugin."; };
      args = mkOption { type = types.nullOr (types.listOf types.nonEmptyStr); default = null; description = "Plugin arguments."; };
      direction = mkOption { type = types.enum [ "in" "out" ]; default = "out"; description = "Direction of events."; };
      format = mkOption { type = types.enum [ "binary" "string" ]; default = "string"; description = "Event format."; };
      path = mkOption { type = types.path; description = "Plugin executable."; };
      settings = mkOption { type = types.nullOr (types.submodule { freeformType = types.attrsOf settingsType; }); default = null; description = "Plugin configuration file contents."; };
      type = mkOption { type = types.enum [ "always" ]; default = "always"; readOnly = true; description = "Plugin type."; };
    };
  };
  # auditd.nix's rendering of auditd.conf and the plugin files.
  prepareConfigValue = v: if lib.isBool v then lib.boolToYesNo v else if lib.isList v then lib.concatStringsSep " " (map prepareConfigValue v) else toString v;
  prepareConfigText = conf: lib.concatLines (lib.mapAttrsToList (k: v: if v == null then "#${k} =" else "${k} = ${prepareConfigValue v}") conf);
  spaceType = types.either types.int (types.strMatching "[0-9]+%");
  getExe' = pkg: exe: "${pkg}/bin/${exe}";
in
{
  options.security = {
    audit = {
      enable = mkOption { type = types.enum [ false true "lock" ]; default = false; description = "Enable the audit subsystem; \"lock\" makes the rules immutable until reboot."; };
      package = mkOption { type = types.package; default = pkgs.audit; defaultText = lib.literalExpression "pkgs.audit"; description = "The audit package."; };
      backlogLimit = mkOption { type = types.int; default = 1024; description = "Maximum number of outstanding audit buffers."; };
      failureMode = mkOption { type = types.enum [ "silent" "printk" "panic" ]; default = "printk"; description = "What to do on a critical audit error."; };
      rateLimit = mkOption { type = types.int; default = 0; description = "Maximum messages per second (0 = unlimited)."; };
      rules = mkOption { type = types.listOf types.str; default = [ ]; description = "auditctl rules, one per entry, in order."; };
    };
    auditd = {
      enable = mkOption { type = types.bool; default = false; description = "Whether to enable the Linux Audit daemon."; };
      package = mkOption { type = types.package; default = pkgs.audit; defaultText = lib.literalExpression "pkgs.audit"; description = "The auditd package."; };
      settings = mkOption {
        type = types.submodule {
          freeformType = types.attrsOf settingsType;
          options.space_left = mkOption { type = spaceType; default = 75; description = "Free space (MiB or %) at which space_left_action runs."; };
          options.admin_space_left = mkOption { type = spaceType; default = 50; description = "Free space at which admin_space_left_action runs."; };
        };
        default = { };
        description = "auditd.conf settings.";
      };
      plugins = mkOption { type = types.attrsOf pluginOpts; default = { }; description = "Plugins registered with auditd."; };
    };
  };

  config = lib.mkMerge [
    {
      surface.provenance = [
        { options = [ "security.audit" ]; upstream = "nixos/modules/security/audit.nix"; repo = "Swarsel/nixpkgs"; commit = "4aa6836a648ca76c68866decf0c8965e36ec2a3b"; surface = "audit.nix"; notes = "The rules file is rendered by lib/render.nix, without the blank line upstream's concatLines leaves before `-e`."; }
        { options = [ "security.auditd" ]; upstream = "nixos/modules/security/auditd.nix"; repo = "Swarsel/nixpkgs"; commit = "4aa6836a648ca76c68866decf0c8965e36ec2a3b"; surface = "audit.nix"; }
        { options = [ "environment.persistence" ]; upstream = "nixos.nix (the real module, imported, not re-declared)"; repo = "nix-community/impermanence"; commit = "7b1d382faf603b6d264f58627330f9faa5cba149"; surface = "(flake input impermanence)"; notes = "Evaluated as is from the pinned input."; }
      ];
    }
    (mkIf (cfg.enable == "lock" || cfg.enable) {
      # Audit events before the unit starts: enabled on the kernel command line.
      boot.kernelParams = [ "audit=1" "audit_backlog_limit=${toString cfg.backlogLimit}" ];
      environment.systemPackages = [ cfg.package ];
      systemd.services.audit-rules-nixos = {
        description = "Load Audit Rules";
        wantedBy = [ "sysinit.target" ];
        before = [ "sysinit.target" "shutdown.target" ];
        conflicts = [ "shutdown.target" ];
        unitConfig = {
          ConditionKernelCommandLine = [ "!audit=0" "!audit=off" ];
          ConditionVirtualization = "!container";
          DefaultDependencies = false;
        };
        serviceConfig = {
          Type = "oneshot";
          RemainAfterExit = true;
          ExecStart = "${getExe' cfg.package "auditctl"} -R ${pkgs.writeText "audit.rules" (render.auditRules cfg)}";
          ExecStopPost = [ "${getExe' cfg.package "auditctl"} -e 0" "${getExe' cfg.package "auditctl"} -D" ];
        };
      };
    })
    (mkIf auditd.enable {
      assertions = [
        {
          assertion = let s = auditd.settings; getPercent = x: lib.toInt (lib.removeSuffix "%" x); in
            ((lib.isInt s.space_left && lib.isInt s.admin_space_left) -> s.space_left > s.admin_space_left)
            && ((lib.isString s.space_left && lib.isString s.admin_space_left) -> getPercent s.space_left > getPercent s.admin_space_left);
          message = "`security.auditd.settings.space_left` must be larger than `security.auditd.settings.admin_space_left`";
        }
      ];
      environment.etc = {
        "audit/auditd.conf".text = prepareConfigText auditd.settings;
      } // lib.mapAttrs' (n: p: lib.nameValuePair "audit/plugins.d/${n}.conf" { text = prepareConfigText (removeAttrs p [ "settings" ]); }) auditd.plugins
        // lib.mapAttrs' (n: p: lib.nameValuePair "audit/audisp-${n}.conf" { text = prepareConfigText p.settings; }) (lib.filterAttrs (_: p: p.settings != null) auditd.plugins);
      # Starting the daemon enables auditing in the kernel too.
      security.audit.enable = lib.mkDefault true;
      security.auditd.plugins = {
        af_unix = { args = [ "0640" "/run/audit/audispd_events" "string" ]; format = "binary"; path = getExe' auditd.package "audisp-af_unix"; };
        filter = { args = [ "allowlist" "/etc/audit/audisp-filter.conf" (getExe' auditd.package "audisp-syslog") "LOG_USER" "LOG_INFO" "interpret" ]; path = getExe' auditd.package "audisp-filter"; settings = { }; };
        remote = { path = getExe' auditd.package "audisp-remote"; settings = { }; };
        syslog = { args = [ "LOG_INFO" ]; path = getExe' auditd.package "audisp-syslog"; };
      };
      # Anything else breaks plugin loading; upstream pins it.
      security.auditd.settings.plugin_dir = "/etc/audit/plugins.d";
      systemd.services.auditd = {
        wantedBy = [ "multi-user.target" ];
        serviceConfig = {
          # The upstream unit's ExecStart is cleared and rewritten (it refuses symlinks).
          ExecStart = [ "" "${getExe' auditd.package "auditd"} -l -s nochange" ];
          LogsDirectory = "audit";
          LogsDirectoryMode = "0700";
          RuntimeDirectory = "audit";
          RuntimeDirectoryMode = "0755";
        };
      };
    })
  ];
}
