# The nixos backend of paranoid-harness (`matrix --backend nixos`): the same request and answer
# as lib.harness.evalBatch (docs/harness.md), but every item is a real `nixosSystem` of the
# flake's pinned nixpkgs instead of the offline surface. Only forced when called, so the rest
# of the flake still evaluates where nixpkgs cannot be fetched.
#
# One package set serves every permutation (`nixpkgs.pkgs`): instantiating nixpkgs is most of
# the cost of a NixOS evaluation, and permutations never change it. Documentation is off: the
# projection never reads it, and building the option docs would dominate the evaluation.
{ lib, nixpkgs, paranoid, system ? "x86_64-linux" }:
let
  pkgs = import nixpkgs { inherit system; };
  inherit (paranoid.harness) modulesOf constraintOf runBatch;

  nixosItem =
    item:
    let
      withParanoid = !(item.withoutParanoid or false);
      withImpermanence = !(item.withoutImpermanence or (constraintOf item).withoutImpermanence or false);
      # The reference hosts' hardware facts exist only for full nixpkgs.
      hardware = lib.optional (item.host or null != null) (../examples + "/${item.host}/hardware.nix");
      evaluated = nixpkgs.lib.nixosSystem {
        modules =
          [
            {
              nixpkgs.pkgs = pkgs;
              documentation.enable = lib.mkDefault false;
              documentation.nixos.enable = lib.mkDefault false;
            }
          ]
          ++ lib.optionals withParanoid (paranoid.paranoidModules { inherit withImpermanence; })
          ++ modulesOf item
          ++ hardware;
      };
    in
    paranoid.project { inherit (evaluated) config options; backend = "nixos"; };
in
{
  evalBatchNixos = runBatch nixosItem;
}
