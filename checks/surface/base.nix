# Core NixOS options every module leans on: assertions, warnings, /etc, packages, identity.
# Types and defaults follow nixos/modules/misc/assertions.nix, system/etc/etc.nix,
# config/system-path.nix and friends.
{ config, lib, pkgs, ... }:
let
  inherit (lib) mkOption types;

  etcEntry = { name, config, ... }: {
    options = {
      enable = mkOption { type = types.bool; default = true; description = "Whether this /etc file should be generated."; };
      target = mkOption { type = types.str; description = "Name of symlink, relative to /etc (the attribute name by default)."; };
      text = mkOption { type = types.nullOr types.lines; default = null; description = "Text of the file."; };
      source = mkOption { type = types.path; description = "Path of the source file."; };
      mode = mkOption { type = types.str; default = "symlink"; description = "If not symlink, copy the file with this mode."; };
      uid = mkOption { type = types.int; default = 0; description = "UID of the created file."; };
      gid = mkOption { type = types.int; default = 0; description = "GID of the created file."; };
      user = mkOption { type = types.str; default = "+${toString config.uid}"; description = "Owner of the created file."; };
      group = mkOption { type = types.str; default = "+${toString config.gid}"; description = "Group of the created file."; };
    };
    config.source = lib.mkIf (config.text != null) (lib.mkDerivedConfig { value = config.text; } (pkgs.writeText "etc-${lib.replaceStrings [ "/" ] [ "-" ] name}"));
    config.target = lib.mkDefault name;
  };

  # The package lists of config/system-path.nix, at a lower installation priority.
  withLowerPriority = map (pkg: lib.setPrio ((pkg.meta.priority or lib.meta.defaultPriority) + 3) pkg);
  corePackageNames = [ "acl" "attr" "bashInteractive" "bzip2" "coreutils-full" "cpio" "curl" "diffutils" "findutils" "gawk" "getent" "getconf" "gnugrep" "gnupatch" "gnused" "gnutar" "gzip" "xz" "less" "libcap" "ncurses" "netcat" "mkpasswd" "procps" "su" "time" "util-linux" "which" "zstd" ];

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
      description = "Packages installed in the system profile (corePackages and defaultPackages are added).";
    };
    environment.corePackages = mkOption {
      type = types.listOf types.package;
      defaultText = lib.literalExpression "[ pkgs.acl pkgs.attr pkgs.bashInteractive ... ] (lower priority)";
      description = "Core packages of an interactive system (only change this if you know what you are doing).";
    };
    environment.defaultPackages = mkOption {
      type = types.listOf types.package;
      default = withLowerPriority [ pkgs.perl pkgs.rsync pkgs.strace ];
      defaultText = lib.literalExpression "[ pkgs.perl pkgs.rsync pkgs.strace ]";
      description = "Packages installed by default; set to [ ] for a minimal system.";
    };
    environment.extraOutputsToInstall = mkOption { type = types.listOf types.str; default = [ ]; description = "Extra outputs of the system packages to install."; };
    environment.extraSetup = mkOption { type = types.lines; default = ""; description = "Shell run after the system environment is built."; };
    environment.pathsToLink = mkOption { type = types.listOf types.str; default = [ ]; description = "Directories linked into /run/current-system/sw."; };
    system.etc.overlay = {
      enable = mkOption { type = types.bool; default = false; description = "Mount /etc as an overlay."; };
      mutable = mkOption { type = types.bool; default = true; description = "Whether the /etc overlay is writable."; };
    };
    environment.stub-ld.enable = mkOption {
      type = types.bool;
      default = true;
      description = "Install a stub ELF loader at /lib64 that explains why foreign binaries do not run.";
    };

    programs.nano = {
      enable = mkOption { type = types.bool; default = true; description = "Whether to install nano (the default editor)."; };
      package = mkOption { type = types.package; default = pkgs.nano; defaultText = lib.literalExpression "pkgs.nano"; description = "The nano package."; };
      nanorc = mkOption { type = types.lines; default = ""; description = "The system-wide nanorc."; };
      syntaxHighlight = mkOption { type = types.bool; default = true; description = "Whether to enable syntax highlighting."; };
    };
    environment.ldso = mkOption { type = types.nullOr types.path; default = null; description = "The program at /lib/ld-linux*.so (config/ldso.nix); stub-ld sets a stub."; };
    environment.ldso32 = mkOption { type = types.nullOr types.path; default = null; description = "The 32-bit loader stub (config/ldso.nix)."; };
    programs.command-not-found.enable = mkOption { type = types.bool; default = false; description = "Whether to suggest packages for unknown commands."; };

    # system/activation/top-level.nix: the build products (toplevel, scripts) modules add.
    system.build = mkOption {
      type = types.lazyAttrsOf types.unspecified;
      internal = true;
      default = { };
      description = "Attribute set of derivations used to set up the system.";
    };

    system.activationScripts = mkOption {
      type = types.attrsOf (types.either types.str activationEntry);
      default = { };
      description = "Snippets run at activation.";
    };
  };

  config = {
    _module.args.utils = import ./utils.nix { inherit lib; };
    environment.corePackages = withLowerPriority (map (n: pkgs.${n}) corePackageNames) ++ [ pkgs.stdenv.cc.libc ];
    environment.systemPackages = config.environment.corePackages ++ config.environment.defaultPackages
      ++ lib.optional config.programs.nano.enable config.programs.nano.package;
    environment.etc.nanorc = lib.mkIf config.programs.nano.enable {
      text = lib.optionalString config.programs.nano.syntaxHighlight ''
        # load syntax highlighting files
        include "${config.programs.nano.package}/share/nano/*.nanorc"
        include "${config.programs.nano.package}/share/nano/extra/*.nanorc"
      '' + config.programs.nano.nanorc;
    };
    environment.ldso = lib.mkIf config.environment.stub-ld.enable (lib.mkDefault (pkgs.runCommandCC or pkgs.runCommand) "stub-ld" { } "");
    surface.provenance = let p = upstream: options: extra: { inherit upstream options; repo = "Swarsel/nixpkgs"; commit = "4aa6836a648ca76c68866decf0c8965e36ec2a3b"; surface = "base.nix"; } // extra; in [
      (p "nixos/modules/system/etc/etc.nix" [ "environment.etc" "system.etc.overlay" ] { notes = "/etc is not built; entries are read as declared."; })
      (p "nixos/modules/config/system-path.nix" [ "environment.systemPackages" "environment.corePackages" "environment.defaultPackages" "environment.extraOutputsToInstall" "environment.extraSetup" "environment.pathsToLink" ] { notes = "system.path (the buildEnv) is not built."; })
      (p "nixos/modules/misc/assertions.nix" [ "assertions" "warnings" ] { reread = false; })
      (p "nixos/modules/misc/version.nix" [ "system.stateVersion" ] { reread = false; notes = "Only stateVersion of the module."; })
      (p "nixos/modules/tasks/network-interfaces.nix" [ "networking.hostName" "networking.enableIPv6" ] { })
      (p "nixos/modules/config/stub-ld.nix" [ "environment.stub-ld.enable" "environment.ldso" "environment.ldso32" ] { notes = "The stub loader is a stand-in; environment.ldso/ldso32 (config/ldso.nix, not re-read) are declared from stub-ld.nix's use."; })
      (p "nixos/modules/programs/nano.nix" [ "programs.nano" ] { })
      (p "nixos/modules/programs/command-not-found/command-not-found.nix" [ "programs.command-not-found.enable" ] { reread = false; })
      (p "nixos/modules/system/activation/activation-script.nix" [ "system.activationScripts" ] { reread = false; notes = "Scripts are recorded, not run."; })
      (p "nixos/modules/system/activation/top-level.nix" [ "system.build" ] { reread = false; notes = "Only `system.build`, which modules add build products to; nothing is built."; })
    ];
  };
}
