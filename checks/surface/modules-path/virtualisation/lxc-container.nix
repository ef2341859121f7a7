# Upstream nixos/modules/virtualisation/lxc-container.nix, not reproduced offline (../_unmodelled.nix).
import ../_unmodelled.nix "virtualisation/lxc-container.nix" ""
