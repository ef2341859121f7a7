# The kernel's command line, modules and runtime parameters: boot.kernelParams and the module
# lists (system/boot/kernel.nix), the module blacklist (system/boot/modprobe.nix) and
# boot.kernel.sysctl (config/sysctl.nix), with the files NixOS writes from them.
{ config, lib, pkgs, ... }:
let
  inherit (lib) mkOption types mkIf mkDefault;
  # A list of names is coerced into a set of names = true.
  attrNamesToTrue = types.coercedTo (types.listOf types.str) (l: lib.genAttrs l (_: true)) (types.attrsOf types.bool);
  enabledNames = mods: lib.attrNames (lib.filterAttrs (_: v: v) mods);

  sysctlOption = lib.mkOptionType {
    name = "sysctl option value";
    check = val:
      let checkType = x: lib.isBool x || lib.isString x || lib.isInt x || x == null; in
      checkType val || (val._type or "" == "override" && checkType val.content);
    merge = loc: defs: lib.mergeOneOption loc defs;
  };
  # The highest value wins for these two (sysctl.nix).
  highestValueType = types.ints.unsigned // { merge = loc: defs: lib.foldl (a: b: if b.value == null then null else lib.max a b.value) 0 defs; };

  provenance = upstream: options: extra: { inherit upstream options; repo = "Swarsel/nixpkgs"; commit = "4aa6836a648ca76c68866decf0c8965e36ec2a3b"; surface = "kernel.nix"; } // extra;
in
{
  options.boot = {
    kernelParams = mkOption {
      type = types.listOf (types.strMatching ''([^"[:space:]]|"[^"]*")+'' // { description = "string, with spaces inside double quotes"; name = "kernelParam"; });
      default = [ ];
      description = "Parameters added to the kernel command line.";
    };
    consoleLogLevel = mkOption { type = types.int; default = 4; description = "The kernel console loglevel."; };
    extraModulePackages = mkOption { type = types.listOf types.package; default = [ ]; description = "Packages supplying more kernel modules."; };
    kernelModules = mkOption { type = attrNamesToTrue; apply = enabledNames; default = { }; description = "Modules loaded in the second stage of boot."; };
    kernelPackages = mkOption { type = types.raw; default = pkgs.linuxPackages; defaultText = lib.literalExpression "pkgs.linuxPackages"; description = "The kernel and its module packages."; };
    kernelPatches = mkOption { type = types.listOf types.attrs; default = [ ]; description = "Patches applied to the kernel."; };
    kernel.enable = mkOption { type = types.bool; default = true; description = "Whether the system has its own kernel (false in containers)."; };
    kernel.features = mkOption { default = { }; internal = true; description = "Kernel feature sets."; };
    kernel.randstructSeed = mkOption { type = types.str; default = ""; description = "Seed of the RANDSTRUCT hardening of hardened kernels."; };
    kernel.sysctl = mkOption {
      default = { };
      description = "Runtime kernel parameters (sysctl(8)); null drops a parameter.";
      type = types.submodule {
        freeformType = types.attrsOf sysctlOption;
        options = {
          "net.core.rmem_max" = mkOption { type = types.nullOr highestValueType; default = null; description = "Maximum receive socket buffer (the highest definition wins)."; };
          "net.core.wmem_max" = mkOption { type = types.nullOr highestValueType; default = null; description = "Maximum send socket buffer (the highest definition wins)."; };
        };
      };
    };
    initrd.kernelModules = mkOption { type = attrNamesToTrue; apply = enabledNames; default = { }; description = "Modules always loaded by the initrd."; };
    initrd.availableKernelModules = mkOption { type = attrNamesToTrue; apply = enabledNames; default = { }; description = "Modules available in the initrd, loaded on demand."; };
    initrd.includeDefaultModules = mkOption { type = types.bool; default = true; description = "Add NixOS's default initrd modules."; };
    initrd.allowMissingModules = mkOption { type = types.bool; default = false; description = "Build the initrd even if listed modules are missing."; };
    # modprobe.nix
    blacklistedKernelModules = mkOption { type = attrNamesToTrue; apply = enabledNames; default = { }; description = "Modules the hardware probing must not load (modprobe blacklist)."; };
    extraModprobeConfig = mkOption { type = types.lines; default = ""; description = "Text appended to modprobe.d/nixos.conf."; };
    modprobeConfig.enable = mkOption { type = types.bool; default = true; description = "Whether to write modprobe configuration."; };
    modprobeConfig.useUbuntuModuleBlacklist = mkOption { type = types.bool; default = true; description = "Whether to use Ubuntu's module blacklist."; };
  };

  config = lib.mkMerge [
    {
      surface.provenance = [
        (provenance "nixos/modules/system/boot/kernel.nix" [ "boot.kernelParams" "boot.consoleLogLevel" "boot.extraModulePackages" "boot.kernelModules" "boot.kernelPackages" "boot.kernelPatches" "boot.kernel.enable" "boot.kernel.features" "boot.kernel.randstructSeed" "boot.initrd.kernelModules" "boot.initrd.availableKernelModules" "boot.initrd.includeDefaultModules" "boot.initrd.allowMissingModules" ] { notes = "The default initrd module lists and the required kernel config checks are not modelled."; })
        (provenance "nixos/modules/system/boot/modprobe.nix" [ "boot.blacklistedKernelModules" "boot.extraModprobeConfig" "boot.modprobeConfig" ] { })
        (provenance "nixos/modules/config/sysctl.nix" [ "boot.kernel.sysctl" ] { notes = "The ASLR entropy file (built from the kernel config) is not modelled."; })
      ];
      # NixOS-wide defaults (sysctl.nix).
      boot.kernel.sysctl = {
        "fs.inotify.max_user_instances" = mkDefault 524288;
        "fs.inotify.max_user_watches" = mkDefault 524288;
        # Kernel pointers hidden from unprivileged users.
        "kernel.kptr_restrict" = mkDefault 1;
        "vm.max_map_count" = mkDefault 1048576;
      };
      environment.etc."sysctl.d/60-nixos.conf".text = lib.concatStrings (lib.mapAttrsToList
        (n: v: lib.optionalString (v != null) "${n}=${if v == false then "0" else toString v}\n") config.boot.kernel.sysctl);
      systemd.services.systemd-sysctl = { wantedBy = [ "multi-user.target" ]; };
    }
    (mkIf config.boot.kernel.enable {
      boot.kernel.sysctl."kernel.printk" = mkDefault config.boot.consoleLogLevel;
      boot.kernelModules = [ "loop" "atkbd" ];
      boot.kernelParams = [ "loglevel=${toString config.boot.consoleLogLevel}" ];
      environment.etc."modules-load.d/nixos.conf".text = "${lib.concatStringsSep "\n" config.boot.kernelModules}\n";
    })
    (mkIf (config.boot.initrd.enable && config.boot.initrd.includeDefaultModules) {
      boot.initrd.kernelModules = [ "dm_mod" ];
    })
    (mkIf config.boot.modprobeConfig.enable {
      environment.etc."modprobe.d/nixos.conf".text = ''
        ${lib.concatMapStrings (name: "blacklist ${name}\n") config.boot.blacklistedKernelModules}
        ${config.boot.extraModprobeConfig}
      '';
      environment.systemPackages = [ pkgs.kmod ];
    })
  ];
}
