# The kernel audit subsystem and auditd (security/audit.nix, security/auditd.nix, 25.11+):
# rules loaded by audit-rules-nixos.service, auditd with settings and plugins.
{ config, lib, pkgs, ... }:
let
  inherit (lib) mkOption types mkIf;
  cfg = config.security.audit;
  render = import ../../lib/render.nix { inherit lib; };

  pluginOpts = { name, ... }: {
    options = {
      active = mkOption { type = types.bool; default = false; description = "Whether the plugin is active."; };
      direction = mkOption { type = types.enum [ "in" "out" ]; default = "out"; description = "Direction of events."; };
      path = mkOption { type = types.str; description = "Plugin executable."; };
      type = mkOption { type = types.enum [ "always" ]; default = "always"; readOnly = true; description = "Plugin type."; };
      args = mkOption { type = types.nullOr (types.listOf types.nonEmptyStr); default = null; description = "Plugin arguments."; };
      format = mkOption { type = types.enum [ "binary" "string" ]; default = "string"; description = "Event format."; };
      settings = mkOption { type = types.nullOr (types.attrsOf types.unspecified); default = null; description = "Plugin configuration file contents."; };
    };
  };
in
{
  options.security = {
    audit = {
      enable = mkOption { type = types.enum [ false true "lock" ]; default = false; description = "Enable the audit subsystem; \"lock\" makes the rules immutable until reboot."; };
      package = mkOption { type = types.package; default = pkgs.audit; description = "The audit package."; };
      backlogLimit = mkOption { type = types.int; default = 1024; description = "Maximum number of outstanding audit buffers."; };
      failureMode = mkOption { type = types.enum [ "silent" "printk" "panic" ]; default = "printk"; description = "What to do on a critical audit error."; };
      rateLimit = mkOption { type = types.int; default = 0; description = "Maximum messages per second (0 = unlimited)."; };
      rules = mkOption { type = types.listOf types.str; default = [ ]; description = "auditctl rules, one per entry."; };
    };
    auditd = {
      enable = mkOption { type = types.bool; default = false; description = "Whether to enable the Linux Audit daemon."; };
      settings = mkOption {
        type = types.submodule {
          freeformType = types.attrsOf (types.nullOr (types.oneOf [ types.bool types.nonEmptyStr types.path types.int ]));
          options.space_left = mkOption { type = types.either types.int (types.strMatching "[0-9]+%"); default = 75; description = "Free space (MB or %) at which space_left_action runs."; };
          options.admin_space_left = mkOption { type = types.either types.int (types.strMatching "[0-9]+%"); default = 50; description = "Free space at which admin_space_left_action runs."; };
        };
        default = { };
        description = "auditd.conf settings.";
      };
      plugins = mkOption { type = types.attrsOf (types.submodule pluginOpts); default = { }; description = "audispd plugins."; };
    };
  };

  config = lib.mkMerge [
    {
      security.auditd.plugins = {
        af_unix = { path = "${pkgs.audit}/sbin/audisp-af_unix"; args = [ "0640" "/var/run/audispd_events" "string" ]; format = "binary"; };
        remote = { path = "${pkgs.audit}/sbin/audisp-remote"; settings = { }; };
        filter = { path = "${pkgs.audit}/sbin/audisp-filter"; args = [ "allowlist" "/etc/audit/audisp-filter.conf" "${pkgs.audit}/sbin/audisp-syslog" "LOG_USER" "LOG_INFO" "interpret" ]; };
        syslog = { path = "${pkgs.audit}/sbin/audisp-syslog"; args = [ "LOG_INFO" ]; };
      };
    }
    (mkIf (cfg.enable != false) {
      boot.kernelParams = [ "audit=1" "audit_backlog_limit=${toString cfg.backlogLimit}" ];
      environment.systemPackages = [ cfg.package ];
      systemd.services.audit-rules-nixos = {
        description = "Load Audit Rules";
        wantedBy = [ "sysinit.target" ];
        before = [ "sysinit.target" "shutdown.target" ];
        unitConfig.DefaultDependencies = false;
        serviceConfig = {
          Type = "oneshot";
          RemainAfterExit = true;
          ExecStart = "${cfg.package}/bin/auditctl -R ${pkgs.writeText "audit.rules" (render.auditRules cfg)}";
          ExecStopPost = [ "${cfg.package}/bin/auditctl -e 0" "${cfg.package}/bin/auditctl -D" ];
        };
      };
    })
    (mkIf config.security.auditd.enable {
      security.audit.enable = lib.mkDefault true;
      assertions = [
        {
          assertion = let s = config.security.auditd.settings; in !(builtins.isInt s.space_left && builtins.isInt s.admin_space_left) || s.space_left > s.admin_space_left;
          message = "security.auditd.settings.space_left must be larger than admin_space_left";
        }
      ];
      systemd.services.auditd = {
        description = "Security Audit Logging Service";
        wantedBy = [ "sysinit.target" ];
        after = [ "local-fs.target" "systemd-tmpfiles-setup.service" ];
        unitConfig.RefuseManualStop = true;
        serviceConfig = {
          LogsDirectory = "audit";
          ExecStart = "${pkgs.audit}/bin/auditd -l -n -s nochange";
          Restart = "on-failure";
          MemoryDenyWriteExecute = true;
          LockPersonality = true;
          RestrictRealtime = true;
        };
      };
    })
  ];
}
