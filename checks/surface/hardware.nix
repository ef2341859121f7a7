# What a generated hardware-configuration.nix sets or reads besides filesystems and kernel
# modules: firmware (hardware/all-firmware.nix), CPU microcode (hardware/cpu/intel-microcode.nix,
# amd-microcode.nix) and the nixpkgs platform and configuration (misc/nixpkgs.nix). Offline
# `pkgs` is always the surface's stand-ins, whatever nixpkgs.* says.
{ config, lib, pkgs, options, ... }:
let
  inherit (lib) mkOption types;
  cfg = config.hardware;
  enable = description: mkOption { type = types.bool; default = false; inherit description; };

  optCall = f: x: if lib.isFunction f then f x else f;
  # nixpkgs.config merges as upstream's configType: recursively, a later definition winning
  # (packageOverrides are not combined).
  configType = lib.mkOptionType {
    name = "nixpkgs-config";
    description = "nixpkgs config";
    check = x: builtins.isAttrs x || lib.isFunction x;
    merge = _: lib.foldr (def: later: lib.recursiveUpdate (optCall def.value { inherit pkgs; }) later) { };
  };
  overlayType = lib.mkOptionType { name = "nixpkgs-overlay"; description = "nixpkgs overlay"; check = lib.isFunction; merge = lib.mergeOneOption; };
  platform = types.either types.str types.attrs;
  provenance = upstream: options: extra: { inherit upstream options; repo = "faukah/nixpkgs"; commit = "3b20077cd82fd1f099e92e2792d73e3176d4869d"; surface = "hardware.nix"; } // extra;
in
{
  options.hardware = {
    enableAllFirmware = enable "Whether to enable all firmware regardless of license.";
    enableRedistributableFirmware = mkOption {
      type = types.bool;
      default = cfg.enableAllFirmware;
      defaultText = lib.literalExpression "config.hardware.enableAllFirmware";
      description = "Whether to enable firmware with a license allowing redistribution.";
    };
    wirelessRegulatoryDatabase = mkOption {
      type = types.bool;
      default = cfg.enableRedistributableFirmware || cfg.enableAllFirmware;
      defaultText = lib.literalMD "Enabled if proprietary firmware is allowed.";
      description = "Whether to load the wireless regulatory database at boot.";
    };
    firmware = mkOption { type = types.listOf types.package; default = [ ]; description = "Firmware packages available to the kernel."; };
    cpu.intel.updateMicrocode = enable "Update the CPU microcode for Intel processors.";
    cpu.amd.updateMicrocode = enable "Update the CPU microcode for AMD processors.";
  };

  options.nixpkgs = {
    pkgs = mkOption { type = types.raw; description = "An evaluation of Nixpkgs (ignored offline: modules get the surface's stand-ins)."; };
    config = mkOption { type = configType; default = { }; description = "Global configuration for Nixpkgs."; };
    overlays = mkOption { type = types.listOf overlayType; default = [ ]; description = "Overlays applied to Nixpkgs."; };
    hostPlatform = mkOption { type = platform; apply = lib.systems.elaborate; description = "The platform the configuration runs on."; };
    buildPlatform = mkOption {
      type = platform;
      default = config.nixpkgs.hostPlatform;
      defaultText = lib.literalExpression "config.nixpkgs.hostPlatform";
      apply = p: let e = lib.systems.elaborate p; in if lib.systems.equals e config.nixpkgs.hostPlatform then config.nixpkgs.hostPlatform else e;
      description = "The platform the configuration is built on.";
    };
    localSystem = mkOption { type = types.attrs; default = { inherit (config.nixpkgs) system; }; apply = lib.systems.elaborate; description = "Legacy: the platform built on (and for, without crossSystem)."; };
    crossSystem = mkOption { type = types.nullOr types.attrs; default = null; description = "Legacy: the platform built for, when cross-compiling."; };
    system = mkOption {
      type = types.str;
      default =
        if options.nixpkgs.hostPlatform.isDefined then throw "Neither ${options.nixpkgs.system} nor any other option in nixpkgs.* is meant to be read by modules and configurations.\nUse pkgs.stdenv.hostPlatform instead.\n"
        else throw "Neither ${options.nixpkgs.hostPlatform} nor the legacy option ${options.nixpkgs.system} has been set.";
      description = "Legacy: the Nix platform type the configuration is built on.";
    };
  };

  config.surface.provenance = [
    (provenance "nixos/modules/hardware/all-firmware.nix" [ "hardware.enableAllFirmware" "hardware.enableRedistributableFirmware" "hardware.wirelessRegulatoryDatabase" ] { notes = "The firmware packages they add to hardware.firmware, the allowUnfree assertion and the networking.enable*Firmware renames are not modelled."; })
    (provenance "nixos/modules/services/hardware/udev.nix" [ "hardware.firmware" ] { notes = "Declared as a list (upstream's apply builds an environment)."; })
    (provenance "nixos/modules/hardware/cpu/intel-microcode.nix" [ "hardware.cpu.intel.updateMicrocode" ] { notes = "The initrd prepend is not modelled."; })
    (provenance "nixos/modules/hardware/cpu/amd-microcode.nix" [ "hardware.cpu.amd.updateMicrocode" ] { reread = false; notes = "The initrd prepend is not modelled."; })
    (provenance "nixos/modules/misc/nixpkgs.nix" [ "nixpkgs" ] { notes = "Modules get the surface's stand-in pkgs whatever these say; the platform and legacy-option assertions are not modelled."; })
    # modulesPath (lib.evalSurface): the stand-ins for upstream modules hosts import.
  ] ++ map (p: provenance "nixos/modules/${p}" [ "<modulesPath>/${p}" ] { surface = "modules-path/${p}"; notes = "Its definitions, reproduced."; })
    [ "profiles/hardened.nix" "profiles/qemu-guest.nix" "profiles/minimal.nix" "profiles/headless.nix" ]
  ++ [
    { options = [ "<modulesPath>/installer/scan/not-detected.nix" ]; upstream = "nixos/modules/installer/scan/not-detected.nix"; repo = "piegamesde/nixpkgs"; commit = "22e8f8b406ab4b55900cf31c25257197b4cd22e1"; surface = "modules-path/installer/scan/not-detected.nix"; notes = "Its definition, reproduced."; }
    (provenance "nixos/modules/profiles/installation-device.nix" [ "<modulesPath>/profiles/installation-device.nix" ] { surface = "modules-path/profiles/installation-device.nix"; notes = "Not reproduced: accepted and named as an effect not judged (with what it does upstream)."; })
  ] ++ map (p: provenance "nixos/modules/${p}" [ "<modulesPath>/${p}" ] { surface = "modules-path/${p}"; notes = "Not reproduced: accepted and named as an effect not judged (modules-path/_unmodelled.nix); only the path is upstream's."; })
    [ "profiles/all-hardware.nix" "profiles/base.nix" "profiles/docker-container.nix" "profiles/perlless.nix" "virtualisation/amazon-image.nix"
      "virtualisation/google-compute-image.nix" "virtualisation/digital-ocean-config.nix" "virtualisation/qemu-vm.nix" "virtualisation/lxc-container.nix"
      "virtualisation/proxmox-lxc.nix" "installer/cd-dvd/installation-cd-minimal.nix" ];
}
