# The projection: what the harness (and `paranoid-harness eval`) sees of an evaluated system.
# The same function serves the offline surface and a real nixosSystem, so only option values
# and renderings that both can produce without building anything appear here.
# Schema (stable, documented in docs/harness.md): see `project` below.
{ lib, render, posture }:
let
  inherit (lib) attrByPath filterAttrs mapAttrs mapAttrsToList concatStringsSep;

  # JSON-safe values: packages by name, functions and store-less paths as strings.
  sanitize =
    v:
    if lib.isDerivation v then v.pname or (lib.getName v)
    else if builtins.isFunction v then "<function>"
    else if builtins.isPath v then toString v
    else if builtins.isList v then map sanitize v
    else if builtins.isAttrs v then mapAttrs (_: sanitize) (removeAttrs v [ "_module" ])
    else v;

  # A failure in one part (say, a required option left undefined) must not hide the rest.
  guarded =
    v:
    let r = builtins.tryEval (builtins.deepSeq v v); in
    if r.success then r.value else { "<error>" = "evaluation failed; run `paranoid-harness eval` on this configuration alone for Nix's message"; };

  # Units whose sandboxing the harness inspects: paranoid's services and the daemons it configures.
  interestingServices = config:
    lib.unique ((lib.attrNames (config.paranoid.services or { }))
      ++ [ "sshd" "nix-daemon" "auditd" "audit-rules-nixos" "paranoid-execwatch" "systemd-journal-upload" "tailscaled" "clamav-daemon" "clamav-freshclam" "clamdscan" ]);

  # What NixOS writes to /etc/passwd and /etc/shadow for an account (users-groups.nix's spec):
  # forced, so that conflicting definitions (two modules describing one account) fail here
  # as they would at build time.
  passwdEntry = u: {
    inherit (u) name uid group description home homeMode createHome isSystemUser password hashedPassword
      hashedPasswordFile initialPassword initialHashedPassword autoSubUidGidRange subUidRanges subGidRanges;
    expires = u.expires or null;
    shell = if u.shell == null then null else if lib.types.shellPackage.check u.shell then u.shell.shellPath else toString u.shell;
  };
  # A hash of "!", "!!" or "*" locks the password: no credential (users-groups.nix's allowsLogin).
  allowsLogin = hash: hash == "" || !(lib.elem hash [ null "!" "!!" "*" ]);
  userSummary = u: builtins.deepSeq (passwdEntry u) {
    inherit (u) isSystemUser isNormalUser group extraGroups uid;
    hasPassword = allowsLogin u.hashedPassword || u.hashedPasswordFile != null || u.password != null
      || u.initialPassword != null || allowsLogin u.initialHashedPassword;
    authorizedKeys = lib.length u.openssh.authorizedKeys.keys + lib.length u.openssh.authorizedKeys.keyFiles;
  };

  # impermanence's entries carry internal bookkeeping; keep what describes the mount.
  persistenceSummary = persistence: mapAttrs (_: p: {
    inherit (p) enable persistentStoragePath hideMounts;
    directories = map (d: { inherit (d) directory dirPath persistentStoragePath user group mode; }) p.directories;
    files = map (f: { inherit (f) file filePath persistentStoragePath method; }) p.files;
  }) persistence;

  # Upstream option values, by dotted path. Values are JSON-safe as read, except where
  # packages can appear (sanitize) or a required option may be undefined (guarded).
  projectedOptions = config: {
    "networking.firewall.enable" = config.networking.firewall.enable;
    "networking.firewall.backend" = config.networking.firewall.backend;
    "networking.firewall.allowedTCPPorts" = config.networking.firewall.allowedTCPPorts;
    "networking.firewall.allowedUDPPorts" = config.networking.firewall.allowedUDPPorts;
    "networking.firewall.interfaces" = config.networking.firewall.interfaces;
    "networking.firewall.trustedInterfaces" = config.networking.firewall.trustedInterfaces;
    "networking.firewall.logRefusedConnections" = config.networking.firewall.logRefusedConnections;
    "networking.firewall.extraCommands" = config.networking.firewall.extraCommands;
    "networking.nftables.enable" = config.networking.nftables.enable;
    "networking.nftables.tables" = mapAttrs (_: t: { inherit (t) enable family; }) config.networking.nftables.tables;
    "networking.wireguard.interfaces" = lib.attrNames config.networking.wireguard.interfaces;
    "networking.wg-quick.interfaces" = lib.attrNames config.networking.wg-quick.interfaces;
    "services.tailscale.enable" = config.services.tailscale.enable;
    "services.tailscale.interfaceName" = config.services.tailscale.interfaceName;
    "services.openssh.enable" = config.services.openssh.enable;
    "services.openssh.openFirewall" = config.services.openssh.openFirewall;
    "services.openssh.ports" = config.services.openssh.ports;
    "services.openssh.allowSFTP" = config.services.openssh.allowSFTP;
    "services.openssh.authorizedKeysInHomedir" = config.services.openssh.authorizedKeysInHomedir;
    "services.openssh.hostKeys" = sanitize config.services.openssh.hostKeys;
    "services.openssh.settings" = sanitize config.services.openssh.settings;
    "services.openssh.extraConfig" = config.services.openssh.extraConfig;
    "nix.enable" = config.nix.enable;
    "nix.channel.enable" = config.nix.channel.enable;
    "nix.settings" = sanitize config.nix.settings;
    "fileSystems" = mapAttrs (_: fs: { inherit (fs) mountPoint device fsType options neededForBoot; }) (filterAttrs (_: fs: fs.enable) config.fileSystems);
    "boot.tmp.useTmpfs" = config.boot.tmp.useTmpfs;
    "boot.kernelParams" = config.boot.kernelParams;
    "environment.persistence" = persistenceSummary (config.environment.persistence or { });
    "security.audit.enable" = config.security.audit.enable;
    "security.audit.rules" = config.security.audit.rules;
    "security.audit.backlogLimit" = config.security.audit.backlogLimit;
    "security.auditd.enable" = config.security.auditd.enable;
    # NixOS defines the plugins only with auditd enabled.
    "security.auditd.plugins.syslog.active" = (config.security.auditd.plugins.syslog or { active = false; }).active;
    "security.sudo.enable" = config.security.sudo.enable;
    "security.sudo.execWheelOnly" = config.security.sudo.execWheelOnly;
    "security.sudo.wheelNeedsPassword" = config.security.sudo.wheelNeedsPassword;
    "security.sudo-rs.enable" = config.security.sudo-rs.enable;
    "environment.defaultPackages" = sanitize config.environment.defaultPackages;
    "environment.systemPackages" = sanitize config.environment.systemPackages;
    "environment.stub-ld.enable" = config.environment.stub-ld.enable;
    "programs.nano.enable" = config.programs.nano.enable;
    "services.clamav.daemon.enable" = config.services.clamav.daemon.enable;
    "services.clamav.updater.enable" = config.services.clamav.updater.enable;
    "services.clamav.scanner.enable" = config.services.clamav.scanner.enable;
    "services.journald.storage" = config.services.journald.storage;
    "services.journald.upload.enable" = config.services.journald.upload.enable;
    "services.journald.upload.settings" = guarded config.services.journald.upload.settings;
    "users.mutableUsers" = config.users.mutableUsers;
    "system.switch.enable" = config.system.switch.enable or true;
    "services.getty.helpLine" = config.services.getty.helpLine or "";
    "users.users" = mapAttrs (_: userSummary) (filterAttrs (_: u: u.enable) config.users.users);
    "users.groups" = lib.attrNames config.users.groups;
    "systemd.services" = mapAttrs (_: s: { inherit (s) enable restartIfChanged; serviceConfig = sanitize s.serviceConfig; })
      (lib.getAttrs (lib.filter (n: config.systemd.services ? ${n}) (interestingServices config)) config.systemd.services);
  };

  mountsOf = config:
    let
      entry = origin: fs: { inherit origin; inherit (fs) mountPoint fsType options; device = fs.device; neededForBoot = fs.neededForBoot or false; };
      unit = origin: m: {
        inherit origin;
        mountPoint = if origin == "initrd" then lib.removePrefix "/sysroot" m.where else m.where;
        device = if origin == "initrd" then lib.removePrefix "/sysroot" m.what else m.what;
        fsType = if m.type == "" then "none" else m.type;
        options = lib.filter (o: o != "") (lib.splitString "," m.options ++ lib.splitString "," (m.mountConfig.Options or ""));
        neededForBoot = origin == "initrd";
      };
    in
    map (entry "fileSystems") (lib.filter (fs: fs.enable) (lib.attrValues config.fileSystems))
    # Of NixOS's special filesystems only /dev/shm is user-writable and ours to harden.
    ++ map (entry "special") (lib.attrValues (lib.getAttrs (lib.filter (n: config.boot.specialFileSystems ? ${n}) [ "/dev/shm" ]) config.boot.specialFileSystems))
    ++ map (unit "systemd.mounts") (lib.filter (m: m.enable or true) config.systemd.mounts)
    ++ map (unit "initrd") (lib.filter (m: m.enable or true) config.boot.initrd.systemd.mounts);

  persistedFiles = config:
    lib.concatLists (mapAttrsToList (_: p: map (f: { inherit (f) filePath persistentStoragePath; }) (if p.enable then p.files else [ ]))
      (config.environment.persistence or { }));

  nftablesText = config:
    let n = config.networking.nftables; in
    if !n.enable then null
    else n.ruleset + lib.concatStrings (mapAttrsToList (name: t: "table ${t.family} ${name} {\n${t.content}\n}\n") (filterAttrs (_: t: t.enable) n.tables));

  # Unit files of the services paranoid sandboxes (what the sandbox tier scores).
  unitTexts = config:
    lib.listToAttrs (map (n: lib.nameValuePair "${n}.service" config.systemd.units."${n}.service".text)
      (lib.filter (n: config.systemd.units ? "${n}.service") (lib.attrNames (config.paranoid.services or { }))));

  flattenKnobs =
    prefix: attrs:
    lib.concatMapAttrs (k: v:
      let name = if prefix == "" then k else "${prefix}.${k}"; in
      if builtins.isAttrs v && !(lib.isDerivation v) then flattenKnobs name v else { ${name} = sanitize v; })
      attrs;

  # One configuration's projection. `nested`: a specialisation's own, projected without
  # specialisations of its own (NixOS ignores nested ones).
  project =
    { config, backend, options ? null, nested ? false }:
    let
      failed = map (a: a.message) (lib.filter (a: !a.assertion) config.assertions);
      c = config;
      eff = posture.of { inherit config options; };
      toolFile = t: if eff.sudo.tools.${t}.enabled then eff.sudo.tools.${t}.file else null;
      # The rendered files live under `rendered`; the model keeps only what was read from them.
      slim = lib.mapAttrs (_: t: removeAttrs t [ "file" ]);
    in
    {
      schema = 1;
      inherit backend;
      host = c.networking.hostName;
      paranoidImported = c ? paranoid;
      knobs = if c ? paranoid then flattenKnobs "" c.paranoid else { };
      options = projectedOptions c;
      rendered = {
        sshd_config = if c.services.openssh.enable then render.sshdConfig c.services.openssh else null;
        nix_conf = if c.nix.enable then render.nixConf c.nix else null;
        # NIX_CONFIG as the daemon's environment carries it (read after nix.conf).
        nix_config = if eff.nix == null then null else eff.nix.files.NIX_CONFIG or null;
        # /etc/fstab as NixOS writes it (dependency order; a filesystem without a device throws).
        fstab = c.environment.etc.fstab.text;
        nftables = nftablesText c;
        audit_rules = if c.security.audit.enable != false then render.auditRules c.security.audit else null;
        journal_upload = if c.services.journald.upload.enable then guarded (render.systemdIni c.services.journald.upload.settings) else null;
        units = unitTexts c;
        sudoers = let s = toolFile "sudo"; in if s != null then s else toolFile "sudo-rs";
        doas_conf = toolFile "doas";
      };
      # The effective posture (lib/posture): what each daemon will do, as the guards see it.
      effective = {
        inherit (eff) sshd firewall adminPath;
        nix = if eff.nix == null then null else removeAttrs eff.nix [ "files" ];
        sudo = eff.sudo // { tools = slim eff.sudo.tools; };
        audit = if eff.audit == null then null else removeAttrs eff.audit [ "file" ];
        accounts = eff.accounts.accounts;
      };
      mounts = mountsOf c;
      persistedFiles = persistedFiles c;
      # What the offline surface accepted without judging it (checks/surface/unjudged.nix):
      # { count; definitions = [ { option; file; leaves; leafCount; } ]; effects = [ { option; effect; file; } ]; }.
      # Always empty on the nixos backend, where every option is real.
      unjudged =
        let recorded = c._surfaceUnjudged or { count = 0; definitions = [ ]; effects = [ ]; }; in
        recorded // {
          # Declared options whose effect the surface does not model. Bootable variants are not
          # among them: `specialisations` below projects each, and check judges it.
          effects = recorded.effects
            ++ map (u: u // { file = "(declared; not modelled)"; }) (c.surface.unmodelled or [ ]);
        };
      assertions = failed;
      warnings = c.warnings;
      # Every other boot entry (a specialisation, e.g. paranoid.breakGlass's), projected the
      # same way from its own evaluation (no option origins: its definitions are the parent's
      # plus its own).
      specialisations =
        if nested then { }
        else mapAttrs (_: s: project { config = s.configuration; inherit backend; nested = true; }) (c.specialisation or { });
    };
in
{
  inherit sanitize project;
}
