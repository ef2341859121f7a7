# Upstream nixos/modules/virtualisation/digital-ocean-config.nix, not reproduced offline (../_unmodelled.nix).
import ../_unmodelled.nix "virtualisation/digital-ocean-config.nix" ""
