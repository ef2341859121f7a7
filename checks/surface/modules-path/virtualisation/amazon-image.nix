# Upstream nixos/modules/virtualisation/amazon-image.nix, not reproduced offline (../_unmodelled.nix).
import ../_unmodelled.nix "virtualisation/amazon-image.nix" ""
