# sudo: for wheel only and with a password, or gone (root over SSH with a key administers).
{ config, lib, ... }:
let
  inherit (lib) mkOption types mkIf mkDefault mkMerge;
  h = import ../lib/module-helpers.nix { inherit lib; };
  cfg = config.paranoid.sudo;
  root = config.users.users.root;
  rootHasKey = root.openssh.authorizedKeys.keys != [ ] || root.openssh.authorizedKeys.keyFiles != [ ];
  ssh = config.services.openssh;
  rootLoginAllowed = lib.elem ssh.settings.PermitRootLogin [ "yes" "prohibit-password" "without-password" ];
  rootCanLogIn = ssh.enable && rootHasKey && rootLoginAllowed;
in
{
  options.paranoid.sudo.mode = mkOption {
    type = types.enum [ "upstream" "wheel-only" "removed" ];
    default = "upstream";
    description = ''
      - `upstream`: leave sudo as NixOS configures it.
      - `wheel-only`: only members of wheel can even execute sudo (`execWheelOnly`, a setuid
        wrapper with mode 4510), and they must type their password (`wheelNeedsPassword`).
        Shrinks the attack surface of sudo's own bugs (CVE-2021-3156) to wheel.
      - `removed`: no sudo (nor sudo-rs) at all; root logs in over SSH with a key. Breaks:
        every workflow that escalates with sudo; needs a root key and PermitRootLogin
        prohibit-password.
    '';
  };

  config = mkMerge [
    (mkIf (cfg.mode == "wheel-only") {
      security.sudo.execWheelOnly = mkDefault true;
      security.sudo.wheelNeedsPassword = mkDefault true;
      security.sudo-rs.execWheelOnly = mkDefault true;
      security.sudo-rs.wheelNeedsPassword = mkDefault true;
    })
    (mkIf (cfg.mode == "removed") {
      security.sudo.enable = mkDefault false;
      security.sudo-rs.enable = mkDefault false;
      assertions = [
        {
          assertion = rootCanLogIn;
          message = h.guard "sudo-removed-no-root" ''
            paranoid.sudo.mode = "removed" leaves root over SSH as the only way to administer this host, but root cannot log in:
            ${lib.concatStringsSep "; " (lib.optional (!ssh.enable) "services.openssh.enable = false"
              ++ lib.optional (!rootHasKey) "users.users.root.openssh.authorizedKeys is empty"
              ++ lib.optional (!rootLoginAllowed) "services.openssh.settings.PermitRootLogin = \"${toString ssh.settings.PermitRootLogin}\"")}.
            Fix: give root a key (users.users.root.openssh.authorizedKeys.keys) and keep PermitRootLogin
            "prohibit-password" (paranoid.ssh.permitRootLogin), or use paranoid.sudo.mode = "wheel-only".'';
        }
        {
          assertion = !config.security.sudo.enable && !config.security.sudo-rs.enable;
          message = h.guard "sudo-still-enabled" ''
            paranoid.sudo.mode = "removed", but ${if config.security.sudo.enable then "security.sudo.enable" else "security.sudo-rs.enable"} = true is set elsewhere.
            Fix: remove that setting, or use paranoid.sudo.mode = "wheel-only".'';
        }
      ];
    })
  ];
}
