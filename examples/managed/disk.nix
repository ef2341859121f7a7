# managed's disk: paranoid's amnesiac layout on the first virtio disk (an ESP at /boot, /nix on
# ext4 with the rest, / a tmpfs). From another flake: paranoid.lib.disko.amnesiac { … }.
{ lib, ... }:
(import ../../lib/disko.nix { inherit lib; }).amnesiac { device = "/dev/vda"; }
