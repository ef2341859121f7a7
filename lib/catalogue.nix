# The knob catalogue the harness reads: every enumerable paranoid option (bool or enum), read
# from the option declarations themselves, classified, with the profiles that set it; plus the
# declared constraints, combinations that must be refused by a named guard rail.
{ lib, profiles, options, instanceName ? "demo" }:
let
  inherit (lib) mkForce;

  # How each knob takes part in the matrix.
  # - switch: turns an area on or off (`off` is its off value).
  # - knob: a posture choice inside an area that a profile sets.
  # - parameter: tunes an area; varied by pairwise and random plans, not by exhaustive.
  # - meta: paranoid.enable / paranoid.profile; covered by the profile rows.
  classes = {
    "enable" = { kind = "meta"; };
    "profile" = { kind = "meta"; };
    # A safety switch, not a posture: the rows hold the guard on.
    "adminPath.guard" = { kind = "meta"; };
    # Ways back in, not the main entry's posture: the break-glass entry is a second evaluation
    # (its posture is judged by `eval`/`check` and its own guards), and rollback acts on switches.
    "breakGlass.enable" = { kind = "meta"; };
    "breakGlass.noexec" = { kind = "meta"; };
    "breakGlass.sudo" = { kind = "meta"; };
    "breakGlass.consoleRootLogin.enable" = { kind = "meta"; };
    "rollback.enable" = { kind = "meta"; };
    "rollback.confirmOnLogin" = { kind = "meta"; };
    "firewall.enable" = { kind = "switch"; off = false; };
    "vpn.tailscale.enable" = { kind = "switch"; off = false; };
    "vpn.sshOnlyOverVpn" = { kind = "switch"; off = false; };
    "ssh.enable" = { kind = "switch"; off = false; };
    "nix.enable" = { kind = "switch"; off = false; };
    "amnesia.enable" = { kind = "switch"; off = false; };
    "noexec.enable" = { kind = "switch"; off = false; };
    "audit.enable" = { kind = "switch"; off = false; };
    "logs.remote.enable" = { kind = "switch"; off = false; };
    "sudo.mode" = { kind = "switch"; off = "upstream"; };
    "packages.stripDefaults" = { kind = "switch"; off = false; };
    "antivirus.mode" = { kind = "switch"; off = "off"; };
    "users.immutable" = { kind = "switch"; off = false; };
    "services.${instanceName}.sandbox" = { kind = "switch"; off = "none"; };
    "services.${instanceName}.dedicatedUser" = { kind = "switch"; off = false; };
    # An install-time switch: the exhaustive plan leaves it off (2^17 rows would double CI);
    # pairwise, one-at-a-time, the profiles and its constraint rows cover it.
    "management.enable" = { kind = "switch"; off = false; exhaustive = false; };
    "ssh.allowSFTP" = { kind = "knob"; };
    "nix.allowedUsers" = { kind = "knob"; };
    "nix.disableChannels" = { kind = "knob"; };
    "nix.blockBinaryCache" = { kind = "knob"; };
    "audit.immutable" = { kind = "knob"; };
  };

  # Walk the declarations; attrsOf-submodule options (paranoid.services) are instantiated once.
  leaves =
    prefix: opts:
    lib.concatLists (lib.mapAttrsToList (name: opt:
      let path = prefix ++ [ name ]; in
      if lib.isOption opt then
        if opt.type.name == "attrsOf" && opt.type.nestedTypes.elemType.name == "submodule"
        then leaves (path ++ [ instanceName ]) (removeAttrs (opt.type.nestedTypes.elemType.getSubOptions [ ]) [ "_module" ])
        else [ { inherit path opt; } ]
      else if builtins.isAttrs opt then leaves path opt
      else [ ]) opts);

  enumValues = t:
    if t.name == "enum" then t.functor.payload.values or t.functor.payload
    else if t.name == "either" then enumValues t.nestedTypes.left ++ enumValues t.nestedTypes.right
    else [ ];

  describe = { path, opt }:
    let
      name = lib.concatStringsSep "." path;
      t = opt.type;
      values = if t.name == "bool" then [ false true ] else enumValues t;
      class = classes.${name} or { kind = "parameter"; };
      default = builtins.tryEval (builtins.deepSeq opt.default opt.default);
    in
    {
      inherit name values;
      path = [ "paranoid" ] ++ path;
      type = if t.name == "bool" then "bool" else if values != [ ] then "enum" else "other";
      typeDescription = t.description;
      kind = class.kind;
      area = lib.head path;
      default = if opt ? default && default.success then default.value else null;
      description = opt.description or "";
      profiles = lib.mapAttrs (_: p: p.${name} or null) profiles.profiles;
    } // lib.optionalAttrs (class ? off) { inherit (class) off; }
      // lib.optionalAttrs (class ? exhaustive) { inherit (class) exhaustive; };

  knobs = lib.filter (k: k.type != "other") (map describe (leaves [ ] (removeAttrs options.paranoid [ "_module" ])));

  fixtureKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMatrixFixtureKeyDoNotUseAnywhere0000000 admin@deployer";
