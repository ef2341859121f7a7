# Mounts: fileSystems and boot.specialFileSystems (nixos/modules/tasks/filesystems.nix),
# /tmp (system/boot/tmp.nix), swapDevices (config/swap.nix), systemd mount units and the
# systemd initrd's mounts.
{ config, lib, pkgs, utils, ... }:
let
  inherit (lib) mkOption types mkIf mkDefault;
  render = import ../../lib/render.nix { inherit lib; };
  nonEmptyStr = types.addCheck types.str (s: s != "") // { description = "non-empty string"; };
  specialFSTypes = [ "proc" "sysfs" "tmpfs" "ramfs" "devtmpfs" "devpts" ];

  coreFileSystemOpts = { name, config, ... }: {
    options = {
      enable = mkOption { type = types.bool; default = true; description = "Whether to mount this filesystem."; };
      mountPoint = mkOption { type = types.addCheck types.str (s: s == "/" || !(lib.hasSuffix "/" s)); default = name; description = "Location of the mounted file system."; };
      device = mkOption { type = types.nullOr nonEmptyStr; default = null; description = "Location of the device."; };
      fsType = mkOption { type = nonEmptyStr; default = "auto"; description = "Type of the file system."; };
      options = mkOption { type = types.nonEmptyListOf nonEmptyStr; default = [ "defaults" ]; description = "Options used to mount the file system."; };
      depends = mkOption { type = types.listOf types.str; default = [ ]; description = "Mount points this one depends on (bind sources, overlays)."; };
    };
    config.device = mkIf (lib.elem config.fsType specialFSTypes) (mkDefault config.fsType);
  };

  fileSystemOpts = { config, ... }: {
    options = {
      label = mkOption { type = types.nullOr nonEmptyStr; default = null; description = "Label of the device."; };
      autoFormat = mkOption { type = types.bool; default = false; description = "Create the file system if the device is blank."; };
      autoResize = mkOption { type = types.bool; default = false; description = "Grow the file system to fill its partition."; };
      noCheck = mkOption { type = types.bool; default = false; description = "Disable fsck."; };
      neededForBoot = mkOption { type = types.bool; default = false; description = "Mount this file system in the initrd (needed for stage 2)."; };
    };
    config = {
      device = mkIf (config.label != null) (mkDefault "/dev/disk/by-label/${config.label}");
      options = lib.mkMerge [
        (mkIf config.autoResize [ "x-systemd.growfs" ])
        (mkIf config.autoFormat [ "x-systemd.makefs" ])
        (mkIf (utils.fsNeededForBoot config) [ "x-initrd.mount" ])
        (mkIf (config.depends != [ ]) (map (x: "x-systemd.requires-mounts-for=${x}") config.depends))
      ];
    };
  };

  mountUnitOpts = types.submodule {
    options = {
      enable = mkOption { type = types.bool; default = true; description = "Whether this unit is installed."; };
      description = mkOption { type = types.str; default = ""; description = "Unit description."; };
      what = mkOption { type = types.str; description = "Absolute path of the device or source."; };
      where = mkOption { type = types.str; description = "Absolute path of the mount point."; };
      type = mkOption { type = types.str; default = ""; description = "File system type."; };
      options = mkOption { type = types.commas; default = ""; description = "Mount options (comma-separated)."; };
      wantedBy = mkOption { type = types.listOf types.str; default = [ ]; description = "Units that want this one."; };
      requiredBy = mkOption { type = types.listOf types.str; default = [ ]; description = "Units that require this one."; };
      before = mkOption { type = types.listOf types.str; default = [ ]; description = "Units ordered after this one."; };
      after = mkOption { type = types.listOf types.str; default = [ ]; description = "Units ordered before this one."; };
      unitConfig = mkOption { type = types.attrsOf types.unspecified; default = { }; description = "[Unit] section entries."; };
      mountConfig = mkOption { type = types.attrsOf types.unspecified; default = { }; description = "[Mount] section entries."; };
    };
  };

  # config/swap.nix: a device (or swap file) and how it is activated.
  swapOpts = { config, options, ... }: {
    options = {
      device = mkOption { type = types.str; example = "/dev/sda3"; description = "Path of the device or swap file."; };
      label = mkOption { type = types.str; example = "swap"; description = "Label of the device; can be used instead of device."; };
      size = mkOption { type = types.nullOr types.int; default = null; description = "Size in MiB of a swap file to create at device."; };
      priority = mkOption { type = types.nullOr types.int; default = null; description = "Priority of the swap device (0-32767); null lets the kernel choose."; };
      randomEncryption = mkOption {
        type = types.coercedTo types.bool (enable: { inherit enable; }) (types.submodule {
          options = {
            enable = mkOption { type = types.bool; default = false; description = "Encrypt the swap device with a random key at every boot."; };
            cipher = mkOption { type = types.str; default = "aes-xts-plain64"; description = "Cipher for randomEncryption."; };
            keySize = mkOption { type = types.nullOr types.int; default = null; description = "Key size for randomEncryption."; };
            sectorSize = mkOption { type = types.nullOr types.int; default = null; description = "Sector size for randomEncryption."; };
            source = mkOption { type = types.str; default = "/dev/urandom"; description = "Source of the random key."; };
            allowDiscards = mkOption { type = types.bool; default = false; description = "Pass TRIM requests through the encryption."; };
          };
        });
        default = false;
        description = "Encrypt the swap device with a random key (nothing in it survives a reboot).";
      };
      discardPolicy = mkOption { type = types.nullOr (types.enum [ "once" "pages" "both" ]); default = null; description = "Discard policy of the swap device (swapon(8))."; };
      options = mkOption { type = types.listOf types.nonEmptyStr; default = [ "defaults" ]; description = "Options used to activate the swap."; };
    };
    config.device = mkIf options.label.isDefined "/dev/disk/by-label/${config.label}";
  };

  enabledFileSystems = lib.filter (fs: fs.enable) (lib.attrValues config.fileSystems);
