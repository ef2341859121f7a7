# ClamAV (services/security/clamav.nix): clamd, freshclam, fangfrisch, the periodic scanner and
# the on-access scanner. Nothing of it runs unless the daemon or the updater is enabled; the
# scanner alone is accepted and does nothing, as upstream.
{ config, lib, pkgs, ... }:
let
  inherit (lib) mkOption types mkIf;
  cfg = config.services.clamav;
  clamavUser = "clamav";
  clamavGroup = clamavUser;
  stateDir = "/var/lib/clamav";
  settingsType = types.attrsOf (types.oneOf [ types.bool types.int types.str (types.listOf types.str) ]);
  toKeyValue = lib.generators.toKeyValue { listsAsDuplicateKeys = true; mkKeyValue = lib.generators.mkKeyValueDefault { } " "; };
  clamdConfigFile = pkgs.writeText "clamd.conf" (toKeyValue cfg.daemon.settings);
  freshclamConfigFile = pkgs.writeText "freshclam.conf" (toKeyValue cfg.updater.settings);
  fangfrischConfigFile = pkgs.writeText "fangfrisch.conf" ''
    ${lib.generators.toINI { } cfg.fangfrisch.settings}
  '';
in
{
  imports = [
    (lib.mkRemovedOptionModule [ "services" "clamav" "updater" "config" ] "Use services.clamav.updater.settings instead.")
    (lib.mkRemovedOptionModule [ "services" "clamav" "updater" "extraConfig" ] "Use services.clamav.updater.settings instead.")
    (lib.mkRemovedOptionModule [ "services" "clamav" "daemon" "extraConfig" ] "Use services.clamav.daemon.settings instead.")
  ];

  options.services.clamav = {
    package = mkOption { type = types.package; default = pkgs.clamav; defaultText = lib.literalExpression "pkgs.clamav"; description = "The clamav package."; };
    clamonacc.enable = mkOption { type = types.bool; default = false; description = "Whether to enable the ClamAV on-access scanner (configured in daemon.settings)."; };
    daemon = {
      enable = mkOption { type = types.bool; default = false; description = "Whether to enable the ClamAV clamd daemon."; };
      settings = mkOption { type = settingsType; default = { }; description = "clamd.conf settings."; };
    };
    fangfrisch = {
      enable = mkOption { type = types.bool; default = false; description = "Whether to enable the fangfrisch updater (third-party signatures)."; };
      interval = mkOption { type = types.str; default = "hourly"; description = "How often fangfrisch runs (systemd.time(7))."; };
      settings = mkOption {
        default = { };
        description = "fangfrisch configuration (INI sections).";
        type = types.submodule { freeformType = types.attrsOf (types.attrsOf (types.oneOf [ types.str types.int types.bool ])); };
      };
    };
    scanner = {
      enable = mkOption { type = types.bool; default = false; description = "Whether to periodically scan directories with clamdscan."; };
      interval = mkOption { type = types.str; default = "*-*-* 04:00:00"; description = "When to scan (systemd.time(7))."; };
      scanDirectories = mkOption { type = types.listOf types.str; default = [ "/home" "/var/lib" "/tmp" "/etc" "/var/tmp" ]; description = "Directories scanned."; };
    };
    updater = {
      enable = mkOption { type = types.bool; default = false; description = "Whether to enable the ClamAV freshclam updater."; };
      frequency = mkOption { type = types.int; default = 12; description = "Database checks per day."; };
      interval = mkOption { type = types.str; default = "hourly"; description = "How often freshclam is started (systemd.time(7))."; };
      settings = mkOption { type = settingsType; default = { }; description = "freshclam.conf settings."; };
    };
  };

  config = lib.mkMerge [
    {
      surface.provenance = [
        { options = [ "services.clamav" ]; upstream = "nixos/modules/services/security/clamav.nix"; repo = "Swarsel/nixpkgs"; commit = "4aa6836a648ca76c68866decf0c8965e36ec2a3b"; surface = "clamav.nix"; }
      ];
    }
    (mkIf (cfg.updater.enable || cfg.daemon.enable) {
      assertions = [
        { assertion = cfg.scanner.enable -> cfg.daemon.enable; message = "ClamAV scanner requires ClamAV daemon to operate"; }
        { assertion = cfg.clamonacc.enable -> cfg.daemon.enable; message = "ClamAV on-access scanner requires ClamAV daemon to operate"; }
      ];
      environment.etc."clamav/clamd.conf".source = clamdConfigFile;
      environment.etc."clamav/freshclam.conf".source = freshclamConfigFile;
      environment.systemPackages = [ cfg.package ];

      services.clamav.daemon.settings = {
        DatabaseDirectory = stateDir;
        Foreground = true;
        LocalSocket = "/run/clamav/clamd.ctl";
        # Prevent infinite recursion in scanning.
        OnAccessExcludeUname = clamavUser;
        PidFile = "/run/clamav/clamd.pid";
        User = clamavUser;
      };
      services.clamav.fangfrisch.settings = {
        DEFAULT.db_url = lib.mkDefault "sqlite:////var/lib/clamav/fangfrisch_db.sqlite";
        DEFAULT.local_directory = lib.mkDefault stateDir;
        DEFAULT.log_level = lib.mkDefault "INFO";
        sanesecurity.enabled = lib.mkDefault "yes";
        urlhaus.enabled = lib.mkDefault "yes";
        urlhaus.max_size = lib.mkDefault "2MB";
      };
      services.clamav.updater.settings = {
        Checks = cfg.updater.frequency;
        DatabaseDirectory = stateDir;
        DatabaseMirror = [ "database.clamav.net" ];
        Foreground = true;
      };

      systemd.services.clamav-clamonacc = mkIf cfg.clamonacc.enable {
        description = "ClamAV on-access scanner (clamonacc)";
        after = [ "clamav-daemon.socket" ];
        requires = [ "clamav-daemon.socket" ];
        wantedBy = [ "multi-user.target" ];
        restartTriggers = [ clamdConfigFile ];
        # Runs as root: fanotify needs it.
        serviceConfig = { ExecStart = "${cfg.package}/bin/clamonacc -F --fdpass"; Slice = "system-clamav.slice"; };
      };
      systemd.services.clamav-daemon = mkIf cfg.daemon.enable {
        description = "ClamAV daemon (clamd)";
        documentation = [ "man:clamd(8)" ];
        after = lib.optionals cfg.updater.enable [ "clamav-freshclam.service" ];
        wants = lib.optionals cfg.updater.enable [ "clamav-freshclam.service" ];
        requires = [ "clamav-daemon.socket" ];
        wantedBy = [ "multi-user.target" ];
        restartTriggers = [ clamdConfigFile ];
        serviceConfig = {
          ExecReload = "${pkgs.coreutils}/bin/kill -USR2 $MAINPID";
          ExecStart = "${cfg.package}/bin/clamd";
          Group = clamavGroup;
          PrivateDevices = "yes";
          PrivateNetwork = "yes";
          PrivateTmp = "yes";
          RuntimeDirectory = "clamav";
          Slice = "system-clamav.slice";
          StateDirectory = "clamav";
          User = clamavUser;
        };
      };
      systemd.services.clamav-fangfrisch = mkIf cfg.fangfrisch.enable {
        description = "ClamAV virus database updater (fangfrisch)";
        after = [ "network-online.target" "clamav-fangfrisch-init.service" ];
        requires = [ "network-online.target" ];
        restartTriggers = [ fangfrischConfigFile ];
        serviceConfig = {
          ExecStart = "${pkgs.fangfrisch}/bin/fangfrisch --conf ${fangfrischConfigFile} refresh";
          Group = clamavGroup; PrivateDevices = "yes"; PrivateTmp = "yes"; Slice = "system-clamav.slice"; StateDirectory = "clamav"; Type = "oneshot"; User = clamavUser;
        };
      };
      systemd.services.clamav-fangfrisch-init = mkIf cfg.fangfrisch.enable {
        wantedBy = [ "multi-user.target" ];
        script = "${pkgs.fangfrisch}/bin/fangfrisch --conf ${fangfrischConfigFile} initdb";
        serviceConfig = { Group = clamavGroup; PrivateDevices = "yes"; PrivateTmp = "yes"; Slice = "system-clamav.slice"; StateDirectory = "clamav"; Type = "oneshot"; User = clamavUser; };
      };
      systemd.services.clamav-freshclam = mkIf cfg.updater.enable {
        description = "ClamAV virus database updater (freshclam)";
        documentation = [ "man:freshclam(1)" ];
        after = [ "network-online.target" ];
        requires = [ "network-online.target" ];
        restartTriggers = [ freshclamConfigFile ];
        serviceConfig = {
          ExecStart = "${cfg.package}/bin/freshclam";
          Group = clamavGroup;
          PrivateDevices = "yes";
          PrivateTmp = "yes";
          Slice = "system-clamav.slice";
          StateDirectory = "clamav";
          SuccessExitStatus = "1"; # the databases are up to date
          Type = "oneshot";
          User = clamavUser;
        };
      };
      systemd.services.clamdscan = mkIf cfg.scanner.enable {
        description = "ClamAV virus scanner";
        documentation = [ "man:clamdscan(1)" ];
        after = lib.optionals cfg.updater.enable [ "clamav-freshclam.service" ];
        wants = lib.optionals cfg.updater.enable [ "clamav-freshclam.service" ];
        serviceConfig = {
          ExecStart = "${cfg.package}/bin/clamdscan --multiscan --fdpass --infected --allmatch ${lib.concatStringsSep " " cfg.scanner.scanDirectories}";
          Slice = "system-clamav.slice";
          Type = "oneshot";
        };
      };
      systemd.slices.system-clamav.description = "ClamAV Antivirus Slice";
      systemd.sockets.clamav-daemon = mkIf cfg.daemon.enable {
        description = "Socket for ClamAV daemon (clamd)";
        listenStreams = [ cfg.daemon.settings.LocalSocket ];
        socketConfig = {
          SocketGroup = clamavGroup;
          # clamd.conf's LocalSocketMode has no leading 0.
          SocketMode = "0${cfg.daemon.settings.LocalSocketMode or "666"}";
          SocketUser = clamavUser;
        };
        wantedBy = [ "sockets.target" ];
      };
      systemd.timers.clamav-fangfrisch = mkIf cfg.fangfrisch.enable {
        description = "Timer for ClamAV virus database updater (fangfrisch)";
        timerConfig = { OnCalendar = cfg.fangfrisch.interval; Unit = "clamav-fangfrisch.service"; };
        wantedBy = [ "timers.target" ];
      };
      systemd.timers.clamav-freshclam = mkIf cfg.updater.enable {
        description = "Timer for ClamAV virus database updater (freshclam)";
        timerConfig = { OnCalendar = cfg.updater.interval; Unit = "clamav-freshclam.service"; };
        wantedBy = [ "timers.target" ];
      };
      systemd.timers.clamdscan = mkIf cfg.scanner.enable {
        description = "Timer for ClamAV virus scanner";
        timerConfig = { OnCalendar = cfg.scanner.interval; Unit = "clamdscan.service"; };
        wantedBy = [ "timers.target" ];
      };
      users.groups.${clamavGroup}.gid = config.ids.gids.clamav;
      users.users.${clamavUser} = { description = "ClamAV daemon user"; group = clamavGroup; home = stateDir; uid = config.ids.uids.clamav; };
    })
  ];
}
