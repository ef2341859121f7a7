# Specialisations (system/activation/specialisation.nix): variants of the system built beside it
# and bootable from the boot menu. Each is evaluated as upstream does, with extendModules (the
# whole host plus its `configuration`) or, without inheritParentConfig, with NixOS's modules alone
# (here: the surface's). A child's failed assertions fail the parent's build, as its toplevel is
# part of the parent's; the projection names every specialisation as not judged.
{ config, lib, extendModules, noUserModules, ... }:
let
  inherit (lib) mkOption types;
  # no-clone.nix: a child does not build specialisations of its own.
  noClone = { isSpecialisation = true; specialisation = lib.mkOverride 0 { }; };
in
{
  options = {
    isSpecialisation = mkOption { type = types.bool; default = false; internal = true; description = "Whether this system is a specialisation of another."; };
    specialisation = mkOption {
      default = { };
      description = "Additional configurations built beside this one (bootable variants).";
      type = types.attrsOf (types.submodule (local@{ ... }:
        let extend = if local.config.inheritParentConfig then extendModules else noUserModules.extendModules; in {
          options.configuration = mkOption {
            inherit (extend { modules = [ noClone ]; }) type;
            default = { };
            visible = "shallow";
            description = "Arbitrary NixOS configuration of the variant.";
          };
          options.inheritParentConfig = mkOption { type = types.bool; default = true; description = "Include the entire system's configuration."; };
        }));
    };
  };

  config = {
    surface.provenance = [
      { options = [ "specialisation" "isSpecialisation" ]; upstream = "nixos/modules/system/activation/specialisation.nix"; repo = "Swarsel/nixpkgs"; commit = "4aa6836a648ca76c68866decf0c8965e36ec2a3b"; surface = "specialisation.nix"; notes = "A child's failed assertions are the parent's (its toplevel is built with the parent's)."; }
    ];
    assertions = lib.mapAttrsToList (name: _: {
      assertion = !lib.hasInfix "/" name;
      message = "Specialisation names must not contain forward slashes.\nInvalid specialisation name: ${name}\n";
    }) config.specialisation
    ++ lib.concatLists (lib.mapAttrsToList (name: s:
      map (a: { assertion = false; message = "In specialisation.${name}: ${a.message}"; }) (lib.filter (a: !a.assertion) s.configuration.assertions))
      config.specialisation);
  };
}
