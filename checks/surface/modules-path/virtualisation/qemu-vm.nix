# Upstream nixos/modules/virtualisation/qemu-vm.nix, not reproduced offline (../_unmodelled.nix).
import ../_unmodelled.nix "virtualisation/qemu-vm.nix" ""
