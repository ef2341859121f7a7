# Audit: every execve logged by the kernel, sent to auditd and on into the journal (and so off
# the machine with paranoid.logs.remote), optionally locked until reboot.
{ config, lib, ... }:
let
  inherit (lib) mkOption types mkIf mkDefault;
  h = import ../lib/module-helpers.nix { inherit lib; };
  cfg = config.paranoid.audit;
  # execveat too: a program can run another through it without ever calling execve.
  execRules = map (arch: "-a always,exit -F arch=${arch} -S execve -S execveat -k ${cfg.key}") [ "b64" "b32" ];
in
{
  # The watcher that reads these records (paranoid.audit.alertForeignExec).
  imports = [ ./audit-watch.nix ];

  options.paranoid.audit = {
    enable = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Run auditd with the kernel audit subsystem on. Costs CPU and log volume in proportion to
        the number of programs started: an execve rule on a busy build host is loud by design.
      '';
    };
    execve = mkOption {
      type = types.bool;
      default = true;
      description = "Log every program execution (execve and execveat, 64- and 32-bit ABIs), tagged with `key`; `ausearch -k <key>` finds them.";
    };
    key = mkOption { type = types.str; default = "exec"; description = "Audit key of the execve rules."; };
    immutable = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Lock the rules until reboot (`security.audit.enable = "lock"`, `auditctl -e 2`): an
        intruder with root cannot switch auditing off. Breaks: changing rules needs a reboot,
        so the rules unit is not restarted on switch.
      '';
    };
    backlogLimit = mkOption {
      type = types.ints.positive;
      default = 8192;
      description = "Kernel audit backlog. execve logging bursts; too small a backlog loses records (or panics, with failureMode = panic).";
    };
  };

  config = mkIf cfg.enable {
    security.auditd.enable = mkDefault true;
    # auditd itself sets security.audit.enable = mkDefault true; "lock" must beat that.
    security.audit.enable = h.mkPreset (if cfg.immutable then "lock" else true);
    security.audit.backlogLimit = mkDefault cfg.backlogLimit;
    security.audit.rules = lib.optionals cfg.execve execRules;
    # "Make evidence loud": audit records also go to syslog, i.e. the journal.
    security.auditd.plugins.syslog.active = mkDefault true;
    # Reloading locked rules fails (auditctl -e 0 is refused); they apply at the next boot.
    systemd.services.audit-rules-nixos.restartIfChanged = mkIf cfg.immutable false;
  };
}
