# Upstream nixos/modules/profiles/base.nix, not reproduced offline (../_unmodelled.nix).
import ../_unmodelled.nix "profiles/base.nix" ""
