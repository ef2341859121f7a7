# The NixOS tools (nixos/modules/installer/tools/tools.nix): system.disableInstallerTools and
# one system.tools.<name>.enable per tool, whose default follows Nix being enabled, and
# system.build.nixos-install (defined whether or not the tool is enabled, for installers).
# Upstream puts each enabled tool's package in environment.systemPackages; the surface leaves
# that out, so only the switches are declared.
{ config, lib, pkgs, ... }:
let
  inherit (lib) mkOption types;
  tools = [ "nixos-build-vms" "nixos-enter" "nixos-generate-config" "nixos-install" "nixos-option" "nixos-rebuild" "nixos-version" ];
in
{
  options.system = {
    disableInstallerTools = mkOption {
      type = types.bool;
      internal = true;
      default = false;
      description = ''
        Disable nixos-rebuild, nixos-generate-config, nixos-installer and other NixOS tools, for
        systems that are not expected to rebuild or reconfigure themselves.
      '';
    };
    tools = lib.genAttrs tools (name: {
      enable = lib.mkEnableOption "${name} script" // {
        default = config.nix.enable && !config.system.disableInstallerTools;
        defaultText = "config.nix.enable && !config.system.disableInstallerTools";
      };
    });
  };

  config = {
    system.build.nixos-install = pkgs.nixos-install;
    surface.provenance = [
      { options = [ "system.disableInstallerTools" "system.tools" ]; upstream = "nixos/modules/installer/tools/tools.nix"; repo = "Swarsel/nixpkgs"; commit = "4aa6836a648ca76c68866decf0c8965e36ec2a3b"; surface = "tools.nix"; reread = false; notes = "The switches only; the tools' packages are not added to environment.systemPackages."; }
    ];
  };
}
