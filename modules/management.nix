# Central management: the host is installed by nixos-anywhere (or paranoid's installer image) and
# changed only by a push deploy from a management host (colmena, deploy-rs, or
# `nixos-rebuild --target-host`), over SSH as one declared deploy account with one declared key.
# Nothing on the host can rebuild it from local sources: no nixos-rebuild, no channels, no
# /etc/nixos.
{ config, lib, options, ... }:
let
  inherit (lib) mkOption types mkIf mkDefault mkMerge;
  h = import ../lib/module-helpers.nix { inherit lib; };
  cfg = config.paranoid.management;
  ssh = config.services.openssh;
  isRoot = cfg.user == "root";
  account = config.users.users.${cfg.user} or null;
  # sshd's own AllowUsers (paranoid.ssh.allowUsers ends up there); null admits everyone.
  allowUsers = ssh.settings.AllowUsers or null;
  sshAdmits = allowUsers == null || lib.elem cfg.user allowUsers;
  rootLoginAllowed = lib.elem (ssh.settings.PermitRootLogin or "prohibit-password") [ "yes" "prohibit-password" "without-password" ];
  escalation = config.security.sudo.enable || config.security.sudo-rs.enable;
  nixAllowed = config.nix.settings.allowed-users or [ "*" ];
  groups = if account == null then [ ] else [ account.group ] ++ account.extraGroups;
  # allowed-users entries: "*", a user name, or "@group".
  admits = e: e == "*" || e == cfg.user || (lib.hasPrefix "@" e && lib.elem (lib.removePrefix "@" e) groups);
  daemonAdmits = lib.any admits nixAllowed;
  trusted = lib.elem cfg.user (config.nix.settings.trusted-users or [ ]);
  # The local tools that rebuild a system from sources on the host.
  localTools = [ "nixos-rebuild" "nixos-generate-config" "nixos-install" "nixos-option" "nixos-build-vms" ];
