# Where a value came from: the files whose definitions of an option won (definitionsWithLocations
# holds only the definitions that survived mkIf and override priorities), shown relative to
# their flake (a store copy `/nix/store/<hash>-source/hosts/a.nix` reads `hosts/a.nix`).
{ lib }:
let
  inherit (lib) filter unique;
  storeSource = "/nix/store/[a-z0-9]{32}-[^/]*/(.*)";

  # Priority of one raw definition (mkDefault 1000, mkForce 50, plain 100), through mkIf.
  priorityOf = v:
    if builtins.isAttrs v && (v._type or null) == "override" then v.priority
    else if builtins.isAttrs v && (v._type or null) == "if" then priorityOf v.content
    else 100;
in
rec {
  pretty = file: let m = builtins.match storeSource (toString file); in if m == null then toString file else builtins.head m;

  # The option at `path` in an option tree, or null (no tree, or not an option).
  at = options: path: if options == null then null else let o = lib.attrByPath path null options; in if o != null && lib.isOption o then o else null;

  files = opt: if opt == null then [ ] else unique (map (d: pretty d.file) opt.definitionsWithLocations);

  # Files whose definition of `opt` satisfies `pred` (e.g. a list containing a value).
  filesWhere = opt: pred: if opt == null then [ ] else unique (map (d: pretty d.file) (filter (d: pred d.value) opt.definitionsWithLocations));

  # Files that set key `k` of a settings submodule option at `path`: the declared sub-option's
  # winning definitions, or for a freeform key the raw definitions at the winning priority.
  settingFiles =
    options: path: k:
    let
      declared = at options (path ++ [ "valueMeta" "configuration" "options" k ]);
      parent = at options path;
      raw = if parent == null then [ ] else filter (d: builtins.isAttrs d.value && d.value ? ${k}) parent.definitionsWithLocations;
      best = lib.foldl' (m: d: lib.min m (priorityOf d.value.${k})) 1000000 raw;
    in
    if declared != null then files declared
    else unique (map (d: pretty d.file) (filter (d: priorityOf d.value.${k} == best) raw));
}
