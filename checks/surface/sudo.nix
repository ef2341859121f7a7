# Privilege escalation: security.sudo (security/sudo.nix), security.sudo-rs (security/sudo-rs.nix),
# security.doas (security/doas.nix) and the setuid wrappers they install. The sudoers and
# doas.conf texts are built as upstream builds them (`configFile`, and the text upstream hands
# to `doas -C` in a derivation), and are what /etc/sudoers and /etc/doas.conf will contain.
{ config, lib, pkgs, ... }:
let
  inherit (lib) mkOption types mkIf mkDefault mkOrder mkMerge;

  toUserString = user: if lib.isInt user then "#${toString user}" else "${user}";
  toGroupString = group: if lib.isInt group then "%#${toString group}" else "%${group}";
  toCommandOptionsString = options: "${lib.concatStringsSep ":" options}${lib.optionalString (lib.length options != 0) ":"} ";
  toCommandsString = commands: lib.concatStringsSep ", " (map (c: if lib.isString c then c else "${toCommandOptionsString c.options}${c.command}") commands);

  # sudo's tag list; sudo-rs accepts fewer (upstream's enums differ).
  sudoTags = [ "NOPASSWD" "PASSWD" "NOEXEC" "EXEC" "SETENV" "NOSETENV" "LOG_INPUT" "NOLOG_INPUT" "LOG_OUTPUT" "NOLOG_OUTPUT" "MAIL" "NOMAIL" "FOLLOW" "NOFLLOW" "INTERCEPT" "NOINTERCEPT" ];
  sudoRsTags = [ "NOPASSWD" "PASSWD" "NOEXEC" "EXEC" "SETENV" "NOSETENV" "LOG_INPUT" "NOLOG_INPUT" "LOG_OUTPUT" "NOLOG_OUTPUT" ];

  ruleType = tags: types.listOf (types.submodule {
    options = {
      users = mkOption { type = types.listOf (types.either types.str types.int); default = [ ]; description = "The usernames / UIDs this rule applies to."; };
      groups = mkOption { type = types.listOf (types.either types.str types.int); default = [ ]; description = "The groups / GIDs this rule applies to."; };
      host = mkOption { type = types.str; default = "ALL"; description = "For what host this rule applies."; };
      runAs = mkOption { type = types.str; default = "ALL:ALL"; description = "Under which user/group the commands may run."; };
      commands = mkOption {
        description = "The commands the rule allows.";
        type = types.listOf (types.either types.str (types.submodule {
          options = {
            command = mkOption { type = types.str; description = "A command, with or without arguments."; };
            options = mkOption { type = types.listOf (types.enum tags); default = [ ]; description = "Tags such as NOPASSWD."; };
          };
        }));
      };
    };
  });

  # Options shared by sudo and sudo-rs (each module declares its own copy upstream).
  sudoOptions = { pkgName, enableDefault, tags }: {
    enable = mkOption { type = types.bool; default = enableDefault; description = "Whether to enable ${pkgName}, which lets non-root users run commands as root."; };
    package = mkOption { type = types.package; default = pkgs.${pkgName}; defaultText = lib.literalExpression "pkgs.${pkgName}"; description = "The ${pkgName} package."; };
    configFile = mkOption { type = types.lines; description = "The contents of the sudoers file."; };
    defaultOptions = mkOption { type = types.listOf types.str; default = [ "SETENV" ]; description = "Options of the default rules for root and wheel."; };
    execWheelOnly = mkOption { type = types.bool; default = false; description = "Only members of wheel can execute the binary (setuid wrapper mode u+rx,g+x, group wheel)."; };
    extraConfig = mkOption { type = types.lines; default = ""; description = "Extra configuration text appended to sudoers."; };
    extraRules = mkOption { type = ruleType tags; default = [ ]; description = "Rules of the sudoers file, in order (mkBefore/mkAfter place them)."; };
    wheelNeedsPassword = mkOption { type = types.bool; default = true; description = "Whether members of wheel must give their password."; };
  };

  # The default root and wheel rules, ordered around the user's own (mkOrder 400 / 600).
  defaultRules = c: mkMerge [
    (mkOrder 400 [ { users = [ "root" ]; commands = [ { command = "ALL"; options = c.defaultOptions; } ]; } ])
    (mkOrder 600 [ { groups = [ "wheel" ]; commands = [ { command = "ALL"; options = lib.optional (!c.wheelNeedsPassword) "NOPASSWD" ++ c.defaultOptions; } ]; } ])
  ];

  # sudoers as sudo.nix and sudo-rs.nix build `configFile` (the same text for both).
  sudoersText = name: c: lib.concatStringsSep "\n" (lib.filter (s: s != "") [
    ''
      # Don't edit this file. Set the NixOS options ‘security.${name}.configFile’
      # or ‘security.${name}.extraRules’ instead.
    ''
    (lib.pipe c.extraRules [
      (lib.filter (rule: lib.length rule.commands != 0))
      (map (rule: [
        (map (user: "${toUserString user}     ${rule.host}=(${rule.runAs})    ${toCommandsString rule.commands}") rule.users)
        (map (group: "${toGroupString group}  ${rule.host}=(${rule.runAs})    ${toCommandsString rule.commands}") rule.groups)
      ]))
      lib.flatten
      (lib.concatStringsSep "\n")
    ])
    "\n"
    (lib.optionalString (c.extraConfig != "") ''
      # extraConfig
      ${c.extraConfig}
    '')
  ]);

  wrapper = c: source: {
    inherit source;
    owner = "root";
    group = if c.execWheelOnly then "wheel" else "root";
    setuid = true;
    permissions = if c.execWheelOnly then "u+rx,g+x" else "u+rx,g+x,o+x";
  };

  doas = config.security.doas;
  doasOpts = rule: lib.concatStringsSep " " [
    (lib.optionalString rule.noPass "nopass")
    (lib.optionalString rule.noLog "nolog")
    (lib.optionalString rule.persist "persist")
    (lib.optionalString rule.keepEnv "keepenv")
    "setenv { SSH_AUTH_SOCK TERMINFO TERMINFO_DIRS ${lib.concatStringsSep " " rule.setEnv} }"
  ];
  doasArgs = rule: if rule.args == null then "" else if lib.length rule.args == 0 then "args" else "args ${lib.concatStringsSep " " rule.args}";
  doasRule = rule:
    let
      opts = doasOpts rule;
      as = lib.optionalString (rule.runAs != null) "as ${rule.runAs}";
      cmd = lib.optionalString (rule.cmd != null) "cmd ${rule.cmd}";
      args = doasArgs rule;
    in
    lib.optionals (lib.length doas.extraRules > 0) [
      (lib.optionalString (lib.length rule.users > 0) (map (usr: "permit ${opts} ${toString usr} ${as} ${cmd} ${args}") rule.users))
      (lib.optionalString (lib.length rule.groups > 0) (map (grp: "permit ${opts} :${toString grp} ${as} ${cmd} ${args}") rule.groups))
    ];

  # doas.nix writes this text with writeText "doas-conf-in" and copies it to /etc/doas.conf after
  # `doas -C` accepts it (the "doas-conf" derivation): the file doas reads is this text.
  doasConfText = ''
    # To modify this file, set the NixOS options
    # `security.doas.extraRules` or `security.doas.extraConfig`. To
    # completely replace the contents of this file, use
    # `environment.etc."doas.conf"`.

    # extraRules
    ${lib.concatStringsSep "\n" (lib.lists.flatten (map doasRule doas.extraRules))}

    # extraConfig
    ${doas.extraConfig}

    # "root" is allowed to do anything.
    permit nopass keepenv root
  '';

  provenance = upstream: options: extra: { inherit upstream options; repo = "Swarsel/nixpkgs"; commit = "4aa6836a648ca76c68866decf0c8965e36ec2a3b"; surface = "sudo.nix"; } // extra;
