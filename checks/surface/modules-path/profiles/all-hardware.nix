# Upstream nixos/modules/profiles/all-hardware.nix, not reproduced offline (../_unmodelled.nix).
import ../_unmodelled.nix "profiles/all-hardware.nix" ""
