# disko's NixOS module (nix-community/disko module.nix), offline: the same `disko.devices`
# option with disko's own type, and the same three definitions the module makes from it
# (fileSystems, boot, swapDevices, from the device tree's `_config`). The real module also
# builds install scripts and disk images, which need full nixpkgs. Not in default.nix's list:
# it needs disko's source, so lib/default.nix adds it when the flake input is there.
{ disko }:
{ config, lib, options, ... }:
let
  diskoLib = import "${disko}/lib" { inherit lib; };
  cfg = config.disko;
  # Only a host that declares a layout pays for disko's evaluation.
  active = options.disko.devices.isDefined && cfg.enableConfig;
in
{
  key = "paranoid#surface-disko";

  options.disko = {
    devices = lib.mkOption { type = diskoLib.toplevel; default = { }; description = "The disk layout: disks, partitions, filesystems (disko)."; };
    enableConfig = lib.mkOption {
      type = lib.types.bool;
      default = true;
      description = "Configure NixOS with the specified devices; false on an installer image.";
    };
  };

  # module.nix names the keys, so that reading _config causes no infinite recursion.
  config = {
    fileSystems = lib.mkIf active (cfg.devices._config.fileSystems or { });
    boot = lib.mkIf active (cfg.devices._config.boot or { });
    swapDevices = lib.mkIf active (cfg.devices._config.swapDevices or [ ]);
  };
}
