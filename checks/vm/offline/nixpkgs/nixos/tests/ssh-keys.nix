# Offline stand-in for nixpkgs' nixos/tests/ssh-keys.nix, used only by checks/vm/offline.nix:
# the same attribute names with placeholders, no key material.
_pkgs: {
  snakeOilEd25519PrivateKey = "/nix/store/00000000000000000000000000000000-offline-stand-in-private-key";
  snakeOilEd25519PublicKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOfflineStandInNotAKey0000000000000000000000 offline";
}
