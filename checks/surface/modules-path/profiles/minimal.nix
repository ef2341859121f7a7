# Upstream nixos/modules/profiles/minimal.nix: no documentation, no default packages, no
# graphical or desktop helpers (each at mkDefault).
{ lib, ... }:
let
  off = lib.mkDefault false;
in
{
  documentation = { enable = off; doc.enable = off; info.enable = off; man.enable = off; nixos.enable = off; };
  environment.defaultPackages = lib.mkDefault [ ];
  environment.stub-ld.enable = off;
  programs.less.lessopen = lib.mkDefault null;
  programs.command-not-found.enable = off;
  boot.enableContainers = off;
  services.logrotate.enable = off;
  services.udisks2.enable = off;
  xdg = { autostart.enable = off; icons.enable = off; mime.enable = off; sounds.enable = off; };
}
