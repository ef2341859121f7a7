# Stand-in `pkgs` for the offline surface: inert values that behave like packages and like the
# common nixpkgs functions, so modules that reference packages evaluate without nixpkgs. Nothing
# here can be built.
#
# Nix has no hook for a missing attribute, so `pkgs.<any name>` works for a finite set of names:
# a base list, and `names`: what the harness finds in a host's module files (every identifier;
# extra names are harmless, and `with pkgs;` has the lowest scope priority) and what Nix reported
# missing on an earlier try (docs/harness.md, "Stand-in packages").
{ lib, names ? [ ] }:
let
  # Platform facts modules branch on (x86_64-linux, like the surface's `system`).
  platform = {
    system = "x86_64-linux";
    config = "x86_64-unknown-linux-gnu";
    isLinux = true;
    isx86_64 = true;
    isx86 = true;
    is64bit = true;
    isAarch64 = false;
    isAarch32 = false;
    isDarwin = false;
    isStatic = false;
    isMusl = false;
    parsed = { cpu.name = "x86_64"; kernel.name = "linux"; };
    linux-kernel = { name = "pc"; target = "bzImage"; };
    efiArch = "x64";
    canExecute = _: true;
  };

  shells = [ "bash" "bashInteractive" "zsh" "fish" "dash" "nushell" "xonsh" "shadow" ];

  # A stand-in package. It passes `types.package` (`type = "derivation"`), renders as a plausible
  # store path (the hash is derived from the name, so renders are stable), and answers what
  # modules ask of packages: outputs, meta.mainProgram, override/overrideAttrs, withPackages, and
  # being called (`pkgs.writers.writeBash "x" "..."`). Below the top level each stand-in also has
  # the stand-in names as attributes (`pkgs.python3Packages.requests`), down to `depth` 3.
  standIn =
    depth: name: extra:
    let
      hash = builtins.substring 0 32 (builtins.hashString "sha256" "paranoid-surface-${name}");
      nested = lib.optionalAttrs (depth < 3) (lib.genAttrs names (n: standIn (depth + 1) n { }));
      self = nested // {
        type = "derivation";
        inherit name;
        pname = name;
        version = "surface";
        outPath = "/nix/store/${hash}-${name}";
        drvPath = "/nix/store/${hash}-${name}.drv";
        outputs = [ "out" ];
        outputName = "out";
        out = self;
        bin = self;
        dev = self;
        man = self;
        doc = self;
        meta = { mainProgram = name; description = "offline stand-in for pkgs.${name}"; };
        passthru = { };
        surfaceStandIn = true;
        override = _: self;
        overrideAttrs = _: self;
        overrideDerivation = _: self;
        withPackages = _: self;
        # Called like a builder: named after its first argument when that is a name.
        __functor = _: arg: standIn depth (if builtins.isString arg then arg else if builtins.isAttrs arg then arg.pname or arg.name or name else name) { };
      } // lib.optionalAttrs (lib.elem name shells) { shellPath = "/bin/${if name == "bashInteractive" then "bash" else name}"; } // extra;
    in
    self;

  # Builders whose text tests may inspect (`text`); nothing is written.
  textFile = name: text: standIn 1 name { inherit text; };

  # pkgs.formats.<f> { }: a settings type accepting JSON-like values, and a generator.
  jsonValue = with lib.types; nullOr (oneOf [ bool int float str path (attrsOf jsonValue) (listOf jsonValue) ]) // { description = "JSON value"; };
  format = _: {
    type = jsonValue;
    generate = name: value: textFile name (builtins.toJSON value);
    lib = { };
  };

  base = {
    inherit lib;
    surfaceStub = true;
    system = platform.system;
    hostPlatform = platform;
    buildPlatform = platform;
    targetPlatform = platform;
    stdenv = standIn 1 "stdenv" {
      hostPlatform = platform;
      buildPlatform = platform;
      targetPlatform = platform;
      isLinux = true;
      isDarwin = false;
      cc = standIn 1 "gcc" { libc = standIn 2 "glibc" { }; };
      mkDerivation = a: standIn 1 (a.pname or a.name or "derivation") { };
    };
    config = { allowUnfree = false; };
    formats = lib.genAttrs [ "json" "yaml" "yaml_1_1" "yaml_1_2" "toml" "ini" "iniWithGlobalSection" "keyValue" "gitIni" "systemd" "elixirConf" "lua" "php" "javaProperties" "hocon" "libconfig" "pythonVars" "xml" "cdn" "nixConf" ] (_: format);
    writeText = textFile;
    writeShellScript = textFile;
    writeScript = textFile;
    writeShellScriptBin = textFile;
    writeScriptBin = textFile;
    writeTextFile = a: textFile a.name (a.text or "");
    writeTextDir = name: text: textFile name text;
    writeShellApplication = a: textFile a.name (a.text or "");
    runCommand = name: _env: script: textFile name script;
    runCommandLocal = name: _env: script: textFile name script;
    runCommandNoCC = name: _env: script: textFile name script;
    symlinkJoin = a: standIn 1 (a.name or "symlink-join") { };
    buildEnv = a: standIn 1 (a.name or "env") { };
    callPackage =
      fn: args:
      let
        f = if lib.isFunction fn then fn else import fn;
      in
      f (builtins.intersectAttrs (lib.functionArgs f) pkgs // args);
  };

  pkgs =
    lib.genAttrs names (n: standIn 0 n { })
    // lib.genAttrs [
      "audit" "bash" "bashInteractive" "clamav" "coreutils" "darkhttpd" "doas" "gawk" "iptables" "iproute2"
      "nano" "nftables" "nix" "openssh" "perl" "rsync" "shadow" "strace" "sudo" "sudo-rs" "systemd"
      "tailscale" "util-linux" "wireguard-tools" "xauth" "apparmor-parser" "fail2ban" "cloud-init"
      "grub2" "grub2_efi" "systemd-boot" "glibcLocales" "tzdata" "kmod" "procps" "libxcrypt" "linux-pam"
      "fangfrisch" "x11_ssh_askpass" "zfs" "apparmor-utils" "apparmor-bin-utils"
      "pam" "nixos-enter" "nixos-install"
      # Not upstream: paranoid's own watcher (execwatch/package.nix), so its unit renders offline.
      "paranoid-execwatch"
      # environment.corePackages (config/system-path.nix)
      "acl" "attr" "bzip2" "coreutils-full" "cpio" "curl" "diffutils" "findutils" "getent" "getconf" "gnugrep"
      "gnupatch" "gnused" "gnutar" "gzip" "xz" "less" "libcap" "ncurses" "netcat" "mkpasswd" "su" "time" "which" "zstd"
    ] (n: standIn 0 n { })
    // { sudo-rs = standIn 0 "sudo-rs" { meta = { mainProgram = "sudo"; description = "offline stand-in for pkgs.sudo-rs"; }; }; }
    // {
      # Package sets that modules index into.
      linuxPackages = standIn 0 "linuxPackages" { kernel = standIn 1 "linux" { version = "6.12"; modDirVersion = "6.12"; features = { }; }; };
      linuxPackages_hardened = standIn 0 "linuxPackages_hardened" { kernel = standIn 1 "linux-hardened" { version = "6.12"; modDirVersion = "6.12-hardened1"; features = { }; }; };
      pkgs = pkgs;
      buildPackages = pkgs;
      pkgsBuildBuild = pkgs;
      pkgsBuildHost = pkgs;
      pkgsHostTarget = pkgs;
      pkgsStatic = pkgs;
    }
    // base;
in
pkgs
