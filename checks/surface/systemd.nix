# systemd units (nixos/lib/systemd-unit-options.nix, system/boot/systemd.nix): services with
# every option upstream declares (confinement from security/systemd-confinement.nix), sockets,
# timers, slices, targets and paths, tmpfiles (system/boot/systemd/tmpfiles.nix), and the unit
# text NixOS generates for a service. serviceConfig values merge like upstream's "systemd option"
# type: lists from several definitions concatenate, single values must agree.
{ config, lib, pkgs, options, ... }:
let
  inherit (lib) mkOption types mkIf mkMerge;
  # Whether any definition of a value might set `key` (functions and unknown shapes might): lets
  # a check over every unit skip the units nobody configures that way, without evaluating them.
  mentions = key: v:
    let t = v._type or null; in
    if lib.isFunction v then true
    else if t == "if" || t == "override" || t == "order" then mentions key v.content
    else if t == "merge" then lib.any (mentions key) v.contents
    else if t == "definition" then mentions key v.value
    else if builtins.isAttrs v then v ? ${key} || v ? imports || v ? config
    else true;
  # The services some definition might give `key`, as { name = service; } (those that exist).
  servicesDefinedWith = key:
    let names = lib.unique (lib.concatMap (d: lib.filter (n: mentions key d.${n}) (lib.attrNames d)) options.systemd.services.definitions); in
    lib.getAttrs (lib.filter (n: config.systemd.services ? ${n}) names) config.systemd.services;
  render = import ../../lib/render.nix { inherit lib; };
  toplevel = config;

  unitOption = lib.mkOptionType {
    name = "systemd option";
    description = "systemd option (bool, int, string, path, package or a list of them)";
    check = v: builtins.isBool v || builtins.isInt v || lib.isStringLike v || builtins.isList v || builtins.isFloat v;
    merge = loc: defs:
      let defs' = lib.filterOverrides defs; in
      if lib.any (def: builtins.isList def.value) defs' then lib.concatMap (def: lib.toList def.value) defs'
      else lib.mergeEqualOption loc defs';
  };
  unitNames = description: mkOption { type = types.listOf types.str; default = [ ]; inherit description; };

  # sharedOptions and commonUnitOptions (every kind of unit).
  commonUnitOptions = {
    enable = mkOption { type = types.bool; default = true; description = "If false, the unit is masked (a symlink to /dev/null)."; };
    overrideStrategy = mkOption { type = types.enum [ "asDropinIfExists" "asDropin" ]; default = "asDropinIfExists"; description = "Whether the configuration is a drop-in or a unit file."; };
    requiredBy = unitNames "Units that require this one.";
    upheldBy = unitNames "Units that keep this one running.";
    wantedBy = unitNames "Units that want this one (how a unit starts at boot).";
    aliases = unitNames "Aliases of the unit.";
    description = mkOption { type = types.singleLineStr; default = ""; description = "Description of the unit."; };
    documentation = mkOption { type = types.listOf types.str; default = [ ]; description = "Documentation URIs."; };
    requires = unitNames "Units started with this one; it stops when they stop or fail.";
    wants = unitNames "Units started with this one.";
    upholds = unitNames "Units kept running while this one runs.";
    after = unitNames "Units this one starts after.";
    before = unitNames "Units this one starts before.";
    bindsTo = unitNames "Like requires, and stopped when they disappear.";
    partOf = unitNames "Units whose stop or restart stops or restarts this one.";
    conflicts = unitNames "Units stopped when this one starts, and vice versa.";
    requisite = unitNames "Units that must already be started.";
    unitConfig = mkOption { type = types.attrsOf unitOption; default = { }; description = "[Unit] section entries."; };
    onFailure = unitNames "Units activated when this one fails.";
    onSuccess = unitNames "Units activated when this one succeeds.";
    startLimitBurst = mkOption { type = types.int; description = "Starts allowed within startLimitIntervalSec."; };
    startLimitIntervalSec = mkOption { type = types.int; description = "The start rate limit's interval."; };
    # stage2CommonUnitOptions
    restartTriggers = mkOption { type = types.listOf types.unspecified; default = [ ]; description = "Values whose change restarts the unit."; };
    reloadTriggers = mkOption { type = types.listOf unitOption; default = [ ]; description = "Values whose change reloads the unit."; };
  };

  serviceOpts = { name, config, ... }: {
    options = commonUnitOptions // {
      environment = mkOption { type = types.attrsOf (types.nullOr (types.oneOf [ types.str types.path types.package ])); default = { }; description = "Environment variables of the service's processes."; };
      path = mkOption { type = types.listOf (types.oneOf [ types.package types.str ]); default = [ ]; description = "Packages added to PATH."; };
      serviceConfig = mkOption { type = types.attrsOf unitOption; default = { }; description = "[Service] section entries (systemd.exec(5), systemd.service(5))."; };
      enableStrictShellChecks = mkOption { type = types.bool; default = toplevel.systemd.enableStrictShellChecks; description = "Run shellcheck on the generated scripts."; };
      script = mkOption { type = types.lines; default = ""; description = "Shell commands run as the main process."; };
      scriptArgs = mkOption { type = types.str; default = ""; description = "Arguments of the main process script."; };
      preStart = mkOption { type = types.lines; default = ""; description = "Shell commands run before the main process."; };
      postStart = mkOption { type = types.lines; default = ""; description = "Shell commands run after the main process started."; };
      reload = mkOption { type = types.lines; default = ""; description = "Shell commands run on reload."; };
      preStop = mkOption { type = types.lines; default = ""; description = "Shell commands run to stop the service."; };
      postStop = mkOption { type = types.lines; default = ""; description = "Shell commands run after the main process exited."; };
      jobScripts = mkOption { type = types.coercedTo types.path lib.singleton (types.listOf types.path); internal = true; default = [ ]; description = "The job scripts of the unit."; };
      # stage2ServiceOptions
      restartIfChanged = mkOption { type = types.bool; default = true; description = "Restart the unit when it changed on switch."; };
      reloadIfChanged = mkOption { type = types.bool; default = false; description = "Reload (not restart) the unit when it changed on switch."; };
      stopIfChanged = mkOption { type = types.bool; default = true; description = "Stop, then start (instead of restart) on change."; };
      startAt = mkOption { type = types.either types.str (types.listOf types.str); default = [ ]; apply = v: if builtins.isList v then v else [ v ]; description = "Calendar times to start the unit (a timer)."; };
      # security/systemd-confinement.nix
      confinement = {
        enable = mkOption { type = types.bool; default = false; description = "Run the service in a tmpfs chroot holding only its runtime closure."; };
        binSh = mkOption { type = types.nullOr types.path; default = toplevel.environment.binsh; description = "The program available as /bin/sh in the chroot (null: none)."; };
        fullUnit = mkOption { type = types.bool; default = false; description = "Include the closure of the whole unit file."; };
        mode = mkOption { type = types.enum [ "full-apivfs" "chroot-only" ]; default = "full-apivfs"; description = "full-apivfs: private /dev, /proc, /sys, /tmp in a user namespace; chroot-only: only the chroot."; };
        packages = mkOption { type = types.listOf (types.either types.str types.package); default = [ ]; description = "More store paths for the chroot's closure."; };
      };
    };
    config = mkMerge [
      (mkIf (config.preStart != "") { serviceConfig.ExecStartPre = [ "${pkgs.writeShellScript "${name}-pre-start" config.preStart}" ]; })
      (mkIf (config.script != "") { serviceConfig.ExecStart = "${pkgs.writeShellScript "${name}-start" config.script} ${config.scriptArgs}"; })
      (mkIf (config.postStart != "") { serviceConfig.ExecStartPost = [ "${pkgs.writeShellScript "${name}-post-start" config.postStart}" ]; })
      (mkIf (config.reload != "") { serviceConfig.ExecReload = "${pkgs.writeShellScript "${name}-reload" config.reload}"; })
      (mkIf (config.preStop != "") { serviceConfig.ExecStop = "${pkgs.writeShellScript "${name}-pre-stop" config.preStop}"; })
      (mkIf (config.postStop != "") { serviceConfig.ExecStopPost = "${pkgs.writeShellScript "${name}-post-stop" config.postStop}"; })
      (mkIf config.confinement.enable (let apivfs = lib.mkDefault (config.confinement.mode == "full-apivfs"); in {
        serviceConfig = {
          InaccessiblePaths = [ "-+/run/confinement/%n" ];
          MountAPIVFS = apivfs;
          PrivateDevices = apivfs;
          PrivateMounts = lib.mkDefault true;
          PrivateTmp = apivfs;
          PrivateUsers = apivfs;
          ProtectControlGroups = apivfs;
          ProtectKernelModules = apivfs;
          ProtectKernelTunables = apivfs;
          ReadOnlyPaths = [ "+/" ];
          RootDirectory = "/run/confinement/%n";
          RuntimeDirectory = [ "confinement/%n" ];
        };
      }))
    ];
  };

  unitType = extra: types.submodule { options = commonUnitOptions // extra; };
  socketType = unitType {
    listenStreams = mkOption { type = types.listOf types.str; default = [ ]; description = "ListenStream= entries (addresses, ports, socket paths)."; };
    listenDatagrams = mkOption { type = types.listOf types.str; default = [ ]; description = "ListenDatagram= entries."; };
    socketConfig = mkOption { type = types.attrsOf unitOption; default = { }; description = "[Socket] section entries."; };
  };
  timerType = unitType { timerConfig = mkOption { type = types.attrsOf unitOption; default = { }; description = "[Timer] section entries."; }; };
  sliceType = unitType { sliceConfig = mkOption { type = types.attrsOf unitOption; default = { }; description = "[Slice] section entries."; }; };
  pathType = unitType { pathConfig = mkOption { type = types.attrsOf unitOption; default = { }; description = "[Path] section entries."; }; };
  targetType = unitType { };

  unitText = name: s:
    let
      unitSection = {
        Description = if s.description == "" then null else s.description;
        After = if s.after == [ ] then null else lib.concatStringsSep " " s.after;
        Before = if s.before == [ ] then null else lib.concatStringsSep " " s.before;
        Wants = if s.wants == [ ] then null else lib.concatStringsSep " " s.wants;
        Requires = if s.requires == [ ] then null else lib.concatStringsSep " " s.requires;
      } // s.unitConfig;
      # systemd-lib.nix serviceToUnit: one JSON-quoted Environment= line per variable of
      # globalEnvironment // environment, THEN serviceConfig (whose own Environment= lines come
      # later, so systemd lets them override).
      env = lib.filterAttrs (_: v: v != null) (toplevel.systemd.globalEnvironment // s.environment);
      environment = lib.concatMapStrings (k: "Environment=${builtins.toJSON "${k}=${toString env.${k}}"}\n") (lib.attrNames env);
    in
    "[Unit]\n" + render.unitSection unitSection + "\n[Service]\n" + environment + render.unitSection s.serviceConfig;

  unitOpts = types.submodule {
    options.text = mkOption { type = types.nullOr types.str; default = null; description = "Text of the unit file."; };
    options.enable = mkOption { type = types.bool; default = true; description = "Whether the unit is installed."; };
  };

  # systemd.tmpfiles.settings.<config>.<path>.<type>
  tmpfilesSettings = types.attrsWith { placeholder = "config-name"; elemType = types.attrsWith { placeholder = "path"; elemType = types.attrsWith { placeholder = "tmpfiles-type"; elemType = types.submodule ({ name, ... }: {
    options = {
      age = mkOption { type = types.str; default = "-"; description = "Delete files older than this (\"-\": never)."; };
      argument = mkOption { type = types.str; default = ""; description = "The argument of the operation (tmpfiles.d(5))."; };
      group = mkOption { type = types.str; default = "-"; description = "The group of the file."; };
      mode = mkOption { type = types.str; default = "-"; description = "The file's access mode."; };
      type = mkOption { type = types.str; default = name; description = "The operation (tmpfiles.d(5) type and modifiers)."; };
      user = mkOption { type = types.str; default = "-"; description = "The owner of the file."; };
    };
  }); }; }; };
  escapeArgument = lib.strings.escapeC [ "\t" "\n" "\r" " " "\\" ];
  tmpfilesRule = path: entry: "'${entry.type}' '${path}' '${entry.mode}' '${entry.user}' '${entry.group}' '${entry.age}' ${escapeArgument entry.argument}\n";
  tmpfilesText = paths: lib.concatStrings (lib.mapAttrsToList (path: types': lib.concatStrings (lib.mapAttrsToList (_: tmpfilesRule path) types')) paths);

  provenance = upstream: options: extra: { inherit upstream options; repo = "Swarsel/nixpkgs"; commit = "4aa6836a648ca76c68866decf0c8965e36ec2a3b"; surface = "systemd.nix"; } // extra;
in
{
  options.systemd = {
    services = mkOption { type = types.attrsOf (types.submodule serviceOpts); default = { }; description = "Definition of systemd service units."; };
    sockets = mkOption { type = types.attrsOf socketType; default = { }; description = "Definition of systemd socket units."; };
    timers = mkOption { type = types.attrsOf timerType; default = { }; description = "Definition of systemd timer units."; };
    slices = mkOption { type = types.attrsOf sliceType; default = { }; description = "Definition of systemd slice units."; };
    paths = mkOption { type = types.attrsOf pathType; default = { }; description = "Definition of systemd path units."; };
    targets = mkOption { type = types.attrsOf targetType; default = { }; description = "Definition of systemd target units."; };
    units = mkOption { type = types.attrsOf unitOpts; default = { }; internal = true; description = "Generated unit files."; };
    packages = mkOption { type = types.listOf types.package; default = [ ]; description = "Packages providing systemd units."; };
    package = mkOption { type = types.package; default = pkgs.systemd; defaultText = lib.literalExpression "pkgs.systemd"; description = "The systemd package."; };
    globalEnvironment = mkOption { type = types.attrsOf (types.nullOr (types.oneOf [ types.str types.path types.package ])); default = { }; description = "Environment of every unit."; };
    enableStrictShellChecks = mkOption { type = types.bool; default = false; description = "Run shellcheck on every service's generated scripts."; };
    additionalUpstreamSystemUnits = mkOption { type = types.listOf types.str; default = [ ]; description = "Upstream systemd units installed in addition to NixOS's selection."; };
    tmpfiles = {
      rules = mkOption { type = types.listOf types.str; default = [ ]; description = "systemd-tmpfiles rules (tmpfiles.d(5))."; };
      settings = mkOption { type = tmpfilesSettings; default = { }; description = "systemd-tmpfiles rules as attributes: <config name>.<path>.<type> = { mode; user; group; age; argument; }."; };
      packages = mkOption { type = types.listOf types.package; default = [ ]; description = "Packages with lib/tmpfiles.d rules."; };
    };
  };
  options.environment.binsh = mkOption { type = types.path; default = "${pkgs.bashInteractive}/bin/sh"; defaultText = lib.literalExpression "\"\${pkgs.bashInteractive}/bin/sh\""; description = "The shell at /bin/sh (config/shells-environment.nix)."; };

  config = {
    surface.provenance = [
      (provenance "nixos/lib/systemd-unit-options.nix" [ "systemd.services" "systemd.sockets" "systemd.timers" "systemd.slices" "systemd.paths" "systemd.targets" ] { repo = "faukah/nixpkgs"; commit = "3b20077cd82fd1f099e92e2792d73e3176d4869d"; notes = "Unit files are rendered for paranoid's services only ([Unit] and [Service]); Type/Restart value checks are not enforced."; })
      (provenance "nixos/modules/system/boot/systemd.nix" [ "systemd.units" "systemd.packages" "systemd.package" "systemd.globalEnvironment" "systemd.enableStrictShellChecks" "systemd.additionalUpstreamSystemUnits" ] { reread = false; notes = "Only these options of the module."; })
      (provenance "nixos/modules/security/systemd-confinement.nix" [ "systemd.services.<name>.confinement" ] { notes = "The chroot's BindReadOnlyPaths drop-in (built from the closure) is not modelled."; })
      (provenance "nixos/modules/system/boot/systemd/tmpfiles.nix" [ "systemd.tmpfiles" ] { })
      (provenance "nixos/modules/config/shells-environment.nix" [ "environment.binsh" ] { reread = false; })
    ];

    systemd.units = lib.mapAttrs' (n: s: lib.nameValuePair "${n}.service" { text = unitText n s; inherit (s) enable; }) config.systemd.services;

    # startAt makes a timer, for an enabled service (systemd.nix). Only services some definition
    # gives a startAt are evaluated to find out (it defaults to none), and only when the timer
    # is read (one mkIf per candidate).
    systemd.timers = lib.mkMerge (lib.mapAttrsToList (name: service: {
      ${name} = mkIf (service.enable && service.startAt != [ ]) { wantedBy = [ "timers.target" ]; timerConfig.OnCalendar = service.startAt; };
    }) (servicesDefinedWith "startAt"));

    environment.etc = lib.mapAttrs' (name: paths: lib.nameValuePair "tmpfiles.d/${name}.conf" { text = tmpfilesText paths; }) config.systemd.tmpfiles.settings;

    # Only units some definition confines are evaluated (confinement is off by default).
    assertions = lib.concatLists (lib.mapAttrsToList (name: s: lib.optional s.confinement.enable {
      assertion = !s.serviceConfig.RootDirectoryStartOnly or false;
      message = "The 'serviceConfig' option 'RootDirectoryStartOnly' for service '${name}' is enabled in conjunction with 'confinement.enable', but right now systemd doesn't support restricting bind-mounts to 'ExecStart'. Please either define a separate service or find a way to run commands other than ExecStart within the chroot.";
    }) (servicesDefinedWith "confinement"));

    warnings = lib.flatten (lib.mapAttrsToList (name: paths: lib.mapAttrsToList (path: entries: lib.mapAttrsToList (type': entry:
      lib.optional (lib.match ''.*\\([nrt]|x[0-9A-Fa-f]{2}).*'' entry.argument != null)
        "The argument option of ${name}.${type'}.${path} appears to contain escape sequences, which will be escaped again. Unescape them if this is not intended: \"${entry.argument}\"") entries) paths) config.systemd.tmpfiles.settings);
  };
}
