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
  # The definitions disko's `_config.boot` (a mkMerge of the devices' own) makes at `path`,
  # with its mkMerge and mkIf kept: none where no device writes there.
  select = path: def:
    let t = def._type or null; in
    if t == "merge" then lib.mkMerge (map (select path) def.contents)
    else if t == "if" then lib.mkIf def.condition (select path def.content)
    else if path == [ ] then def
    else if builtins.isAttrs def && t == null then (if def ? ${lib.head path} then select (lib.tail path) def.${lib.head path} else lib.mkMerge [ ])
    else throw "disko's boot configuration has a ${toString t} above ${lib.concatStringsSep "." path}, which the surface does not take apart";
  bootAt = path: lib.mkIf active (select path (cfg.devices._config.boot or { }));
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
    # Leaf by leaf, not `boot = mkIf active …` as module.nix does: the surface's top level is
    # freeform (unjudged.nix), and finding the names under a mkIf of disko's value would read
    # config.disko while the top level's names are computed (infinite recursion). These are
    # every boot.* path disko's types write (lib/types/{gpt,luks,lvm_vg,mdadm,swap}.nix).
    boot = {
      loader.grub.devices = bootAt [ "loader" "grub" "devices" ];
      resumeDevice = bootAt [ "resumeDevice" ];
      initrd.kernelModules = bootAt [ "initrd" "kernelModules" ];
      initrd.luks.devices = bootAt [ "initrd" "luks" "devices" ];
      initrd.services.swraid.enable = bootAt [ "initrd" "services" "swraid" "enable" ];
      swraid.enable = bootAt [ "swraid" "enable" ];
    };
    swapDevices = lib.mkIf active (cfg.devices._config.swapDevices or [ ]);
    surface.provenance = [
      { options = [ "disko" ]; upstream = "module.nix"; repo = "nix-community/disko"; commit = "878ec37d6a8f52c6c801d0e2a2ad554c75b9353c"; surface = "disko.nix"; notes = "The option and its three definitions; install scripts and images need full nixpkgs."; }
    ];
  };
}
