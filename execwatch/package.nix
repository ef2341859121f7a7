# paranoid-execwatch from this repository's Cargo workspace, whose root is harness/ (it holds
# Cargo.lock); execwatch/ is a member beside it. Used by the flake's package and, when the
# package set has none, by paranoid.audit.alertForeignExec.package.
{ lib, rustPlatform }:
rustPlatform.buildRustPackage {
  pname = "paranoid-execwatch";
  version = "0.1.0";
  src = lib.fileset.toSource {
    root = ../.;
    fileset = lib.fileset.difference
      (lib.fileset.unions [ ../harness ../execwatch ])
      (lib.fileset.maybeMissing ../harness/target);
  };
  cargoLock.lockFile = ../harness/Cargo.lock;
  cargoRoot = "harness";
  buildAndTestSubdir = "execwatch";
  # Its tests need root and the live kernel audit subsystem; they run in CI, not in the sandbox.
  doCheck = false;
  meta = {
    description = "Alerts, off the box, when code from outside /nix/store runs";
    license = lib.licenses.mit;
    mainProgram = "paranoid-execwatch";
    platforms = lib.platforms.linux;
  };
}
