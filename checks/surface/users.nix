# users.users / users.groups and the lock-out assertions of nixos/modules/config/users-groups.nix.
{ config, lib, pkgs, ... }:
let
  inherit (lib) mkOption types mkDefault;

  userOpts = { name, config, ... }: {
    options = {
      enable = mkOption { type = types.bool; default = true; description = "Whether this user is created."; };
      name = mkOption { type = types.str; default = name; description = "The name of the user account."; };
      description = mkOption { type = types.str; default = ""; description = "A short description of the user account (GECOS)."; };
      uid = mkOption { type = types.nullOr types.int; default = null; description = "The account UID; null allocates one."; };
      isSystemUser = mkOption { type = types.bool; default = false; description = "Whether this is a system user (uid below 1000, no home)."; };
      isNormalUser = mkOption { type = types.bool; default = false; description = "Whether this is a real user (home, default shell, group users)."; };
      group = mkOption { type = types.str; default = ""; description = "The user's primary group."; };
      extraGroups = mkOption { type = types.listOf types.str; default = [ ]; description = "The user's auxiliary groups."; };
      home = mkOption { type = types.str; default = "/var/empty"; description = "The user's home directory."; };
      homeMode = mkOption { type = types.strMatching "[0-7]{1,5}"; default = "700"; description = "Permissions of the home directory."; };
      createHome = mkOption { type = types.bool; default = false; description = "Whether to create the home directory."; };
      useDefaultShell = mkOption { type = types.bool; default = false; description = "Whether to use users.defaultUserShell."; };
      shell = mkOption { type = types.nullOr (types.either types.package types.str); default = null; description = "The user's login shell."; };
      hashedPassword = mkOption { type = types.nullOr types.str; default = null; description = "Hashed password (mkpasswd)."; };
      password = mkOption { type = types.nullOr types.str; default = null; description = "Clear-text password (world-readable in the store)."; };
      hashedPasswordFile = mkOption { type = types.nullOr types.str; default = null; description = "File holding the hashed password."; };
      initialHashedPassword = mkOption { type = types.nullOr types.str; default = null; description = "Hashed password set on account creation."; };
      initialPassword = mkOption { type = types.nullOr types.str; default = null; description = "Clear-text password set on account creation."; };
      packages = mkOption { type = types.listOf types.package; default = [ ]; description = "Packages in the user's profile."; };
      linger = mkOption { type = types.nullOr types.bool; default = null; description = "Whether the user's manager starts at boot."; };
    };
    config = lib.mkMerge [
      (lib.mkIf config.isNormalUser {
        group = mkDefault "users";
        createHome = mkDefault true;
        home = mkDefault "/home/${config.name}";
        useDefaultShell = mkDefault true;
      })
    ];
  };

  groupOpts = { name, ... }: {
    options = {
      name = mkOption { type = types.str; default = name; description = "The name of the group."; };
      gid = mkOption { type = types.nullOr types.int; default = null; description = "The group GID; null allocates one."; };
      members = mkOption { type = types.listOf types.str; default = [ ]; description = "Users in this group."; };
    };
  };

  users = lib.filterAttrs (_: u: u.enable) config.users.users;
  hasCredential = u:
    u.hashedPassword != null || u.password != null || u.hashedPasswordFile != null
    || u.initialHashedPassword != null || u.initialPassword != null
    || u.openssh.authorizedKeys.keys != [ ] || u.openssh.authorizedKeys.keyFiles != [ ];
  wheelOrRoot = lib.filter (u: u.name == "root" || lib.elem "wheel" u.extraGroups) (lib.attrValues users);
in
{
  options = {
    users.users = mkOption {
      type = types.attrsOf (types.submodule userOpts);
      default = { };
      description = "Additional user accounts to be created automatically by the system.";
    };
    users.groups = mkOption {
      type = types.attrsOf (types.submodule groupOpts);
      default = { };
      description = "Additional groups to be created automatically by the system.";
    };
    users.mutableUsers = mkOption {
      type = types.bool;
      default = true;
      description = "If false, /etc/passwd and /etc/group are exactly what the configuration says at every activation.";
    };
    users.allowNoPasswordLogin = mkOption {
      type = types.bool;
      default = false;
      description = "Disable the lock-out assertion for immutable users without any credential.";
    };
  };

  config = {
    # The accounts every NixOS system declares.
    users.users.root = {
      uid = 0;
      description = "System administrator";
      home = "/root";
      group = "root";
    };
    users.users.nobody = {
      uid = 65534;
      isSystemUser = true;
      description = "Unprivileged account (don't use!)";
      group = "nogroup";
    };
    users.groups = {
      root.gid = 0;
      wheel.gid = 1;
      users.gid = 100;
      nogroup.gid = 65534;
    };

    assertions =
      lib.concatMap
        (u: [
          {
            # A uid below 1000 makes an account a system user even without isSystemUser.
            assertion = (u.isSystemUser || (u.uid != null && u.uid < 1000)) != u.isNormalUser;
            message = "Exactly one of users.users.${u.name}.isSystemUser and users.users.${u.name}.isNormalUser must be set.";
          }
          {
            assertion = u.group != "";
            message = "users.users.${u.name}.group is unset. This used to default to nogroup, but this is unsafe. For example you can create a group for this user with:\nusers.users.${u.name}.group = \"${u.name}\";\nusers.groups.${u.name} = {};";
          }
        ])
        (lib.attrValues users)
      ++ [
        {
          assertion = config.users.mutableUsers || config.users.allowNoPasswordLogin || lib.any hasCredential wheelOrRoot;
          message = "Neither the root account nor any wheel user has a password or SSH authorized key.\nYou must set one to prevent being locked out of your system.\nIf you really want to be locked out of your system, set users.allowNoPasswordLogin = true;\nHowever you are most probably better off by setting users.mutableUsers = true; and\nmanually running passwd root to set the root password.";
        }
      ];
  };
}
