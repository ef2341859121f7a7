# Upstream nixos/modules/virtualisation/proxmox-lxc.nix, not reproduced offline (../_unmodelled.nix).
import ../_unmodelled.nix "virtualisation/proxmox-lxc.nix" ""
