# The console's login prompt (nixos/modules/services/ttys/getty.nix): agetty prints /etc/issue,
# which getty.nix writes at mkDefault from greetingLine and helpLine. Upstream's greeting names
# system.nixos.distroName and .label, which the surface does not declare: it names the release.
{ config, lib, pkgs, ... }:
let
  inherit (lib) mkOption types;
  cfg = config.services.getty;
in
{
  options.services.getty = {
    greetingLine = mkOption { type = types.str; description = "Welcome line printed by agetty."; };
    helpLine = mkOption { type = types.lines; default = ""; description = "Help line printed by agetty below the welcome line."; };
  };

  config = {
    services.getty.greetingLine = lib.mkDefault ''<<< Welcome to NixOS ${lib.trivial.release} (\m) - \l >>>'';
    environment.etc.issue = lib.mkDefault {
      # Friendly greeting on the virtual consoles.
      source = pkgs.writeText "issue" ''

        ${cfg.greetingLine}
        ${cfg.helpLine}

      '';
    };
  };
}
