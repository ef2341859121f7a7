# users.users / users.groups, their renames and the assertions of nixos/modules/config/users-groups.nix
# (26.05): who exists, with which primary group, and the lock-out guard over root and wheel
# (where a locked hash, "!" or "*", is no credential). Plus the ids NixOS allocates statically
# (nixos/modules/misc/ids.nix), only those the surface's modules use.
{ config, lib, pkgs, ... }:
let
  inherit (lib) mkOption types mkDefault mkIf mkMerge;
  cfg = config.users;

  # Whether a password hash allows a login: null, "!", "!!" and "*" lock the password.
  allowsLogin = hash: hash == "" || !(lib.elem hash [ null "!" "!!" "*" ]);

  passwdEntry = types.passwdEntry;

  subordinateRange = idName: types.submodule {
    options = {
      ${idName} = mkOption { type = types.int; description = "Start of the range of subordinate ids."; };
      count = mkOption { type = types.int; default = 1; description = "Count of subordinate ids."; };
    };
  };

  userOpts = { name, config, ... }: {
    options = {
      enable = mkOption { type = types.bool; default = true; description = "If false, the account is not created."; };
      name = mkOption {
        type = passwdEntry types.str;
        apply = x: assert (builtins.stringLength x < 32 || abort "Username '${x}' is longer than 31 characters which is not allowed!"); x;
        description = "The name of the user account (the attribute name by default).";
      };
      description = mkOption { type = passwdEntry types.str; default = ""; description = "A short description of the account (GECOS)."; };
      uid = mkOption { type = types.nullOr types.int; default = null; description = "The account UID; null allocates one on activation."; };
      isSystemUser = mkOption { type = types.bool; default = false; description = "Whether this is a system user (uid allocated below 1000)."; };
      isNormalUser = mkOption { type = types.bool; default = false; description = "Whether this is a real user (group users, home, default shell)."; };
      group = mkOption {
        type = types.str;
        apply = x: assert (builtins.stringLength x < 32 || abort "Group name '${x}' is longer than 31 characters which is not allowed!"); x;
        default = "";
        description = "The user's primary group.";
      };
      extraGroups = mkOption { type = types.listOf types.str; default = [ ]; description = "The user's auxiliary groups."; };
      home = mkOption { type = passwdEntry types.path; default = "/var/empty"; description = "The user's home directory."; };
      homeMode = mkOption { type = types.strMatching "[0-7]{1,5}"; default = "700"; description = "Mode of the home directory (applied with createHome)."; };
      cryptHomeLuks = mkOption { type = types.nullOr types.str; default = null; description = "Encrypted LUKS device holding the home directory."; };
      pamMount = mkOption { type = types.attrsOf types.str; default = { }; description = "Attributes of the user's pam_mount.conf.xml entry."; };
      shell = mkOption {
        type = types.nullOr (types.either types.shellPackage (passwdEntry types.path));
        default = pkgs.shadow;
        defaultText = lib.literalExpression "pkgs.shadow";
        description = "The user's shell.";
      };
      ignoreShellProgramCheck = mkOption { type = types.bool; default = false; description = "Skip the check that programs.<shell>.enable is set for the user's shell."; };
      subUidRanges = mkOption { type = types.listOf (subordinateRange "startUid"); default = [ ]; description = "Subordinate user ids (/etc/subuid)."; };
      subGidRanges = mkOption { type = types.listOf (subordinateRange "startGid"); default = [ ]; description = "Subordinate group ids (/etc/subgid)."; };
      autoSubUidGidRange = mkOption { type = types.bool; default = false; description = "Allocate 65536 subordinate ids automatically."; };
      createHome = mkOption { type = types.bool; default = false; description = "Whether to create the home directory."; };
      useDefaultShell = mkOption { type = types.bool; default = false; description = "Whether the shell is users.defaultUserShell."; };
      hashedPassword = mkOption { type = types.nullOr (passwdEntry types.str); default = null; description = "The hashed password (mkpasswd); \"!\" or \"*\" locks it."; };
      password = mkOption { type = types.nullOr types.str; default = null; description = "Clear-text password (world-readable in the store)."; };
      hashedPasswordFile = mkOption {
        type = types.nullOr types.str;
        default = config.passwordFile;
        defaultText = lib.literalExpression "null";
        description = "File holding the password hash, read at each activation.";
      };
      passwordFile = mkOption { type = types.nullOr types.str; default = null; visible = false; description = "Deprecated alias of hashedPasswordFile."; };
      initialHashedPassword = mkOption { type = types.nullOr (passwdEntry types.str); default = null; description = "Hashed password set when the account is created."; };
      initialPassword = mkOption { type = types.nullOr types.str; default = null; description = "Clear-text password set when the account is created."; };
      expires = mkOption { type = types.nullOr (types.strMatching "[[:digit:]]{4}-[[:digit:]]{2}-[[:digit:]]{2}"); default = null; description = "Date (YYYY-MM-DD) the account expires."; };
      packages = mkOption { type = types.listOf types.package; default = [ ]; description = "Packages in the user's profile."; };
      linger = mkOption { type = types.nullOr types.bool; default = null; description = "Whether the user's manager starts at boot."; };
    };
    config = mkMerge [
      {
        name = mkDefault name;
        shell = mkIf config.useDefaultShell (mkDefault cfg.defaultUserShell);
      }
      (mkIf config.isNormalUser {
        createHome = mkDefault true;
        group = mkDefault "users";
        home = mkDefault "${cfg.defaultUserHome}/${config.name}";
        homeMode = mkDefault "700";
        isSystemUser = mkDefault false;
        useDefaultShell = mkDefault true;
      })
      # With immutable users an initial password is the password.
      (mkIf (!cfg.mutableUsers && config.initialPassword != null) { password = mkDefault config.initialPassword; })
      (mkIf (!cfg.mutableUsers && config.initialHashedPassword != null) { hashedPassword = mkDefault config.initialHashedPassword; })
      (mkIf (config.isNormalUser && config.subUidRanges == [ ] && config.subGidRanges == [ ]) { autoSubUidGidRange = mkDefault true; })
    ];
  };

  groupOpts = { name, config, ... }: {
    options = {
      name = mkOption { type = passwdEntry types.str; description = "The name of the group (the attribute name by default)."; };
      gid = mkOption { type = types.nullOr types.int; default = null; description = "The group GID; null allocates one on activation."; };
      members = mkOption { type = types.listOf (passwdEntry types.str); default = [ ]; description = "The group's members (/etc/group); users with the group in extraGroups are added."; };
    };
    config = {
      name = mkDefault name;
      members = lib.mapAttrsToList (_: u: u.name) (lib.filterAttrs (_: u: u.enable && lib.elem config.name u.extraGroups) cfg.users);
    };
  };

  # users.groups.<name> is upstream's submodule (groupOpts), with a shortcut: evaluating a
  # submodule costs ~900 thunks, and every NixOS host declares 23 groups. A group whose
  # definitions are plain attribute sets of name/gid/members with values of the right type is
  # built directly, with what the submodule would give: the name defaults to the attribute's,
  # members are the users naming the group in extraGroups followed by the definition's members.
  # Anything else (a property such as mkDefault, a function, an unknown key, so a typo, a value
  # of the wrong type, two definitions of one option, whose order in a list is the submodule's
  # own) goes through the submodule, for upstream's result and errors.
  # (Only while groupOpts is the group's sole module: a host that declares more sub-options gets
  # the plain submodule. mergeOptionDecls rebuilds the type with substSubModules.)
  groupTypeOf = modules: let groupSubmodule = types.submoduleWith { inherit modules; shorthandOnlyDefinesConfig = true; }; in groupSubmodule // {
    substSubModules = m: if lib.length m == 1 then groupTypeOf m else groupSubmodule.substSubModules m;
    merge = loc: defs:
      let
        name = lib.last loc;
        entryOk = (passwdEntry types.str).check;
        fieldOk = {
          name = entryOk;
          gid = v: v == null || builtins.isInt v;
          members = v: builtins.isList v && lib.all entryOk v;
        };
        plain = d: builtins.isAttrs d.value && !(d.value ? _type)
          && lib.all (k: fieldOk ? ${k} && !(builtins.isAttrs d.value.${k} && d.value.${k} ? _type) && fieldOk.${k} d.value.${k}) (lib.attrNames d.value);
        setting = k: lib.filter (d: d.value ? ${k}) defs;
        names = setting "name";
        gids = setting "gid";
        memberLists = setting "members";
        groupName = if names == [ ] then name else (lib.head names).value.name;
      in
      if lib.length names <= 1 && lib.length gids <= 1 && lib.length memberLists <= 1 && (names != [ ] || entryOk name) && lib.all plain defs then {
        name = groupName;
        gid = if gids == [ ] then null else (lib.head gids).value.gid;
        members = lib.mapAttrsToList (_: u: u.name) (lib.filterAttrs (_: u: u.enable && lib.elem groupName u.extraGroups) cfg.users)
          ++ lib.concatMap (d: d.value.members) memberLists;
      }
      else groupSubmodule.merge loc defs;
  };
  groupType = groupTypeOf [ groupOpts ];

  idsAreUnique = set: idAttr:
    let ids = lib.mapAttrsToList (_: v: toString v.${idAttr}) set; in
    lib.length (lib.attrNames (lib.genAttrs ids (_: null))) == lib.length ids;

  groupNames = lib.mapAttrsToList (_: g: g.name) cfg.groups;
  usersWithoutExistingGroup = lib.filterAttrs (_: u: u.group != "" && !lib.elem u.group groupNames) cfg.users;
  usersWithNullShells = lib.attrNames (lib.filterAttrs (_: u: u.shell == null) cfg.users);

  provenance = { upstream = "nixos/modules/config/users-groups.nix"; repo = "Swarsel/nixpkgs"; commit = "4aa6836a648ca76c68866decf0c8965e36ec2a3b"; surface = "users.nix"; };