in
{
  options = {
    fileSystems = mkOption {
      type = types.attrsOf (types.submodule [ coreFileSystemOpts fileSystemOpts ]);
      default = { };
      description = "The file systems to be mounted.";
    };
    swapDevices = mkOption {
      type = types.listOf (types.submodule swapOpts);
      default = [ ];
      description = "The swap devices and swap files.";
    };
    boot.specialFileSystems = mkOption {
      type = types.attrsOf (types.submodule coreFileSystemOpts);
      default = { };
      internal = true;
      description = "Special file systems mounted on boot (proc, /run, /dev/shm, ...).";
    };
    boot.devShmSize = mkOption { type = types.str; default = "50%"; description = "Size limit for /dev/shm."; };
    boot.runSize = mkOption { type = types.str; default = "25%"; description = "Size limit for /run."; };
    boot.isContainer = mkOption { type = types.bool; default = false; description = "Whether this system is a container."; };

    boot.tmp = {
      cleanOnBoot = mkOption { type = types.bool; default = false; description = "Delete all files in /tmp during boot."; };
      useTmpfs = mkOption { type = types.bool; default = false; description = "Mount a tmpfs on /tmp during boot."; };
      tmpfsSize = mkOption { type = types.either types.str types.ints.positive; default = "50%"; description = "Size of the /tmp tmpfs."; };
      tmpfsHugeMemoryPages = mkOption { type = types.enum [ "never" "always" "within_size" "advise" ]; default = "never"; description = "Huge pages for the /tmp tmpfs."; };
    };

    systemd.mounts = mkOption { type = types.listOf mountUnitOpts; default = [ ]; description = "Mount units."; };

    boot.initrd.systemd.enable = mkOption { type = types.bool; default = true; description = "Use systemd in the initrd (the default since 26.05)."; };
    boot.initrd.systemd.mounts = mkOption { type = types.listOf mountUnitOpts; default = [ ]; description = "Mount units of the systemd initrd."; };
    boot.initrd.systemd.suppressedUnits = mkOption { type = types.listOf types.str; default = [ ]; description = "Upstream units not copied into the initrd."; };
    boot.initrd.postMountCommands = mkOption { type = types.lines; default = ""; description = "Commands run after mounting in the scripted initrd."; };
  };

  config = {
    boot.specialFileSystems = {
      "/proc" = { fsType = "proc"; options = [ "nosuid" "noexec" "nodev" ]; };
      "/run" = { fsType = "tmpfs"; options = [ "nosuid" "nodev" "strictatime" "mode=755" "size=${config.boot.runSize}" ]; };
      "/dev" = { fsType = "devtmpfs"; options = [ "nosuid" "strictatime" "mode=755" "size=5%" ]; };
      "/dev/shm" = { fsType = "tmpfs"; options = [ "nosuid" "nodev" "strictatime" "mode=1777" "size=${config.boot.devShmSize}" ]; };
      "/dev/pts" = { fsType = "devpts"; options = [ "nosuid" "noexec" "mode=620" "ptmxmode=0666" "gid=3" ]; };
      "/run/keys" = { fsType = "ramfs"; options = [ "nosuid" "nodev" "mode=750" ]; };
      # security.wrappers: setuid wrappers must stay executable.
      "/run/wrappers" = { fsType = "tmpfs"; options = [ "nodev" "mode=755" "size=50%" ]; };
    };

    systemd.mounts = mkIf config.boot.tmp.useTmpfs [
      {
        what = "tmpfs";
        where = "/tmp";
        type = "tmpfs";
        mountConfig.Options = lib.concatStringsSep "," [ "mode=1777" "strictatime" "rw" "nosuid" "nodev" "size=${toString config.boot.tmp.tmpfsSize}" "huge=${config.boot.tmp.tmpfsHugeMemoryPages}" ];
      }
    ];

    environment.etc.fstab.text = lib.concatMapStrings (fs: render.fstabLine fs + "\n")
      (lib.sort (a: b: a.mountPoint < b.mountPoint) enabledFileSystems);

    assertions = [
      {
        assertion = config.boot.isContainer || lib.any (fs: fs.mountPoint == "/") enabledFileSystems;
        message = "The ‘fileSystems’ option does not specify your root file system.";
      }
    ];
  };
}
