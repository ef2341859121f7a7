# The parts of NixOS's `utils` argument (nixos/lib/utils.nix) that modules here call.
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
