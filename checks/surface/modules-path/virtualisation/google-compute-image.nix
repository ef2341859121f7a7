# Upstream nixos/modules/virtualisation/google-compute-image.nix, not reproduced offline (../_unmodelled.nix).
import ../_unmodelled.nix "virtualisation/google-compute-image.nix" ""
