# Who exists on the host and what each account can log in with, as /etc/passwd, /etc/group,
# /etc/shadow and /etc/ssh/authorized_keys.d will say after the next boot: groups from the
# primary group, extraGroups and users.groups.<g>.members (users-groups.nix); a password only
# if its hash is not locked ("!", "*") and, for a file, only if the file survives a reboot
# (with a tmpfs root, only what lies on a disk, is persisted by impermanence, or is put in
# place at boot by a secret manager).
{ lib }:
{ config }:
let
  inherit (lib) filterAttrs attrNames attrValues elem hasPrefix unique any;
  h = import ../module-helpers.nix { inherit lib; };

  users = filterAttrs (_: u: u.enable or true) config.users.users;
  groups = config.users.groups;

  # Paths a secret manager (sops-nix, agenix, systemd credentials) fills at every boot from
  # keys that live elsewhere.
  secretManagerPaths = [ "/run/secrets" "/run/secrets-for-users" "/run/agenix" "/run/agenix.d" "/run/credentials" ];

  special = config.boot.specialFileSystems or { };
  mounts = lib.filter (fs: fs.enable or true) (attrValues config.fileSystems ++ attrValues special);
  # The mount that holds `path` (longest mount point above it), or null.
  mountOf =
    path:
    let c = lib.filter (fs: h.isUnder fs.mountPoint path) mounts; in
    if c == [ ] then null
    else lib.foldl' (best: fs: if lib.stringLength fs.mountPoint > lib.stringLength best.mountPoint then fs else best) (lib.head c) c;
  volatileTypes = [ "tmpfs" "ramfs" "devtmpfs" "proc" "sysfs" "devpts" ];

  persistence = lib.filter (p: p.enable or true) (attrValues (config.environment.persistence or { }));
  persistedDirs = lib.concatMap (p: map (d: d.dirPath or d.directory) p.directories) persistence;
  persistedFiles = lib.concatMap (p: map (f: f.filePath or f.file) p.files) persistence;

  rootIsVolatile = elem (config.fileSystems."/".fsType or "") volatileTypes;
