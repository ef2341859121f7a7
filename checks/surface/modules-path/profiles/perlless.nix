# Upstream nixos/modules/profiles/perlless.nix, not reproduced offline (../_unmodelled.nix).
import ../_unmodelled.nix "profiles/perlless.nix" ""
