# Amnesia: / is a tmpfs that starts empty at every boot; impermanence brings back only what is
# listed, from persistPath on a real disk.
{ config, lib, options, utils, ... }:
let
  inherit (lib) mkOption types mkIf mkDefault mkMerge;
  h = import ../lib/module-helpers.nix { inherit lib; };
  cfg = config.paranoid.amnesia;
  fileSystems = lib.filterAttrs (_: fs: fs.enable) config.fileSystems;
  root = fileSystems."/" or null;
  backing = h.backingMountOf fileSystems cfg.persistPath;
  hasImpermanence = options ? environment.persistence;
  entry = types.either types.str (types.attrsOf types.anything);
in
{
  options.paranoid.amnesia = {
    enable = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Mount / as a tmpfs (empty at every boot) and persist only `directories` and `files`, bind
        mounted from `persistPath` by nix-community/impermanence; SSH host keys are generated
        straight into persistPath. Breaks: everything not listed is gone after a reboot, including
        `passwd` changes (use users.mutableUsers = false) and anything a service writes outside
        the persisted paths. Needs a disk layout with /nix (or persistPath) on a real filesystem:
        usually a reinstall. Never implied by a profile.
      '';
    };
    rootSize = mkOption { type = types.str; default = "2G"; example = "512M"; description = "Size cap of the tmpfs root; /tmp and unpersisted /var share it."; };
    persistPath = mkOption {
      type = types.str;
      default = "/nix/persist";
      description = "Where persistent state lives. Must be on a disk filesystem mounted in the initrd (/nix is).";
    };
    directories = mkOption {
      type = types.listOf entry;
      default = [ "/etc/nixos" "/srv" "/var/lib" "/var/log" ];
      description = ''
        Directories kept across reboots (impermanence syntax: a path or { directory; user; group; mode; }).
        Setting this replaces the defaults; to add one, extend
        `environment.persistence."<persistPath>".directories` instead, which impermanence merges.
      '';
    };
    files = mkOption {
      type = types.listOf entry;
      default = [ "/etc/machine-id" ];
      description = "Files kept across reboots (impermanence syntax). The machine id keeps journal and service identities stable.";
    };
  };

  config = mkIf cfg.enable (mkMerge [
    {
      fileSystems."/" = {
        # The device follows from fsType (NixOS defaults it to "tmpfs").
        fsType = mkDefault "tmpfs";
        # mode=755: a tmpfs defaults to 1777, a world-writable /.
        options = [ "defaults" "size=${cfg.rootSize}" "mode=755" ];
      };
      paranoid.ssh.hostKeys.directory = mkDefault "${cfg.persistPath}/etc/ssh";

      assertions = [
        {
          assertion = hasImpermanence;
          message = h.guard "amnesia-no-impermanence" ''
            paranoid.amnesia.enable = true needs nix-community/impermanence's NixOS module, which is not imported.
            Fix: import paranoid.nixosModules.all (which brings it), or add impermanence.nixosModules.impermanence
            to imports, or set paranoid.amnesia.enable = false.'';
        }
        {
          assertion = root != null && root.fsType == "tmpfs";
          message = h.guard "amnesia-root-not-tmpfs" ''
            paranoid.amnesia.enable = true expects / on a tmpfs, but fileSystems."/" is
            ${if root == null then "not declared" else "${root.fsType} on ${toString root.device}"} (usually from hardware-configuration.nix).
            Fix: remove that fileSystems."/" definition (paranoid supplies the tmpfs), or set paranoid.amnesia.enable = false.'';
        }
        {
          assertion = backing != null && backing.mountPoint != "/" && backing.fsType != "tmpfs";
          message = h.guard "amnesia-persist-on-tmpfs" ''
            paranoid.amnesia.persistPath = "${cfg.persistPath}" lies on ${if backing == null then "no declared filesystem" else "the ${backing.fsType} mounted at ${backing.mountPoint}"},
            which does not survive a reboot, so nothing would persist.
            Fix: declare the disk it lives on, e.g. fileSystems."/nix" = { device = "/dev/disk/by-label/nix"; fsType = "ext4"; },
            or point paranoid.amnesia.persistPath at a path on such a disk.'';
        }
        {
          assertion = backing == null || utils.fsNeededForBoot backing;
          message = h.guard "amnesia-persist-not-at-boot" ''
            paranoid.amnesia.persistPath = "${cfg.persistPath}" lies on fileSystems."${if backing == null then "" else backing.mountPoint}", which is not
            mounted in the initrd, so /var/log, /etc/machine-id and the SSH host keys would be missing early in boot.
            Fix: set fileSystems."${if backing == null then "" else backing.mountPoint}".neededForBoot = true.'';
        }
      ];
    }
    # Only when the option exists; without impermanence the assertion above explains instead.
    (lib.optionalAttrs hasImpermanence {
      environment.persistence.${cfg.persistPath} = {
        hideMounts = mkDefault true;
        inherit (cfg) directories files;
      };
    })
  ]);
}
