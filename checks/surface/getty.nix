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
    surface.provenance = [
      { options = [ "services.getty.greetingLine" "services.getty.helpLine" ]; upstream = "nixos/modules/services/ttys/getty.nix"; repo = "Swarsel/nixpkgs"; commit = "4aa6836a648ca76c68866decf0c8965e36ec2a3b"; surface = "getty.nix"; reread = false; notes = "/etc/issue only; the greeting names the release instead of system.nixos.distroName and label."; }
    ];
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
