# services.openssh as nixos/modules/services/networking/ssh/sshd.nix declares it (26.05):
# the RFC 42 `settings` block with its declared keys, the module's own lines in extraConfig at
# mkOrder 0, the firewall side effect of openFirewall, and the build-time guards.
{ config, lib, pkgs, ... }:
let
  inherit (lib) mkOption types mkIf mkOrder;
  render = import ../../lib/render.nix { inherit lib; };
  cfg = config.services.openssh;
  nullOr = types.nullOr;

  # pkgs.formats.keyValue's atom: freeform keys take single values only.
  keyValueAtom = nullOr (types.oneOf [ types.bool types.int types.float types.str ]);

  recommended = {
    Ciphers = [ "chacha20-poly1305@openssh.com" "aes256-gcm@openssh.com" "aes128-gcm@openssh.com" "aes256-ctr" "aes192-ctr" "aes128-ctr" ];
    KexAlgorithms = [ "mlkem768x25519-sha256" "sntrup761x25519-sha512" "sntrup761x25519-sha512@openssh.com" "curve25519-sha256" "curve25519-sha256@libssh.org" "diffie-hellman-group-exchange-sha256" ];
    Macs = [ "hmac-sha2-512-etm@openssh.com" "hmac-sha2-256-etm@openssh.com" "umac-128-etm@openssh.com" ];
  };

  setting = type: default: description: mkOption { type = nullOr type; inherit default description; };

  userOptions = {
    options.openssh.authorizedKeys = {
      keys = mkOption { type = types.listOf types.singleLineStr; default = [ ]; description = "Verbatim OpenSSH public keys written to /etc/ssh/authorized_keys.d/<user>."; };
      keyFiles = mkOption { type = types.listOf types.path; default = [ ]; description = "Files each holding one OpenSSH public key."; };
    };
    options.openssh.authorizedPrincipals = mkOption { type = types.listOf types.singleLineStr; default = [ ]; description = "Principal names accepted for certificate authentication."; };
  };

  usersWithKeys = lib.filterAttrs (_: u: u.openssh.authorizedKeys.keys != [ ] || u.openssh.authorizedKeys.keyFiles != [ ]) config.users.users;
  settingNames = lib.attrNames cfg.settings;
  lowered = map lib.toLower settingNames;