in
{
  options.security = {
    sudo = sudoOptions { pkgName = "sudo"; enableDefault = true; tags = sudoTags; } // {
      # nixos/modules/config/terminfo.nix declares it beside sudo's own options.
      keepTerminfo = mkOption { type = types.bool; default = true; description = "Whether to preserve TERMINFO and TERMINFO_DIRS for root and wheel."; };
    };
    sudo-rs = sudoOptions { pkgName = "sudo-rs"; enableDefault = false; tags = sudoRsTags; };
    doas = {
      enable = mkOption { type = types.bool; default = false; description = "Whether to enable doas, which lets non-root users run commands as root."; };
      package = mkOption { type = types.package; default = pkgs.doas; defaultText = lib.literalExpression "pkgs.doas"; description = "The doas package."; };
      extraConfig = mkOption { type = types.lines; default = ""; description = "Extra text appended to doas.conf (cannot override the root rule)."; };
      wheelNeedsPassword = mkOption { type = types.bool; default = true; description = "Whether members of wheel must give their password."; };
      extraRules = mkOption {
        default = [ ];
        description = "Rules of doas.conf, in order; doas applies the last matching rule.";
        type = types.listOf (types.submodule {
          options = {
            args = mkOption { type = types.nullOr (types.listOf types.str); default = null; description = "Arguments the command must be given ([] = none)."; };
            cmd = mkOption { type = types.nullOr types.str; default = null; description = "The command allowed (null = any)."; };
            groups = mkOption { type = types.listOf (types.either types.str types.int); default = [ ]; description = "The groups / GIDs the rule applies to."; };
            keepEnv = mkOption { type = types.bool; default = false; description = "Keep the caller's environment."; };
            noLog = mkOption { type = types.bool; default = false; description = "Do not log successful executions."; };
            noPass = mkOption { type = types.bool; default = false; description = "No password is asked."; };
            persist = mkOption { type = types.bool; default = false; description = "Do not ask again for a while after a success."; };
            runAs = mkOption { type = types.nullOr types.str; default = null; description = "Which user (or :group) the command may run as (null = any)."; };
            setEnv = mkOption { type = types.listOf types.str; default = [ ]; description = "Variables to keep, set or remove."; };
            users = mkOption { type = types.listOf (types.either types.str types.int); default = [ ]; description = "The usernames / UIDs the rule applies to."; };
          };
        });
      };
    };
    wrappers = mkOption { type = types.attrsOf (types.attrsOf types.unspecified); default = { }; description = "Setuid/setcap wrappers in /run/wrappers (security/wrappers)."; };
    wrapperDir = mkOption { type = types.path; default = "/run/wrappers/bin"; internal = true; description = "Where the wrappers are installed."; };
  };

  config = mkMerge [
    {
      surface.provenance = [
        (provenance "nixos/modules/security/sudo.nix" [ "security.sudo" ] { notes = "configFile is built exactly; /etc/sudoers is that text (upstream copies it after visudo -c)."; })
        (provenance "nixos/modules/config/terminfo.nix" [ "security.sudo.keepTerminfo" ] { })
        (provenance "nixos/modules/security/sudo-rs.nix" [ "security.sudo-rs" ] { notes = "security.shadow.su.package (sudo-rs's su) is not modelled."; })
        (provenance "nixos/modules/security/doas.nix" [ "security.doas" ] { notes = "doas.conf is the text upstream hands to `doas -C` in the doas-conf derivation."; })
        (provenance "nixos/modules/security/wrappers/default.nix" [ "security.wrappers" "security.wrapperDir" ] { reread = false; notes = "Wrappers are recorded as attribute sets; their options are not checked."; })
      ];
    }
    (mkIf config.security.sudo.enable (let c = config.security.sudo; in {
      assertions = [ { assertion = c.package.pname != "sudo-rs"; message = "NixOS' `sudo` module does not support `sudo-rs`; see `security.sudo-rs` instead.\n"; } ];
      environment.etc.sudoers = { mode = "0440"; text = c.configFile; };
      environment.systemPackages = [ c.package ];
      security.pam.services.sudo = { sshAgentAuth = true; usshAuth = true; };
      security.sudo.configFile = sudoersText "sudo" c;
      security.sudo.extraRules = defaultRules c;
      security.wrappers.sudo = wrapper c "${c.package.out}/bin/sudo";
      security.wrappers.sudoedit = wrapper c "${c.package.out}/bin/sudoedit";
    }))
    {
      security.sudo.extraConfig = mkIf config.security.sudo.keepTerminfo ''

        # Keep terminfo database for root and %wheel.
        Defaults:root,%wheel env_keep+=TERMINFO_DIRS
        Defaults:root,%wheel env_keep+=TERMINFO
      '';
    }
    (mkIf config.security.sudo-rs.enable (let c = config.security.sudo-rs; in {
      assertions = [ { assertion = !config.security.sudo.enable; message = "`security.sudo` and `security.sudo-rs` cannot both be enabled"; } ];
      environment.etc.sudoers = { mode = "0440"; text = c.configFile; };
      environment.systemPackages = [ c.package ];
      security.pam.services = {
        su-l = { forwardXAuth = true; logFailures = true; rootOK = true; };
        sudo = { sshAgentAuth = true; usshAuth = true; };
        sudo-i = { sshAgentAuth = true; usshAuth = true; };
      };
      # Enabling sudo-rs turns classic sudo off unless the host says otherwise.
      security.sudo.enable = mkDefault false;
      security.sudo-rs.configFile = sudoersText "sudo-rs" c;
      security.sudo-rs.extraRules = defaultRules c;
      security.wrappers.sudo = wrapper c (lib.getExe c.package);
      security.wrappers.sudoedit = wrapper c (lib.getExe' c.package "sudoedit");
    }))
    (mkIf doas.enable {
      environment.etc."doas.conf" = { mode = "0440"; text = doasConfText; };
      environment.systemPackages = [ doas.package ];
      security.doas.extraRules = mkOrder 600 [ { groups = [ "wheel" ]; noPass = !doas.wheelNeedsPassword; } ];
      security.pam.services.doas = { allowNullPassword = true; sshAgentAuth = true; };
      security.wrappers.doas = { group = "root"; owner = "root"; setuid = true; source = lib.getExe doas.package; };
    })
  ];
}
