# Stand-in `pkgs` for the offline surface: inert derivation-shaped values, so modules that
# reference packages evaluate without nixpkgs. Names only; nothing here can be built.
{ lib }:
let
  # A value that passes `types.package` (it is a derivation by `lib.isDerivation`) and renders
  # as a plausible store path. The hash is derived from the name so renders are stable.
  stub =
    name: extra:
    let
      hash = builtins.substring 0 32 (builtins.hashString "sha256" "paranoid-surface-${name}");
      self = {
        type = "derivation";
        inherit name;
        pname = name;
        version = "surface";
        outPath = "/nix/store/${hash}-${name}";
        drvPath = "/nix/store/${hash}-${name}.drv";
        outputs = [ "out" ];
        out = self;
        outputName = "out";
        meta = {
          mainProgram = name;
        };
        passthru = { };
      } // extra;
    in
    self;

  # Builders that upstream modules call. The text is kept on the value (`text`) so tests can
  # inspect what would have been written, but no file is produced.
  textFile = name: text: stub name { inherit text; };

  packageNames = [
    "audit"
    "bash"
    "clamav"
    "coreutils"
    "darkhttpd"
    "doas"
    "gawk"
    "iptables"
    "iproute2"
    "nano"
    "nftables"
    "nix"
    "nixos-enter"
    "nixos-install"
    "openssh"
    # Not upstream: paranoid's own watcher (execwatch/package.nix), so its unit renders offline.
    "paranoid-execwatch"
    "pam"
    "perl"
    "rsync"
    "strace"
    "sudo"
    "sudo-rs"
    "systemd"
    "tailscale"
    "util-linux"
    "wireguard-tools"
    "xauth"
  ];
in
lib.genAttrs packageNames (n: stub n { })
// {
  inherit lib;
  surfaceStub = true;
  writeText = textFile;
  writeShellScript = textFile;
  writeScript = textFile;
  writeShellScriptBin = textFile;
  runCommand = name: _env: script: textFile name script;
  runCommandLocal = name: _env: script: textFile name script;
  callPackage =
    fn: args:
    let
      f = if lib.isFunction fn then fn else import fn;
    in
    f (builtins.intersectAttrs (lib.functionArgs f) { inherit lib; } // args);
}
