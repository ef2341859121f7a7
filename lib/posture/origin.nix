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

  # The option at `path` in an option tree, or null (no tree, or not an option). Paths go on
  # through submodules and attrsOf submodules (`networking.firewall.interfaces.eth0.…`) by
  # the evaluated value's own option tree (valueMeta).
  at = options: path: if options == null then null else walk options path;
  walk =
    node: path:
    if path == [ ] then (if lib.isOption node then node else null)
    else
      let k = builtins.head path; rest = builtins.tail path; meta = node.valueMeta or { }; in
      if lib.isOption node then
        if meta ? attrs && meta.attrs ? ${k} && meta.attrs.${k} ? configuration then walk meta.attrs.${k}.configuration.options rest
        else if meta ? configuration then walk meta.configuration.options path
        else null
      else if builtins.isAttrs node && node ? ${k} then walk node.${k} rest
      else null;

  files = opt: if opt == null then [ ] else unique (map (d: pretty d.file) opt.definitionsWithLocations);

  # Files whose definition of `opt` satisfies `pred` (e.g. a list containing a value).
  filesWhere = opt: pred: if opt == null then [ ] else unique (map (d: pretty d.file) (filter (d: pred d.value) opt.definitionsWithLocations));

  # Files that set key `k` of a settings submodule option at `path`: the declared sub-option's
  # winning definitions, or for a freeform key the raw definitions at the winning priority;
  # `pred` narrows them by the value defined (e.g. a list holding one entry).
  settingFilesWhere =
    options: path: k: pred:
    let
      declared = at options (path ++ [ "valueMeta" "configuration" "options" k ]);
      parent = at options path;
      raw = if parent == null then [ ] else filter (d: builtins.isAttrs d.value && d.value ? ${k}) parent.definitionsWithLocations;
      best = lib.foldl' (m: d: lib.min m (priorityOf d.value.${k})) 1000000 raw;
      content = v: if builtins.isAttrs v && v ? content then content v.content else v;
    in
    if declared != null then filesWhere declared pred
    else unique (map (d: pretty d.file) (filter (d: priorityOf d.value.${k} == best && pred (content d.value.${k})) raw));
  settingFiles = options: path: k: settingFilesWhere options path k (_: true);
}
