# Security services real hardened hosts enable, declared so they evaluate and so what they do to
# the posture is either modelled or named: PAM services (security/pam.nix: the per-service
# switches and the `rules` interface; the rendered stacks are not modelled), AppArmor
# (security/apparmor.nix), fail2ban (services/security/fail2ban.nix) and cloud-init
# (services/system/cloud-init.nix). What they change that no invariant reads goes to
# surface.unmodelled, which the projection reports as effects that could not be judged.
{ config, lib, pkgs, options, ... }:
let
  inherit (lib) mkOption types mkIf mkDefault;
  # Whether a definition of a PAM service might set one of `keys` (see systemd.nix's `mentions`):
  # services nobody gives rules, text or rootOK are not evaluated to find out.
  mentionsAny = keys: v:
    let t = v._type or null; in
    if lib.isFunction v then true
    else if t == "if" || t == "override" || t == "order" then mentionsAny keys v.content
    else if t == "merge" then lib.any (mentionsAny keys) v.contents
    else if t == "definition" then mentionsAny keys v.value
    else if builtins.isAttrs v then lib.any (k: v ? ${k}) keys || v ? imports || v ? config
    else true;
  pamDefinedWith = keys: name: lib.any (d: d ? ${name} && mentionsAny keys d.${name}) options.security.pam.services.definitions;
  opt = type: default: description: mkOption { inherit type default description; };
  bool = default: description: opt types.bool default description;

  moduleSettingsType = types.attrsOf (types.nullOr (types.oneOf [ types.bool types.str types.int types.pathInStore ]));
  rulesType = ruleKind: mkOption {
    default = { };
    description = "PAM `${ruleKind}` rules of this service, by name.";
    type = types.attrsOf (types.submodule ({ config, name, ... }: {
      options = {
        enable = bool true "Whether this rule is in the service file.";
        args = mkOption { type = types.listOf types.str; description = "Module arguments (settings are added)."; };
        control = mkOption { type = types.str; description = "The PAM control (required, sufficient, ...)."; };
        modulePath = mkOption { type = types.str; description = "The PAM module."; };
        name = mkOption { type = types.str; internal = true; readOnly = true; description = "Name of the rule."; };
        order = mkOption { type = types.int; description = "Position of the rule in the service file."; };
        settings = opt moduleSettingsType { } "Settings added as module arguments.";
      };
      config = {
        inherit name;
        args = lib.concatLists (lib.mapAttrsToList (n: v: if lib.isBool v then lib.optional v n else lib.optional (v != null) "${n}=${toString v}") config.settings);
      };
    }));
  };

  pamOpts = { config, name, ... }: {
    imports = [
      (lib.mkRenamedOptionModule [ "enableKwallet" ] [ "kwallet" "enable" ])
      (lib.mkRenamedOptionModule [ "u2fAuth" ] [ "u2f" "enable" ])
      (lib.mkRenamedOptionModule [ "updateWtmp" ] [ "lastlog" "enable" ])
    ];
    options = {
      enable = bool true "Whether this PAM service is installed.";
      allowNullPassword = bool false "Allow logins to accounts with an empty password field.";
      duoSecurity.enable = bool false "Use pam_duo.";
      enableAppArmor = bool false "Attach AppArmor profiles per user/group.";
      enableGnomeKeyring = bool false "Unlock the GNOME keyring at login.";
      enableUMask = bool false "Load pam_umask.";
      failDelay.enable = bool false "Replace login.defs' FAIL_DELAY.";
      failDelay.delay = opt types.int 3000000 "Delay after a failure (microseconds).";
      forwardXAuth = bool false "Pass X authentication keys to the target user.";
      fprintAuth = bool false "Fingerprint authentication.";
      gnupg = { enable = bool false "Unlock GPG keys at login."; noAutostart = bool false "Do not start gpg-agent."; storeOnly = bool false "Store the password for the session."; };
      googleAuthenticator = { enable = bool false "Require a Google Authenticator token."; allowNullOTP = bool false "Allow accounts without an OTP."; forwardPass = bool false "Password and OTP in one field."; };
      googleOsLoginAccountVerification = bool false "Verify Google OS Login users.";
      googleOsLoginAuthentication = bool false "Authenticate with Google OS Login.";
      howdy = { enable = bool false "Face authentication (Howdy)."; control = opt types.str "sufficient" "PAM control of Howdy."; };
      kwallet = { enable = bool false "Unlock KWallet at login."; forceRun = bool false "Run without a graphical session."; };
      lastlog = { enable = bool false "Update /var/log/wtmp."; silent = bool true "Hide the last login message."; };
      limits = opt (types.listOf types.attrs) [ ] "Resource limits (limits.conf(5)).";
      logFailures = bool false "Log failures to /var/log/faillog.";
      makeHomeDir = bool false "Create missing home directories at login.";
      mysqlAuth = bool false "Authenticate against MySQL.";
      name = mkOption { type = types.str; description = "Name of the PAM service."; };
      nodelay = bool false "No delay after a wrong password.";
      oathAuth = bool false "OATH one-time passwords.";
      oo7.enable = bool false "Unlock the oo7 keyring.";
      otpwAuth = bool false "OTPW one-time passwords.";
      p11Auth = bool false "PKCS#11 token login.";
      pamMount = bool false "Mount filesystems at login.";
      requireWheel = bool false "Permit root access only to wheel.";
      rootOK = bool false "Root does not need to authenticate.";
      rssh = bool false "Authenticate with the caller's SSH agent (pam_rssh).";
      rules = mkOption {
        default = { };
        visible = false;
        description = "The service's rule stack (experimental upstream).";
        type = types.submodule { options = lib.genAttrs [ "account" "auth" "password" "session" ] rulesType; };
      };
      setEnvironment = bool true "Set environment.sessionVariables with pam_env.";
      setLoginUid = mkOption { type = types.bool; description = "Set the audit login uid (default: startSession)."; };
      showMotd = bool false "Show the message of the day.";
      sshAgentAuth = bool false "Authenticate with the caller's SSH agent against ~/.ssh/authorized_keys.";
      sssdStrictAccess = bool false "Enforce sssd access control.";
      startSession = bool false "Register a session with logind.";
      text = mkOption { type = types.nullOr types.lines; description = "Contents of the PAM service file (rendered from the rules upstream; not modelled here)."; };
      ttyAudit = { enable = bool false "TTY auditing."; disablePattern = opt (types.nullOr types.str) null "Users not audited."; enablePattern = opt (types.nullOr types.str) null "Users audited."; openOnly = bool false "Set the flag at open only."; };
      u2f = { enable = bool false "U2F login."; control = opt (types.enum [ "required" "requisite" "sufficient" "optional" ]) "sufficient" "PAM control of U2F."; };
      unixAuth = bool true "Whether users can log in with passwords from /etc/shadow.";
      useDefaultRules = bool true "Set up NixOS's default rule stack (experimental upstream).";
      usshAuth = bool false "SSH certificate login (pam_ussh).";
      yubicoAuth = bool false "Yubikey login.";
      zfs = bool false "Unlock an encrypted ZFS home at login.";
    };
    config = {
      name = mkDefault name;
      setLoginUid = mkDefault config.startSession;
      text = mkDefault null;
    };
  };

  pam = config.security.pam.services;
  apparmor = config.security.apparmor;
  f2b = config.services.fail2ban;
  ci = config.services.cloud-init;
  iniType = types.attrsOf (types.attrsOf (types.nullOr (types.oneOf [ types.bool types.int types.float types.str ])));
  keyValueType = types.attrsOf (types.nullOr (types.oneOf [ types.bool types.int types.float types.str ]));
  hasFs = fsName: lib.any (fs: fs.fsType == fsName) (lib.attrValues config.fileSystems);
  provenance = upstream: options: extra: { inherit upstream options; repo = "Swarsel/nixpkgs"; commit = "4aa6836a648ca76c68866decf0c8965e36ec2a3b"; surface = "security-extra.nix"; } // extra;
