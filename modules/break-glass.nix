# Break glass: a second boot entry (a NixOS specialisation of this very configuration) that
# relaxes what the admin chose, for the day the locked-down system locks its admin out. It is
# reachable only from the boot menu, i.e. by someone at the console or an out-of-band console,
# never the default entry and never by a switch: the entry carries no switch-to-configuration.
# It says what it is on the console and to SSH clients, and leaves an alert in the journal and a
# record in the audit log every time it boots.
{ config, lib, pkgs, ... }:
let
  inherit (lib) mkOption types mkIf mkForce mkAfter optional optionals optionalAttrs;
  h = import ../lib/module-helpers.nix { inherit lib; };
  posture = import ../lib/posture { inherit lib; render = import ../lib/render.nix { inherit lib; }; };
  cfg = config.paranoid.breakGlass;
  parent = config;
  p = config.paranoid;

  parentVpnOnly = p.vpn.sshOnlyOverVpn or false;
  sshRelaxed = cfg.sshInterface != null;
  # paranoid.vpn trusts its interface while SSH is VPN-only (or Tailscale runs, which the entry keeps).
  keepVpnTrust = sshRelaxed && parentVpnOnly && !(p.vpn.tailscale.enable or false);
  rootLogin = cfg.consoleRootLogin;
  parentAccounts = import ../lib/posture/accounts.nix { inherit lib; } { config = parent; };

  # What the entry relaxes, in words: the banner, the alert and the docs say the same.
  relaxations =
    optional cfg.noexec "noexec is off (paranoid.noexec)"
    ++ optional cfg.sudo "sudo for wheel, with a password"
    ++ optional (cfg.sshInterface != null) "SSH is open on ${cfg.sshInterface}"
    ++ optional rootLogin.enable "root may log in on the console";
  summary = if relaxations == [ ] then "nothing" else lib.concatStringsSep "; " relaxations;

  # The ports sshd listens on: a ListenAddress with a port replaces `ports` for that address.
  sshPorts = ossh: if ossh.listenAddresses == [ ] then ossh.ports
    else lib.unique (lib.concatMap (l: if l.port != null then [ l.port ] else ossh.ports) ossh.listenAddresses);

  # The entry: this configuration (inheritParentConfig) with the chosen relaxations on top.
  entry = { config, ... }: {
    # Only the boot menu reaches this entry: without switch-to-configuration, neither
    # nixos-rebuild, a deploy tool nor a remote root can switch the running system into it.
    system.switch.enable = mkForce false;

    paranoid.noexec.enable = mkIf cfg.noexec (mkForce false);

    paranoid.sudo.mode = mkIf cfg.sudo (mkForce "wheel-only");
    security.sudo.enable = mkIf (cfg.sudo && !config.security.sudo-rs.enable) (mkForce true);
    security.sudo.wheelNeedsPassword = mkIf cfg.sudo (mkForce true);
    security.sudo-rs.wheelNeedsPassword = mkIf cfg.sudo (mkForce true);

    # SSH stops being VPN-only and opens on the named interface, and on that one only.
    paranoid.vpn.sshOnlyOverVpn = mkIf sshRelaxed (mkForce false);
    services.openssh.openFirewall = mkIf (sshRelaxed && parentVpnOnly) (mkForce false);
    # What paranoid.vpn let in over the VPN (because SSH was VPN-only) stays let in.
    networking.firewall.trustedInterfaces = mkIf (keepVpnTrust && p.vpn.trust == "interface") [ p.vpn.interface ];
    networking.firewall.interfaces = lib.mkMerge [
      (optionalAttrs sshRelaxed { ${cfg.sshInterface}.allowedTCPPorts = sshPorts config.services.openssh; })
      (optionalAttrs (keepVpnTrust && p.vpn.trust == "ssh") { ${p.vpn.interface}.allowedTCPPorts = sshPorts config.services.openssh; })
    ];

    users.users.root = mkIf rootLogin.enable {
      hashedPasswordFile = mkForce rootLogin.hashedPasswordFile;
      # The file is the one password root has here.
      hashedPassword = mkForce null;
      password = mkForce null;
    };

    services.getty.helpLine = mkAfter "\n${cfg.banner}";
    services.openssh.settings.Banner = mkForce "${pkgs.writeText "paranoid-break-glass-banner" "${cfg.banner}\n"}";

    systemd.services.paranoid-break-glass = {
      description = "Record that the break-glass boot entry was booted";
      wantedBy = [ "multi-user.target" ];
      after = [ "systemd-journald.service" ] ++ optionals (config.security.audit.enable != false) [ "audit-rules-nixos.service" "auditd.service" ];
      serviceConfig = {
        Type = "oneshot";
        RemainAfterExit = true;
        # Unprefixed lines are alerts: whoever watches the journal (or its remote copy) sees it.
        SyslogIdentifier = "paranoid-break-glass";
        SyslogLevel = "alert";
      };
      script = ''
        msg=${lib.escapeShellArg "paranoid: booted the break-glass entry \"${cfg.name}\" of ${parent.networking.hostName}; relaxed: ${summary}"}
        echo "$msg"
      '' + lib.optionalString (config.security.audit.enable != false) ''
        # A USER record (ausearch -m USER); user messages are accepted even with locked rules.
        ${pkgs.audit}/bin/auditctl -m "$msg" || echo "<3>could not write the audit record: auditctl -m failed"
      '';
    };
  };

  entryConfig = config.specialisation.${cfg.name}.configuration;
  entryPosture = posture.of { config = entryConfig; };
  broken = lib.filter (b: b.links != [ ]) entryPosture.adminPath.broken;
  accounts = import ../lib/posture/accounts.nix { inherit lib; } { config = entryConfig; };