in
{
  options.paranoid.management = {
    enable = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Make the host manageable only from a central deployment host: a push deploy
        (colmena, deploy-rs or `nixos-rebuild --target-host`) over SSH as `user` with `keys`,
        after a first install with nixos-anywhere or paranoid's installer image. Removes the
        local rebuild tools (nixos-rebuild, nixos-generate-config, nixos-install,
        nixos-option, nixos-build-vms) and channels, and stops persisting /etc/nixos under
        amnesia: the configuration lives in the deployer's flake. A deploy account other than
        root gets a passwordless sudo rule and must push signed closures (`trustedPublicKeys`).
        Breaks: `nixos-rebuild` on the host, `nix-channel`, `<nixpkgs>` lookups.
      '';
    };
    user = mkOption {
      type = types.str;
      default = "root";
      example = "deploy";
      description = ''
        The account the deployer logs in as. `root` logs in with a key (PermitRootLogin
        prohibit-password) and copies closures as the daemon's trusted user. Any other name is
        declared here as an ordinary user in wheel, with `keys` and a sudo rule that lets it run
        anything as root without a password: the deploy account is root-equivalent either way.
      '';
    };
    keys = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA... deployer@central" ];
      description = "The deployer's SSH public keys, authorized for `user` (users.users.<user>.openssh.authorizedKeys.keys).";
    };
    trustedPublicKeys = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "deployer-1:AAAA...=" ];
      description = ''
        Nix signing keys whose signatures the daemon accepts (added to
        `nix.settings.trusted-public-keys`). A deploy account other than root is no trusted user
        (paranoid.nix refuses that), so it can only copy closures the deployer signed
        (`nix store sign --key-file …`, or colmena/deploy-rs with a signing key).
      '';
    };
  };

  config = mkIf cfg.enable (mkMerge [
    {
      # No local way to rebuild: the system comes from the deployer's flake.
      nix.channel.enable = mkDefault false;
      system.tools = lib.genAttrs localTools (_: { enable = mkDefault false; });
      nix.settings.trusted-public-keys = cfg.trustedPublicKeys;

      users.users.${cfg.user} = mkMerge [
        { openssh.authorizedKeys.keys = cfg.keys; }
        (mkIf (!isRoot) {
          isNormalUser = mkDefault true;
          # wheel: sudo may be executable by wheel only (paranoid.sudo.mode = "wheel-only").
          extraGroups = [ "wheel" ];
        })
      ];

      # The deploy path, stated where an admin-path analysis reads it: this account, this key,
      # this rule. colmena and deploy-rs escalate with `sudo` (sudo-rs answers to the same name).
      security.sudo.extraRules = mkIf (!isRoot) [
        { users = [ cfg.user ]; commands = [ { command = "ALL"; options = [ "NOPASSWD" ]; } ]; }
      ];
      security.sudo-rs.extraRules = mkIf (!isRoot) [
        { users = [ cfg.user ]; commands = [ { command = "ALL"; options = [ "NOPASSWD" ]; } ]; }
      ];

      assertions = [
        {
          assertion = cfg.keys != [ ];
          message = h.guard "management-no-key" ''
            paranoid.management.enable = true, but paranoid.management.keys is empty: no deployer could log in.
            Fix: set paranoid.management.keys = [ "ssh-ed25519 AAAA... deployer@central" ], or set paranoid.management.enable = false.'';
        }
        {
          assertion = ssh.enable;
          message = h.guard "management-no-ssh" ''
            paranoid.management.enable = true deploys over SSH, but services.openssh.enable = false.
            Fix: set paranoid.ssh.enable = true (or services.openssh.enable = true).'';
        }
        {
          assertion = sshAdmits;
          message = h.guard "management-ssh-user-refused" ''
            paranoid.management.user = "${cfg.user}" is not in services.openssh.settings.AllowUsers (${h.showList allowUsers}), so sshd refuses the deployer.
            Fix: add "${cfg.user}" to paranoid.ssh.allowUsers, or set paranoid.management.user to one of them.'';
        }
        {
          assertion = !isRoot || rootLoginAllowed;
          message = h.guard "management-root-login" ''
            paranoid.management.user = "root", but services.openssh.settings.PermitRootLogin = "${toString (ssh.settings.PermitRootLogin or "")}" refuses root's key.
            Fix: keep paranoid.ssh.permitRootLogin = "prohibit-password", or deploy as another account (paranoid.management.user = "deploy").'';
        }
        {
          assertion = isRoot || escalation;
          message = h.guard "management-no-escalation" ''
            paranoid.management.user = "${cfg.user}" must become root to activate a deploy, but neither security.sudo nor security.sudo-rs is enabled
            (paranoid.sudo.mode = "${config.paranoid.sudo.mode or "upstream"}").
            Fix: deploy as root (paranoid.management.user = "root"), or keep sudo (paranoid.sudo.mode = "wheel-only").'';
        }
        {
          assertion = isRoot || daemonAdmits;
          message = h.guard "management-nix-refused" ''
            paranoid.management.user = "${cfg.user}" copies closures through the Nix daemon, but nix.settings.allowed-users = ${h.showList nixAllowed} excludes it.
            Fix: set paranoid.nix.allowedUsers = "wheel" (the deploy account is in wheel), or deploy as root (paranoid.management.user = "root").'';
        }
        {
          assertion = isRoot || trusted || cfg.trustedPublicKeys != [ ];
          message = h.guard "management-unsigned-closures" ''
            paranoid.management.user = "${cfg.user}" is not a trusted Nix user, so the daemon only accepts closures signed by a key in
            nix.settings.trusted-public-keys, and paranoid.management.trustedPublicKeys is empty.
            Fix: set paranoid.management.trustedPublicKeys to the deployer's signing key (nix key convert-secret-to-public), or deploy as root.'';
        }
      ];
    }
    # With amnesia, /etc/nixos would be persisted for a configuration that lives elsewhere.
    (lib.optionalAttrs (options ? paranoid.amnesia.directories) {
      paranoid.amnesia.directories = mkDefault (lib.remove "/etc/nixos" options.paranoid.amnesia.directories.default);
    })
  ]);
}
