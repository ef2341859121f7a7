# Foreign code made loud: paranoid-execwatch reads the exec records paranoid.audit has the
# kernel write and raises an alert, in the journal (and so off the box with paranoid.logs.remote)
# and optionally on a webhook and a command, for every program run from outside /nix/store.
{ config, lib, pkgs, ... }:
let
  inherit (lib) mkOption types mkIf mkDefault;
  h = import ../lib/module-helpers.nix { inherit lib; };
  presets = import ../lib/systemd-presets.nix;
  audit = config.paranoid.audit;
  cfg = audit.alertForeignExec;
  unit = "paranoid-execwatch";
  bin = lib.getExe' cfg.package "paranoid-execwatch";

  # Where alerts go, shared by the watcher and the units that say it stopped.
  sinkArgs =
    lib.optionals (cfg.webhook.url != null) [ "--webhook-url" cfg.webhook.url ]
    ++ lib.optionals (cfg.webhook.tokenFile != null) [ "--webhook-token-file" "%d/webhook-token" ]
    ++ lib.optionals (cfg.command != null) [ "--command" (toString cfg.command) ];
  watchArgs =
    [ "--key" audit.key "--heartbeat" "60" "--status-interval" "5" "--rate-burst" "20" "--rate-window" "10" ]
    ++ lib.concatMap (p: [ "--allow" p ]) cfg.allow;
  command = args: lib.escapeShellArgs ([ bin ] ++ args);

  # paranoid's strict preset, each key at mkDefault, plus exactly what the watcher needs (at
  # preset priority, so the preset's "no capabilities" loses and the user's settings still win).
  sandbox = extra: lib.mapAttrs (_: mkDefault) presets.strict // lib.mapAttrs (_: h.mkPreset) ({
    DynamicUser = true;
    RestrictAddressFamilies = [ "AF_UNIX" ] ++ lib.optionals (cfg.webhook.url != null) [ "AF_INET" "AF_INET6" ];
  } // lib.optionalAttrs (cfg.webhook.tokenFile != null) {
    # The token is handed over by systemd, readable only by this unit.
    LoadCredential = "webhook-token:${cfg.webhook.tokenFile}";
  } // lib.optionalAttrs (cfg.webhook.url == null) {
    # No webhook: no IP traffic at all.
    IPAddressDeny = "any";
  } // extra);