in
{
  imports = [
    (lib.mkAliasOptionModule [ "users" "extraUsers" ] [ "users" "users" ])
    (lib.mkAliasOptionModule [ "users" "extraGroups" ] [ "users" "groups" ])
    (lib.mkRenamedOptionModule [ "security" "initialRootPassword" ] [ "users" "users" "root" "initialHashedPassword" ])
  ];

  options = {
    users.users = mkOption { type = types.attrsOf (types.submodule userOpts); default = { }; description = "User accounts created by the system (root included)."; };
    users.groups = mkOption { type = types.attrsOf groupType; default = { }; description = "Groups created by the system."; };
    users.mutableUsers = mkOption { type = types.bool; default = true; description = "If false, /etc/passwd and /etc/group are exactly what the configuration says at every activation."; };
    users.allowNoPasswordLogin = mkOption { type = types.bool; default = false; description = "Disable the check that root or a wheel user can log in with a password or an SSH key."; };
    users.defaultUserHome = mkOption { type = types.str; default = "/home"; description = "The default home directory for normal users."; };
    users.defaultUserShell = mkOption {
      type = types.either types.path types.shellPackage;
      default = pkgs.bashInteractive;
      defaultText = lib.literalExpression "pkgs.bashInteractive";
      description = "The shell of users with useDefaultShell (config/shells-environment.nix).";
    };
    users.enforceIdUniqueness = mkOption { type = types.bool; default = true; description = "Whether no two users/groups may share a uid/gid."; };
    users.manageLingering = mkOption { type = types.bool; default = true; description = "Whether NixOS manages which users linger."; };
    ids.uids = mkOption { type = types.attrsOf types.ints.u32; internal = true; description = "The user IDs used in NixOS."; };
    ids.gids = mkOption { type = types.attrsOf types.ints.u32; internal = true; description = "The group IDs used in NixOS."; };
  };

  config = {
    surface.provenance = [
      (provenance // { options = [ "users.users" "users.groups" "users.mutableUsers" "users.allowNoPasswordLogin" "users.defaultUserHome" "users.enforceIdUniqueness" "users.manageLingering" "users.extraUsers" "users.extraGroups" "security.initialRootPassword" ]; notes = "The activation script (update-users-groups.pl), subuid files, linger unit and the systemd initrd's users are not modelled. A group whose definitions are plain is built without evaluating its submodule, with the same result (groupTypeOf)."; })
      { options = [ "users.defaultUserShell" ]; upstream = "nixos/modules/config/shells-environment.nix"; repo = "Swarsel/nixpkgs"; commit = "4aa6836a648ca76c68866decf0c8965e36ec2a3b"; surface = "users.nix"; reread = false; }
      { options = [ "ids.uids" "ids.gids" ]; upstream = "nixos/modules/misc/ids.nix"; repo = "Swarsel/nixpkgs"; commit = "4aa6836a648ca76c68866decf0c8965e36ec2a3b"; surface = "users.nix"; notes = "Only the ids the surface's modules use are defined."; }
    ];

    ids.uids = { root = 0; nobody = 65534; clamav = 51; nixbld = 30000; };
    ids.gids = { root = 0; wheel = 1; kmem = 2; tty = 3; disk = 6; floppy = 18; audio = 17; cdrom = 24; tape = 25; video = 26; dialout = 27; utmp = 29; lp = 20; uucp = 19; adm = 55; users = 100; nogroup = 65534; keys = 96; clamav = 51; systemd-journal = 62; input = 174; kvm = 302; render = 303; sgx = 304; shadow = 318; clock = 327; nixbld = 30000; };

    # The accounts every NixOS system declares.
    users.users = {
      nobody = { description = "Unprivileged account (don't use!)"; group = "nogroup"; isSystemUser = true; uid = config.ids.uids.nobody; };
      root = { description = "System administrator"; group = "root"; home = "/root"; shell = mkDefault cfg.defaultUserShell; uid = config.ids.uids.root; };
    };
    users.groups = lib.genAttrs [ "adm" "audio" "cdrom" "clock" "dialout" "disk" "floppy" "input" "kmem" "kvm" "lp" "nixbld" "nogroup" "render" "root" "sgx" "shadow" "tape" "tty" "users" "utmp" "uucp" "wheel" ]
      (n: { gid = config.ids.gids.${n}; });

    assertions = [
      { assertion = !cfg.enforceIdUniqueness || (idsAreUnique (lib.filterAttrs (_: u: u.uid != null) cfg.users) "uid" && idsAreUnique (lib.filterAttrs (_: g: g.gid != null) cfg.groups) "gid"); message = "UIDs and GIDs must be unique!"; }
      {
        assertion = usersWithoutExistingGroup == { };
        message = ''
          The following users have a primary group that is undefined: ${lib.concatStringsSep " " (lib.attrNames usersWithoutExistingGroup)}
          Hint: Add this to your NixOS configuration:
            ${lib.concatStringsSep "\n  " (map (g: "users.groups.${g} = {};") (lib.unique (lib.mapAttrsToList (_: u: u.group) usersWithoutExistingGroup)))}
        '';
      }
      {
        assertion = !cfg.mutableUsers -> lib.length usersWithNullShells == 0;
        message = ''
          users.mutableUsers = false has been set,
          but found users that have their shell set to null.
          If you wish to disable login, set their shell to pkgs.shadow (the default).
          Misconfigured users: ${lib.concatStringsSep " " usersWithNullShells}
        '';
      }
      {
        # Upstream: root and wheel (extraGroups, primary group or listed member), with a hash that
        # allows a login, a password, a hash file or an SSH key.
        assertion = !cfg.mutableUsers -> !cfg.allowNoPasswordLogin -> lib.any lib.id (lib.mapAttrsToList
          (name: user:
            (name == "root" || user.group == "wheel" || lib.elem "wheel" user.extraGroups || lib.elem name (cfg.groups.wheel.members or [ ]))
            && (allowsLogin user.hashedPassword || user.password != null || user.hashedPasswordFile != null
              || user.openssh.authorizedKeys.keys != [ ] || user.openssh.authorizedKeys.keyFiles != [ ]))
          cfg.users);
        message = ''
          Neither the root account nor any wheel user has a password or SSH authorized key.
          You must set one to prevent being locked out of your system.
          If you really want to be locked out of your system, set users.allowNoPasswordLogin = true;
          However you are most probably better off by setting users.mutableUsers = true; and
          manually running passwd root to set the root password.
        '';
      }
    ] ++ lib.flatten (lib.mapAttrsToList (name: user: [
      (let nameRegex = "[a-zA-Z0-9_.][a-zA-Z0-9_.-]*"; in {
        assertion = builtins.match nameRegex user.name != null;
        message = "The username \"${user.name}\" is not valid, it does not match the regex \"${nameRegex}\".";
      })
      {
        assertion = (user.hashedPassword != null) -> (builtins.match ".*:.*" user.hashedPassword == null);
        message = ''
          The password hash of user "${user.name}" contains a ":" character.
          This is invalid and would break the login system because the fields
          of /etc/shadow (file where hashes are stored) are colon-separated.
          Please check the value of option `users.users."${user.name}".hashedPassword`.'';
      }
      {
        assertion = user.isNormalUser && user.uid != null -> user.uid >= 1000;
        message = ''
          A user cannot have a users.users.${user.name}.uid set below 1000 and set users.users.${user.name}.isNormalUser.
          Either users.users.${user.name}.isSystemUser must be set to true instead of users.users.${user.name}.isNormalUser
          or users.users.${user.name}.uid must be changed to 1000 or above.
        '';
      }
      {
        assertion = lib.xor (user.isSystemUser || (user.uid != null && user.uid < 1000 && !user.isNormalUser)) user.isNormalUser;
        message = ''
          Exactly one of users.users.${user.name}.isSystemUser and users.users.${user.name}.isNormalUser must be set.
        '';
      }
      {
        assertion = user.group != "";
        message = ''
          users.users.${user.name}.group is unset. This used to default to
          nogroup, but this is unsafe. For example you can create a group
          for this user with:
          users.users.${user.name}.group = "${user.name}";
          users.groups.${user.name} = {};
        '';
      }
      {
        assertion = user.linger != null -> cfg.manageLingering;
        message = "users.manageLingering is set to false, but users.users.${user.name}.linger is configured.";
      }
    ]) cfg.users);

    warnings = lib.flatten (lib.mapAttrsToList (name: user:
      lib.optional (user.passwordFile != null)
        "The option `users.users.\"${name}\".passwordFile' has been renamed to `users.users.\"${name}\".hashedPasswordFile'.")
      cfg.users);
  };
}
