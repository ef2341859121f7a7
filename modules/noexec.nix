# noexec: nothing outside /nix/store can be executed directly. Every filesystem but the store's
# gets noexec,nosuid,nodev, and so does persistent storage, whose flags impermanence's plain
# bind mounts inherit.
#
# Why not per-bind options: impermanence's bind mounts take no options, and adding
# "bind,noexec" to a bind only works where mount(8) remounts it. Instead the source of every
# persisted bind, persistPath, is itself made a noexec bind mount of itself, mounted in the
# initrd before impermanence's binds; a plain bind mount copies its source mount's flags, so
# every persisted directory and file is noexec with no change to impermanence.
{ config, lib, pkgs, ... }:
let
  inherit (lib) mkOption types mkIf mkDefault mkMerge;
  h = import ../lib/module-helpers.nix { inherit lib; };
  cfg = config.paranoid.noexec;
  # Read with a default: nixosModules.noexec may be imported without the amnesia module.
  amnesia = config.paranoid.amnesia or { enable = false; };
  fileSystems = lib.filterAttrs (_: fs: fs.enable) config.fileSystems;
  storeMount = h.mountOf fileSystems "/nix/store";
  storeHardened = storeMount != null && !(lib.elem storeMount.mountPoint (h.storeMounts ++ cfg.exceptions));
  buildDir = config.nix.settings.build-dir or null;

  hardened = fs: !(lib.elem fs.mountPoint (h.storeMounts ++ cfg.exceptions));
  # Entries paranoid declares itself: a path bound onto itself, to carry the flags.
  selfBinds = lib.unique (cfg.extraPaths ++ lib.optional amnesia.enable amnesia.persistPath);
in
{
  options.paranoid.noexec = {
    enable = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Add `noexec,nosuid,nodev` to every filesystem except the one holding /nix/store (/,
        /boot, /home, persisted directories, /dev/shm, /run/user/<uid>, /tmp and /var/tmp where
        they are mounts),
        so only store paths (and symlinks into the store) can be executed. Breaks: running
        anything downloaded or built outside the store (`./configure`, pip wheels with native
        code, `go run`), services that unpack executables into /var/lib; scripts still run
        through an interpreter (`bash ./x.sh`). Needs /nix on its own filesystem unless / is a
        tmpfs. Nix builds stay in `nix.settings.build-dir` (on /nix).
      '';
    };
    extraPaths = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "/var/www" ];
      description = "More paths to make noexec. A path that is not already a filesystem becomes a bind mount of itself.";
    };
    exceptions = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "/var/lib/docker" ];
      description = "Mount points to leave executable (the escape hatch for one service that must exec from its state).";
    };
  };

  options.fileSystems = mkOption {
    type = types.attrsOf (types.submodule ({ config, ... }: {
      config.options = mkIf cfg.enable (mkMerge [
        # mount(8) reads options left to right and "defaults" means exec,suid,dev: the flags go last.
        (mkIf (hardened config) (lib.mkAfter h.hardeningFlags))
        (mkIf (lib.elem config.mountPoint selfBinds && config.fsType == "none" && config.device == config.mountPoint) [ "bind" ])
      ]);
    }));
  };

  config = mkIf cfg.enable {
    fileSystems = lib.genAttrs selfBinds (path: {
      device = mkDefault path;
      fsType = mkDefault "none";
      # Persistent storage must be in place before the initrd's bind mounts of /var/log etc.
      neededForBoot = mkDefault true;
    });

    boot.specialFileSystems."/dev/shm".options = lib.mkAfter h.hardeningFlags;

    # logind mounts each user's /run/user/<uid>, a tmpfs the user can write, with only
    # nosuid,nodev; make it noexec as soon as it is there.
    systemd.services."user-runtime-dir@".serviceConfig.ExecStartPost = [
      "${pkgs.util-linux}/bin/mount -o remount,noexec,nosuid,nodev /run/user/%i"
    ];

    # Builds must land on the store's (executable) filesystem, whatever Nix version.
    nix.settings.build-dir = mkIf config.nix.enable (mkDefault "/nix/var/nix/builds");

    assertions = [
      {
        assertion = !storeHardened;
        message = h.guard "noexec-store-on-root" ''
          paranoid.noexec.enable = true would put noexec on ${if storeMount == null then "" else storeMount.mountPoint}, which holds /nix/store:
          nothing on the system could run.
          Fix: put /nix on its own filesystem (fileSystems."/nix"), enable paranoid.amnesia (a tmpfs /), or add
          "${if storeMount == null then "/" else storeMount.mountPoint}" to paranoid.noexec.exceptions.'';
      }
      {
        assertion = !config.boot.tmp.useTmpfs;
        message = h.guard "noexec-tmpfs-tmp" ''
          paranoid.noexec.enable = true cannot add noexec to the /tmp mount unit that boot.tmp.useTmpfs creates.
          Fix: set boot.tmp.useTmpfs = false and declare fileSystems."/tmp" = { device = "tmpfs"; fsType = "tmpfs";
          options = [ "mode=1777" "size=25%" ]; }; paranoid.noexec hardens that one.'';
      }
      {
        # Reported once, as noexec-store-on-root, when the whole store is affected.
        assertion = storeHardened || buildDir == null || h.execAllowedAt fileSystems (toString buildDir);
        message = h.guard "noexec-build-dir" ''
          nix.settings.build-dir = "${toString buildDir}" lies on a noexec filesystem under paranoid.noexec.enable,
          so every Nix build would fail to run its builder.
          Fix: keep builds on the store's filesystem (the default "/nix/var/nix/builds"), or add that mount
          to paranoid.noexec.exceptions.'';
      }
    ];
  };
}
