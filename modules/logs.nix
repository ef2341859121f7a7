# Logs off the machine: systemd-journal-upload to a remote journal, over TLS with a client key.
{ config, lib, ... }:
let
  inherit (lib) mkOption types mkIf mkDefault;
  h = import ../lib/module-helpers.nix { inherit lib; };
  cfg = config.paranoid.logs;
  url = cfg.remote.url;
  upload = config.services.journald.upload.settings.Upload or { };
  https = url != null && lib.hasPrefix "https://" url;
  # systemd-journal-upload over https presents a client key and certificate; without them it
  # falls back to /etc/ssl/private/journal-upload.pem, which NixOS never has, and cannot start.
  missingTls = lib.filter (k: (upload.${k} or null) == null) [ "ServerKeyFile" "ServerCertificateFile" ];
  knobOf = { ServerKeyFile = "serverKeyFile"; ServerCertificateFile = "serverCertificateFile"; };
in
{
  options.paranoid.logs = {
    remote = {
      enable = mkOption {
        type = types.bool;
        default = false;
        description = ''
          Ship the journal (audit records included, with paranoid.audit) to a
          systemd-journal-remote server as it is written, so an intruder cannot erase what they
          did. Needs a receiver (`services.journald.remote` on another host).
        '';
      };
      url = mkOption { type = types.nullOr types.str; default = null; example = "https://logs.example.com:19532"; description = "The receiver (`Upload.URL`)."; };
      serverKeyFile = mkOption { type = types.nullOr types.str; default = null; description = "Client private key (PEM) presented to the receiver; must be readable by group systemd-journal and not live in /nix/store."; };
      serverCertificateFile = mkOption { type = types.nullOr types.str; default = null; description = "Client certificate (PEM) presented to the receiver."; };
      trustedCertificateFile = mkOption {
        type = types.str;
        default = "/etc/ssl/certs/ca-certificates.crt";
        description = "CA bundle (PEM) the receiver's certificate must chain to (`Upload.TrustedCertificateFile`). The default is the system bundle (security.pki); pin your own CA to accept only your receiver.";
      };
    };
    localStorage = mkOption {
      type = types.enum [ "persistent" "volatile" ];
      default = "persistent";
      description = "With remote shipping, keep a local copy on disk (`persistent`) or only in RAM (`volatile`: local logs are radioactive; the remote copy is the record).";
    };
  };

  config = mkIf cfg.remote.enable {
    services.journald.upload = {
      enable = true;
      settings.Upload = {
        URL = mkIf (url != null) url;
        ServerKeyFile = mkDefault cfg.remote.serverKeyFile;
        ServerCertificateFile = mkDefault cfg.remote.serverCertificateFile;
        TrustedCertificateFile = mkIf https (mkDefault cfg.remote.trustedCertificateFile);
        NetworkTimeoutSec = mkDefault null;
      };
    };
    services.journald.storage = mkDefault cfg.localStorage;

    assertions = [
      {
        assertion = url != null;
        message = h.guard "logs-no-url" ''
          paranoid.logs.remote.enable = true, but paranoid.logs.remote.url is not set, so there is nowhere to ship to.
          Fix: set paranoid.logs.remote.url = "https://<receiver>:19532", or set paranoid.logs.remote.enable = false.'';
      }
      {
        assertion = !https || missingTls == [ ];
        message = h.guard "logs-tls-incomplete" ''
          paranoid.logs.remote.url = "${toString url}" uploads over https, which needs a client key and certificate,
          but ${lib.concatMapStringsSep " and " (k: "paranoid.logs.remote.${knobOf.${k}} (services.journald.upload.settings.Upload.${k})") missingTls}
          ${if lib.length missingTls > 1 then "are" else "is"} not set: systemd-journal-upload would look for /etc/ssl/private/journal-upload.pem and fail to start.
          Fix: set paranoid.logs.remote.serverKeyFile and paranoid.logs.remote.serverCertificateFile to files outside the store
          (and paranoid.logs.remote.trustedCertificateFile to your receiver's CA), or use an http:// URL on a trusted network.'';
      }
      {
        assertion = cfg.remote.serverKeyFile == null || !(lib.hasPrefix "/nix/store" cfg.remote.serverKeyFile);
        message = h.guard "logs-key-in-store" ''
          paranoid.logs.remote.serverKeyFile = "${toString cfg.remote.serverKeyFile}" is in /nix/store, readable by every user.
          Fix: keep the key outside the store (e.g. under /run/keys or a secrets manager's path).'';
      }
    ];
    warnings = lib.optional (url != null && lib.hasPrefix "http://" url) (h.guard "logs-plaintext" ''
      paranoid.logs.remote.url = "${url}" ships logs unencrypted and unauthenticated; use https:// with a client key.'');
  };
}
