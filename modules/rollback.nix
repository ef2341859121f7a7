# Rollback after a bad switch: unless an admin confirms within `timeout` minutes, the
# generation that ran before `switch-to-configuration switch` (or `test`) is re-activated, like
# deploy-rs's magic rollback but on the host, so it protects nixos-rebuild and every deploy
# tool alike. The decisions are in ./rollback.sh (tested for real with fake generations).
{ config, lib, pkgs, ... }:
let
  inherit (lib) mkOption types mkIf optional;
  h = import ../lib/module-helpers.nix { inherit lib; };
  posture = import ../lib/posture { inherit lib; render = import ../lib/render.nix { inherit lib; }; };
  cfg = config.paranoid.rollback;
  ossh = config.services.openssh;

  # The accounts that are a way in (the admin-path analysis): their SSH login proves the
  # switch left an admin a way back.
  admins = lib.unique (map (p: p.account) (posture.of { inherit config; }).adminPath.paths);

  tools = [ pkgs.coreutils pkgs.systemd pkgs.nix pkgs.util-linux ]
    ++ optional (config.security.audit.enable != false) pkgs.audit;

  rollback = pkgs.writeShellScriptBin "paranoid-rollback" ''
    export PATH=${lib.makeBinPath tools}
    export PARANOID_ROLLBACK_TIMEOUT=${toString cfg.timeout}
    # The timer calls this wrapper again, with the same tools and settings.
    export PARANOID_ROLLBACK_SELF="$0"
    exec ${pkgs.bash}/bin/bash ${./rollback.sh} "$@"
  '';
  confirm = pkgs.writeShellScriptBin "paranoid-confirm" ''
    exec ${rollback}/bin/paranoid-rollback confirm "$@"
  '';
in
{
  options.paranoid.rollback = {
    enable = mkOption {
      type = types.bool;
      default = false;
      description = ''
        After every `switch-to-configuration switch` or `test` (nixos-rebuild, deploy-rs,
        colmena, ...), start a timer: unless an admin confirms within `timeout` minutes, point
        the system profile back at the generation that ran before (the one an admin could reach
        last) and run its `switch-to-configuration switch`. Confirm with `paranoid-confirm` (as
        root), or, with `confirmOnLogin`, by opening a new SSH session as an admin. Never armed
        at boot (a reboot boots the profile's generation as usual), nor towards a system that
        cannot be switched to (the break-glass entry), and the re-activation never arms another
        rollback. State lives in /run: a reboot forgets a pending rollback, which
        suits amnesia. With audit rules locked (paranoid.audit.immutable) a rollback restores
        everything but the rules, which stay as booted until the next reboot, like any switch.
        Breaks: a switch nobody confirms is undone; deploy tools must confirm (run
        `paranoid-confirm` over SSH after the switch).
      '';
    };
    timeout = mkOption {
      type = types.ints.positive;
      default = 5;
      description = "Minutes an admin has to confirm a switch before it is rolled back.";
    };
    confirmOnLogin = mkOption {
      type = types.bool;
      default = true;
      description = ''
        The first new SSH session of an admin (an account with a path to root, as paranoid's
        admin-path analysis finds them) confirms the switch (pam_exec in sshd's session stack).
        Log in again after the switch: a session opened before it does not count.
      '';
    };
  };

  config = mkIf cfg.enable {
    environment.systemPackages = [ rollback confirm ];

    # Runs on every activation; the script arms only on a switch (NIXOS_ACTION=switch|test)
    # away from a running system, while /run/current-system still names the previous one.
    system.activationScripts.paranoid-rollback = {
      deps = [ ];
      text = ''
        ${rollback}/bin/paranoid-rollback arm "$systemConfig" || echo "paranoid-rollback: the rollback is NOT armed" >&2
      '';
    };

    security.pam.services.sshd.rules.session.paranoid-rollback-confirm = mkIf (cfg.confirmOnLogin && ossh.enable) {
      control = "optional";
      modulePath = "${pkgs.pam}/lib/security/pam_exec.so";
      args = [ "quiet" "type=open_session" "${rollback}/bin/paranoid-rollback" "confirm-login" ] ++ admins;
      # After every built-in session rule (upstream numbers them from 10000 in steps of 100).
      order = 90000;
    };

    warnings =
      lib.optional (cfg.confirmOnLogin && ossh.enable && ossh.settings.UsePAM == false) (h.guard "rollback-login-cannot-confirm" ''
        paranoid.rollback.confirmOnLogin = true, but services.openssh.settings.UsePAM = false: sshd runs no PAM session, so no login
        confirms a switch; only paranoid-confirm does. Set UsePAM = true, or confirm with paranoid-confirm.'')
      ++ lib.optional (cfg.confirmOnLogin && ossh.enable && admins == [ ]) (h.guard "rollback-no-admin-login" ''
        paranoid.rollback.confirmOnLogin = true, but no account has a path from the network to root (the admin-path analysis),
        so no SSH login confirms a switch; only paranoid-confirm on the console does.'');
  };
}
