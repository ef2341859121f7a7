# journald, shipping the journal off the machine and receiving it (system/boot/systemd/journald.nix,
# journald-upload.nix, journald-remote.nix). Upload.URL has no default upstream: a configuration
# that enables upload without it fails to evaluate, here as there.
{ config, lib, pkgs, ... }:
let
  inherit (lib) mkOption types mkIf;
  render = import ../../lib/render.nix { inherit lib; };
  cfg = config.services.journald;
  # pkgs.formats.systemd's type.
  singleAtom = types.nullOr (types.oneOf [ types.bool types.int types.float types.str ]);
  systemdIniType = types.attrsOf (types.attrsOf (types.either singleAtom (types.listOf singleAtom)));
  # systemdUtils.lib.toOption
  toOption = x: if x == true then "true" else if x == false then "false" else toString x;
  provenance = upstream: options: extra: { inherit upstream options; repo = "Swarsel/nixpkgs"; commit = "4aa6836a648ca76c68866decf0c8965e36ec2a3b"; surface = "journald.nix"; } // extra;
in
{
  imports = [
    (lib.mkRemovedOptionModule [ "services" "journald" "remote" "listen" ] ''
      systemd in Nixpkgs is built without GnuTLS, so systemd-journal-remote
      cannot accept HTTPS connections or validate client certificates. Use a
      reverse proxy (such as nginx) to terminate TLS in front of journal-remote
      if you need encrypted ingestion.
    '')
  ];

  options.services.journald = {
    storage = mkOption { type = types.enum [ "persistent" "volatile" "auto" "none" ]; default = "persistent"; description = "Where the journal is stored."; };
    rateLimitInterval = mkOption { type = types.str; default = "30s"; description = "Rate limit interval."; };
    rateLimitBurst = mkOption { type = types.int; default = 10000; description = "Messages allowed per interval per service."; };
    console = mkOption { type = types.str; default = ""; description = "If non-empty, write log messages to this TTY."; };
    forwardToSyslog = mkOption {
      type = types.bool;
      default = (config.services.rsyslogd.enable or false) || (config.services.syslog-ng.enable or false);
      defaultText = lib.literalExpression "services.rsyslogd.enable || services.syslog-ng.enable";
      description = "Forward messages to a syslog daemon.";
    };
    audit = mkOption { type = types.oneOf [ types.bool (types.enum [ "keep" ]) ]; default = "keep"; description = "journald's Audit= setting."; };
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
            ServerKeyFile = mkOption { type = types.nullOr types.str; default = null; description = "Client private key (PEM), readable by group systemd-journal."; };
            ServerCertificateFile = mkOption { type = types.nullOr types.str; default = null; description = "Client certificate (PEM)."; };
            TrustedCertificateFile = mkOption { type = types.nullOr types.str; default = null; description = "CA used to check the server's certificate."; };
            NetworkTimeoutSec = mkOption { type = types.nullOr types.str; default = null; description = "How long to wait for the network to return."; };
          };
        };
      };
    };

    remote = {
      enable = mkOption { type = types.bool; default = false; description = "Whether to receive systemd journals from the network (systemd-journal-remote)."; };
      output = mkOption { type = types.str; default = "/var/log/journal/remote/"; description = "Where received journals are written."; };
      port = mkOption { type = types.port; default = 19532; description = "The port to listen to."; };
      settings = mkOption {
        default = { };
        description = "journal-remote.conf(5) settings.";
        type = types.submodule {
          freeformType = systemdIniType;
          options.Remote = {
            Seal = mkOption { type = types.bool; default = false; description = "Sign the journal with Forward Secure Sealing."; };
            SplitMode = mkOption { type = types.enum [ "host" "none" ]; default = "host"; description = "One output file per remote host, or one for all."; };
          };
        };
      };
    };
  };

  config = lib.mkMerge [
    {
      surface.provenance = [
        (provenance "nixos/modules/system/boot/systemd/journald.nix" [ "services.journald.storage" "services.journald.rateLimitInterval" "services.journald.rateLimitBurst" "services.journald.console" "services.journald.forwardToSyslog" "services.journald.audit" "services.journald.extraConfig" ] { })
        (provenance "nixos/modules/system/boot/systemd/journald-upload.nix" [ "services.journald.upload" ] { })
        (provenance "nixos/modules/system/boot/systemd/journald-remote.nix" [ "services.journald.remote" ] { notes = "journal-remote.conf is rendered; the unit's command line is recorded, not its upstream unit file."; })
      ];
      environment.etc."systemd/journald.conf".text = ''
        [Journal]
        Storage=${cfg.storage}
        RateLimitInterval=${cfg.rateLimitInterval}
        RateLimitBurst=${toString cfg.rateLimitBurst}
        ${lib.optionalString (cfg.console != "") ''
          ForwardToConsole=yes
          TTYPath=${cfg.console}
        ''}
        ${lib.optionalString cfg.forwardToSyslog ''
          ForwardToSyslog=yes
        ''}
        Audit=${toOption cfg.audit}
        ${cfg.extraConfig}
      '';
      users.groups.systemd-journal.gid = config.ids.gids.systemd-journal;
    }
    (mkIf cfg.upload.enable {
      systemd.services.systemd-journal-upload = {
        wantedBy = [ "multi-user.target" ];
        serviceConfig = { Restart = "always"; RestartSec = "3sec"; };
      };
      environment.etc."systemd/journal-upload.conf".text = render.systemdIni cfg.upload.settings;
    })
    (mkIf cfg.remote.enable {
      assertions = map (key: {
        assertion = !(cfg.remote.settings ? Remote.${key});
        message = ''
          The option definition `services.journald.remote.settings.Remote.${key}'
          no longer has any effect; please remove it.
        '';
      }) [ "ServerKeyFile" "ServerCertificateFile" "TrustedCertificateFile" ];
      environment.etc."systemd/journal-remote.conf".text = render.systemdIni cfg.remote.settings;
      systemd.services.systemd-journal-remote.serviceConfig.ExecStart = [ "" "${pkgs.systemd}/lib/systemd/systemd-journal-remote --output=${lib.escapeShellArg cfg.remote.output} --listen-http=-3" ];
      # Listens on every address: open the port in the firewall to receive from elsewhere.
      systemd.sockets.systemd-journal-remote = {
        listenStreams = [ "" (toString cfg.remote.port) ];
        wantedBy = [ "sockets.target" ];
      };
      users.groups.systemd-journal-remote = { };
      users.users.systemd-journal-remote = { group = "systemd-journal-remote"; isSystemUser = true; };
    })
  ];
}
