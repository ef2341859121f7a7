# Boot loaders: boot.loader.timeout (loader/loader.nix), boot.loader.efi (loader/efi.nix), GRUB
# (loader/grub/grub.nix) and systemd-boot (loader/systemd-boot/systemd-boot.nix). Nothing is
# installed offline; GRUB's "devices must be set" assertion is left out, because paranoid's
# example hosts keep the loader in their hardware file.
{ config, lib, pkgs, ... }:
let
  inherit (lib) mkOption types mkIf;
  grub = config.boot.loader.grub;
  opt = type: default: description: mkOption { inherit type default description; };
  provenance = upstream: options: extra: { inherit upstream options; repo = "Swarsel/nixpkgs"; commit = "4aa6836a648ca76c68866decf0c8965e36ec2a3b"; surface = "loader.nix"; } // extra;
in
{
  imports = [
    (lib.mkRenamedOptionModule [ "boot" "loader" "grub" "timeout" ] [ "boot" "loader" "timeout" ])
    (lib.mkRenamedOptionModule [ "boot" "loader" "gummiboot" "timeout" ] [ "boot" "loader" "timeout" ])
    (lib.mkRenamedOptionModule [ "boot" "loader" "gummiboot" "enable" ] [ "boot" "loader" "systemd-boot" "enable" ])
    (lib.mkRemovedOptionModule [ "boot" "loader" "grub" "bootDevice" ] "")
    (lib.mkRenamedOptionModule [ "boot" "copyKernels" ] [ "boot" "loader" "grub" "copyKernels" ])
    (lib.mkRenamedOptionModule [ "boot" "extraGrubEntries" ] [ "boot" "loader" "grub" "extraEntries" ])
    (lib.mkRenamedOptionModule [ "boot" "extraGrubEntriesBeforeNixos" ] [ "boot" "loader" "grub" "extraEntriesBeforeNixOS" ])
    (lib.mkRenamedOptionModule [ "boot" "grubDevice" ] [ "boot" "loader" "grub" "device" ])
    (lib.mkRenamedOptionModule [ "boot" "grubSplashImage" ] [ "boot" "loader" "grub" "splashImage" ])
  ];

  options.boot.loader = {
    timeout = opt (types.nullOr types.int) 5 "Seconds until the default entry boots (null: wait forever).";
    efi = {
      canTouchEfiVariables = opt types.bool false "Whether installing may modify EFI boot variables.";
      efiSysMountPoint = opt types.str "/boot" "Where the EFI System Partition is mounted.";
    };
    grub = {
      enable = mkOption { type = types.bool; default = !config.boot.isContainer; defaultText = lib.literalExpression "!config.boot.isContainer"; description = "Whether to enable the GNU GRUB boot loader."; };
      backgroundColor = opt (types.nullOr types.str) null "Background color around the splash image.";
      configurationLimit = opt types.int 100 "Maximum number of configurations in the boot menu.";
      configurationName = opt types.str "" "GRUB entry name instead of the default.";
      copyKernels = opt types.bool false "Copy kernels and initrds to /boot.";
      default = mkOption { type = types.either types.int types.str; apply = toString; default = "0"; description = "Index of the default entry, or \"saved\"."; };
      device = opt types.str "" "Device GRUB is installed on (\"nodev\": menu only).";
      devices = opt (types.listOf types.str) [ ] "Devices GRUB is installed on.";
      efiInstallAsRemovable = opt types.bool false "Install GRUB at the removable-media EFI path.";
      efiSupport = opt types.bool false "Build GRUB with EFI support.";
      enableCryptodisk = opt types.bool false "Support encrypted partitions.";
      entryOptions = opt (types.nullOr types.str) "--class nixos --unrestricted" "Options of the main NixOS menu entry (--unrestricted: bootable without a GRUB password).";
      extraConfig = opt types.lines "" "GRUB commands inserted before the menu entries.";
      extraEntries = opt types.lines "" "Additional GRUB menu entries.";
      extraEntriesBeforeNixOS = opt types.bool false "Whether extraEntries come before NixOS.";
      extraFiles = opt (types.attrsOf types.path) { } "Files copied to /boot.";
      extraGrubInstallArgs = opt (types.listOf types.str) [ ] "More grub-install arguments.";
      extraInstallCommands = opt types.lines "" "Shell commands run after the menu is generated.";
      extraPerEntryConfig = opt types.lines "" "GRUB commands at the start of each NixOS entry.";
      extraPrepareConfig = opt types.lines "" "Bash run by the script that prepares the menu.";
      font = mkOption { type = types.nullOr types.path; default = "${pkgs.grub2}/share/grub/unicode.pf2"; defaultText = lib.literalExpression ''"''${pkgs.grub2}/share/grub/unicode.pf2"''; description = "Font of the GRUB menu."; };
      fontSize = opt (types.nullOr types.int) null "Font size (TrueType/OpenType fonts).";
      forceInstall = opt types.bool false "Install GRUB even if problems are detected.";
      forcei686 = opt types.bool false "Use an ia32 loader on x64 (32-bit UEFI).";
      fsIdentifier = opt (types.enum [ "uuid" "label" "provided" ]) "uuid" "How GRUB identifies devices.";
      gfxmodeBios = opt types.str "1024x768" "gfxmode under BIOS.";
      gfxmodeEfi = opt types.str "auto" "gfxmode under EFI.";
      gfxpayloadBios = opt types.str "text" "gfxpayload under BIOS.";
      gfxpayloadEfi = opt types.str "keep" "gfxpayload under EFI.";
      mirroredBoots = opt (types.listOf (types.submodule {
        options = {
          devices = opt (types.listOf types.str) [ ] "Devices that get the GRUB MBR.";
          efiBootloaderId = opt (types.nullOr types.str) null "The bootloader id in EFI NVRAM.";
          efiSysMountPoint = opt (types.nullOr types.str) null "The EFI system partition of this boot path.";
          path = mkOption { type = types.str; description = "The boot directory GRUB is written to."; };
        };
      })) [ ] "Boot configurations mirrored to several partitions.";
      splashImage = mkOption { type = types.nullOr types.path; description = "Background image (null: text mode)."; };
      splashMode = opt (types.enum [ "normal" "stretch" ]) "stretch" "Stretch the image or not.";
      storePath = opt types.str "/nix/store" "The store path GRUB looks for kernels in.";
      subEntryOptions = opt (types.nullOr types.str) "--class nixos" "Options of the NixOS submenu entries.";
      theme = opt (types.nullOr types.path) null "GRUB theme.";
      timeoutStyle = opt (types.enum [ "menu" "countdown" "hidden" ]) "menu" "How the timeout is shown.";
      useOSProber = opt types.bool false "Add entries for other operating systems.";
      users = opt (types.attrsOf (types.submodule {
        options = {
          hashedPassword = opt (types.uniq (types.nullOr types.str)) null "grub-mkpasswd-pbkdf2 hash.";
          hashedPasswordFile = opt (types.uniq (types.nullOr types.str)) null "File with the hash.";
          password = opt (types.uniq (types.nullOr types.str)) null "Clear-text password (world-readable).";
          passwordFile = opt (types.uniq (types.nullOr types.str)) null "File with the clear-text password.";
        };
      })) { } "GRUB accounts: the command line and all entries but the default need a password.";
      version = mkOption { type = types.int; visible = false; description = "Removed (no effect)."; };
      zfsPackage = mkOption { type = types.package; default = pkgs.zfs; defaultText = lib.literalExpression "pkgs.zfs"; internal = true; description = "ZFS package for zfsSupport."; };
      zfsSupport = opt types.bool false "Build GRUB against libzfs.";
    };
    systemd-boot = {
      enable = opt types.bool false "Whether to enable the systemd-boot EFI boot manager.";
      bootCounting.enable = opt types.bool false "Automatic boot assessment (boot counting).";
      bootCounting.tries = opt types.ints.positive 3 "Boot attempts before an entry is bad.";
      configurationLimit = opt (types.nullOr types.int) null "Maximum number of generations in the menu (null: all).";
      consoleMode = opt (types.enum [ "0" "1" "2" "5" "auto" "max" "keep" ]) "keep" "Console resolution.";
      # Editing the command line before boot gives root (init=/bin/sh): upstream keeps it on.
      editor = opt types.bool true "Allow editing the kernel command line before boot.";
      edk2-uefi-shell.enable = opt types.bool false "Offer the EDK2 UEFI shell.";
      edk2-uefi-shell.sortKey = opt types.str "o_edk2-uefi-shell" "Sort key of the shell entry.";
      extraEntries = opt (types.attrsOf types.lines) { } "Additional loader entries.";
      extraFiles = opt (types.attrsOf types.path) { } "Files copied to $BOOT.";
      extraInstallCommands = opt types.lines "" "Shell commands run after the entries are written.";
      graceful = opt types.bool false "Run bootctl install with --graceful.";
      installDeviceTree = mkOption { default = false; description = "Install the devicetree blob (hardware.deviceTree)."; };
      memtest86.enable = opt types.bool false "Offer Memtest86+.";
      memtest86.sortKey = opt types.str "o_memtest86" "Sort key of the Memtest86+ entry.";
      netbootxyz.enable = opt types.bool false "Offer netboot.xyz.";
      netbootxyz.sortKey = opt types.str "o_netbootxyz" "Sort key of the netboot.xyz entry.";
      rebootForBitlocker = opt types.bool false "Experimental BitLocker support.";
      sortKey = opt types.str "nixos" "Sort key of NixOS entries.";
      windows = opt (types.attrsOf types.attrs) { } "Windows installations to offer (recorded as attribute sets).";
      xbootldrMountPoint = opt (types.nullOr types.str) null "Where the XBOOTLDR partition is mounted.";
    };
  };

  config = lib.mkMerge [
    {
      surface.provenance = [
        (provenance "nixos/modules/system/boot/loader/loader.nix" [ "boot.loader.timeout" "boot.loader.grub.timeout" "boot.loader.gummiboot.timeout" ] { })
        (provenance "nixos/modules/system/boot/loader/efi.nix" [ "boot.loader.efi" ] { })
        (provenance "nixos/modules/system/boot/loader/grub/grub.nix" [ "boot.loader.grub" "boot.copyKernels" "boot.extraGrubEntries" "boot.extraGrubEntriesBeforeNixos" "boot.grubDevice" "boot.grubSplashImage" ] { notes = "The installer and grub.cfg are not modelled; the assertion that devices are set is left out."; })
        (provenance "nixos/modules/system/boot/loader/systemd-boot/systemd-boot.nix" [ "boot.loader.systemd-boot" "boot.loader.gummiboot.enable" ] { notes = "windows entries are recorded as attribute sets."; })
      ];
      boot.loader.grub.splashImage = lib.mkDefault null;
    }
    (mkIf grub.enable {
      assertions = [
        { assertion = grub.efiInstallAsRemovable -> grub.efiSupport; message = "If you wish to to use boot.loader.grub.efiInstallAsRemovable, then turn on boot.loader.grub.efiSupport"; }
        { assertion = grub.efiInstallAsRemovable -> !config.boot.loader.efi.canTouchEfiVariables; message = "If you wish to to use boot.loader.grub.efiInstallAsRemovable, then turn off boot.loader.efi.canTouchEfiVariables"; }
      ] ++ lib.concatMap (args: [
        { assertion = args.devices != [ ]; message = "A boot path cannot have an empty devices string in ${args.path}"; }
        { assertion = lib.hasPrefix "/" args.path; message = "Boot paths must be absolute, not ${args.path}"; }
      ] ++ map (device: { assertion = device == "nodev" || lib.hasPrefix "/" device; message = "GRUB devices must be absolute paths, not ${device} in ${args.path}"; }) args.devices) grub.mirroredBoots;
      boot.loader.grub.devices = mkIf (grub.device != "") [ grub.device ];
      boot.loader.grub.mirroredBoots = mkIf (grub.devices != [ ]) [ { inherit (grub) devices; inherit (config.boot.loader.efi) efiSysMountPoint; path = "/boot"; } ];
    })
  ];
}
