# Upstream nixos/modules/profiles/docker-container.nix, not reproduced offline (../_unmodelled.nix).
import ../_unmodelled.nix "profiles/docker-container.nix" ""
