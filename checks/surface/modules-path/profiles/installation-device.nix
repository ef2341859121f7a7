# Upstream nixos/modules/profiles/installation-device.nix, not reproduced offline (../_unmodelled.nix).
import ../_unmodelled.nix "profiles/installation-device.nix" "; upstream it enables sshd with PermitRootLogin yes and passwordless sudo, and gives root and the nixos user empty passwords"
