# `nix flake check` (full nixpkgs): the reference hosts build and the VM tests pass.
{ self, pkgs, lib }:
{
  meeka = self.nixosConfigurations.meeka.config.system.build.toplevel;
  bastion = self.nixosConfigurations.bastion.config.system.build.toplevel;
}