in
{
  options = {
    security.pam.services = mkOption { type = types.attrsOf (types.submodule pamOpts); default = { }; description = "The PAM services (/etc/pam.d)."; };
    security.lsm = mkOption { type = types.listOf types.str; default = [ ]; description = "Linux security modules to enable (security/lsm.nix)."; };

    security.apparmor = {
      enable = bool false "Whether to enable the AppArmor mandatory access control system.";
      enableCache = bool false "Cache compiled policies in /var/cache/apparmor.";
      includes = mkOption { type = types.attrsOf types.lines; default = { }; description = "Files added to AppArmor's include path."; };
      killUnconfinedConfinables = bool false "Kill processes that have a profile but run unconfined.";
      packages = opt (types.listOf types.package) [ ] "Packages added to AppArmor's include path.";
      policies = mkOption {
        default = { };
        description = "AppArmor policies.";
        type = types.attrsOf (types.submodule {
          options = {
            path = opt (types.nullOr types.path) null "A profile file to include (instead of profile).";
            profile = mkOption { type = types.lines; description = "The profile's contents (instead of path)."; };
            state = opt (types.enum [ "disable" "complain" "enforce" ]) "enforce" "How strictly the policy is enforced.";
          };
        });
      };
    };

    services.fail2ban = {
      enable = bool false "Whether to enable the fail2ban service.";
      package = mkOption { type = types.package; default = pkgs.fail2ban; defaultText = lib.literalExpression "pkgs.fail2ban"; description = "The fail2ban package."; };
      banaction = opt types.str (if config.networking.nftables.enable then "nftables-multiport" else "iptables-multiport") "Default banning action.";
      banaction-allports = opt types.str (if config.networking.nftables.enable then "nftables-allports" else "iptables-allports") "Default banning action of allports jails.";
      bantime = opt types.str "10m" "How long a host is banned.";
      bantime-increment = {
        enable = bool false "Increase the ban time of repeat offenders.";
        factor = opt (types.nullOr types.str) null "bantime.factor";
        formula = opt (types.nullOr types.str) null "bantime.formula";
        maxtime = opt (types.nullOr types.str) null "bantime.maxtime";
        multipliers = opt (types.nullOr types.str) null "bantime.multipliers";
        overalljails = opt (types.nullOr types.bool) null "bantime.overalljails";
        rndtime = opt (types.nullOr types.str) null "bantime.rndtime";
      };
      daemonSettings = mkOption { type = iniType; description = "fail2ban.local sections."; };
      extraPackages = opt (types.listOf types.package) [ ] "Packages available to the service.";
      ignoreIP = opt (types.listOf types.str) [ ] "Addresses never banned.";
      jails = mkOption {
        default = { };
        description = "The jails (a jail as text, or enabled/filter/settings).";
        type = types.attrsOf (types.either types.lines (types.submodule ({ name, ... }: {
          options = {
            enabled = mkOption { type = types.bool; default = true; readOnly = name == "DEFAULT"; description = "Whether the jail is enabled."; };
            filter = opt (types.nullOr (types.either types.str iniType)) null "The jail's filter.";
            settings = opt keyValueType { } "Settings of the jail.";
          };
        })));
      };
      maxretry = opt types.ints.unsigned 3 "Failures before a host is banned.";
      packageFirewall = mkOption { type = types.package; default = config.networking.firewall.package; defaultText = lib.literalExpression "config.networking.firewall.package"; description = "The firewall package fail2ban uses."; };
    };

    services.cloud-init = {
      enable = bool false "Enable cloud-init (configures the machine from cloud metadata at boot).";
      config = opt types.str "" "Raw cloud-init configuration (takes precedence over settings).";
      btrfs.enable = opt types.bool (hasFs "btrfs") "Allow operating btrfs filesystems.";
      ext4.enable = opt types.bool (hasFs "ext4") "Allow operating ext4 filesystems.";
      xfs.enable = opt types.bool (hasFs "xfs") "Allow operating xfs filesystems.";
      extraPackages = opt (types.listOf types.package) [ ] "Packages available to cloud-init jobs.";
      network.enable = bool false "Let cloud-init configure interfaces through networkd.";
      settings = mkOption { type = types.submodule { freeformType = (pkgs.formats.yaml { }).type; }; default = { }; description = "Structured cloud-init configuration (cloud.cfg)."; };
    };

    surface.unmodelled = mkOption {
      type = types.listOf (types.submodule {
        options = {
          option = mkOption { type = types.str; description = "The option (or its prefix)."; };
          effect = mkOption { type = types.str; description = "What it changes that no invariant reads."; };
        };
      });
      default = [ ];
      internal = true;
      description = "Declared options whose effect on the posture the surface does not model (reported as not judged).";
    };
  };

  config = lib.mkMerge [
    {
      surface.provenance = [
        (provenance "nixos/modules/security/pam.nix" [ "security.pam.services" ] { notes = "The per-service options and the rules interface; the rendered /etc/pam.d stacks are not modelled (a service with rules or text is reported as not judged)."; })
        (provenance "nixos/modules/security/apparmor.nix" [ "security.apparmor" "security.lsm" ] { notes = "Profiles are not loaded or checked; security.lsm (security/lsm.nix, not re-read) is declared from apparmor.nix's use."; })
        (provenance "nixos/modules/services/security/fail2ban.nix" [ "services.fail2ban" ] { notes = "jail.local is not rendered."; })
        (provenance "nixos/modules/services/system/cloud-init.nix" [ "services.cloud-init" ] { })
      ];
      surface.unmodelled = lib.concatLists (lib.mapAttrsToList (name: s:
        lib.optional (pamDefinedWith [ "text" "rules" ] name && (s.text != null || lib.any (kind: s.rules.${kind} != { }) [ "account" "auth" "password" "session" ]))
          { option = "security.pam.services.${name}"; effect = "a PAM stack the surface does not render (who can authenticate, and how)"; }
        ++ lib.optional (name != "su-l" && pamDefinedWith [ "rootOK" ] name && s.rootOK) { option = "security.pam.services.${name}.rootOK"; effect = "root needs no authentication for this service"; })
        pam);
    }
    (mkIf apparmor.enable {
      assertions = lib.concatLists (lib.mapAttrsToList (policyName: p: [
        { assertion = builtins.match ".*/.*" policyName == null; message = "`security.apparmor.policies.\"${policyName}\"' must not contain a slash."; }
      ]) apparmor.policies);
      boot.kernelParams = [ "apparmor=1" ];
      security.lsm = [ "apparmor" ];
      environment.etc."apparmor/parser.conf".text = ''
        ${if apparmor.enableCache then "write-cache" else "skip-cache"}
        cache-loc /var/cache/apparmor
        Include /etc/apparmor.d
      '' + lib.concatMapStrings (p: "Include ${p}/etc/apparmor.d\n") apparmor.packages;
      environment.systemPackages = [ pkgs.apparmor-utils pkgs.apparmor-bin-utils ];
      systemd.services.apparmor = {
        after = [ "local-fs.target" "systemd-journald-audit.socket" ];
        before = [ "sysinit.target" "shutdown.target" ];
        conflicts = [ "shutdown.target" ];
        reloadIfChanged = true;
        wantedBy = [ "multi-user.target" ];
        serviceConfig = {
          ExecStart = lib.mapAttrsToList (n: p: "${pkgs.apparmor-parser}/bin/apparmor_parser --add --verbose --show-cache ${lib.optionalString (p.state == "complain") "--complain "}${if p.path != null then p.path else "/etc/apparmor.d/${n}"}") (lib.filterAttrs (_: p: p.state != "disable") apparmor.policies);
          RemainAfterExit = "yes";
          Type = "oneshot";
        };
        unitConfig = { ConditionSecurity = "apparmor"; DefaultDependencies = "no"; Description = "Load AppArmor policies"; };
      };
      surface.unmodelled = [ { option = "security.apparmor"; effect = "AppArmor confinement (profiles are not loaded or checked offline)"; } ];
    })
    (mkIf f2b.enable {
      assertions = [ { assertion = f2b.bantime-increment.formula == null || f2b.bantime-increment.multipliers == null; message = "Options `services.fail2ban.bantime-increment.formula` and `services.fail2ban.bantime-increment.multipliers` cannot be both specified.\n"; } ];
      environment.systemPackages = [ f2b.package ];
      services.fail2ban.daemonSettings.Definition = {
        dbfile = mkDefault "/var/lib/fail2ban/fail2ban.sqlite3";
        logtarget = mkDefault "SYSLOG";
        pidfile = mkDefault "/run/fail2ban/fail2ban.pid";
        socket = mkDefault "/run/fail2ban/fail2ban.sock";
      };
      services.fail2ban.jails = lib.mkMerge [
        {
          DEFAULT.settings = lib.optionalAttrs f2b.bantime-increment.enable ({ "bantime.increment" = true; }
            // lib.mapAttrs' (n: lib.nameValuePair "bantime.${n}") (lib.filterAttrs (n: v: v != null && n != "enable") f2b.bantime-increment))
            // {
              inherit (f2b) banaction maxretry bantime;
              backend = "systemd";
              banaction_allports = f2b.banaction-allports;
              ignoreip = "127.0.0.1/8 ${lib.optionalString config.networking.enableIPv6 "::1"} ${lib.concatStringsSep " " f2b.ignoreIP}";
            };
        }
        # The default sshd jail.
        (mkIf config.services.openssh.enable { sshd.settings.port = mkDefault (lib.concatMapStringsSep "," toString config.services.openssh.ports); })
      ];
      # fail2ban reads failed logins from sshd's VERBOSE log.
      services.openssh.settings.LogLevel = mkDefault "VERBOSE";
      systemd.services.fail2ban = {
        partOf = lib.optional config.networking.firewall.enable "firewall.service";
        path = [ f2b.package f2b.packageFirewall pkgs.iproute2 ] ++ f2b.extraPackages;
        wantedBy = [ "multi-user.target" ];
        serviceConfig = {
          CapabilityBoundingSet = [ "CAP_AUDIT_READ" "CAP_DAC_READ_SEARCH" "CAP_NET_ADMIN" "CAP_NET_RAW" ];
          LogsDirectory = "fail2ban";
          LogsDirectoryMode = "0750";
          NoNewPrivileges = true;
          PrivateDevices = true;
          PrivateTmp = true;
          ProtectControlGroups = true;
          ProtectHome = true;
          ProtectHostname = true;
          ProtectKernelModules = true;
          ProtectKernelTunables = true;
          ProtectSystem = "strict";
          RuntimeDirectory = "fail2ban";
          RuntimeDirectoryMode = "0750";
          StateDirectory = "fail2ban";
          StateDirectoryMode = "0750";
        };
      };
      warnings = lib.mkIf (!config.networking.firewall.enable && !config.networking.nftables.enable) [ "fail2ban can not be used without a firewall" ];
      surface.unmodelled = [ { option = "services.fail2ban"; effect = "firewall rules fail2ban adds at run time (bans)"; } ];
    })
    (mkIf ci.enable {
      environment.etc."cloud/cloud.cfg".text = if ci.config == "" then builtins.toJSON ci.settings else ci.config;
      services.cloud-init.settings = {
        cloud_config_modules = mkDefault [ "disk_setup" "mounts" "ssh-import-id" "set-passwords" "timezone" "disable-ec2-metadata" "runcmd" "ssh" ];
        cloud_final_modules = mkDefault [ "rightscale_userdata" "scripts-vendor" "scripts-per-once" "scripts-per-boot" "scripts-per-instance" "scripts-user" "ssh-authkey-fingerprints" "keys-to-console" "phone-home" "final-message" "power-state-change" ];
        cloud_init_modules = mkDefault [ "migrator" "seed_random" "bootcmd" "write-files" "growpart" "resizefs" "update_hostname" "resolv_conf" "ca-certs" "rsyslog" "users-groups" ];
        disable_root = mkDefault false;
        preserve_hostname = mkDefault false;
        system_info = mkDefault { distro = "nixos"; network.renderers = [ "networkd" ]; };
        users = mkDefault [ "root" ];
      };
      systemd.services = lib.genAttrs [ "cloud-config" "cloud-final" "cloud-init" "cloud-init-local" ] (n: {
        description = "cloud-init (${n})";
        wantedBy = [ "multi-user.target" ];
        serviceConfig = {
          ExecStart = "${pkgs.cloud-init}/bin/cloud-init ${{ cloud-config = "modules --mode=config"; cloud-final = "modules --mode=final"; cloud-init = "init"; cloud-init-local = "init --local"; }.${n}}";
          RemainAfterExit = "yes";
          StandardOutput = "journal+console";
          TimeoutSec = "infinity";
          Type = "oneshot";
        };
      });
      systemd.targets.cloud-config = { description = "Cloud-config availability"; requires = [ "cloud-init-local.service" "cloud-init.service" ]; };
      surface.unmodelled = [ { option = "services.cloud-init"; effect = "users, passwords and SSH keys from cloud metadata at every boot (set-passwords, users-groups, ssh), and boot commands run as root"; } ];
    })
  ];
}
