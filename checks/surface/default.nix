# The offline NixOS surface: project-owned declarations of exactly the upstream options that
# paranoid's modules, fixtures and reference hosts touch, with upstream's types, defaults and
# rendering. With lib.evalModules this is the judge the tests use where full nixpkgs is absent.
# A name that is not declared here fails evaluation, as it would on NixOS.
[
  ./base.nix
  ./users.nix
  ./openssh.nix
  ./nix.nix
  ./filesystems.nix
  ./boot.nix
  ./systemd.nix
  ./firewall.nix
  ./vpn.nix
  ./audit.nix
  ./sudo.nix
  ./journald.nix
  ./clamav.nix
  ./tools.nix
  ./renames.nix
  ./specialisation.nix
  ./switch.nix
  ./pam.nix
  ./getty.nix
]
