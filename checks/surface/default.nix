# The offline NixOS surface: project-owned declarations of exactly the upstream options that
# paranoid's modules, fixtures and reference hosts touch, with upstream's types, defaults and
# rendering. With lib.evalModules this is the judge the tests use where full nixpkgs is absent.
# A name that is not declared is recorded and reported as "not judged offline" (unjudged.nix),
# except under a namespace declared in full (namespaces.nix), where it fails as on NixOS.
[
  ./meta.nix
  ./unjudged.nix
  ./base.nix
  ./users.nix
  ./openssh.nix
  ./nix.nix
  ./filesystems.nix
  ./boot.nix
  ./systemd.nix
  ./kernel.nix
  ./hardware.nix
  ./loader.nix
  ./locale.nix
  ./network.nix
  ./firewall.nix
  ./vpn.nix
  ./audit.nix
  ./sudo.nix
  ./security-extra.nix
  ./journald.nix
  ./clamav.nix
  ./tools.nix
  ./renames.nix
  ./specialisation.nix
  ./switch.nix
  ./getty.nix
]
