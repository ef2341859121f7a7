# Privilege escalation: security.sudo, security.sudo-rs and security.doas.
{ config, lib, pkgs, ... }:
let
  inherit (lib) mkOption types mkIf;
  ruleOpts = types.submodule {
    options = {
      users = mkOption { type = types.listOf (types.either types.str types.int); default = [ ]; description = "Users the rule applies to."; };
      groups = mkOption { type = types.listOf (types.either types.str types.int); default = [ ]; description = "Groups the rule applies to."; };
      host = mkOption { type = types.str; default = "ALL"; description = "Host the rule applies to."; };
      runAs = mkOption { type = types.str; default = "ALL:ALL"; description = "Target user:group."; };
      commands = mkOption { type = types.listOf (types.either types.str (types.submodule { options = { command = mkOption { type = types.str; description = "A command."; }; options = mkOption { type = types.listOf types.str; default = [ ]; description = "Tags such as NOPASSWD."; }; }; })); description = "Commands the rule allows."; };
    };
  };
  sudoLike = pkgName: enableDefault: {
    enable = mkOption { type = types.bool; default = enableDefault; description = "Whether to enable ${pkgName}, a setuid privilege escalation tool."; };
    package = mkOption { type = types.package; default = pkgs.${pkgName}; description = "The ${pkgName} package."; };
    wheelNeedsPassword = mkOption { type = types.bool; default = true; description = "Whether members of wheel must give their password."; };
    execWheelOnly = mkOption { type = types.bool; default = false; description = "Only members of wheel can execute the binary (setuid wrapper mode 4510, group wheel)."; };
    extraRules = mkOption { type = types.listOf ruleOpts; default = [ ]; description = "Extra sudoers rules."; };
    extraConfig = mkOption { type = types.lines; default = ""; description = "Extra sudoers text."; };
    defaultOptions = mkOption { type = types.listOf types.str; default = [ "SETENV" ]; description = "Options of the root and wheel rules."; };
    keepTerminfo = mkOption { type = types.bool; default = true; description = "Keep TERMINFO across sudo."; };
  };
  wrapperFor = name: c: {
    setuid = true;
    owner = "root";
    group = if c.execWheelOnly then "wheel" else "root";
    permissions = if c.execWheelOnly then "u+rx,g+x" else "u+rx,g+x,o+x";
    source = "${c.package.out}/bin/${name}";
  };
in
{
  options.security = {
    sudo = sudoLike "sudo" true;
    sudo-rs = sudoLike "sudo-rs" false;
    doas = {
      enable = mkOption { type = types.bool; default = false; description = "Whether to enable doas."; };
      wheelNeedsPassword = mkOption { type = types.bool; default = true; description = "Whether members of wheel must give their password."; };
    };
    wrappers = mkOption { type = types.attrsOf (types.attrsOf types.unspecified); default = { }; description = "Setuid/setcap wrappers in /run/wrappers."; };
  };

  config = lib.mkMerge [
    (mkIf config.security.sudo.enable {
      security.wrappers.sudo = wrapperFor "sudo" config.security.sudo;
      security.wrappers.sudoedit = wrapperFor "sudoedit" config.security.sudo;
      environment.etc.sudoers.text = ''
        root ALL=(ALL:ALL) ${lib.concatStringsSep ", " config.security.sudo.defaultOptions}: ALL
        %wheel ALL=(ALL:ALL) ${lib.optionalString (!config.security.sudo.wheelNeedsPassword) "NOPASSWD: "}${lib.concatStringsSep ", " config.security.sudo.defaultOptions}: ALL
        ${config.security.sudo.extraConfig}
      '';
    })
    (mkIf config.security.sudo-rs.enable {
      security.wrappers.sudo = wrapperFor "sudo" config.security.sudo-rs;
      assertions = [ { assertion = !config.security.sudo.enable; message = "security.sudo and security.sudo-rs cannot both be enabled"; } ];
    })
    (mkIf config.security.doas.enable {
      security.wrappers.doas = { setuid = true; owner = "root"; group = "root"; permissions = "u+rx,g+x,o+x"; source = "${pkgs.doas}/bin/doas"; };
    })
  ];
}
