# paranoid's library: profiles, systemd presets, SSH crypto sets, renderers, the offline
# surface evaluator, the projection and the knob catalogue. Needs only nixpkgs' lib.
# `impermanence` is the impermanence source tree (a flake input); without it the surface
# evaluates paranoid without impermanence's module. `disko` likewise (disk layouts): without it
# the surface has no `disko.devices`.
{ lib, impermanence ? null, disko ? null }:
let
  render = import ./render.nix { inherit lib; };
  posture = import ./posture { inherit lib render; };
  projection = import ./projection.nix { inherit lib render posture; };
  profiles = import ./profiles.nix;
  fixtures = import ./fixtures.nix { inherit lib; };

  surfaceModules = import ../checks/surface ++ lib.optional (disko != null) (import ../checks/surface/disko.nix { inherit disko; });
  diskoLayouts = import ./disko.nix { inherit lib disko; };
  stubPkgs = import ../checks/surface/pkgs.nix { inherit lib; };
  # The stand-in pkgs without extra names, built once and shared by every evaluation (meta.nix).
  sharedStandIns = { _module.args.surfaceStubPkgs = stubPkgs; };
  impermanenceModule = { key = "paranoid#impermanence"; imports = lib.optional (impermanence != null) "${impermanence}/nixos.nix"; };

  # All knobs, optionally with impermanence's module alongside (what nixosModules.all exports).
  paranoidModules = { withImpermanence ? true }:
    [ ../modules/all.nix ] ++ lib.optional withImpermanence impermanenceModule;

  # `modulesPath`: the surface's stand-ins for upstream modules hosts import from it
  # (checks/surface/modules-path), or the directory the harness generated when a host imports one
  # it has none for ($PARANOID_SURFACE_MODULES_PATH, read only in impure evaluation).
  surfaceModulesPath =
    let generated = builtins.getEnv "PARANOID_SURFACE_MODULES_PATH"; in
    if generated != "" then /. + generated else ../checks/surface/modules-path;

  # lib.evalModules over the surface: the offline stand-in for nixpkgs.lib.nixosSystem.
  evalSurface =
    { modules ? [ ], withParanoid ? true, withImpermanence ? true }:
    lib.evalModules {
      class = "nixos";
      specialArgs.modulesPath = surfaceModulesPath;
      modules = surfaceModules ++ [ sharedStandIns ]
        # NixOS's own modules without the host's (a specialisation without inheritParentConfig).
        ++ [ { _module.args.noUserModules = lib.evalModules { class = "nixos"; specialArgs.modulesPath = surfaceModulesPath; modules = surfaceModules ++ [ sharedStandIns { _module.args.noUserModules = throw "nested specialisations are ignored"; } ]; }; } ]
        ++ lib.optionals withParanoid (paranoidModules { inherit withImpermanence; })
        ++ modules;
    };

  # The namespaces the surface declares in full (a typo under them is an error).
  surfaceNamespaces = import ../checks/surface/namespaces.nix;

  catalogue = import ./catalogue.nix {
    inherit lib profiles;
    options = (evalSurface { modules = [ fixtures.matrix.host fixtures.matrix.paranoid ]; }).options;
  };

  # Declarations evaluated without a host, for documentation.
  docs = import ./docs.nix { inherit lib; inherit (evalSurface { }) options config; namespaces = surfaceNamespaces; };

  hosts = {
    meeka = ../examples/meeka;
    bastion = ../examples/bastion;
  };
in
{
  inherit render posture profiles fixtures catalogue hosts docs evalSurface surfaceModules surfaceNamespaces stubPkgs impermanenceModule paranoidModules;
  # Disk layouts: amnesiac, classic (disko configurations), nixosConfig (disko's conversion).
  disko = diskoLayouts;
  inherit (projection) project sanitize;
  systemdPresets = import ./systemd-presets.nix;
  sshCrypto = import ./ssh-crypto.nix;
  harness = import ./harness.nix { inherit lib evalSurface projection fixtures catalogue hosts; };
}
