# Entry points for paranoid-harness. It calls them through `nix eval --json` with a request it
# writes to a file; the answer is JSON. Contract (docs/harness.md):
#
#   request = { backend = "surface"; catch = true; items = [ item ... ]; }
#   item    = { id; host ? null; fixture ? null; knobs ? { "<knob>" = value; }; modules ? [ "<abs path>" ];
#               constraint ? null; withoutParanoid ? false; withoutImpermanence ? false; }
#   answer  = [ { id; ok = true; projection = { ... }; } | { id; ok = false; } ]
#
# With catch = true every item is evaluated under builtins.tryEval, so one item that throws does
# not sink the batch; the harness re-runs failed items alone (catch = false) for Nix's message.
{ lib, evalSurface, projection, fixtures, catalogue, hosts }:
let
  knobModule = knobs: {
    paranoid = lib.foldl' lib.recursiveUpdate { } (lib.mapAttrsToList (name: value: lib.setAttrByPath (lib.splitString "." name) value) knobs);
  };
  constraintsById = lib.listToAttrs (map (c: lib.nameValuePair c.id c) catalogue.constraints);

  constraintOf = item: if item.constraint or null == null then { } else constraintsById.${item.constraint};

  modulesOf = item:
    let
      constraint = constraintOf item;
      named = kind: set: name: set.${name} or (throw "unknown ${kind} \"${name}\"; known: ${lib.concatStringsSep ", " (lib.attrNames set)}");
      fixture = if item.fixture or null == null then null else named "fixture" fixtures item.fixture;
      withParanoid = !(item.withoutParanoid or false);
    in
    lib.optional (item.host or null != null) (named "reference host" hosts item.host)
    ++ lib.optionals (fixture != null) ([ fixture.host ] ++ lib.optional withParanoid fixture.paranoid)
    ++ map (p: /. + p) (item.modules or [ ])
    ++ lib.optional (constraint ? module) constraint.module
    ++ lib.optional (withParanoid && (item.knobs or { }) != { }) (knobModule item.knobs);

  # Evaluate every item of a request with `project`, each under builtins.tryEval when the
  # request asks for it (catch), so a throwing item answers { ok = false; } alone.
  runBatch = project: request: map
    (item:
      if request.catch or true then
        let r = builtins.tryEval (let p = project item; in builtins.deepSeq p p); in
        if r.success then { inherit (item) id; ok = true; projection = r.value; } else { inherit (item) id; ok = false; }
      else { inherit (item) id; ok = true; projection = project item; })
    request.items;

  surfaceItem = item:
    let
      evaluated = evalSurface {
        modules = modulesOf item;
        withParanoid = !(item.withoutParanoid or false);
        withImpermanence = !(item.withoutImpermanence or (constraintOf item).withoutImpermanence or false);
      };
    in
    projection.project { inherit (evaluated) config options; backend = "surface"; };
in
{
  inherit knobModule modulesOf constraintOf runBatch;
  evalBatch = runBatch surfaceItem;
}
