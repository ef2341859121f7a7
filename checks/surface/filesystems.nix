# Mounts: fileSystems and boot.specialFileSystems (nixos/modules/tasks/filesystems.nix),
# /tmp (system/boot/tmp.nix), swapDevices (config/swap.nix), systemd mount units and the
# systemd initrd's mounts.
{ config, lib, pkgs, utils, ... }:
let
  inherit (lib) mkOption types mkIf mkDefault;
  specialFSTypes = [ "proc" "sysfs" "tmpfs" "ramfs" "devtmpfs" "devpts" ];

  isNonEmpty = s: builtins.match "[ \t\n]*" s == null;
  addCheckDesc = desc: elemType: check: types.addCheck elemType check // { description = "${elemType.description} (with check: ${desc})"; };
  nonEmptyStr = addCheckDesc "non-empty" types.str isNonEmpty;
  nonEmptyWithoutTrailingSlash = addCheckDesc "non-empty without trailing slash" types.str (s: isNonEmpty s && builtins.match ".+/" s == null);
  escape = builtins.replaceStrings [ " " "\t" ] [ "\\040" "\\011" ];

  coreFileSystemOpts = { name, config, ... }: {
    options = {
      enable = mkOption { type = types.bool; default = true; description = "Whether to mount this filesystem."; };
      mountPoint = mkOption { type = nonEmptyWithoutTrailingSlash; default = name; description = "Location of the mounted file system."; };
      device = mkOption { type = types.nullOr nonEmptyStr; default = null; description = "The device as passed to mount (for bind mounts, the source path)."; };
      # No default upstream: every filesystem names its type.
      fsType = mkOption { type = nonEmptyStr; description = "Type of the file system."; };
      options = mkOption { type = types.nonEmptyListOf nonEmptyStr; default = [ "defaults" ]; description = "Options used to mount the file system."; };
      depends = mkOption { type = types.listOf nonEmptyWithoutTrailingSlash; default = [ ]; description = "Paths whose filesystems are mounted before this one."; };
      stratis.poolUuid = mkOption { type = types.uniq (types.nullOr types.str); default = null; description = "UUID of the stratis pool holding the filesystem."; };
    };
    config.device = mkIf (lib.elem config.fsType specialFSTypes) (mkDefault config.fsType);
  };

  # boot.specialFileSystems.<name> is upstream's submodule (coreFileSystemOpts), with the
  # shortcut users.nix takes for groups: its `apply` reads every entry's `enable`, and NixOS
  # declares eight. An entry whose definitions are plain attribute sets of these options, each
  # set by one definition at most (the order in which the submodule concatenates lists from
  # several is its own), with values of the right type, is built directly with the submodule's
  # result; anything else goes through the submodule.
  specialFsTypeOf = modules: let sub = types.submoduleWith { inherit modules; shorthandOnlyDefinesConfig = true; }; in sub // {
    substSubModules = m: if lib.length m == 1 then specialFsTypeOf m else sub.substSubModules m;
    merge = loc: defs:
      let
        name = lib.last loc;
        str = v: builtins.isString v && isNonEmpty v;
        path = v: str v && builtins.match ".+/" v == null;
        fieldOk = {
          enable = builtins.isBool;
          mountPoint = path;
          device = v: v == null || str v;
          fsType = str;
          options = v: builtins.isList v && lib.all str v;
          depends = v: builtins.isList v && lib.all path v;
        };
        plain = d: builtins.isAttrs d.value && !(d.value ? _type)
          && lib.all (k: fieldOk ? ${k} && !(builtins.isAttrs d.value.${k} && d.value.${k} ? _type) && fieldOk.${k} d.value.${k}) (lib.attrNames d.value);
        setting = k: lib.filter (d: d.value ? ${k}) defs;
        once = k: lib.length (setting k) <= 1;
        value = k: default: let ds = setting k; in if ds == [ ] then default else (lib.head ds).value.${k};
        fsType = value "fsType" null;
        options = value "options" [ "defaults" ];
      in
      if lib.all plain defs && lib.all once (lib.attrNames fieldOk) && fsType != null && options != [ ] && (setting "mountPoint" != [ ] || path name)
      then {
        enable = value "enable" true;
        mountPoint = value "mountPoint" name;
        device = value "device" (if lib.elem fsType specialFSTypes then fsType else null);
        inherit fsType options;
        depends = value "depends" [ ];
        stratis.poolUuid = null;
      }
      else sub.merge loc defs;
  };

  fileSystemOpts = { config, ... }: {
    options = {
      label = mkOption { type = types.nullOr nonEmptyStr; default = null; description = "Label of the device (sets device to /dev/disk/by-label/<label>)."; };
      autoFormat = mkOption { type = types.bool; default = false; description = "Create the file system if the device is blank."; };
      autoResize = mkOption { type = types.bool; default = false; description = "Grow the file system to fill its partition."; };
      formatOptions = mkOption { type = types.unspecified; default = null; visible = false; description = "Removed."; };
      noCheck = mkOption { type = types.bool; default = false; description = "Disable fsck."; };
      # Declared by stage-1.nix.
      neededForBoot = mkOption { type = types.bool; default = false; description = "Mount this file system in the initrd (needed for stage 2)."; };
      encrypted = {
        enable = mkOption { type = types.bool; default = false; description = "The backing device is encrypted (LUKS)."; };
        blkDev = mkOption { type = types.nullOr types.str; default = null; description = "Location of the backing encrypted device."; };
        label = mkOption { type = types.nullOr types.str; default = null; description = "Label of the unlocked encrypted device."; };
        keyFile = mkOption { type = types.nullOr types.str; default = null; description = "Key file for the encrypted device."; };
      };
    };
    config = {
      device = mkIf (config.label != null) (mkDefault "/dev/disk/by-label/${escape config.label}");
      options =
        let inInitrd = utils.fsNeededForBoot config; in
        lib.mkMerge [
          (mkIf config.autoResize [ "x-systemd.growfs" ])
          (mkIf config.autoFormat [ "x-systemd.makefs" ])
          (mkIf inInitrd [ "x-initrd.mount" ])
          # In the systemd initrd the real root is mounted at /sysroot.
          (mkIf (lib.length config.depends > 0 && (inInitrd -> initrdSystemd))
            (map (x: "x-systemd.requires-mounts-for=${lib.optionalString inInitrd "/sysroot"}${x}") config.depends))
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

  initrdSystemd = config.boot.initrd.systemd.enable;
  sorted = lib.toposort utils.fsBefore (lib.attrValues config.fileSystems);
  # Ordered by dependency (a mount after the one holding its mount point, device or depends).
  fileSystems = sorted.result or (lib.attrValues config.fileSystems);

  fsToSkipCheck = [ "none" "auto" "overlay" "iso9660" "bindfs" "udf" "btrfs" "zfs" "tmpfs" "bcachefs" "nfs" "nfs4" "nilfs2" "vboxsf" "squashfs" "glusterfs" "apfs" "9p" "cifs" "prl_fs" "vmhgfs" ]
    ++ lib.optionals (!config.boot.initrd.checkJournalingFS) [ "ext3" "ext4" "xfs" "jfs" "f2fs" ];
  skipCheck = fs: fs.noCheck || fs.device == "none" || lib.elem fs.fsType fsToSkipCheck || lib.elem "bind" fs.options;
  fstabEntries = lib.concatMapStrings (fs:
    (if fs.device != null then escape fs.device else throw "No device specified for mount point ‘${fs.mountPoint}’.")
    + " " + escape fs.mountPoint + " " + fs.fsType + " " + escape (lib.concatStringsSep "," fs.options)
    + " 0 " + (if skipCheck fs then "0" else if fs.mountPoint == "/" then "1" else "2") + "\n");

  provenance = upstream: options: extra: { inherit upstream options; repo = "Swarsel/nixpkgs"; commit = "4aa6836a648ca76c68866decf0c8965e36ec2a3b"; surface = "filesystems.nix"; } // extra;
in
{
  options = {
    fileSystems = mkOption {
      type = types.attrsOf (types.submodule [ coreFileSystemOpts fileSystemOpts ]);
      apply = lib.filterAttrs (_: fs: fs.enable);
      default = { };
      description = "The file systems to be mounted (disabled entries are dropped).";
    };
    swapDevices = mkOption {
      type = types.listOf (types.submodule swapOpts);
      default = [ ];
      description = "The swap devices and swap files.";
    };
    boot.specialFileSystems = mkOption {
      type = types.attrsOf (specialFsTypeOf [ coreFileSystemOpts ]);
      apply = lib.filterAttrs (_: fs: fs.enable);
      default = { };
      internal = true;
      description = "Special file systems mounted on boot (proc, /run, /dev/shm, ...).";
    };
    boot.devShmSize = mkOption { type = types.str; default = "50%"; description = "Size limit for /dev/shm."; };
    boot.devSize = mkOption { type = types.str; default = "5%"; description = "Size limit for the /dev tmpfs."; };
    boot.runSize = mkOption { type = types.str; default = "25%"; description = "Size limit for /run."; };
    boot.isContainer = mkOption { type = types.bool; default = false; description = "Whether this system is a container."; };
    boot.isNspawnContainer = mkOption { type = types.bool; default = false; internal = true; description = "Whether this system is an nspawn container."; };
    boot.supportedFilesystems = mkOption {
      type = types.coercedTo (types.listOf types.str) (l: lib.genAttrs l (_: true)) (types.attrsOf types.bool);
      default = { };
      description = "Supported filesystem types (names, or a set of name = enabled).";
    };

    boot.tmp = {
      cleanOnBoot = mkOption { type = types.bool; default = false; description = "Delete all files in /tmp during boot."; };
      useTmpfs = mkOption { type = types.bool; default = false; description = "Mount a tmpfs on /tmp during boot."; };
      tmpfsSize = mkOption { type = types.oneOf [ types.str types.ints.positive ]; default = "50%"; description = "Size of the /tmp tmpfs."; };
      tmpfsHugeMemoryPages = mkOption { type = types.enum [ "never" "always" "within_size" "advise" ]; default = "never"; description = "Huge pages for the /tmp tmpfs."; };
    };

    systemd.mounts = mkOption { type = types.listOf mountUnitOpts; default = [ ]; description = "Mount units."; };

    boot.initrd.enable = mkOption { type = types.bool; default = !config.boot.isContainer; description = "Whether to build and use an initrd."; };
    boot.initrd.checkJournalingFS = mkOption { type = types.bool; default = true; description = "Whether to fsck journaling filesystems (ext3/4, xfs, ...) before mounting them."; };
    boot.initrd.systemd.enable = mkOption { type = types.bool; default = true; description = "Use systemd in the initrd (the default since 26.05)."; };
    boot.initrd.systemd.mounts = mkOption { type = types.listOf mountUnitOpts; default = [ ]; description = "Mount units of the systemd initrd."; };
    boot.initrd.systemd.suppressedUnits = mkOption { type = types.listOf types.str; default = [ ]; description = "Upstream units not copied into the initrd."; };
    boot.initrd.postMountCommands = mkOption { type = types.lines; default = ""; description = "Commands run after mounting in the scripted initrd."; };
  };

  config = {
    surface.provenance = [
      (provenance "nixos/modules/tasks/filesystems.nix" [ "fileSystems" "boot.specialFileSystems" "boot.devShmSize" "boot.devSize" "boot.runSize" "boot.supportedFilesystems" ] { notes = "/etc/fstab is rendered as upstream (dependency order, escapes, fsck pass); swap devices, the early mount script and the initrd fstab are not modelled."; })
      (provenance "nixos/modules/system/boot/stage-1.nix" [ "fileSystems.<name>.neededForBoot" "fileSystems.<name>.encrypted" "boot.initrd.enable" "boot.initrd.checkJournalingFS" "boot.initrd.postMountCommands" ] { reread = false; notes = "Only the options these modules read."; })
      (provenance "nixos/modules/system/boot/tmp.nix" [ "boot.tmp" ] { })
      (provenance "nixos/modules/config/swap.nix" [ "swapDevices" ] { reread = false; notes = "Declarations only (disko sets them); no swap units are rendered."; })
      (provenance "nixos/modules/system/boot/systemd/initrd.nix" [ "boot.initrd.systemd.enable" "boot.initrd.systemd.mounts" "boot.initrd.systemd.suppressedUnits" ] { reread = false; notes = "Only the options these modules read."; })
      (provenance "nixos/modules/system/boot/systemd.nix" [ "systemd.mounts" ] { reread = false; })
      (provenance "nixos/modules/virtualisation/container-config.nix" [ "boot.isContainer" "boot.isNspawnContainer" ] { reread = false; })
    ];

    # Synced with systemd's mount_table (filesystems.nix), /run/wrappers from security/wrappers.
    boot.specialFileSystems = {
      "/run/keys" = { fsType = "ramfs"; options = [ "nosuid" "nodev" "mode=750" ]; };
      # Setuid wrappers must stay executable.
      "/run/wrappers" = { fsType = "tmpfs"; options = [ "nodev" "mode=755" "size=50%" ]; };
    } // lib.optionalAttrs (!config.boot.isContainer) {
      "/sys" = { fsType = "sysfs"; options = [ "nosuid" "noexec" "nodev" ]; };
    } // lib.optionalAttrs (!config.boot.isNspawnContainer) {
      "/dev" = { fsType = "devtmpfs"; options = [ "nosuid" "strictatime" "mode=755" "size=${config.boot.devSize}" ]; };
      "/dev/pts" = { fsType = "devpts"; options = [ "nosuid" "noexec" "mode=620" "ptmxmode=0666" "gid=${toString config.ids.gids.tty}" ]; };
      "/dev/shm" = { fsType = "tmpfs"; options = [ "nosuid" "nodev" "strictatime" "mode=1777" "size=${config.boot.devShmSize}" ]; };
      "/proc" = { fsType = "proc"; options = [ "nosuid" "noexec" "nodev" ]; };
      "/run" = { fsType = "tmpfs"; options = [ "nosuid" "nodev" "strictatime" "mode=755" "size=${config.boot.runSize}" ]; };
    };

    boot.supportedFilesystems = map (fs: fs.fsType) fileSystems;

    systemd.mounts = mkIf config.boot.tmp.useTmpfs [
      {
        what = "tmpfs";
        where = "/tmp";
        type = "tmpfs";
        mountConfig.Options = lib.concatStringsSep "," [ "mode=1777" "strictatime" "rw" "nosuid" "nodev" "size=${toString config.boot.tmp.tmpfsSize}" "huge=${config.boot.tmp.tmpfsHugeMemoryPages}" ];
      }
    ];
    systemd.tmpfiles.rules = lib.optional config.boot.tmp.cleanOnBoot "D! /tmp 1777 root root"
      ++ [ "d /run/keys 0750 root ${toString config.ids.gids.keys}" "z /run/keys 0750 root ${toString config.ids.gids.keys}" ];

    environment.etc.fstab.text = ''
      # This is a generated file.  Do not edit!
      #
      # To make changes, edit the fileSystems and swapDevices NixOS options
      # in your /etc/nixos/configuration.nix file.
      #
      # <file system> <mount point>   <type>  <options>       <dump>  <pass>

      # Filesystems.
      ${fstabEntries fileSystems}

    '';

    assertions =
      let
        ls = sep: lib.concatMapStringsSep sep (x: x.mountPoint);
        resizableFSes = [ "ext3" "ext4" "btrfs" "xfs" ];
        notAutoResizable = fs: fs.autoResize && !(lib.elem fs.fsType resizableFSes);
      in
      [
        { assertion = !(sorted ? cycle); message = "The ‘fileSystems’ option can't be topologically sorted: mountpoint dependency path ${ls " -> " sorted.cycle} loops to ${ls ", " sorted.loops}"; }
        { assertion = !(lib.any notAutoResizable fileSystems); message = let fs = lib.head (lib.filter notAutoResizable fileSystems); in "Mountpoint '${fs.mountPoint}': 'autoResize = true' is not supported for 'fsType = \"${fs.fsType}\"'"; }
        { assertion = !(lib.any (fs: fs.formatOptions != null) fileSystems); message = "'fileSystems.<name>.formatOptions' has been removed, since\nsystemd-makefs does not support any way to provide formatting\noptions.\n"; }
        # stage-1.nix
        { assertion = !config.boot.initrd.enable || lib.any (fs: fs.mountPoint == "/") fileSystems; message = "The ‘fileSystems’ option does not specify your root file system."; }
      ]
      ++ map (fs: {
        assertion = fs.label != null -> fs.device == "/dev/disk/by-label/${escape fs.label}";
        message = "The filesystem with mount point ${fs.mountPoint} has its label and device set to inconsistent values:\n  label: ${toString fs.label}\n  device: ${toString fs.device}\n'filesystems.<name>.label' and 'filesystems.<name>.device' are mutually exclusive. Please set only one.\n";
      }) fileSystems;
  };
}
