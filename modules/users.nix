# Immutable users: /etc/passwd, group and shadow are exactly what the configuration declares.
{ config, lib, ... }:
let
  inherit (lib) mkOption types mkIf mkDefault;
  h = import ../lib/module-helpers.nix { inherit lib; };
  cfg = config.paranoid.users;
  users = lib.filterAttrs (_: u: u.enable) config.users.users;
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

    warnings = lib.optional (clearText != [ ]) (h.guard "users-cleartext-password" ''
      users.users.<name>.password / initialPassword is set for ${h.showList clearText}: the password is world-readable in /nix/store.
      Use hashedPasswordFile.'');
  };
}
