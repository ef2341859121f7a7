# journald and shipping the journal off the machine (system/boot/systemd/journald.nix,
# journald-upload.nix). Upload.URL and Upload.ServerKeyFile have no default upstream: a
# configuration that enables upload without them fails to evaluate, here as there.
{ config, lib, pkgs, ... }:
let
  inherit (lib) mkOption types mkIf;
  render = import ../../lib/render.nix { inherit lib; };
  cfg = config.services.journald;
  singleAtom = types.nullOr (types.oneOf [ types.bool types.int types.float types.str ]);
  systemdIniType = types.attrsOf (types.attrsOf (types.either singleAtom (types.listOf singleAtom)));
in
{
  options.services.journald = {
    storage = mkOption { type = types.enum [ "persistent" "volatile" "auto" "none" ]; default = "persistent"; description = "Where the journal is stored."; };
    rateLimitInterval = mkOption { type = types.str; default = "30s"; description = "Rate limit interval."; };
    rateLimitBurst = mkOption { type = types.int; default = 10000; description = "Messages allowed per interval per service."; };
    console = mkOption { type = types.str; default = ""; description = "Forward the journal to this console."; };
    forwardToSyslog = mkOption { type = types.bool; default = false; description = "Forward messages to a syslog daemon."; };
    audit = mkOption { type = types.either types.bool (types.enum [ "keep" ]); default = "keep"; description = "journald's Audit= setting."; };
    extraConfig = mkOption { type = types.lines; default = ""; description = "Extra journald.conf lines (last assignment wins)."; };

    upload = {
      enable = mkOption { type = types.bool; default = false; description = "Whether to enable uploading the systemd journal to a remote server."; };
      settings = mkOption {
        default = { };
        description = "Configuration for journal-upload (journal-upload.conf(5)).";
        type = types.submodule {
          freeformType = systemdIniType;
          options.Upload = {
            URL = mkOption { type = types.str; description = "The URL to upload the journal entries to."; };
            ServerKeyFile = mkOption { type = types.nullOr types.str; description = "Client private key (PEM), readable by group systemd-journal."; };
            ServerCertificateFile = mkOption { type = types.nullOr types.str; default = null; description = "Client certificate (PEM)."; };
            TrustedCertificateFile = mkOption { type = types.nullOr types.str; default = null; description = "CA used to check the server's certificate."; };
            NetworkTimeoutSec = mkOption { type = types.nullOr types.str; description = "How long to wait for the network to return."; };
          };
        };
      };
    };
  };

  config = lib.mkMerge [
    {
      environment.etc."systemd/journald.conf".text = ''
        [Journal]
        Storage=${cfg.storage}
        RateLimitInterval=${cfg.rateLimitInterval}
        RateLimitBurst=${toString cfg.rateLimitBurst}
        ${lib.optionalString (cfg.console != "") "ForwardToConsole=yes\nTTYPath=${cfg.console}"}
        ${lib.optionalString cfg.forwardToSyslog "ForwardToSyslog=yes"}
        ${lib.optionalString (cfg.audit != "keep") "Audit=${if cfg.audit then "yes" else "no"}"}
        ${cfg.extraConfig}
      '';
    }
    (mkIf cfg.upload.enable {
      systemd.services.systemd-journal-upload = {
        wantedBy = [ "multi-user.target" ];
        serviceConfig = { Restart = "always"; RestartSec = "3sec"; };
      };
      environment.etc."systemd/journal-upload.conf".text = render.systemdIni cfg.upload.settings;
    })
  ];
}
