# Core NixOS options every module leans on: assertions, warnings, /etc, packages, identity.
# Types and defaults follow nixos/modules/misc/assertions.nix, system/etc/etc.nix,
# config/system-path.nix and friends.
{ config, lib, pkgs, ... }:
let
  inherit (lib) mkOption types;

  etcEntry = { name, config, ... }: {
    options = {
      enable = mkOption { type = types.bool; default = true; description = "Whether this /etc file should be generated."; };
      target = mkOption { type = types.str; default = name; description = "Name of symlink, relative to /etc."; };
      text = mkOption { type = types.nullOr types.lines; default = null; description = "Text of the file."; };
      source = mkOption { type = types.path; description = "Path of the source file."; };
      mode = mkOption { type = types.str; default = "symlink"; description = "If not symlink, copy the file with this mode."; };
      uid = mkOption { type = types.int; default = 0; description = "UID of the created file."; };
      gid = mkOption { type = types.int; default = 0; description = "GID of the created file."; };
      user = mkOption { type = types.str; default = "+${toString config.uid}"; description = "Owner of the created file."; };
      group = mkOption { type = types.str; default = "+${toString config.gid}"; description = "Group of the created file."; };
    };
    config.source = lib.mkIf (config.text != null) (lib.mkDerivedConfig { value = config.text; } (pkgs.writeText "etc-${lib.replaceStrings [ "/" ] [ "-" ] name}"));
  };

  activationEntry = types.submodule {
    options = {
      deps = mkOption { type = types.listOf types.str; default = [ ]; description = "Activation scripts this one runs after."; };
      text = mkOption { type = types.lines; description = "Script text."; };
      supportsDryActivation = mkOption { type = types.bool; default = false; description = "Whether it can run in dry activation."; };
    };
  };
in
{
  options = {
    assertions = mkOption {
      type = types.listOf types.unspecified;
      internal = true;
      default = [ ];
      description = "Assertions that must hold for the system to build; each is { assertion; message; }.";
    };
    warnings = mkOption {
      type = types.listOf types.str;
      internal = true;
      default = [ ];
      description = "Warnings printed when the system is built.";
    };

    system.stateVersion = mkOption {
      type = types.str;
      default = lib.trivial.release;
      description = "The NixOS release this system's stateful data was first created with.";
    };

    networking.hostName = mkOption {
      type = types.strMatching "^$|^[[:alnum:]]([[:alnum:]_-]{0,61}[[:alnum:]])?$";
      default = "nixos";
      description = "The name of the machine.";
    };
    networking.enableIPv6 = mkOption { type = types.bool; default = true; description = "Whether to enable IPv6."; };


    environment.etc = mkOption {
      type = types.attrsOf (types.submodule etcEntry);
      default = { };
      description = "Files to place in /etc.";
    };
    environment.systemPackages = mkOption {
      type = types.listOf types.package;
      default = [ ];
      description = "Packages installed in the system profile.";
    };
    environment.defaultPackages = mkOption {
      type = types.listOf types.package;
      default = [ pkgs.perl pkgs.rsync pkgs.strace ];
      defaultText = lib.literalExpression "[ pkgs.perl pkgs.rsync pkgs.strace ]";
      description = "Packages installed by default; set to [ ] for a minimal system.";
    };
    environment.stub-ld.enable = mkOption {
      type = types.bool;
      default = true;
      description = "Install a stub ELF loader at /lib64 that explains why foreign binaries do not run.";
    };

    programs.nano.enable = mkOption { type = types.bool; default = true; description = "Whether to install nano (the default editor)."; };
    programs.command-not-found.enable = mkOption { type = types.bool; default = false; description = "Whether to suggest packages for unknown commands."; };

    system.activationScripts = mkOption {
      type = types.attrsOf (types.either types.str activationEntry);
      default = { };
      description = "Snippets run at activation.";
    };
  };

  config._module.args.utils = import ./utils.nix { inherit lib; };
}
