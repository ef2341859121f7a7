# The parts of NixOS's `utils` argument (nixos/lib/utils.nix, read in faukah/nixpkgs at
# 3b20077cd82fd1f099e92e2792d73e3176d4869d) that modules here call.
{ lib }:
rec {
  # Paths NixOS mounts in the initrd whatever their `neededForBoot` says.
  pathsNeededForBoot = [
    "/"
    "/nix"
    "/nix/store"
    "/var"
    "/var/log"
    "/var/lib"
    "/var/lib/nixos"
    "/etc"
    "/usr"
  ];

  fsNeededForBoot = fs: fs.neededForBoot || lib.elem fs.mountPoint pathsNeededForBoot;

  # Whether `b` depends on `a`: a's mount point holds b's device, mount point or a `depends`
  # path (paths compared with a trailing slash, so /aaa does not hold /aaaa).
  fsBefore = a: b:
    let
      normalisePath = path: "${path}${lib.optionalString (!(lib.hasSuffix "/" path)) "/"}";
      normalise = mount: mount // {
        device = normalisePath (toString mount.device);
        mountPoint = normalisePath mount.mountPoint;
        depends = map normalisePath mount.depends;
      };
      a' = normalise a;
      b' = normalise b;
    in
    lib.hasPrefix a'.mountPoint b'.device || lib.hasPrefix a'.mountPoint b'.mountPoint || lib.any (lib.hasPrefix a'.mountPoint) b'.depends;

  # A shell path for a user's shell (/run/current-system/sw/bin/... for shell packages).
  toShellPath = shell:
    if lib.types.shellPackage.check shell then "/run/current-system/sw${shell.shellPath}"
    else if lib.types.package.check shell then throw "${shell} is not a shell package"
    else shell;

  # systemd-escape --path: drop surrounding slashes, hex-escape specials, '/' becomes '-'.
  escapeSystemdPath =
    s:
    let
      specials = lib.stringToCharacters " !\"#$%&'()*+,;<=>=@[\\]^`{|}~-";
      normal = lib.strings.normalizePath s;
      trimmed = if normal == "/" then normal else lib.removeSuffix "/" (lib.removePrefix "/" normal);
      escaped = lib.strings.escapeC specials trimmed;
      noLeadingDot = if lib.hasPrefix "." escaped then "\\x2e" + lib.removePrefix "." escaped else escaped;
    in
    builtins.replaceStrings [ "/" ] [ "-" ] noLeadingDot;
}
