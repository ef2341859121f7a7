# What the surface does not declare. The surface re-declares only part of NixOS, so a real host
# file defines options it does not know (services.nginx, boot.loader.grub.device, ...). With a
# top-level freeform type, lib.evalModules hands every such definition to this type's `merge`,
# each as { file; value = setAttrByPath <path> <value>; }: they are accepted, recorded (the path
# where they left declared territory, the file) and reported as "not judged offline", while
# everything declared is judged as before. Typos stay errors where the surface declares a
# namespace in full (namespaces.nix).
#
# The recorded values stay readable (a host may read config.services.foo.enable it defines):
# they form a lazy tree whose names come from the definitions' structure and whose leaves are
# merged, properties (mkIf, mkDefault, mkMerge, mkOrder) honoured, only when read.
#
# The record reaches the projection under config.${key}; see `report` for its shape.
{ config, lib, options, ... }:
let
  key = "_surfaceUnjudged";

  # NixOS builds every unit, account, PAM service, interface... it is given, so a typo inside one
  # (systemd.services.x.serviceConfg) fails there. Offline, nothing may read an element whose
  # options no invariant needs; the elements a host or paranoid defines (not the surface's own)
  # of these attribute sets of submodules are forced, so the submodule's own check applies.
  submoduleSets = [
    [ "systemd" "services" ] [ "systemd" "sockets" ] [ "systemd" "timers" ] [ "systemd" "paths" ]
    [ "systemd" "slices" ] [ "systemd" "targets" ] [ "systemd" "network" "networks" ] [ "systemd" "network" "netdevs" ]
    [ "boot" "initrd" "systemd" "services" ] [ "users" "users" ] [ "users" "groups" ] [ "fileSystems" ]
    [ "security" "pam" "services" ] [ "networking" "interfaces" ] [ "networking" "firewall" "interfaces" ]
    [ "networking" "nftables" "tables" ] [ "networking" "wireguard" "interfaces" ] [ "networking" "wg-quick" "interfaces" ]
    [ "environment" "etc" ] [ "nix" "registry" ] [ "specialisation" ] [ "paranoid" "services" ]
  ];
  # (paranoid's own modules are judged on the NixOS backend too, and not forced here.)
  ownDirs = [ (toString ./. + "/") (toString ../../modules + "/") ];
  definedElsewhere = path:
    let o = lib.attrByPath path null options; in
    if !(lib.isOption o) then [ ]
    else lib.unique (lib.concatMap (d: lib.optionals (!(lib.any (dir: lib.hasPrefix dir (toString d.file)) ownDirs) && builtins.isAttrs d.value) (lib.attrNames d.value))
      o.definitionsWithLocations);
  elementsChecked = lib.all (path: lib.all (n: builtins.seq (lib.attrByPath (path ++ [ n ]) null config) true) (definedElsewhere path)) submoduleSets;

  namespaces = map (n: { path = lib.splitString "." n.path; except = n.except or [ ]; }) (import ./namespaces.nix);

  # A plain attribute set: not a package, not a module-system property.
  isNode = v: builtins.isAttrs v && !(v ? _type) && !(lib.isStringLike v);

  # The values a definition may take, properties stripped without deciding them.
  shapes = v:
    let t = v._type or null; in
    if t == "if" || t == "override" || t == "order" then shapes v.content
    else if t == "definition" then shapes v.value
    else if t == "merge" then lib.concatMap shapes v.contents
    else [ v ];

  # Properties pushed into the attributes of a set, as mergeModules does (mkOrder on a set only
  # orders list elements, so it is dropped here).
  push = v:
    let t = v._type or null; in
    if t == "merge" then lib.concatMap push v.contents
    else if t == "if" then map (lib.mapAttrs (_: lib.mkIf v.condition)) (push v.content)
    else if t == "override" then map (lib.mapAttrs (_: lib.mkOverride v.priority)) (push v.content)
    else if t == "order" then push v.content
    else if t == "definition" then push v.value
    else [ v ];

  # A leaf: lists concatenate (as listOf would), anything else must agree (mergeEqualOption).
  leafType = lib.mkOptionType {
    name = "unjudged";
    description = "a definition the offline surface does not declare";
    merge = loc: defs:
      if lib.all (d: builtins.isList d.value) defs then lib.concatMap (d: d.value) defs
      else lib.mergeEqualOption loc defs;
  };

  # The lazy tree: names from the definitions' structure, leaves merged when read.
  tree = loc: defs:
    let all = lib.concatMap (d: shapes d.value) defs; in
    if all != [ ] && lib.all isNode all then
      lib.mapAttrs (n: tree (loc ++ [ n ])) (lib.zipAttrsWith (_: ds: ds)
        (lib.concatMap (d: map (lib.mapAttrs (_: value: { inherit (d) file; inherit value; })) (push d.value)) defs))
    else (lib.mergeDefinitions loc leafType defs).mergedValue;

  # Where a definition left declared territory: the first name the option tree does not have.
  split = file: path: opts: v:
    lib.concatMap
      (n:
        if opts ? ${n} && !(lib.isOption opts.${n}) && isNode v.${n}
        then split file (path ++ [ n ]) opts.${n} v.${n}
        else [ { path = path ++ [ n ]; inherit file; value = v.${n}; } ])
      (lib.attrNames v);

  # Leaves a value really defines (relative paths): a branch under `mkIf false` defines nothing.
  # A condition that fails to evaluate counts as defining (it is reported, never hidden).
  leavesOf = v:
    let t = v._type or null; in
    if t == "if" then
      (let c = builtins.tryEval v.condition; in if c.success && c.value == false then [ ] else leavesOf v.content)
    else if t == "merge" then lib.concatMap leavesOf v.contents
    else if t == "override" || t == "order" then leavesOf v.content
    else if t == "definition" then leavesOf v.value
    else if isNode v && v != { } then lib.concatMap (n: map (p: [ n ] ++ p) (leavesOf v.${n})) (lib.attrNames v)
    else [ [ ] ];

  isPrefix = p: l: lib.take (lib.length p) l == p;

  # The full namespace a path falls under, if any (and not under one of its exceptions).
  fullNamespaceOf = path: lib.findFirst
    (ns: isPrefix ns.path path && !(lib.any (e: isPrefix (ns.path ++ lib.splitString "." e) path) ns.except))
    null namespaces;

  # A near miss of a fully declared namespace is a typo too (`services.opensh.enable`): the
  # name left declared territory beside it, two edits or fewer away, and the namespace's name
  # has at least four characters (short names are too close to real ones).
  nearMissOf = path: lib.findFirst
    (ns: lib.init ns.path == lib.init path && lib.last ns.path != lib.last path
      && lib.stringLength (lib.last ns.path) >= 4 && lib.strings.levenshteinAtMost 2 (lib.last path) (lib.last ns.path))
    null namespaces;

  # NixOS's own message (lib/modules.nix, checkUnmatched), with up to three suggestions.
  typoMessage = r: ns:
    let
      parent = lib.init r.path;
      name = lib.last r.path;
      siblings = lib.attrNames (lib.attrByPath parent { } options);
      candidates = if parent == [ ] then lib.remove "_module" siblings else siblings;
      suggestions =
        if lib.length candidates < 100 then lib.take 3 (lib.sortOn (lib.strings.levenshtein name) candidates)
        else lib.take 3 (lib.sortOn (lib.strings.levenshtein name) (lib.filter (lib.strings.levenshteinAtMost 2 name) candidates));
      show = s: "`${lib.showOption (parent ++ [ s ])}'";
      suggestion =
        if suggestions == [ ] then ""
        else if lib.length suggestions == 1 then "\n\nDid you mean ${show (lib.head suggestions)}?"
        else "\n\nDid you mean ${lib.concatMapStringsSep ", " show (lib.init suggestions)} or ${show (lib.last suggestions)}?";
      shown = builtins.tryEval (lib.options.showDefs [ { inherit (r) file value; } ]);
    in
    "The option `${lib.showOption r.path}' does not exist. Definition values:${if shown.success then shown.value else "\n- In `${r.file}'"}${suggestion}"
    + "\n(paranoid's offline surface declares `${lib.showOption ns.path}' in full, as NixOS does: an unknown name under it, or one this close to it, is an error here too.)";

  # What an undeclared definition could do to the posture that the surface cannot see. The first
  # rule whose path prefix matches a defined leaf names its effect; `when` reads the leaf's value.
  effectRules = [
    { match = p: lib.last p == "openFirewall"; when = v: v != false; effect = "opens ports in the firewall"; }
    { match = isPrefix [ "specialisation" ]; effect = "a bootable variant of this system whose posture is not checked"; }
    { match = isPrefix [ "security" "acme" ]; effect = "TLS certificates from ACME (a challenge may need a listener on port 80)"; }
    { match = p: isPrefix [ "security" "virtualisation" ] p || lib.elem (lib.showOption p) kernelHardening; effect = "kernel hardening (module loading, user namespaces, CPU mitigations)"; }
    { match = isPrefix [ "security" ]; effect = "privilege escalation or authentication (setuid wrappers, PAM, polkit, sudo-like rules)"; }
    { match = isPrefix [ "users" ]; effect = "accounts or groups"; }
    { match = isPrefix [ "networking" ]; effect = "network exposure (interfaces, NAT, forwarding, listening services)"; }
    { match = isPrefix [ "boot" "initrd" "network" ]; effect = "network services in the initrd (an SSH server before the root is mounted)"; }
    { match = isPrefix [ "systemd" ]; effect = "systemd units or sockets (may listen or run as root)"; }
    { match = p: isPrefix [ "virtualisation" ] p || isPrefix [ "containers" ] p; effect = "containers or VMs (published ports bypass the host firewall)"; }
    { match = p: isPrefix [ "services" ] p && lib.last p == "enable"; when = v: v == true; effect = "an upstream service: it may listen on the network and add units, users or sudo/PAM rules"; }
    { match = p: lib.last p == "enable" && !(isPrefix [ "boot" "loader" ] p); when = v: v == true; effect = "an upstream module: it may add units, setuid wrappers, users or open ports"; }
  ];

  # security.* options upstream's kernel hardening modules declare (security/misc.nix, lock-kernel-modules.nix).
  kernelHardening = [
    "security.lockKernelModules" "security.protectKernelImage" "security.allowSimultaneousMultithreading"
    "security.forcePageTableIsolation" "security.unprivilegedUsernsClone" "security.allowUserNamespaces"
  ];

  report = root: records:
    let
      defined = lib.concatMap (r: let l = leavesOf r.value; in lib.optional (l != [ ]) (r // { leaves = map (p: r.path ++ p) l; })) records;
      shownOption = r: lib.showOption r.path + lib.optionalString (lib.any (l: l != r.path) r.leaves) ".*";
      valueAt = p: let v = builtins.tryEval (lib.attrByPath p null root); in if v.success then v.value else null;
      effectOf = r: leaf:
        let rule = lib.findFirst (e: e.match leaf && (e.when or (_: true)) (valueAt leaf)) null effectRules; in
        lib.optional (rule != null) { option = lib.showOption leaf; inherit (rule) effect; inherit (r) file; };
    in
    {
      count = lib.length defined;
      definitions = map (r: { option = shownOption r; inherit (r) file; leaves = map lib.showOption (lib.take 20 r.leaves); leafCount = lib.length r.leaves; }) defined;
      effects = lib.unique (lib.concatMap (r: lib.concatMap (effectOf r) r.leaves) defined);
    };

  recording = lib.mkOptionType {
    name = "recorded";
    description = "a definition the offline surface does not declare (recorded, not judged)";
    check = _: true;
    merge = loc: defs:
      let
        records = lib.concatMap (d: split d.file [ ] options d.value) defs;
        typos = lib.filter (r: r.ns != null) (map (r: r // { ns = let full = fullNamespaceOf r.path; in if full != null then full else nearMissOf r.path; }) records);
        root = tree loc defs;
      in
      if typos != [ ] then throw (typoMessage (lib.head typos) (lib.head typos).ns)
      else root // { ${key} = report root records; };
  };
in
{
  _module.freeformType = recording;
  assertions = [ { assertion = elementsChecked; message = "(unreachable: a submodule's error is thrown)"; } ];
}
