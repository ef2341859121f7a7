# The surface's own bookkeeping (no upstream counterpart): the stand-in `pkgs` every module
# receives, the names it must answer, and where each declaration was checked against upstream.
{ config, lib, ... }:
let
  inherit (lib) mkOption types;
in
{
  options.surface = {
    standInNames = mkOption {
      type = types.listOf types.str;
      default = [ ];
      internal = true;
      description = "Extra names `pkgs` answers with a stand-in package (the harness passes a host's identifiers).";
    };
    provenance = mkOption {
      internal = true;
      default = [ ];
      description = "Which upstream file (and commit) each group of declarations was checked against.";
      type = types.listOf (types.submodule {
        options = {
          options = mkOption { type = types.listOf types.str; description = "Option paths (or prefixes) declared after this upstream file."; };
          upstream = mkOption { type = types.str; description = "The upstream file, relative to the nixpkgs tree (or a repository's root)."; };
          repo = mkOption { type = types.str; default = "NixOS/nixpkgs"; description = "The repository the file was read in."; };
          commit = mkOption { type = types.strMatching "[0-9a-f]{40}"; description = "The commit it was read at."; };
          surface = mkOption { type = types.str; description = "The surface file holding the declarations."; };
          notes = mkOption { type = types.str; default = ""; description = "What the surface leaves out or does differently, and why."; };
          reread = mkOption { type = types.bool; default = true; description = "Whether the file was read at that commit for this pass (false: kept from the earlier surface, attributed to the snapshot but not re-read)."; };
        };
      });
    };
  };

  # Without extra names, the stand-ins evalSurface built once for every evaluation in this Nix
  # process (an exhaustive matrix evaluates tens of thousands of hosts).
  config._module.args.pkgs =
    if config.surface.standInNames == [ ] && config._module.args ? surfaceStubPkgs then config._module.args.surfaceStubPkgs
    else import ./pkgs.nix { inherit lib; names = config.surface.standInNames; };
}
