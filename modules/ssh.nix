# sshd: public keys only, no forwarding of any kind, modern crypto, tight limits, and host keys
# where they survive (amnesia points them into persistent storage).
{ config, lib, ... }:
let
  inherit (lib) mkOption types mkIf mkDefault mkMerge;
  h = import ../lib/module-helpers.nix { inherit lib; };
  crypto = import ../lib/ssh-crypto.nix;
  cfg = config.paranoid.ssh;
  algorithms = crypto.${cfg.crypto};
  # Freeform sshd keys take single values, so multi-valued ones are comma-joined here.
  commaJoined = l: if l == null then null else lib.concatStringsSep "," l;

  admins = lib.filter (h.isAdmin config) (lib.attrValues config.users.users);
  hasKey = h.hasSshKey;
in
{
  options.paranoid.ssh = {
    enable = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Run sshd hardened: public-key authentication only (no password, no keyboard-interactive),
        no TCP/agent/X11/stream-local forwarding, no tunnels, keys only from
        `users.users.<name>.openssh.authorizedKeys` (never ~/.ssh), VERBOSE logging of key
        fingerprints, short grace time and few tries. Every security key is set in
        `services.openssh.settings`, which sshd reads before `extraConfig` and so cannot be
        weakened from there. Breaks: password logins, `ssh -L/-R/-D/-W`, agent forwarding,
        `~/.ssh/authorized_keys` files.
      '';
    };
    allowSFTP = mkOption {
      type = types.bool;
      default = true;
      description = "Keep the SFTP subsystem (`services.openssh.allowSFTP`). Without it `sftp`, `sshfs` and `scp` (SFTP mode) fail; `scp -O` and `ssh host cat` still move files.";
    };
    permitRootLogin = mkOption {
      type = types.enum [ "prohibit-password" "forced-commands-only" "no" ];
      default = "prohibit-password";
      description = "Whether root may log in (`PermitRootLogin`). Keep `prohibit-password` when a deployer logs in as root, and always when sudo is removed.";
    };
    crypto = mkOption {
      type = types.enum [ "modern" "fips" "upstream" ];
      default = "modern";
      description = ''
        Algorithm set. `modern`: ML-KEM/X25519 key exchange, AEAD ciphers, Ed25519 host key.
        `fips`: FIPS 140-3 approved primitives only (finite-field DH, AES, SHA-2, RSA/Ed25519).
        `upstream`: NixOS's defaults.
      '';
    };
    allowUsers = mkOption {
      type = types.nullOr (types.listOf types.str);
      default = null;
      example = [ "root" "alice" ];
      description = "If set, only these users may log in (`AllowUsers`).";
    };
    logLevel = mkOption {
      type = types.enum [ "QUIET" "FATAL" "ERROR" "INFO" "VERBOSE" "DEBUG" "DEBUG1" "DEBUG2" "DEBUG3" ];
      default = "VERBOSE";
      description = "sshd log level. VERBOSE records the fingerprint of the key used for each login.";
    };
    limits = {
      maxAuthTries = mkOption { type = types.ints.positive; default = 3; description = "Authentication attempts per connection (`MaxAuthTries`)."; };
      loginGraceTime = mkOption { type = types.ints.unsigned; default = 30; description = "Seconds to authenticate before the connection is dropped (`LoginGraceTime`)."; };
      maxSessions = mkOption { type = types.ints.positive; default = 4; description = "Sessions per connection (`MaxSessions`)."; };
      maxStartups = mkOption { type = types.str; default = "10:30:60"; description = "Unauthenticated connections before random drops (`MaxStartups`)."; };
      clientAliveInterval = mkOption { type = types.ints.unsigned; default = 300; description = "Seconds between keepalives to the client (`ClientAliveInterval`)."; };
      clientAliveCountMax = mkOption { type = types.ints.unsigned; default = 2; description = "Missed keepalives before disconnect (`ClientAliveCountMax`)."; };
    };
    hostKeys = {
      directory = mkOption {
        type = types.str;
        default = "/etc/ssh";
        defaultText = lib.literalExpression ''"/etc/ssh", or "''${paranoid.amnesia.persistPath}/etc/ssh" with amnesia'';
        description = "Where host keys live. sshd-keygen creates missing ones there on first boot.";
      };
      types = mkOption {
        type = types.listOf (types.enum [ "ed25519" "rsa" "ecdsa" ]);
        default = if cfg.enable then algorithms.hostKeyTypes else crypto.upstream.hostKeyTypes;
        defaultText = lib.literalExpression "the crypto profile's host key types";
        description = "Host key types generated and offered.";
      };
    };
  };

  config = mkMerge [
    # Host key placement also serves amnesia when the rest of the SSH knob is off.
    (mkIf (cfg.enable || config.paranoid.amnesia.enable or false) {
      services.openssh.hostKeys = mkDefault (map
        (type: { inherit type; path = "${cfg.hostKeys.directory}/ssh_host_${type}_key"; } // lib.optionalAttrs (type == "rsa") { bits = 4096; })
        cfg.hostKeys.types);
    })
    (mkIf cfg.enable {
      services.openssh.enable = mkDefault true;
      # Only keys declared in the configuration; a compromised account cannot add its own.
      services.openssh.authorizedKeysInHomedir = mkDefault false;
      services.openssh.allowSFTP = mkDefault cfg.allowSFTP;
      services.openssh.settings = {
        # The guarantee of this knob: plain definitions, so a conflicting one is an error.
        PasswordAuthentication = false;
        KbdInteractiveAuthentication = false;
        AuthenticationMethods = mkDefault "publickey";
        PubkeyAuthentication = mkDefault "yes";
        PermitEmptyPasswords = mkDefault "no";
        PermitRootLogin = mkDefault cfg.permitRootLogin;
        PermitUserEnvironment = mkDefault "no";
        # The recipe's extraConfig said "AllowTcpForwarding yes" while its text said forwarding
        # is off; sshd keeps the first value, so it belongs here, and it is "no".
        AllowTcpForwarding = mkDefault "no";
        AllowAgentForwarding = mkDefault "no";
        AllowStreamLocalForwarding = mkDefault "no";
        X11Forwarding = mkDefault false;
        PermitTunnel = mkDefault "no";
        GatewayPorts = mkDefault "no";
        DisableForwarding = mkDefault "yes";
        LogLevel = mkDefault cfg.logLevel;
        MaxAuthTries = mkDefault cfg.limits.maxAuthTries;
        LoginGraceTime = mkDefault cfg.limits.loginGraceTime;
        MaxSessions = mkDefault cfg.limits.maxSessions;
        MaxStartups = mkDefault cfg.limits.maxStartups;
        ClientAliveInterval = mkDefault cfg.limits.clientAliveInterval;
        ClientAliveCountMax = mkDefault cfg.limits.clientAliveCountMax;
        AllowUsers = mkIf (cfg.allowUsers != null) (mkDefault cfg.allowUsers);
        KexAlgorithms = mkIf (algorithms.KexAlgorithms != null) (mkDefault algorithms.KexAlgorithms);
        Ciphers = mkIf (algorithms.Ciphers != null) (mkDefault algorithms.Ciphers);
        Macs = mkIf (algorithms.Macs != null) (mkDefault algorithms.Macs);
        HostKeyAlgorithms = mkIf (algorithms.HostKeyAlgorithms != null) (mkDefault (commaJoined algorithms.HostKeyAlgorithms));
        PubkeyAcceptedAlgorithms = mkIf (algorithms.PubkeyAcceptedAlgorithms != null) (mkDefault (commaJoined algorithms.PubkeyAcceptedAlgorithms));
      };

      assertions = [
        {
          assertion = lib.any hasKey admins;
          message = h.guard "ssh-no-admin-key" ''
            paranoid.ssh.enable = true allows public keys only, but neither root nor any member of wheel
            has a key in users.users.<name>.openssh.authorizedKeys, so nobody can log in over SSH.
            Fix: add a key, e.g. users.users.root.openssh.authorizedKeys.keys = [ "ssh-ed25519 AAAA..." ],
            or set paranoid.ssh.enable = false.'';
        }
      ];
    })
  ];
}
