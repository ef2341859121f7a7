# ClamAV (services/security/clamav.nix): clamd, freshclam and the periodic scanner.
{ config, lib, pkgs, ... }:
let
  inherit (lib) mkOption types mkIf;
  cfg = config.services.clamav;
  settingsType = types.attrsOf (types.oneOf [ types.bool types.int types.str (types.listOf types.str) ]);
in
{
  options.services.clamav = {
    package = mkOption { type = types.package; default = pkgs.clamav; description = "The clamav package."; };
    daemon = {
      enable = mkOption { type = types.bool; default = false; description = "Whether to enable the ClamAV clamd daemon."; };
      settings = mkOption { type = settingsType; default = { }; description = "clamd.conf settings."; };
    };
    updater = {
      enable = mkOption { type = types.bool; default = false; description = "Whether to enable the ClamAV freshclam updater."; };
      frequency = mkOption { type = types.int; default = 12; description = "Updates per day."; };
      interval = mkOption { type = types.str; default = "hourly"; description = "How often freshclam is started (systemd.time(7))."; };
      settings = mkOption { type = settingsType; default = { }; description = "freshclam.conf settings."; };
    };
    scanner = {
      enable = mkOption { type = types.bool; default = false; description = "Whether to periodically scan directories with clamdscan."; };
      interval = mkOption { type = types.str; default = "*-*-* 04:00:00"; description = "When to scan (systemd.time(7))."; };
      scanDirectories = mkOption { type = types.listOf types.str; default = [ "/home" "/var/lib" "/tmp" "/etc" "/var/tmp" ]; description = "Directories scanned."; };
    };
  };

  config = lib.mkMerge [
    (mkIf cfg.daemon.enable {
      systemd.services.clamav-daemon = {
        description = "ClamAV daemon (clamd)";
        wantedBy = [ "multi-user.target" ];
        serviceConfig = { ExecStart = "${cfg.package}/bin/clamd"; PrivateTmp = "yes"; PrivateDevices = "yes"; PrivateNetwork = "yes"; };
      };
      users.users.clamav = { isSystemUser = true; group = "clamav"; description = "ClamAV daemon user"; home = "/var/lib/clamav"; };
      users.groups.clamav = { };
    })
    (mkIf cfg.updater.enable {
      systemd.services.clamav-freshclam = {
        description = "ClamAV virus database updater (freshclam)";
        serviceConfig = { Type = "oneshot"; ExecStart = "${cfg.package}/bin/freshclam"; StateDirectory = "clamav"; PrivateTmp = "yes"; PrivateDevices = "yes"; };
      };
    })
    (mkIf cfg.scanner.enable {
      systemd.services.clamdscan = {
        description = "ClamAV virus scanner";
        serviceConfig = { Type = "oneshot"; ExecStart = "${cfg.package}/bin/clamdscan --multiscan --fdpass --infected --allmatch ${lib.escapeShellArgs cfg.scanner.scanDirectories}"; };
      };
      assertions = [ { assertion = cfg.daemon.enable; message = "services.clamav.scanner.enable requires services.clamav.daemon.enable"; } ];
    })
  ];
}
