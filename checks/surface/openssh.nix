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
  usersWithPrincipals = lib.filterAttrs (_: u: u.openssh.authorizedPrincipals != [ ]) config.users.users;
  settingNames = lib.attrNames cfg.settings;
  cfgc = config.programs.ssh;

  # programs/ssh.nix: the client's configuration, and XAuthLocation following X11 forwarding.
  clientConfig = {
    surface.provenance = [
      { options = [ "services.openssh" "services.sshd.enable" "users.users.<name>.openssh" ]; upstream = "nixos/modules/services/networking/ssh/sshd.nix"; repo = "Swarsel/nixpkgs"; commit = "4aa6836a648ca76c68866decf0c8965e36ec2a3b"; surface = "openssh.nix"; notes = "sshd_config is rendered by lib/render.nix as upstream's keyValue format does; system.checks (sshd -G -T at build time) and the Kerberos/GSSAPI package assertions are not modelled."; }
      { options = [ "programs.ssh" ]; upstream = "nixos/modules/programs/ssh.nix"; repo = "Swarsel/nixpkgs"; commit = "4aa6836a648ca76c68866decf0c8965e36ec2a3b"; surface = "openssh.nix"; notes = "ssh_config and ssh_known_hosts are not rendered; ssh-agent is not modelled."; }
    ];
    assertions = [ { assertion = cfgc.forwardX11 == true -> cfgc.setXAuthLocation; message = "cannot enable X11 forwarding without setting XAuth location"; } ]
      ++ lib.mapAttrsToList (name: data: {
        assertion = (data.publicKey == null && data.publicKeyFile != null) || (data.publicKey != null && data.publicKeyFile == null);
        message = "knownHost ${name} must contain either a publicKey or publicKeyFile";
      }) cfgc.knownHosts;
    programs.ssh.setXAuthLocation = lib.mkDefault ((config.services.xserver.enable or false) || cfgc.forwardX11 == true || cfg.settings.X11Forwarding);
    environment.systemPackages = [ cfgc.package ];
  };

  keygenConfig = {
    systemd.services.sshd-keygen = {
      description = "SSH Host Keys Generation";
      path = [ cfg.package ];
      wantedBy = [ "multi-user.target" ];
      serviceConfig.Type = "oneshot";
      unitConfig.ConditionFileNotEmpty = map (k: "|!${k.path}") cfg.hostKeys;
      script = lib.concatMapStrings (k: ''
        if ! [ -s "${k.path}" ]; then
            if ! [ -h "${k.path}" ]; then
                rm -f "${k.path}"
            fi
            mkdir -p "$(dirname '${k.path}')"
            chmod 0755 "$(dirname '${k.path}')"
            ssh-keygen \
              -t "${k.type}" \
              ${lib.optionalString (k ? bits) "-b ${toString k.bits}"} \
              ${lib.optionalString (k ? comment) "-C '${k.comment}'"} \
              ${lib.optionalString (k ? openSSHFormat && k.openSSHFormat) "-o"} \
              -f "${k.path}" \
              -N ""
        fi
      '') cfg.hostKeys;
    };
  };
