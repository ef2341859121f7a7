# The Nix daemon and nix.conf (nixos/modules/config/nix.nix, nix-channel.nix,
# services/system/nix-daemon.nix): RFC 42 nix.settings, channels, and the 22.05 renames.
{ config, lib, pkgs, ... }:
let
  inherit (lib) mkOption types mkIf;
  render = import ../../lib/render.nix { inherit lib; };
  cfg = config.nix;

  confAtom = types.nullOr (types.oneOf [ types.bool types.int types.float types.str types.path types.package ]) // { description = "Nix config atom (null, bool, int, float, str, path or package)"; };
  setting = type: default: description: mkOption { inherit type default description; };
  renamed = from: to: lib.mkRenamedOptionModuleWith { sinceRelease = 2205; from = [ "nix" from ]; to = [ "nix" "settings" to ]; };
in
{
  imports = [
    (renamed "allowedUsers" "allowed-users")
    (renamed "trustedUsers" "trusted-users")
    (renamed "useSandbox" "sandbox")
    (renamed "binaryCaches" "substituters")
    (renamed "trustedBinaryCaches" "trusted-substituters")
    (renamed "binaryCachePublicKeys" "trusted-public-keys")
    (renamed "requireSignedBinaryCaches" "require-sigs")
    (renamed "autoOptimiseStore" "auto-optimise-store")
    (renamed "maxJobs" "max-jobs")
    (renamed "buildCores" "cores")
    (renamed "sandboxPaths" "extra-sandbox-paths")
    (renamed "systemFeatures" "system-features")
  ];

  options.nix = {
    enable = mkOption { type = types.bool; default = true; description = "Whether to run the Nix daemon and install the Nix tools."; };
    package = mkOption { type = types.package; default = pkgs.nix; description = "The Nix package."; };
    checkConfig = mkOption { type = types.bool; default = true; description = "Validate nix.conf at build time."; };
    extraOptions = mkOption { type = types.lines; default = ""; description = "Extra lines appended to nix.conf (last assignment wins)."; };
    nixPath = mkOption {
      type = types.listOf types.str;
      default = if config.nix.channel.enable then [ "nixpkgs=/nix/var/nix/profiles/per-user/root/channels/nixos" "nixos-config=/etc/nixos/configuration.nix" "/nix/var/nix/profiles/per-user/root/channels" ] else [ ];
      description = "The default NIX_PATH.";
    };
    channel.enable = mkOption { type = types.bool; default = true; description = "Whether nix-channel and channel-based NIX_PATH entries are available."; };

    settings = mkOption {
      default = { };
      description = "Configuration for nix.conf (nix.conf(5)).";
      type = types.submodule {
        freeformType = types.attrsOf (types.either confAtom (types.listOf confAtom));
        options = {
          max-jobs = setting (types.either types.int (types.enum [ "auto" ])) "auto" "Maximum number of parallel build jobs.";
          cores = setting types.int 0 "Cores per build job; 0 means all.";
          sandbox = setting (types.either types.bool (types.enum [ "relaxed" ])) true "Build in a sandbox.";
          extra-sandbox-paths = setting (types.listOf types.str) [ ] "Extra paths visible in the build sandbox.";
          substituters = mkOption { type = types.listOf types.str; description = "Binary caches to substitute from."; };
          trusted-substituters = setting (types.listOf types.str) [ ] "Caches unprivileged users may select.";
          require-sigs = setting types.bool true "Require signatures on substituted paths.";
          trusted-public-keys = mkOption { type = types.listOf types.str; description = "Keys whose signatures are trusted."; };
          trusted-users = mkOption { type = types.listOf types.str; description = "Users with additional rights over the daemon (effectively root)."; };
          system-features = mkOption { type = types.listOf types.str; description = "Features this machine's builders offer."; };
          allowed-users = setting (types.listOf types.str) [ "*" ] "Users (or @groups) allowed to connect to the daemon; trusted users always are.";
          auto-optimise-store = setting types.bool false "Hard-link identical files in the store.";
        };
      };
    };
  };

  config = mkIf cfg.enable {
    nix.settings = {
      trusted-users = [ "root" ];
      substituters = lib.mkAfter [ "https://cache.nixos.org/" ];
      trusted-public-keys = [ "cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY=" ];
      system-features = lib.mkDefault [ "nixos-test" "benchmark" "big-parallel" "kvm" ];
      nix-path = mkIf (!cfg.channel.enable) (lib.mkDefault "");
    };
    environment.etc."nix/nix.conf".text = render.nixConf cfg;
    environment.systemPackages = [ cfg.package ];
    systemd.services.nix-daemon = {
      description = "Nix Daemon";
      serviceConfig.ExecStart = "@${cfg.package}/bin/nix-daemon nix-daemon --daemon";
    };
  };
}
