# specialisation (nixos/modules/system/activation/specialisation.nix, no-clone.nix): more boot
# entries built from this configuration. Each `configuration` is its own NixOS evaluation,
# typed by `extendModules` (every module of this one, inheritParentConfig = true) or by
# `noUserModules.extendModules` (NixOS's modules only), plus no-clone.nix, which empties the
# child's own `specialisation` (no nesting) and sets `isSpecialisation`.
#
# Differences from upstream, none of which anything here reads: upstream's no-clone also pins
# boot.loader.grub.device = "nodev" (the surface declares no boot loader); the newest upstream
# adds `toplevel` (the built child) and symlinks it into the parent's toplevel, and the surface
# builds nothing. `noUserModules` (eval-config.nix gives it to every NixOS evaluation) is the
# surface without paranoid and the host's modules; lib.evalSurface passes it.
{ config, lib, extendModules, noUserModules, ... }:
let
  inherit (lib) mkOption types;

  noClone = {
    specialisation = lib.mkOverride 0 { };
    isSpecialisation = lib.mkOverride 0 true;
  };
in
{
  options = {
    isSpecialisation = mkOption {
      type = types.bool;
      internal = true;
      default = false;
      description = "Whether this system is a specialisation of another.";
    };

    specialisation = mkOption {
      default = { };
      example = lib.literalExpression "{ fewJobsManyCores.configuration = { nix.settings = { core = 0; max-jobs = 1; }; }; }";
      description = ''
        Additional configurations to build. If `inheritParentConfig` is true, the system will be
        based on the overall system configuration. To switch to a specialised configuration at
        runtime: /run/current-system/specialisation/<name>/bin/switch-to-configuration test.
      '';
      type = types.attrsOf (types.submodule (local@{ ... }:
        let
          extend = if local.config.inheritParentConfig then extendModules else noUserModules.extendModules;
        in
        {
          options.inheritParentConfig = mkOption {
            type = types.bool;
            default = true;
            description = "Include the entire system's configuration. Set to false to make a completely differently configured system.";
          };
          options.configuration = mkOption {
            default = { };
            description = ''
              Arbitrary NixOS configuration. Anything you can add to a normal NixOS configuration,
              you can add here, including imports and config values, although nested
              specialisations will be ignored.
            '';
            visible = "shallow";
            inherit (extend { modules = [ noClone ]; }) type;
          };
        }));
    };
  };

  config = {
    surface.provenance = [
      { options = [ "specialisation" "isSpecialisation" ]; upstream = "nixos/modules/system/activation/specialisation.nix"; repo = "Swarsel/nixpkgs"; commit = "4aa6836a648ca76c68866decf0c8965e36ec2a3b"; surface = "specialisation.nix"; notes = "No toplevel is built; a child's failed assertions are its own, and fail the parent's eval and check."; }
    ];
    # A child's failed assertions are its own (config.assertions of its evaluation), as upstream;
    # its toplevel is part of the parent's, so they fail the parent's build: the projection
    # carries each entry's, and eval and check fail on them.
    assertions = lib.mapAttrsToList (name: _: {
      assertion = !lib.hasInfix "/" name;
      message = ''
        Specialisation names must not contain forward slashes.
        Invalid specialisation name: ${name}
      '';
    }) config.specialisation;
  };
}
