# Small helpers shared by paranoid's modules.
{ lib }:
rec {
  # Between lib.mkDefault (1000) and a plain definition (100): beats upstream modules' own
  # mkDefaults, loses to anything the user writes.
  mkPreset = lib.mkOverride 900;

  # Every guard-rail message starts with a stable id the harness and users can match on.
  guard = id: text: "[paranoid:${id}] ${text}";

  # The mount options noexec hardening adds.
  hardeningFlags = [ "noexec" "nosuid" "nodev" ];

  # Mount points that carry /nix/store and so must stay executable.
  storeMounts = [ "/nix" "/nix/store" ];

  isUnder = dir: path: dir == "/" || path == dir || lib.hasPrefix (lib.removeSuffix "/" dir + "/") path;

  # An absolute path with `.`, `..` and repeated slashes resolved lexically, as the kernel walks
  # it when no component is a symlink: "/var/lib/../../tmp/x" is "/tmp/x". Symlinks are not
  # followed (offline there is no file system to ask).
  normalisePath = path:
    "/" + lib.concatStringsSep "/" (lib.foldl' (acc: c:
      if c == "" || c == "." then acc else if c == ".." then lib.take (lib.length acc - 1) acc else acc ++ [ c ])
      [ ] (lib.splitString "/" path));

  # The enabled fileSystems entry that contains `path` (longest mount point prefix), or null.
  mountOf =
    fileSystems: path:
    let
      candidates = lib.filter (fs: fs.enable && isUnder fs.mountPoint path) (lib.attrValues fileSystems);
    in
    if candidates == [ ] then null
    else lib.foldl' (best: fs: if lib.stringLength fs.mountPoint > lib.stringLength best.mountPoint then fs else best) (lib.head candidates) candidates;

  # mount(8) applies options left to right; "exec" and "defaults" undo an earlier "noexec".
  noexecIn = lib.foldl' (acc: o: if o == "noexec" then true else if o == "exec" || o == "defaults" then false else acc) false;

  isBind = fs: lib.elem "bind" fs.options || lib.elem "rbind" fs.options;

  # The storage a path really lives on: follow bind mounts to their source's mount.
  backingMountOf =
    fileSystems: path:
    let
      fs = mountOf fileSystems path;
      others = lib.filterAttrs (_: f: f.mountPoint != fs.mountPoint) fileSystems;
    in
    if fs != null && isBind fs && fs.device != null && lib.hasPrefix "/" fs.device
    then backingMountOf others (fs.device + lib.removePrefix fs.mountPoint path)
    else fs;

  # Whether files under `path` can be executed according to the declared mounts: a bind mount
  # takes the flags of its own entry and, by the kernel's rules, those of its source mount.
  execAllowedAt =
    fileSystems: path:
    let
      fs = mountOf fileSystems path;
      others = lib.filterAttrs (_: f: f.mountPoint != fs.mountPoint) fileSystems;
    in
    if fs == null then true
    else if noexecIn fs.options then false
    else if inheritsSourceFlags fs then execAllowedAt others (fs.device + lib.removePrefix fs.mountPoint path)
    else true;

  # A plain bind mount copies its source mount's flags. A bind with further VFS options is
  # remounted by mount(8), and before util-linux 2.39 that remount replaces the flags outright,
  # so only the options written on the entry itself count.
  inheritsSourceFlags =
    fs:
    isBind fs && fs.device != null && lib.hasPrefix "/" fs.device
    && lib.all (o: lib.elem o [ "bind" "rbind" "defaults" ] || lib.hasPrefix "x-" o) fs.options;

  showList = l: "[ " + lib.concatMapStringsSep " " (x: ''"${toString x}"'') l + " ]";

  # Who NixOS's lock-out check (users-groups.nix) counts as an administrator: root, and wheel
  # by auxiliary group, primary group or the group's member list.
  isAdmin = config: u:
    u.name == "root" || u.group == "wheel" || lib.elem "wheel" u.extraGroups
    || lib.elem u.name (config.users.groups.wheel.members or [ ]);

  # A login NixOS counts as a credential: a hash that allows a login ("!", "!!" and "*" lock the
  # password; "" allows a password-less console login), a password, a hash file, or an SSH key.
  allowsLogin = hash: hash == "" || !(lib.elem hash [ null "!" "!!" "*" ]);
  hasCredential = u:
    allowsLogin u.hashedPassword || u.password != null || u.hashedPasswordFile != null
    || hasSshKey u;
  hasSshKey = u: u.openssh.authorizedKeys.keys != [ ] || u.openssh.authorizedKeys.keyFiles != [ ];
}