in
{
  options = {
    programs.ssh.package = mkOption { type = types.package; default = pkgs.openssh; description = "The OpenSSH package."; };
    programs.ssh.setXAuthLocation = mkOption { type = types.bool; default = false; description = "Whether to set XAuthLocation in sshd_config."; };

    users.users = mkOption { type = types.attrsOf (types.submodule userOptions); };

    services.openssh = {
      enable = mkOption { type = types.bool; default = false; description = "Whether to enable the OpenSSH secure shell daemon."; };
      package = mkOption { type = types.package; default = config.programs.ssh.package; defaultText = lib.literalExpression "programs.ssh.package"; description = "OpenSSH package to use for sshd."; };
      allowSFTP = mkOption { type = types.bool; default = true; description = "Whether to enable the SFTP subsystem."; };
      sftpFlags = mkOption { type = types.listOf types.str; default = [ ]; description = "Command-line flags for sftp-server."; };
      sftpServerExecutable = mkOption { type = types.str; description = "The sftp server executable, or internal-sftp."; };
      authorizedKeysCommand = mkOption { type = types.str; default = "none"; description = "Program that looks up a user's public keys."; };
      authorizedKeysCommandUser = mkOption { type = types.str; default = "nobody"; description = "User that runs AuthorizedKeysCommand."; };
      authorizedKeysFiles = mkOption { type = types.listOf types.str; default = [ ]; description = "Files from which authorized keys are read."; };
      authorizedKeysInHomedir = mkOption { type = types.bool; default = true; description = "Whether ~/.ssh/authorized_keys is trusted."; };
      enableRecommendedAlgorithms = mkOption { type = types.bool; default = true; description = "Use NixOS's curated algorithm lists as the defaults of settings.{Ciphers,KexAlgorithms,Macs}."; };
      extraConfig = mkOption { type = types.lines; default = ""; description = "Verbatim contents of sshd_config, appended after settings."; };
      generateHostKeys = mkOption { type = types.bool; default = cfg.enable; defaultText = lib.literalExpression "services.openssh.enable"; description = "Whether to generate missing host keys (sshd-keygen.service)."; };
      hostKeys = mkOption {
        type = types.listOf types.attrs;
        default = [
          { bits = 4096; path = "/etc/ssh/ssh_host_rsa_key"; type = "rsa"; }
          { path = "/etc/ssh/ssh_host_ed25519_key"; type = "ed25519"; }
        ];
        description = "Host keys: path, type and size of each; generated on first start when missing.";
      };
      listenAddresses = mkOption {
        type = types.listOf (types.submodule {
          options = {
            addr = mkOption { type = nullOr types.str; default = null; description = "Address to listen on."; };
            port = mkOption { type = nullOr types.port; default = null; description = "Port to listen on."; };
          };
        });
        default = [ ];
        description = "Addresses and ports to listen on (ListenAddress).";
      };
      moduliFile = mkOption { type = types.path; description = "The moduli file installed as /etc/ssh/moduli."; };
      openFirewall = mkOption { type = types.bool; default = true; description = "Whether to open `ports` in the firewall (on every interface)."; };
      ports = mkOption { type = types.listOf types.port; default = [ 22 ]; description = "Ports sshd listens on."; };
      startWhenNeeded = mkOption { type = types.bool; default = false; description = "Socket-activate sshd."; };

      settings = mkOption {
        default = { };
        description = "Configuration for sshd_config(5).";
        type = types.submodule {
          freeformType = types.attrsOf keyValueAtom;
          options = {
            AcceptEnv = setting (types.listOf types.str) null "Environment variables accepted from the client.";
            AllowGroups = setting (types.listOf types.str) null "Only these groups may log in.";
            AllowUsers = setting (types.listOf types.str) null "Only these users may log in.";
            DenyGroups = setting (types.listOf types.str) null "These groups may not log in.";
            DenyUsers = setting (types.listOf types.str) null "These users may not log in.";
            AuthorizedPrincipalsFile = setting types.str "none" "File of accepted certificate principals.";
            Banner = setting types.path null "Banner shown before authentication.";
            Ciphers = setting (types.listOf types.str) (if cfg.enableRecommendedAlgorithms then recommended.Ciphers else null) "Allowed ciphers.";
            GatewayPorts = setting types.str "no" "Whether remote hosts may connect to forwarded ports.";
            KbdInteractiveAuthentication = setting types.bool true "Keyboard-interactive authentication.";
            KexAlgorithms = setting (types.listOf types.str) (if cfg.enableRecommendedAlgorithms then recommended.KexAlgorithms else null) "Allowed key exchange algorithms.";
            LogLevel = setting (types.enum [ "QUIET" "FATAL" "ERROR" "INFO" "VERBOSE" "DEBUG" "DEBUG1" "DEBUG2" "DEBUG3" ]) "INFO" "sshd log verbosity.";
            Macs = setting (types.listOf types.str) (if cfg.enableRecommendedAlgorithms then recommended.Macs else null) "Allowed MACs.";
            PasswordAuthentication = setting types.bool true "Password authentication.";
            PermitRootLogin = setting (types.enum [ "yes" "without-password" "prohibit-password" "forced-commands-only" "no" ]) "prohibit-password" "Whether root may log in.";
            PrintMotd = setting types.bool false "Whether sshd prints /etc/motd.";
            StrictModes = setting types.bool true "Check file modes and ownership before accepting a login.";
            UseDns = setting types.bool false "Reverse-resolve client addresses.";
            UsePAM = setting types.bool true "Use PAM for authentication and sessions.";
            X11Forwarding = setting types.bool false "X11 forwarding.";
          };
        };
      };
    };
  };

  config = mkIf cfg.enable {
    users.users.sshd = { isSystemUser = true; group = "sshd"; description = "SSH privilege separation user"; };
    users.groups.sshd = { };

    services.openssh.moduliFile = lib.mkDefault "${cfg.package}/etc/ssh/moduli";
    services.openssh.sftpServerExecutable = lib.mkDefault "${cfg.package}/libexec/sftp-server";
    services.openssh.authorizedKeysFiles = lib.optional cfg.authorizedKeysInHomedir "%h/.ssh/authorized_keys" ++ [ "/etc/ssh/authorized_keys.d/%u" ];

    services.openssh.extraConfig = mkOrder 0 (lib.concatStringsSep "\n" (
      [ "AddressFamily ${if config.networking.enableIPv6 then "any" else "inet"}" ]
      ++ map (port: "Port ${toString port}") cfg.ports
      ++ map ({ addr, port, ... }: "ListenAddress ${addr}${lib.optionalString (port != null) (":" + toString port)}") cfg.listenAddresses
      ++ lib.optional config.programs.ssh.setXAuthLocation "XAuthLocation ${pkgs.xauth}/bin/xauth"
      ++ lib.optional cfg.allowSFTP "Subsystem sftp ${cfg.sftpServerExecutable} ${lib.concatStringsSep " " cfg.sftpFlags}"
      ++ [ "AuthorizedKeysFile ${toString cfg.authorizedKeysFiles}" ]
      ++ lib.optional (cfg.authorizedKeysCommand != "none") "AuthorizedKeysCommand ${cfg.authorizedKeysCommand}\nAuthorizedKeysCommandUser ${cfg.authorizedKeysCommandUser}\n"
      ++ map (k: "HostKey ${k.path}") cfg.hostKeys
    ));

    environment.etc = {
      "ssh/sshd_config".text = render.sshdConfig cfg;
      "ssh/moduli".source = cfg.moduliFile;
    } // lib.mapAttrs' (name: u: lib.nameValuePair "ssh/authorized_keys.d/${name}" {
      mode = "0444";
      text = lib.concatStringsSep "\n" u.openssh.authorizedKeys.keys + "\n";
    }) usersWithKeys;

    networking.firewall.allowedTCPPorts = lib.optionals cfg.openFirewall cfg.ports;

    systemd.services.sshd = {
      description = "SSH Daemon";
      wantedBy = lib.optional (!cfg.startWhenNeeded) "multi-user.target";
      after = [ "network.target" "sshd-keygen.service" ];
      wants = [ "sshd-keygen.service" ];
      stopIfChanged = false;
      serviceConfig = {
        Type = "notify-reload";
        ExecStart = "${cfg.package}/bin/sshd -D -f /etc/ssh/sshd_config";
        KillMode = "process";
        Restart = "always";
      };
    };

    assertions = [
      {
        assertion = lib.length (lib.unique lowered) == lib.length lowered;
        message = "Duplicate sshd config key; does your capitalization match the option's? Duplicate keys: ${toString (lib.filter (k: lib.length (lib.filter (x: x == lib.toLower k) lowered) > 1) settingNames)}";
      }
      {
        assertion = cfg.settings.X11Forwarding != true || config.programs.ssh.setXAuthLocation;
        message = "cannot enable X11 forwarding without setting xauth location";
      }
    ] ++ map ({ addr, ... }: { assertion = addr != null; message = "addr must be specified in each listenAddresses entry"; }) cfg.listenAddresses;
  };
}
