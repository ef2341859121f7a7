# Upstream nixos/modules/installer/cd-dvd/installation-cd-minimal.nix, not reproduced offline (../_unmodelled.nix).
import ../../_unmodelled.nix "installer/cd-dvd/installation-cd-minimal.nix" ""