in
{
  options.paranoid.audit.alertForeignExec = {
    enable = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Run paranoid-execwatch: every program executed from outside /nix/store and
        {option}`paranoid.audit.alertForeignExec.allow` becomes a journal entry at priority
        `alert` with the executable, argv, pid, parent pid and executable, uid, login uid,
        session, cwd and result (structured `EXECWATCH_*` fields, `MESSAGE_ID`
        bd92ce3a861448b3bece766c0f9f2d0a), which travels with {option}`paranoid.logs.remote`.
        It judges whole exec events read from the kernel's audit multicast group (beside auditd,
        not instead of it): the executable; the script of a `#!` exec; the first operand of an
        interpreter in the store (`bash ./x.sh`, `python3 x.py`) and of the dynamic loader
        (`ld.so /tmp/x`); and an exec the kernel refused (EACCES on a noexec mount, EPERM).
        More than 20 foreign execs in 10 s are summarised with exact counts per executable and
        uid, never dropped. Audit switched off, the exec rules removed, records lost by the
        kernel or the watcher, and the watcher stopping (SIGTERM, a crash, systemd's watchdog,
        `OnFailure=`) are alerts too; a heartbeat every 60 s (`MESSAGE_ID`
        4af8ae8523d84064aa9785b868614ae5) lets the log host notice silence.

        Needs {option}`paranoid.audit.enable` with {option}`paranoid.audit.execve` (the
        records it reads). Runs as a dynamic user under paranoid's `strict` systemd preset plus
        CAP_AUDIT_READ (to join the read-log multicast group) and CAP_AUDIT_CONTROL (only for
        two read-only requests, the audit status and the rule list, which show audit switched
        off, rules removed and lost records even when no record says so; the watcher sends
        nothing that changes audit), with PrivateUsers off (capabilities must count in the
        initial user namespace) and AF_NETLINK allowed.

        Costs: CPU in proportion to the exec rate, about 45 ms per 1,000 execs on the
        project's 2-core machine, 0.85-0.9 times auditd's own on the same flood (README,
        "Measured"); an idle host pays only the 5 s status poll and the heartbeat. It follows symlinks it can see to tell
        `/run/current-system/sw/bin/x` (the store) from a foreign file; its sandbox hides /home
        and /tmp, so a script reached through a symlink there is reported.

        What it cannot see: code that is never handed to execve. A script run as
        `bash ./x.sh` with bash in the store is seen only through argv: the first operand
        (after options; `-c`, `-s`, `-e`, `-m` and stdin mean there is no script file) is
        resolved against the cwd and alerted on when it lies outside the store and the
        allow-list, reason `interpreter-argument`. `bash < x.sh`, `bash -c "$(cat x.sh)"`,
        `source`/`.` from a shell already running, code an interpreter loads at run time
        (imports, `eval`), libraries brought in with LD_PRELOAD or dlopen, and shellcode
        injected into a running process are invisible to it. Programs run through a copy of a
        store interpreter outside the store are caught (the copy is the executable). On a host
        that builds with Nix, builds run configure scripts and test programs from the build
        directory (`/build`): build elsewhere and copy closures, or add it to `allow`.
      '';
    };
    allow = mkOption {
      type = types.listOf (types.strMatching "/.*");
      default = [ "/run/wrappers" ];
      example = [ "/run/wrappers" "/opt/vendor-agent" ];
      description = ''
        Path prefixes (whole components) whose programs are not foreign, besides /nix/store.
        `/run/wrappers` holds NixOS's setuid wrappers (sudo, ping), copied there at boot;
        drop it to hear about every wrapper run.
      '';
    };
    webhook = {
      url = mkOption {
        type = types.nullOr (types.strMatching "https?://.+");
        default = null;
        example = "https://alerts.example.com/hooks/execwatch";
        description = "POST every alert (not heartbeats) as JSON to this URL; three tries, then the journal records that it was not delivered.";
      };
      tokenFile = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "/run/keys/execwatch-webhook-token";
        description = "File with a bearer token for the webhook (`Authorization: Bearer …`), handed to the unit with LoadCredential; keep it out of /nix/store.";
      };
    };
    command = mkOption {
      type = types.nullOr types.path;
      default = null;
      example = lib.literalExpression ''pkgs.writeShellScript "page-oncall" "…"'';
      description = ''
        Program run for every alert (not heartbeats) with the alert's JSON on stdin and
        `EXECWATCH_KIND`, `EXECWATCH_MESSAGE`, `EXECWATCH_TARGET` in its environment. It runs
        inside the watcher's sandbox (dynamic user, no capabilities, 30 s per alert).
      '';
    };
    package = mkOption {
      type = types.package;
      default = pkgs.paranoid-execwatch or (pkgs.callPackage ../execwatch/package.nix { });
      defaultText = lib.literalExpression "pkgs.callPackage \"\${paranoid}/execwatch/package.nix\" { }";
      description = "The paranoid-execwatch package.";
    };
  };

  config = mkIf cfg.enable {
    assertions = [
      {
        assertion = audit.enable && audit.execve;
        message = h.guard "audit-watch-no-rules" ''
          paranoid.audit.alertForeignExec.enable = true, but ${if audit.enable then "paranoid.audit.execve = false" else "paranoid.audit.enable = false"},
          so no execve audit rule is loaded and the watcher would have nothing to read.
          Fix: set paranoid.audit.enable = true (with paranoid.audit.execve = true), or set paranoid.audit.alertForeignExec.enable = false.'';
      }
      {
        assertion = cfg.webhook.tokenFile == null || cfg.webhook.url != null;
        message = h.guard "audit-watch-token-without-url" ''
          paranoid.audit.alertForeignExec.webhook.tokenFile is set but paranoid.audit.alertForeignExec.webhook.url is not.
          Fix: set the webhook URL, or drop the token file.'';
      }
      {
        assertion = cfg.webhook.tokenFile == null || !(lib.hasPrefix "/nix/store" cfg.webhook.tokenFile);
        message = h.guard "audit-watch-token-in-store" ''
          paranoid.audit.alertForeignExec.webhook.tokenFile = "${toString cfg.webhook.tokenFile}" is in /nix/store, readable by every user.
          Fix: keep the token outside the store (e.g. /run/keys or a secrets manager's path).'';
      }
    ];

    systemd.services.${unit} = {
      description = "paranoid: alert on programs run from outside /nix/store";
      wantedBy = [ "multi-user.target" ];
      # Start once the rules are loaded; its own poll alerts if they never are.
      after = [ "audit-rules-nixos.service" ];
      # A watcher that cannot come back is an alert (OnFailure fires once restarts give up).
      onFailure = [ "${unit}-failed.service" ];
      unitConfig = {
        StartLimitIntervalSec = mkDefault 300;
        StartLimitBurst = mkDefault 10;
      };
      serviceConfig = sandbox {
        Type = "notify";
        ExecStart = command ([ "watch" ] ++ watchArgs ++ sinkArgs);
        # Every stop, crash or watchdog kill says so (systemd passes $SERVICE_RESULT).
        ExecStopPost = command ([ "stopped" "--unit" "${unit}.service" ] ++ sinkArgs);
        Restart = "always";
        RestartSec = 2;
        # A watcher that hangs is killed (and restarted, and reported) within 30 s.
        WatchdogSec = 30;
        CapabilityBoundingSet = [ "CAP_AUDIT_READ" "CAP_AUDIT_CONTROL" ];
        AmbientCapabilities = [ "CAP_AUDIT_READ" "CAP_AUDIT_CONTROL" ];
        PrivateUsers = false;
        # Not PrivateNetwork: the kernel multicasts audit records in the initial network namespace only.
        PrivateMounts = true;
        RestrictAddressFamilies = [ "AF_UNIX" "AF_NETLINK" ] ++ lib.optionals (cfg.webhook.url != null) [ "AF_INET" "AF_INET6" ];
      };
    };

    systemd.services."${unit}-failed" = {
      description = "paranoid: report that paranoid-execwatch failed for good";
      serviceConfig = sandbox {
        Type = "oneshot";
        ExecStart = command ([ "stopped" "--failed" "--unit" "${unit}.service" ] ++ sinkArgs);
      };
    };
  };
}
