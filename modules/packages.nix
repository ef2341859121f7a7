# Strip what NixOS installs by default: fewer tools for an intruder to live off.
{ config, lib, ... }:
let
  inherit (lib) mkOption types mkIf mkDefault;
  cfg = config.paranoid.packages;
in
{
  options.paranoid.packages.stripDefaults = mkOption {
    type = types.bool;
    default = false;
    description = ''
      Install none of NixOS's default packages (perl, rsync, strace: `environment.defaultPackages`),
      no nano (`programs.nano.enable`; nano left that list in 23.11, so the recipe's
      `defaultPackages = [ ]` no longer removes it) and no stub ELF loader for foreign binaries
      (`environment.stub-ld.enable`). Breaks: `rsync` to this host as a deploy path, editing
      files in place; the core tools (coreutils, util-linux, ...) stay.
    '';
  };

  config = mkIf cfg.stripDefaults {
    environment.defaultPackages = mkDefault [ ];
    programs.nano.enable = mkDefault false;
    environment.stub-ld.enable = mkDefault false;
  };
}