in
{
  options.paranoid.breakGlass = {
    enable = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Build a break-glass boot entry (a NixOS specialisation of this configuration, shown in
        the boot menu as "NixOS (<name>)") that relaxes what the options below choose. It is
        never the default entry and has no switch-to-configuration, so only someone at the
        console (or an out-of-band console) can boot it. It shows a banner on the console and
        to SSH clients, and records every boot as an alert in the journal and, with audit on, an
        audit record. Its posture must still let an admin in (the `break-glass-admin-path`
        guard) and is reported by `paranoid-harness eval` and `check` beside the main one.
        The boot menu must be reachable: keep boot.loader.timeout above 0, or know the key that
        shows the menu.
      '';
    };
    name = mkOption {
      type = types.strMatching "[A-Za-z0-9_-]+";
      default = "break-glass";
      description = "Name of the boot entry (the specialisation).";
    };
    noexec = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Turn paranoid.noexec off in the entry. Opens: running programs from /, /tmp, /home,
        /dev/shm and persisted state again, e.g. a statically linked rescue tool copied in.
      '';
    };
    sudo = mkOption {
      type = types.bool;
      default = false;
      description = ''
        sudo for wheel with a password in the entry (paranoid.sudo.mode = "wheel-only", sudo
        enabled even where the main entry removes it). Opens: every wheel member who knows
        their password becomes root.
      '';
    };
    sshInterface = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "eth0";
      description = ''
        Open the SSH ports on this interface in the entry (and no longer only over the VPN), for
        when the VPN is what broke. Keys only, as everywhere. Opens: sshd to everything on that
        interface's network.
      '';
    };
    consoleRootLogin = {
      enable = mkOption {
        type = types.bool;
        default = false;
        description = ''
          Let root log in on the console (virtual terminals, serial) in the entry, with the
          password in `hashedPasswordFile`. Opens: root to anyone at the console who knows the
          password, and `su` to root for every local account that does. SSH stays keys-only.
        '';
      };
      hashedPasswordFile = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "/nix/persist/secrets/root-break-glass.hash";
        description = ''
          File holding root's hashed password for the entry (`mkpasswd -m sha-512`). It must
          survive a reboot (with amnesia: under the persist path, or a secret manager's path in
          /run) and must not be in /nix/store, which every user can read.
        '';
      };
    };
    banner = mkOption {
      type = types.lines;
      default = ''
        *** BREAK-GLASS SYSTEM (boot entry "${cfg.name}") ***
        Relaxed here: ${summary}.
        Every boot of this entry is recorded. Mend the configuration, then reboot into the default entry.'';
      defaultText = lib.literalExpression ''"*** BREAK-GLASS SYSTEM ...", naming the relaxations'';
      description = "Shown on the console (/etc/issue, through services.getty.helpLine) and to SSH clients before they authenticate (sshd Banner).";
    };
  };

  config = mkIf (cfg.enable && !(config.isSpecialisation or false)) {
    specialisation.${cfg.name} = {
      # The entry is this host relaxed, not another system (a plain definition: a host that
      # sets false gets a conflict naming both).
      inheritParentConfig = true;
      configuration = entry;
    };

    assertions = [
      {
        assertion = !entryConfig.system.switch.enable;
        message = h.guard "break-glass-switchable" ''
          the break-glass entry "${cfg.name}" carries switch-to-configuration (specialisation.${cfg.name}.configuration.system.switch.enable = true),
          so a remote root or a deploy tool could switch the running system into the relaxed posture without a reboot.
          Fix: remove that override; paranoid.breakGlass keeps the entry bootable from the boot menu only.'';
      }
      {
        assertion = !(p.adminPath.guard or true) || entryPosture.adminPath.ok;
        message = h.guard "break-glass-admin-path" ''
          no path leads ${if entryPosture.adminPath.vpnOnly then "over the VPN" else "from the network"} to root in the break-glass entry "${cfg.name}" (relaxed: ${summary}):
          ${lib.concatMapStringsSep "\n" (b: "  - ${b.account}: ${lib.concatStringsSep "; " b.links}") broken}
          Fix: mend one link in the entry: paranoid.breakGlass.sudo = true with a wheel member who has a key and a password that
          survives a reboot, or paranoid.breakGlass.sshInterface = "<interface>" when the VPN is the broken link, or give root a key
          sshd accepts. Or set paranoid.adminPath.guard = false if this host is administered from its console.'';
      }
      {
        assertion = !rootLogin.enable || rootLogin.hashedPasswordFile != null;
        message = h.guard "break-glass-root-password" ''
          paranoid.breakGlass.consoleRootLogin.enable = true, but paranoid.breakGlass.consoleRootLogin.hashedPasswordFile is not set,
          so root would have no password to log in with at the console.
          Fix: set paranoid.breakGlass.consoleRootLogin.hashedPasswordFile to a file with root's hash (mkpasswd -m sha-512).'';
      }
      {
        assertion = !rootLogin.enable || rootLogin.hashedPasswordFile == null || !(lib.hasPrefix "/nix/store" rootLogin.hashedPasswordFile);
        message = h.guard "break-glass-root-password" ''
          paranoid.breakGlass.consoleRootLogin.hashedPasswordFile = "${toString rootLogin.hashedPasswordFile}" is in /nix/store, readable by every user.
          Fix: keep the hash outside the store (the persist path, or a secret manager's path such as /run/secrets).'';
      }
      {
        assertion = !rootLogin.enable || rootLogin.hashedPasswordFile == null || accounts.survives rootLogin.hashedPasswordFile;
        message = h.guard "break-glass-root-password" ''
          paranoid.breakGlass.consoleRootLogin.hashedPasswordFile = "${toString rootLogin.hashedPasswordFile}" is not on persistent storage:
          after the reboot into the break-glass entry it is gone, and root has no password at the console.
          Fix: put it under the persist path (paranoid.amnesia.persistPath), or a secret manager's path such as /run/secrets.'';
      }
    ];

    warnings =
      optional (relaxations == [ ]) (h.guard "break-glass-relaxes-nothing" ''
        paranoid.breakGlass.enable = true, but none of paranoid.breakGlass.{noexec,sudo,sshInterface,consoleRootLogin.enable} is set:
        the entry "${cfg.name}" is the main posture with a banner.'')
      ++ optional (rootLogin.enable && parent.users.mutableUsers && !parentAccounts.rootIsVolatile) (h.guard "break-glass-root-password-kept" ''
        paranoid.breakGlass.consoleRootLogin with users.mutableUsers = true: once the break-glass entry has set root's password,
        /etc/shadow keeps it after you boot back into the default entry. Set paranoid.users.immutable = true (users.mutableUsers = false),
        or lock it again with `passwd -l root`.'')
      ++ optional (cfg.sshInterface != null && cfg.sshInterface == (p.vpn.interface or null)) (h.guard "break-glass-interface-is-vpn" ''
        paranoid.breakGlass.sshInterface = "${cfg.sshInterface}" is the VPN interface (paranoid.vpn.interface): it opens nothing the
        VPN does not; name the interface that still works when the VPN does not (e.g. "eth0").'');
  };
}
