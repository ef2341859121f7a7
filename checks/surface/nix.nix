# Nix: nix.conf (config/nix.nix), the daemon (services/system/nix-daemon.nix), channels
# (config/nix-channel.nix), the flake registry (config/nix-flakes.nix), remote builders
# (config/nix-remote-build.nix), garbage collection and store optimisation (services/misc/nix-gc.nix,
# nix-optimise.nix) and serving the store over SSH (services/misc/nix-ssh-serve.nix), with the
# renames of 20.03 and 22.05. The `nix` namespace is declared in full.
{ config, lib, pkgs, ... }:
let
  inherit (lib) mkOption types mkIf mkMerge;
  render = import ../../lib/render.nix { inherit lib; };
  cfg = config.nix;

  confAtom = types.nullOr (types.oneOf [ types.bool types.int types.float types.str types.path types.package ]) // { description = "Nix config atom (null, bool, int, float, str, path or package)"; };
  setting = type: default: description: mkOption { inherit type default description; };
  renamed = since: from: to: lib.mkRenamedOptionModuleWith { sinceRelease = since; from = [ "nix" ] ++ from; to = to; };
  legacyConfMappings = {
    allowedUsers = "allowed-users";
    autoOptimiseStore = "auto-optimise-store";
    binaryCachePublicKeys = "trusted-public-keys";
    binaryCaches = "substituters";
    buildCores = "cores";
    maxJobs = "max-jobs";
    requireSignedBinaryCaches = "require-sigs";
    sandboxPaths = "extra-sandbox-paths";
    systemFeatures = "system-features";
    trustedBinaryCaches = "trusted-substituters";
    trustedUsers = "trusted-users";
    useSandbox = "sandbox";
  };
  defaultSystemFeatures = [ "nixos-test" "benchmark" "big-parallel" "kvm" ]
    ++ lib.optionals (pkgs.stdenv.hostPlatform ? gcc.arch) [ "gccarch-${pkgs.stdenv.hostPlatform.gcc.arch}" ];

  scheduled = name: default: delay: {
    automatic = mkOption { type = types.bool; default = false; description = "Run ${name} automatically at `dates`."; };
    dates = mkOption { type = types.either types.singleLineStr (types.listOf types.str); apply = lib.toList; inherit default; description = "When ${name} runs (systemd.time(7) calendar events)."; };
    persistent = mkOption { type = types.bool; default = true; description = "Catch up on runs missed while the machine was off."; };
    randomizedDelaySec = mkOption { type = types.singleLineStr; default = delay; description = "Random delay before each run."; };
  };

  sshServeCommand = if cfg.sshServe.protocol == "ssh" then "nix-store --serve ${lib.optionalString cfg.sshServe.write "--write"}" else "nix-daemon --stdio";

  provenance = upstream: options: extra: { inherit upstream options; repo = "Swarsel/nixpkgs"; commit = "4aa6836a648ca76c68866decf0c8965e36ec2a3b"; surface = "nix.nix"; } // extra;