in
{
  options = {
    programs.ssh = {
      package = mkOption { type = types.package; default = pkgs.openssh; defaultText = lib.literalExpression "pkgs.openssh"; description = "The OpenSSH package."; };
      agentPKCS11Whitelist = mkOption { type = nullOr types.str; default = null; description = "Acceptable PKCS#11 library paths for ssh-add -s."; };
      agentTimeout = mkOption { type = nullOr types.str; default = null; description = "How long ssh-agent keeps keys."; };
      askPassword = mkOption { type = types.str; default = "${pkgs.x11_ssh_askpass}/libexec/x11-ssh-askpass"; defaultText = lib.literalExpression ''"''${pkgs.x11_ssh_askpass}/libexec/x11-ssh-askpass"''; description = "Program used by SSH to ask for passwords."; };
      ciphers = mkOption { type = nullOr (types.listOf types.str); default = null; description = "Client ciphers."; };
      enableAskPassword = mkOption { type = types.bool; default = config.services.xserver.enable or false; defaultText = lib.literalExpression "config.services.xserver.enable"; description = "Whether to set SSH_ASKPASS."; };
      extraConfig = mkOption { type = types.lines; default = ""; description = "Text prepended to ssh_config."; };
      forwardX11 = mkOption { type = nullOr types.bool; default = false; description = "Whether the client requests X11 forwarding by default."; };
      hostKeyAlgorithms = mkOption { type = types.listOf types.str; default = [ ]; description = "Client host key algorithms."; };
      kexAlgorithms = mkOption { type = nullOr (types.listOf types.str); default = null; description = "Client key exchange algorithms."; };
      knownHosts = mkOption {
        default = { };
        description = "System-wide known SSH hosts (/etc/ssh/ssh_known_hosts).";
        type = types.attrsOf (types.submodule ({ name, config, ... }: {
          options = {
            certAuthority = mkOption { type = types.bool; default = false; description = "This key is a certificate authority."; };
            extraHostNames = mkOption { type = types.listOf types.str; default = [ ]; description = "More host names for this key."; };
            hostNames = mkOption { type = types.listOf types.str; default = [ name ] ++ config.extraHostNames; description = "Host names or addresses of the host."; };
            publicKey = mkOption { type = nullOr types.str; default = null; description = "The host's public key."; };
            publicKeyFile = mkOption { type = nullOr types.path; default = null; description = "A file holding the host's public key."; };
          };
        }));
      };
      knownHostsFiles = mkOption { type = types.listOf types.path; default = [ ]; description = "More global known-hosts files."; };
      macs = mkOption { type = nullOr (types.listOf types.str); default = null; description = "Client MACs."; };
      pubkeyAcceptedKeyTypes = mkOption { type = types.listOf types.str; default = [ ]; description = "Key types for public key authentication."; };
      # No default: the module sets it (mkDefault) from X11 forwarding, server or client.
      setXAuthLocation = mkOption { type = types.bool; description = "Whether to set the path to xauth for X11-forwarded connections (XAuthLocation)."; };
      startAgent = mkOption { type = types.bool; default = false; description = "Whether to start ssh-agent at login."; };
      systemd-ssh-proxy.enable = mkOption { type = types.bool; default = true; description = "Whether to include systemd's ssh proxy plugin."; };
    };

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

  config = lib.mkMerge [ clientConfig (mkIf cfg.generateHostKeys keygenConfig) (mkIf cfg.enable {
    users.users.sshd = { isSystemUser = true; group = "sshd"; description = "SSH privilege separation user"; };
    users.groups.sshd = { };

    services.openssh.moduliFile = lib.mkDefault "${cfg.package}/etc/ssh/moduli";
    services.openssh.sftpServerExecutable = lib.mkDefault "${cfg.package}/libexec/sftp-server";
    services.openssh.authorizedKeysFiles = lib.optional cfg.authorizedKeysInHomedir "%h/.ssh/authorized_keys" ++ [ "/etc/ssh/authorized_keys.d/%u" ];

    services.openssh.extraConfig = mkOrder 0 (lib.concatStringsSep "\n" (
      [ "AddressFamily ${if config.networking.enableIPv6 then "any" else "inet"}" ]
      ++ map (port: "Port ${toString port}") cfg.ports
      ++ map ({ addr, port, ... }: "ListenAddress ${addr}${lib.optionalString (port != null) (":" + toString port)}") cfg.listenAddresses
      ++ lib.optional config.programs.ssh.setXAuthLocation "XAuthLocation ${lib.getExe pkgs.xauth}"
      ++ lib.optional cfg.allowSFTP "Subsystem sftp ${cfg.sftpServerExecutable} ${lib.concatStringsSep " " cfg.sftpFlags}"
      ++ [ "AuthorizedKeysFile ${toString cfg.authorizedKeysFiles}" ]
      ++ lib.optional (cfg.authorizedKeysCommand != "none") "AuthorizedKeysCommand ${cfg.authorizedKeysCommand}\nAuthorizedKeysCommandUser ${cfg.authorizedKeysCommandUser}\n"
      ++ map (k: "HostKey ${k.path}") cfg.hostKeys
    ));

    environment.etc = {
      "ssh/sshd_config".text = render.sshdConfig cfg;
      "ssh/moduli".source = cfg.moduliFile;
    } // lib.mapAttrs' (_: u: lib.nameValuePair "ssh/authorized_keys.d/${u.name}" {
      mode = "0444";
      text = ''
        ${lib.concatStringsSep "\n" u.openssh.authorizedKeys.keys}
        ${lib.concatMapStrings (f: builtins.readFile f + "\n") u.openssh.authorizedKeys.keyFiles}
      '';
    }) usersWithKeys // lib.mapAttrs' (_: u: lib.nameValuePair "ssh/authorized_principals.d/${u.name}" {
      mode = "0444";
      text = lib.concatStringsSep "\n" u.openssh.authorizedPrincipals;
    }) usersWithPrincipals;

    services.openssh.settings.AuthorizedPrincipalsFile = mkIf (usersWithPrincipals != { }) "/etc/ssh/authorized_principals.d/%u";

    security.pam.services.sshd = mkIf (cfg.settings.UsePAM == true) {
      showMotd = true;
      startSession = true;
      unixAuth = cfg.settings.PasswordAuthentication == true;
    };

    networking.firewall.allowedTCPPorts = lib.optionals cfg.openFirewall cfg.ports;

    systemd.services.sshd = mkIf (!cfg.startWhenNeeded) {
      description = "SSH Daemon";
      wantedBy = [ "multi-user.target" ];
      after = [ "network.target" "sshd-keygen.service" ];
      wants = mkIf cfg.generateHostKeys [ "sshd-keygen.service" ];
      stopIfChanged = false;
      path = [ cfg.package ];
      serviceConfig = {
        Type = "notify-reload";
        ExecStart = lib.concatStringsSep " " [ (lib.getExe' cfg.package "sshd") "-D" "-f" "/etc/ssh/sshd_config" ];
        KillMode = "process";
        Restart = "always";
      };
    };
    # Socket activation: one sshd per connection, started by sshd.socket.
    systemd.services."sshd@" = {
      description = "SSH per-connection Daemon";
      after = [ "network.target" "sshd-keygen.service" ];
      wants = mkIf cfg.generateHostKeys [ "sshd-keygen.service" ];
      stopIfChanged = false;
      path = [ cfg.package ];
      serviceConfig = {
        ExecStart = lib.concatStringsSep " " [ "-${lib.getExe' cfg.package "sshd"}" "-i" "-D" "-f /etc/ssh/sshd_config" ];
        KillMode = "process";
        StandardError = "journal";
        StandardInput = "socket";
      };
    };
    systemd.sockets.sshd = mkIf cfg.startWhenNeeded {
      description = "SSH Socket";
      wantedBy = [ "sockets.target" ];
      socketConfig.Accept = true;
      socketConfig.ListenStream =
        if cfg.listenAddresses != [ ] then
          lib.concatMap ({ addr, port }: if port != null then [ "${addr}:${toString port}" ] else map (p: "${addr}:${toString p}") cfg.ports) cfg.listenAddresses
        else cfg.ports;
      # Brute force must not shut the socket down.
      socketConfig.TriggerLimitIntervalSec = 0;
    };
    systemd.tmpfiles.settings."ssh-root-provision" = {
      "/root"."d-" = { group = ":root"; mode = ":700"; user = "root"; };
      "/root/.ssh"."d-" = { group = ":root"; mode = ":700"; user = "root"; };
      "/root/.ssh/authorized_keys"."f^" = { argument = "ssh.authorized_keys.root"; group = ":root"; mode = ":600"; user = "root"; };
    };

    assertions = [
      {
        assertion = if cfg.settings.X11Forwarding then config.programs.ssh.setXAuthLocation else true;
        message = "cannot enable X11 forwarding without setting xauth location";
      }
      (let duplicates = lib.filter (l: lib.length l > 1) (lib.attrValues (lib.groupBy lib.toLower settingNames)); in {
        assertion = lib.length duplicates == 0;
        message = "Duplicate sshd config key; does your capitalization match the option's? Duplicate keys: ${lib.concatMapStringsSep ", " (d: "(${lib.concatStringsSep ", " d})") duplicates}";
      })
    ] ++ map ({ addr, ... }: { assertion = addr != null; message = "addr must be specified in each listenAddresses entry"; }) cfg.listenAddresses;
  }) ];
}
