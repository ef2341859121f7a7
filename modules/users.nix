# Immutable users: /etc/passwd, group and shadow are exactly what the configuration declares.
{ config, lib, ... }:
let
  inherit (lib) mkOption types mkIf mkDefault;
  h = import ../lib/module-helpers.nix { inherit lib; };
  cfg = config.paranoid.users;
  users = lib.filterAttrs (_: u: u.enable) config.users.users;
  admins = lib.filter (h.isAdmin config) (lib.attrValues users);
  # As NixOS counts them (with immutable users an initial password has become the password).
  inherit (h) hasCredential;
  clearText = lib.attrNames (lib.filterAttrs (_: u: u.password != null || u.initialPassword != null) users);
in
{
  options.paranoid.users.immutable = mkOption {
    type = types.bool;
    default = false;
    description = ''
      Make accounts declarative only (`users.mutableUsers = false`): `useradd`, `passwd` and
      friends cannot create or change accounts that survive the next activation. Breaks:
      changing a password with `passwd`; set `hashedPasswordFile` instead.
    '';
  };

  config = mkIf cfg.immutable {
    users.mutableUsers = mkDefault false;

    assertions = [
      {
        assertion = config.users.mutableUsers || config.users.allowNoPasswordLogin || lib.any hasCredential admins;
        message = h.guard "users-no-credential" ''
          paranoid.users.immutable = true makes accounts exactly what the configuration says, and it gives neither root
          nor any wheel member a password (hashedPassword, hashedPasswordFile) or SSH key: nobody could log in.
          Fix: give an admin a credential, e.g. users.users.root.openssh.authorizedKeys.keys, or set paranoid.users.immutable = false.'';
      }
    ];
    warnings = lib.optional (clearText != [ ]) (h.guard "users-cleartext-password" ''
      users.users.<name>.password / initialPassword is set for ${h.showList clearText}: the password is world-readable in /nix/store.
      Use hashedPasswordFile.'');
  };
}