in
{
  imports = [
    (renamed 2003 [ "useChroot" ] [ "nix" "useSandbox" ])
    (renamed 2003 [ "chrootDirs" ] [ "nix" "sandboxPaths" ])
    (renamed 2205 [ "daemonIONiceLevel" ] [ "nix" "daemonIOSchedPriority" ])
    (renamed 2211 [ "readOnlyStore" ] [ "boot" "readOnlyNixStore" ])
    (lib.mkRemovedOptionModule [ "nix" "daemonNiceLevel" ] "Consider nix.daemonCPUSchedPolicy instead.")
  ] ++ lib.mapAttrsToList (old: new: renamed 2205 [ old ] [ "nix" "settings" new ]) legacyConfMappings;

  options.boot.readOnlyNixStore = mkOption { type = types.bool; default = true; description = "Whether the Nix store is mounted read-only (system/boot/readonly-mountpoint, stage-2)."; };

  options.nix = {
    # nix-daemon.nix
    enable = mkOption { type = types.bool; default = true; description = "Whether to run the Nix daemon and install the Nix tools."; };
    package = mkOption { type = types.package; default = pkgs.nix; defaultText = lib.literalExpression "pkgs.nix"; description = "The Nix package."; };
    daemonCPUSchedPolicy = mkOption { type = types.enum [ "other" "batch" "idle" ]; default = "other"; description = "The daemon's CPU scheduling policy."; };
    daemonIOSchedClass = mkOption { type = types.enum [ "best-effort" "idle" ]; default = "best-effort"; description = "The daemon's I/O scheduling class."; };
    daemonIOSchedPriority = mkOption { type = types.int; default = 4; description = "The daemon's I/O scheduling priority."; };
    daemonUser = mkOption { type = types.str; default = "root"; description = "User running the Nix daemon (not root: an unprivileged daemon)."; };
    daemonGroup = mkOption { type = types.str; default = "root"; description = "Group running the Nix daemon."; };
    envVars = mkOption { type = types.attrs; default = { }; internal = true; description = "Environment variables used by Nix."; };
    nrBuildUsers = mkOption { type = types.int; description = "Number of nixbld build users."; };
    # nix.nix
    checkAllErrors = mkOption { type = types.bool; default = true; description = "Check nix.conf for any parse error (not only unknown settings)."; };
    checkConfig = mkOption { type = types.bool; default = true; description = "Validate nix.conf at build time."; };
    extraOptions = mkOption { type = types.lines; default = ""; description = "Extra lines appended to nix.conf (last assignment wins)."; };
    settings = mkOption {
      default = { };
      description = "Configuration for nix.conf (nix.conf(5)).";
      type = types.submodule {
        freeformType = types.attrsOf (types.either confAtom (types.listOf confAtom));
        options = {
          allowed-users = setting (types.listOf types.str) [ "*" ] "Users (or @groups) allowed to connect to the daemon; trusted users always are.";
          auto-optimise-store = setting types.bool false "Hard-link identical files in the store.";
          cores = setting types.int 0 "Cores per build job; 0 means all.";
          extra-sandbox-paths = setting (types.listOf types.str) [ ] "Extra paths visible in the build sandbox.";
          max-jobs = setting (types.either types.int (types.enum [ "auto" ])) "auto" "Maximum number of parallel build jobs.";
          require-sigs = setting types.bool true "Require signatures on substituted paths.";
          sandbox = setting (types.either types.bool (types.enum [ "relaxed" ])) true "Build in a sandbox.";
          substituters = mkOption { type = types.listOf types.str; description = "Binary caches to substitute from."; };
          # Exposed here and defined in config below (upstream's comment): a host's list adds to it.
          system-features = mkOption { type = types.listOf types.str; default = defaultSystemFeatures; description = "Features this machine's builders offer."; };
          trusted-public-keys = mkOption { type = types.listOf types.str; description = "Keys whose signatures are trusted."; };
          trusted-substituters = setting (types.listOf types.str) [ ] "Caches unprivileged users may select.";
          trusted-users = mkOption { type = types.listOf types.str; description = "Users with additional rights over the daemon (effectively root)."; };
        };
      };
    };
    # nix-channel.nix
    channel.enable = mkOption { type = types.bool; default = true; description = "Whether nix-channel and channel-based NIX_PATH entries are available."; };
    nixPath = mkOption {
      type = types.listOf types.str;
      default = if cfg.channel.enable then [ "nixpkgs=/nix/var/nix/profiles/per-user/root/channels/nixos" "nixos-config=/etc/nixos/configuration.nix" "/nix/var/nix/profiles/per-user/root/channels" ] else [ ];
      description = "The default NIX_PATH.";
    };
    # nix-flakes.nix
    registry = mkOption {
      default = { };
      description = "A system-wide flake registry.";
      type = types.attrsOf (types.submodule ({ config, name, ... }:
        let referenceAttrs = types.attrsOf (types.oneOf [ types.str types.int types.bool types.path types.package ]); in {
          options = {
            exact = mkOption { type = types.bool; default = true; description = "Whether `from` must match exactly."; };
            flake = mkOption { type = types.nullOr types.attrs; default = null; description = "The flake input `from` is rewritten to."; };
            from = mkOption { type = referenceAttrs; description = "The flake reference to rewrite."; };
            to = mkOption { type = referenceAttrs; description = "The flake reference `from` is rewritten to."; };
          };
          config = {
            from = lib.mkDefault { id = name; type = "indirect"; };
            to = mkIf (config.flake != null) (lib.mkDefault ({ path = config.flake.outPath; type = "path"; } // lib.filterAttrs (n: _: n == "lastModified" || n == "rev" || n == "narHash") config.flake));
          };
        }));
    };
    # nix-remote-build.nix
    buildMachines = mkOption {
      default = [ ];
      description = "Machines that build for this one (with distributedBuilds).";
      type = types.listOf (types.submodule {
        options = {
          hostName = mkOption { type = types.str; description = "The build machine's host name."; };
          mandatoryFeatures = mkOption { type = types.listOf types.str; default = [ ]; description = "Features a derivation must require to use this builder."; };
          maxJobs = mkOption { type = types.int; default = 1; description = "Concurrent jobs on the builder."; };
          protocol = mkOption { type = types.enum [ null "ssh" "ssh-ng" ]; default = "ssh"; description = "Protocol to the builder."; };
          publicHostKey = mkOption { type = types.nullOr types.str; default = null; description = "The builder's base64 host key."; };
          speedFactor = mkOption { type = types.int; default = 1; description = "Relative speed of the builder."; };
          sshKey = mkOption { type = types.nullOr types.str; default = null; description = "Private key used to log in to the builder."; };
          sshUser = mkOption { type = types.nullOr types.str; default = null; description = "User to log in as on the builder."; };
          supportedFeatures = mkOption { type = types.listOf types.str; default = [ ]; description = "Features the builder supports."; };
          system = mkOption { type = types.nullOr types.str; default = null; description = "The system type the builder builds for."; };
          systems = mkOption { type = types.listOf types.str; default = [ ]; description = "The system types the builder builds for."; };
        };
      });
    };
    distributedBuilds = mkOption { type = types.bool; default = false; description = "Whether to build on buildMachines."; };
    # nix-gc.nix and nix-optimise.nix
    gc = scheduled "the garbage collector" [ "03:15" ] "0" // {
      options = mkOption { type = types.singleLineStr; default = ""; description = "Options given to nix-collect-garbage."; };
    };
    optimise = scheduled "the store optimiser" [ "03:45" ] "1800";
    # nix-ssh-serve.nix
    sshServe = {
      enable = mkOption { type = types.bool; default = false; description = "Serve the Nix store over SSH (user nix-ssh, forced command)."; };
      keys = mkOption { type = types.listOf types.str; default = [ ]; description = "SSH public keys allowed to use the store."; };
      protocol = mkOption { type = types.enum [ "ssh" "ssh-ng" ]; default = "ssh"; description = "The Nix-over-SSH protocol."; };
      trusted = mkOption { type = types.bool; default = false; description = "Whether nix-ssh is a trusted user (effectively root)."; };
      write = mkOption { type = types.bool; default = false; description = "Whether clients may write to the store."; };
    };
  };

  config = mkMerge [
    {
      surface.provenance = [
        (provenance "nixos/modules/config/nix.nix" [ "nix.settings" "nix.extraOptions" "nix.checkConfig" "nix.checkAllErrors" "nix.useChroot" "nix.chrootDirs" "nix.allowedUsers" "nix.trustedUsers" "nix.useSandbox" "nix.binaryCaches" "nix.trustedBinaryCaches" "nix.binaryCachePublicKeys" "nix.requireSignedBinaryCaches" "nix.autoOptimiseStore" "nix.maxJobs" "nix.buildCores" "nix.sandboxPaths" "nix.systemFeatures" ] { notes = "nix.conf is rendered by lib/render.nix (settings, extra-* settings, then extraOptions)."; })
        (provenance "nixos/modules/services/system/nix-daemon.nix" [ "nix.enable" "nix.package" "nix.daemonCPUSchedPolicy" "nix.daemonIOSchedClass" "nix.daemonIOSchedPriority" "nix.daemonUser" "nix.daemonGroup" "nix.envVars" "nix.nrBuildUsers" "nix.daemonIONiceLevel" "nix.readOnlyStore" "nix.daemonNiceLevel" "boot.readOnlyNixStore" ] { notes = "The nixbld build users are not created offline (no login, no credential; they would triple every evaluation's cost); the unprivileged daemon (daemonUser != root) is declared, its units are not modelled."; })
        (provenance "nixos/modules/config/nix-channel.nix" [ "nix.channel" "nix.nixPath" ] { })
        (provenance "nixos/modules/config/nix-flakes.nix" [ "nix.registry" ] { })
        (provenance "nixos/modules/config/nix-remote-build.nix" [ "nix.buildMachines" "nix.distributedBuilds" ] { })
        (provenance "nixos/modules/services/misc/nix-gc.nix" [ "nix.gc" ] { })
        (provenance "nixos/modules/services/misc/nix-optimise.nix" [ "nix.optimise" ] { })
        (provenance "nixos/modules/services/misc/nix-ssh-serve.nix" [ "nix.sshServe" ] { })
      ];
      assertions = [
        { assertion = cfg.gc.automatic -> cfg.enable; message = "nix.gc.automatic requires nix.enable"; }
        { assertion = cfg.optimise.automatic -> cfg.enable; message = "nix.optimise.automatic requires nix.enable"; }
      ];
    }
    (mkIf cfg.enable {
      nix.settings = {
        trusted-users = [ "root" ];
        substituters = lib.mkAfter [ "https://cache.nixos.org/" ];
        trusted-public-keys = [ "cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY=" ];
        system-features = defaultSystemFeatures;
        sandbox-fallback = false;
        builders = mkIf (!cfg.distributedBuilds) null;
      };
      nix.nrBuildUsers = lib.mkDefault (if cfg.settings.auto-allocate-uids or false then 0 else lib.max 32 (if cfg.settings.max-jobs == "auto" then 0 else cfg.settings.max-jobs));
      # nixbld1..nrBuildUsers are not created offline: 32 accounts without login or credential
      # would triple the cost of every evaluation (see the provenance note).
      environment.etc."nix/nix.conf".text = render.nixConf cfg;
      environment.etc."nix/registry.json".text = builtins.toJSON { flakes = lib.mapAttrsToList (_: v: { inherit (v) from to exact; }) cfg.registry; version = 2; };
      environment.etc."nix/machines" = mkIf (cfg.buildMachines != [ ]) {
        text = lib.concatMapStrings (m: lib.concatStringsSep " " [
          "${lib.optionalString (m.protocol != null) "${m.protocol}://"}${lib.optionalString (m.sshUser != null) "${m.sshUser}@"}${m.hostName}"
          (if m.system != null then m.system else if m.systems != [ ] then lib.concatStringsSep "," m.systems else "-")
          (if m.sshKey != null then m.sshKey else "-")
          (toString m.maxJobs)
          (toString m.speedFactor)
          (let res = m.supportedFeatures ++ m.mandatoryFeatures; in if res == [ ] then "-" else lib.concatStringsSep "," res)
          (if m.mandatoryFeatures == [ ] then "-" else lib.concatStringsSep "," m.mandatoryFeatures)
          (if m.publicHostKey != null then m.publicHostKey else "-")
        ] + "\n") cfg.buildMachines;
      };
      assertions = [ { assertion = !(lib.any (m: m.system == null && m.systems == [ ]) cfg.buildMachines); message = "At least one system type (via <varname>system</varname> or <varname>systems</varname>) must be set for every build machine."; } ];
      environment.systemPackages = [ cfg.package ];
      systemd.services.nix-daemon = {
        description = "Nix Daemon";
        path = [ cfg.package ];
        stopIfChanged = false;
        serviceConfig = {
          ExecStart = "@${cfg.package}/bin/nix-daemon nix-daemon --daemon";
          CPUSchedulingPolicy = cfg.daemonCPUSchedPolicy;
          IOSchedulingClass = cfg.daemonIOSchedClass;
          IOSchedulingPriority = cfg.daemonIOSchedPriority;
        };
      };
      systemd.sockets.nix-daemon = {
        listenStreams = [ "/nix/var/nix/daemon-socket/socket" ];
        wantedBy = [ "sockets.target" ];
      };
      systemd.tmpfiles.rules = [
        "d  /nix/var                           0755 root root - -"
        "L+ /nix/var/nix/gcroots/booted-system 0755 root root - /run/booted-system"
        "R! /nix/var/nix/gcroots/tmp           -    -    -    - -"
        "R! /nix/var/nix/temproots             -    -    -    - -"
      ] ++ lib.optional cfg.channel.enable "f /root/.nix-channels - - - - https://channels.nixos.org/nixos-unstable nixos\\n";
      systemd.services.nix-gc = {
        description = "Nix Garbage Collector";
        restartIfChanged = false;
        script = "exec ${cfg.package.out}/bin/nix-collect-garbage ${cfg.gc.options}";
        serviceConfig.Type = "oneshot";
        startAt = lib.optionals cfg.gc.automatic cfg.gc.dates;
      };
      systemd.timers.nix-gc = mkIf cfg.gc.automatic { timerConfig = { Persistent = cfg.gc.persistent; RandomizedDelaySec = cfg.gc.randomizedDelaySec; }; };
      systemd.services.nix-optimise = {
        description = "Nix Store Optimiser";
        restartIfChanged = false;
        serviceConfig = { CPUSchedulingPolicy = "idle"; ExecStart = "${lib.getExe' cfg.package "nix-store"} --optimise"; IOSchedulingClass = "idle"; Nice = 19; };
        startAt = lib.optionals cfg.optimise.automatic cfg.optimise.dates;
        unitConfig = { ConditionACPower = true; ConditionPathIsReadWrite = "/nix/var/nix/daemon-socket"; };
      };
      systemd.timers.nix-optimise = mkIf cfg.optimise.automatic { timerConfig = { Persistent = cfg.optimise.persistent; RandomizedDelaySec = cfg.optimise.randomizedDelaySec; }; };
    })
    (mkIf cfg.sshServe.enable {
      nix.settings.trusted-users = mkIf cfg.sshServe.trusted [ "nix-ssh" ];
      services.openssh.enable = true;
      services.openssh.extraConfig = ''
        Match User nix-ssh
          AllowAgentForwarding no
          AllowTcpForwarding no
          PermitTTY no
          PermitTunnel no
          X11Forwarding no
          ForceCommand ${cfg.package.out}/bin/${sshServeCommand}
        Match All
      '';
      users.groups.nix-ssh = { };
      users.users.nix-ssh = {
        description = "Nix SSH store user";
        group = "nix-ssh";
        isSystemUser = true;
        shell = pkgs.bashInteractive;
        openssh.authorizedKeys.keys = cfg.sshServe.keys;
      };
    })
  ];
}
