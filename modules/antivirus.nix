# The recipe's PCI joke, done properly: ClamAV actually running, updating and scanning.
{ config, lib, ... }:
let
  inherit (lib) mkOption types mkIf mkDefault mkMerge;
  h = import ../lib/module-helpers.nix { inherit lib; };
  cfg = config.paranoid.antivirus;
  posture = import ../lib/posture { inherit lib; render = import ../lib/render.nix { inherit lib; }; };
  # Whether the signatures survive a reboot, however the host persists them (a disk root,
  # paranoid.amnesia.directories, or environment.persistence written by hand).
  persisted = (posture.of { inherit config; }).accounts.survives "/var/lib/clamav/daily.cvd";
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
      warnings = lib.optional (!persisted) (h.guard "antivirus-signatures-lost" ''
        paranoid.antivirus.mode = "running", but /var/lib/clamav lies on a filesystem that is empty after each boot,
        so freshclam downloads every signature again. Add "/var/lib/clamav" to paranoid.amnesia.directories.'');
    })
  ];
}
