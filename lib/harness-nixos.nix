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
  constraintsById = lib.listToAttrs (map (c: lib.nameValuePair c.id c) paranoid.catalogue.constraints);

  evalItem =
    item:
    let
      constraint = if item.constraint or null == null then { } else constraintsById.${item.constraint};
      withParanoid = !(item.withoutParanoid or false);
      withImpermanence = !(item.withoutImpermanence or constraint.withoutImpermanence or false);
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
          ++ paranoid.harness.modulesOf item
          ++ hardware;
      };
    in
    paranoid.project { inherit (evaluated) config; backend = "nixos"; };

  one = catch: item:
    if catch then
      let r = builtins.tryEval (let p = evalItem item; in builtins.deepSeq p p); in
      if r.success then { inherit (item) id; ok = true; projection = r.value; } else { inherit (item) id; ok = false; }
    else { inherit (item) id; ok = true; projection = evalItem item; };
in
{
  evalBatchNixos = request: map (one (request.catch or true)) request.items;
}