in
rec {
  inherit rootIsVolatile;

  # Whether a file at `path` is still there after a reboot.
  survives =
    raw:
    let path = h.normalisePath raw; fs = mountOf path; in
    any (d: h.isUnder d path) secretManagerPaths
    || (fs != null && !(elem fs.fsType volatileTypes))
    || any (d: h.isUnder d path) persistedDirs
    || elem path persistedFiles;

  # A shadow hash that logs in: not null, not locked (a leading "!" or "*" disables it).
  usableHash = hash: hash != null && !(hasPrefix "!" hash) && !(hasPrefix "*" hash);

  groupsOf =
    name: u:
    unique (lib.filter (g: g != "") ([ u.group ] ++ u.extraGroups
      ++ attrNames (filterAttrs (_: g: elem name (g.members or [ ])) groups)));

  # The password an account has after a reboot, and where it comes from (null if none).
  passwordOf =
    u:
    if usableHash u.hashedPassword then "users.users.${u.name}.hashedPassword"
    else if u.hashedPasswordFile != null && survives u.hashedPasswordFile then "users.users.${u.name}.hashedPasswordFile (${u.hashedPasswordFile})"
    else if u.password != null then "users.users.${u.name}.password"
    # With mutable users these only seed a new account; /etc/shadow keeps them unless / is a tmpfs,
    # which recreates the account (and the seed) at every boot. Immutable users always get them.
    else if usableHash u.initialHashedPassword then "users.users.${u.name}.initialHashedPassword"
    else if u.initialPassword != null then "users.users.${u.name}.initialPassword"
    # Mutable users on a disk root keep whatever `passwd` set, which the configuration cannot see.
    else if config.users.mutableUsers && !rootIsVolatile then "a password set with passwd (users.mutableUsers = true keeps /etc/shadow)"
    else null;

  # Why an account has no password after a reboot (for fixes), or null.
  passwordLost =
    u:
    if u.hashedPasswordFile != null && !(survives u.hashedPasswordFile) && !(usableHash u.hashedPassword)
    then "users.users.${u.name}.hashedPasswordFile = \"${u.hashedPasswordFile}\" is not on persistent storage: it is gone after a reboot"
    else if u.hashedPassword != null && !(usableHash u.hashedPassword)
    then "users.users.${u.name}.hashedPassword is locked (\"${u.hashedPassword}\")"
    else null;

  # Whether the account's /etc/shadow entry starts with "!" after activation: update-users-groups.pl
  # writes "!" when no password reaches it (none declared, or a hashedPasswordFile that is not
  # there), or the declared hash is locked. sshd refuses such an account even with a key when
  # UsePAM is off (auth.c: a locked account).
  lockedOf = u: passwordOf u == null && !(u.hashedPassword != null && !(hasPrefix "!" u.hashedPassword));

  # Public keys sshd reads from /etc/ssh/authorized_keys.d/<name> (rendered from the store).
  keysOf = u: lib.length u.openssh.authorizedKeys.keys + lib.length u.openssh.authorizedKeys.keyFiles;

  # The algorithms each declared key can sign in with (what PubkeyAcceptedAlgorithms must
  # accept): by the key type in its authorized_keys line (after any options); an RSA key signs
  # with rsa-sha2-512/256 (or ssh-rsa); a `cert-authority` line admits certificates, of
  # whatever key the user holds. A keyFile is not read: algorithms null (unknown).
  keyTypes = {
    "ssh-ed25519" = [ "ssh-ed25519" ];
    "sk-ssh-ed25519@openssh.com" = [ "sk-ssh-ed25519@openssh.com" ];
    "ecdsa-sha2-nistp256" = [ "ecdsa-sha2-nistp256" ];
    "ecdsa-sha2-nistp384" = [ "ecdsa-sha2-nistp384" ];
    "ecdsa-sha2-nistp521" = [ "ecdsa-sha2-nistp521" ];
    "sk-ecdsa-sha2-nistp256@openssh.com" = [ "sk-ecdsa-sha2-nistp256@openssh.com" "webauthn-sk-ecdsa-sha2-nistp256@openssh.com" ];
    "ssh-rsa" = [ "rsa-sha2-512" "rsa-sha2-256" "ssh-rsa" ];
    "ssh-dss" = [ "ssh-dss" ];
  };
  certAlgorithms = [
    "ssh-ed25519-cert-v01@openssh.com" "sk-ssh-ed25519-cert-v01@openssh.com" "ecdsa-sha2-nistp256-cert-v01@openssh.com"
    "ecdsa-sha2-nistp384-cert-v01@openssh.com" "ecdsa-sha2-nistp521-cert-v01@openssh.com" "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com"
    "rsa-sha2-512-cert-v01@openssh.com" "rsa-sha2-256-cert-v01@openssh.com" "ssh-rsa-cert-v01@openssh.com"
  ];
  keyAlgorithmsOf =
    line:
    let
      ws = lib.filter (w: w != "") (lib.splitString " " (builtins.replaceStrings [ "\t" ] [ " " ] line));
      type = lib.findFirst (w: keyTypes ? ${w}) null ws;
      ca = lib.any (w: lib.hasPrefix "cert-authority" w) (lib.filter (w: w != type) ws);
    in
    if type == null then { type = "unknown"; algorithms = null; }
    else if ca then { type = "cert-authority ${type}"; algorithms = certAlgorithms; }
    else { inherit type; algorithms = keyTypes.${type}; };

  # The login shell: a package by its shellPath, a path by itself. sshd runs every session
  # (and every forced command) through it; nologin and false refuse them all.
  shellOf =
    u:
    if u.shell == null then null
    else if builtins.isAttrs u.shell then (if u.shell ? shellPath then u.shell.shellPath else null)
    else toString u.shell;
  refusesSessions = u: let s = shellOf u; in s != null && elem (baseNameOf s) [ "nologin" "false" ];

  accounts = lib.mapAttrs (name: u: {
    inherit name;
    uid = if name == "root" then 0 else u.uid;
    home = u.home;
    groups = groupsOf name u;
    isNormalUser = u.isNormalUser;
    admin = name == "root" || elem "wheel" (groupsOf name u);
    password = passwordOf u;
    passwordLost = passwordLost u;
    locked = lockedOf u;
    keys = keysOf u;
    keyAlgorithms = map keyAlgorithmsOf u.openssh.authorizedKeys.keys
      ++ map (_: { type = "keyFile"; algorithms = null; }) u.openssh.authorizedKeys.keyFiles;
    shell = shellOf u;
    refusesSessions = refusesSessions u;
  }) users;

  # Members of a group by name (primary, extraGroups, members).
  membersOf = group: attrNames (filterAttrs (_: a: elem group a.groups) accounts);
}
