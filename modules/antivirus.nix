# The recipe's PCI joke, done properly: ClamAV actually running, updating and scanning.
{ config, lib, ... }:
let
  inherit (lib) mkOption types mkIf mkDefault mkMerge;
  h = import ../lib/module-helpers.nix { inherit lib; };
  cfg = config.paranoid.antivirus;
  # Read with a default: nixosModules.antivirus may be imported without the amnesia module.
  amnesia = config.paranoid.amnesia or { enable = false; directories = [ ]; };
  persisted = lib.any (d: lib.elem (if builtins.isString d then d else d.directory) [ "/var/lib" "/var/lib/clamav" ]) amnesia.directories;
in
{
  options.paranoid.antivirus.mode = mkOption {
    type = types.enum [ "off" "installed" "running" ];
    default = "off";
    description = ''
      - `off`: nothing.
      - `installed`: clamav in the system path, the letter of "an antivirus is installed" and nothing more.
      - `running`: clamd, freshclam (signature updates, needs egress to database.clamav.net) and a daily
        clamdscan of /home, /var/lib, /tmp, /etc and /var/tmp. Costs about 1 GiB of RAM for clamd's signatures.
    '';
  };

  config = mkMerge [
    (mkIf (cfg.mode != "off") {
      environment.systemPackages = [ config.services.clamav.package ];
    })
    (mkIf (cfg.mode == "running") {
      services.clamav.daemon.enable = mkDefault true;
      services.clamav.updater.enable = mkDefault true;
      services.clamav.scanner.enable = mkDefault true;
      warnings = lib.optional (amnesia.enable && !persisted) (h.guard "antivirus-signatures-lost" ''
        paranoid.antivirus.mode = "running" with paranoid.amnesia: /var/lib/clamav is not persisted, so freshclam
        downloads every signature again after each boot. Add "/var/lib/clamav" to the persisted directories.'');
    })
  ];
}
