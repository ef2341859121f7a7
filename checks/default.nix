# `nix flake check` (full nixpkgs): the reference hosts build and the VM tests pass.
#
# The attribute names are static, so listing the checks (what `paranoid-harness vm` does first)
# never forces nixpkgs; each value is only evaluated when that check is built. VM tests need
# full nixpkgs and KVM; see docs/vm.md.
{ self, pkgs, lib }:
let
  common = import ./vm/lib.nix { inherit self pkgs lib; };
  vm = area: import (./vm + "/${area}.nix") { inherit common pkgs lib; };
in
{
  meeka = self.nixosConfigurations.meeka.config.system.build.toplevel;
  bastion = self.nixosConfigurations.bastion.config.system.build.toplevel;

  vm-ssh = vm "ssh";
  vm-firewall = vm "firewall";
  vm-nix = vm "nix";
  vm-amnesia = vm "amnesia";
  vm-noexec = vm "noexec";
  vm-audit = vm "audit";
  vm-sudo = vm "sudo";
  vm-logs = vm "logs";
  vm-break-glass = vm "break-glass";
  vm-rollback = vm "rollback";
  vm-meeka = vm "meeka";
  vm-bastion = vm "bastion";
  vm-install = vm "install";
}
