# system.switch (nixos/modules/system/activation/switchable-system.nix): whether the built
# system carries bin/switch-to-configuration, the program nixos-rebuild and every deploy tool
# run to activate it without a reboot. Off, the system can only be booted (from a boot entry).
{ lib, ... }:
{
  options.system.switch.enable = lib.mkOption {
    type = lib.types.bool;
    default = true;
    description = ''
      Whether to include the capability to switch configurations. Disabling this makes the
      system unable to be reconfigured via `nixos-rebuild`.
    '';
  };

  config.surface.provenance = [
    { options = [ "system.switch.enable" ]; upstream = "nixos/modules/system/activation/switchable-system.nix"; repo = "Swarsel/nixpkgs"; commit = "4aa6836a648ca76c68866decf0c8965e36ec2a3b"; surface = "switch.nix"; reread = false; notes = "The switch only; no switch-to-configuration is built."; }
  ];
}