in
{
  inherit knobs;
  presetPriority = profiles.priority;
  profiles = profiles.profiles;
  defaultProfile = profiles.default;
  neverImplied = profiles.neverImplied;

  # `when`: matrix rows whose effective knobs match any of these conjunctions must be refused
  # with this guard's message. `set` + `module`: an explicit row that provokes it with a
  # change to the host facts. `alsoFails`: other assertions the same mistake legitimately trips.
  constraints = [
    {
      id = "vpn-missing";
      description = "SSH only over a VPN that does not exist";
      set = { "vpn.sshOnlyOverVpn" = true; "vpn.tailscale.enable" = false; };
      module = { networking.wireguard.interfaces = lib.mkForce { }; };
      # No VPN, no way in either.
      alsoFails = [ "[paranoid:admin-path]" ];
    }
    # Three ways to leave nobody a way in; one guard (admin-path) names the broken links of each.
    {
      id = "admin-path-root-login-off";
      guard = "admin-path";
      description = "sudo removed while root cannot log in over SSH";
      when = [
        { "sudo.mode" = "removed"; "ssh.enable" = true; "ssh.permitRootLogin" = "no"; }
        # Forced commands only is no shell either.
        { "sudo.mode" = "removed"; "ssh.enable" = true; "ssh.permitRootLogin" = "forced-commands-only"; }
      ];
      set = { "sudo.mode" = "removed"; "ssh.enable" = true; "ssh.permitRootLogin" = "no"; };
    }
    {
      id = "admin-path-no-key";
      guard = "admin-path";
      description = "public keys only, but no admin has a key";
      set = { "ssh.enable" = true; };
      module = {
        users.users.root.openssh.authorizedKeys.keys = mkForce [ ];
        users.users.admin.openssh.authorizedKeys.keys = mkForce [ ];
      };
    }
    {
      id = "admin-path-no-credential";
      guard = "admin-path";
      description = "immutable users and no admin credential at all";
      set = { "users.immutable" = true; };
      module = {
        users.users.root.openssh.authorizedKeys.keys = mkForce [ ];
        users.users.admin.openssh.authorizedKeys.keys = mkForce [ ];
        users.users.admin.hashedPasswordFile = mkForce null;
      };
      alsoFails = [ "Neither the root account nor any wheel user has a password or SSH authorized key" ];
    }
    {
      id = "amnesia-no-impermanence";
      description = "amnesia without the impermanence module";
      set = { "amnesia.enable" = true; };
      withoutImpermanence = true;
    }
    {
      id = "amnesia-root-not-tmpfs";
      description = "amnesia while hardware-configuration.nix keeps a disk root";
      set = { "amnesia.enable" = true; };
      module = { fileSystems."/" = { device = "/dev/disk/by-uuid/0000-ROOT"; fsType = "ext4"; }; };
    }
    {
      id = "amnesia-persist-on-tmpfs";
      description = "persistent storage on the tmpfs root";
      set = { "amnesia.enable" = true; };
      module = { paranoid.amnesia.persistPath = "/persist"; };
    }
    {
      id = "amnesia-persist-not-at-boot";
      description = "persistent storage on a disk the initrd does not mount";
      set = { "amnesia.enable" = true; };
      module = {
        fileSystems."/persist" = { device = "/dev/disk/by-label/persist"; fsType = "ext4"; };
        paranoid.amnesia.persistPath = "/persist";
      };
      alsoFails = [ "All filesystems used for persistent storage must" ];
    }
    {
      id = "noexec-store-on-root";
      description = "noexec on a disk root that holds /nix/store";
      set = { "noexec.enable" = true; "amnesia.enable" = false; };
      module = { fileSystems."/nix".enable = false; };
    }
    {
      id = "noexec-build-dir";
      description = "noexec where Nix builds";
      set = { "noexec.enable" = true; };
      module = { nix.settings.build-dir = "/tmp/nix-builds"; };
    }
    {
      id = "noexec-tmpfs-tmp";
      description = "noexec with upstream's /tmp tmpfs, which takes no extra options";
      set = { "noexec.enable" = true; };
      module = { boot.tmp.useTmpfs = true; };
    }
    {
      id = "nix-trusted-users";
      description = "restricted daemon but trusted users beyond root";
      set = { "nix.enable" = true; };
      module = { nix.settings.trusted-users = [ "@wheel" ]; };
    }
    {
      id = "vpn-ssh-open";
      description = "SSH only over the VPN, but openFirewall forced on";
      set = { "vpn.sshOnlyOverVpn" = true; "vpn.tailscale.enable" = true; };
      module = { services.openssh.openFirewall = true; };
    }
    {
      id = "vpn-ssh-port-open";
      description = "SSH only over the VPN, but port 22 opened by hand";
      set = { "vpn.sshOnlyOverVpn" = true; "vpn.tailscale.enable" = true; };
      module = { networking.firewall.allowedTCPPorts = [ 22 ]; };
    }
    {
      id = "vpn-no-firewall";
      description = "SSH only over the VPN with the firewall off";
      set = { "vpn.sshOnlyOverVpn" = true; "vpn.tailscale.enable" = true; "firewall.enable" = false; };
      module = { networking.firewall.enable = false; };
    }
    {
      id = "firewall-off";
      description = "firewall knob on, networking.firewall.enable = false";
      set = { "firewall.enable" = true; };
      module = { networking.firewall.enable = false; };
    }
    {
      id = "nix-cache-block-inert";
      description = "cache block with no packet filter to carry it";
      set = { "nix.enable" = true; "nix.blockBinaryCache" = true; "firewall.enable" = false; };
      module = { networking.firewall.enable = false; };
    }
    {
      id = "logs-no-url";
      description = "remote logs without a receiver";
      set = { "logs.remote.enable" = true; };
      module = { paranoid.logs.remote.url = mkForce null; };
    }
    {
      id = "logs-key-in-store";
      description = "journal upload key in the world-readable store";
      set = { "logs.remote.enable" = true; };
      module = { paranoid.logs.remote.serverKeyFile = mkForce "/nix/store/00000000000000000000000000000000-journal-upload.key"; };
    }
    {
      id = "sudo-still-enabled";
      description = "sudo removed by the knob but enabled by hand";
      set = { "sudo.mode" = "removed"; "ssh.enable" = true; };
      module = { security.sudo.enable = true; };
    }
    {
      id = "audit-watch-no-rules";
      description = "the foreign-exec watcher with no execve rules to read";
      when = [
        { "audit.alertForeignExec.enable" = true; "audit.enable" = false; }
        { "audit.alertForeignExec.enable" = true; "audit.execve" = false; }
      ];
      set = { "audit.alertForeignExec.enable" = true; };
    }
    {
      id = "management-no-key";
      description = "central management with no deployer key";
      set = { "management.enable" = true; };
      module = { paranoid.management.keys = mkForce [ ]; };
    }
    {
      id = "management-root-login";
      description = "deploying as root while sshd refuses root's key";
      when = [
        { "management.enable" = true; "ssh.enable" = true; "ssh.permitRootLogin" = "no"; }
        { "management.enable" = true; "ssh.enable" = true; "ssh.permitRootLogin" = "forced-commands-only"; }
      ];
      set = { "management.enable" = true; "ssh.enable" = true; "ssh.permitRootLogin" = "no"; };
      # The same host without sudo has no way in at all.
      alsoFails = [ "[paranoid:admin-path]" ];
    }
    {
      id = "service-undefined";
      description = "a sandbox for a service nothing defines";
      set = { };
      module = { paranoid.services.ghost = { }; };
    }
  ];
}
