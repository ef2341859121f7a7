{
  description = "paranoid: NixOS modules that lock a server down as far as is sane, and a harness that proves it";

  inputs = {
    # Every input can be overridden with `follows` by a consuming flake.
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";
    # The module system alone: everything that evaluates offline (the surface tier, the
    # harness's matrix) needs only this.
    nixpkgs-lib.url = "github:nix-community/nixpkgs.lib";
    impermanence.url = "github:nix-community/impermanence";
    # impermanence's inputs are only for its own tests; nothing here needs them.
    impermanence.inputs.nixpkgs.follows = "nixpkgs";
    impermanence.inputs.home-manager.follows = "";
    # Disk layouts as data (paranoid.lib.disko) and the installer's partitioning. Its nixpkgs is
    # only for its packages and tests; the layouts need its lib alone.
    disko.url = "github:nix-community/disko";
    disko.inputs.nixpkgs.follows = "nixpkgs";
  };

  outputs = { self, nixpkgs, nixpkgs-lib, impermanence, disko }:
    let
      lib = nixpkgs-lib.lib;
      system = "x86_64-linux";
      paranoidLib = import ./lib { inherit lib; impermanence = impermanence.outPath; disko = disko.outPath; };
      inherit (paranoidLib) impermanenceModule;

      area = name: ./modules + "/${name}.nix";
      # One module per area (profiles set knobs of every area, so they come with `all`/`paranoid`).
      areas = [ "firewall" "vpn" "ssh" "services" "nix" "noexec" "audit" "logs" "sudo" "packages" "antivirus" "users" "management" "rollback" ];

      # Only forced by users with full nixpkgs: nixosConfigurations, checks, packages.
      nixosHost = name: extra: nixpkgs.lib.nixosSystem {
        modules = [ self.nixosModules.all (./examples + "/${name}") (./examples + "/${name}/hardware.nix") ] ++ extra;
      };
      pkgs = nixpkgs.legacyPackages.${system};
    in
    {
      lib = paranoidLib // {
        # The nixos backend of the harness; forces nixpkgs only when called.
        harness = paranoidLib.harness // {
          inherit (import ./lib/harness-nixos.nix { inherit lib nixpkgs; paranoid = paranoidLib; }) evalBatchNixos;
        };
      };

      nixosModules = lib.genAttrs areas area // {
        # Every knob plus impermanence's module (which paranoid.amnesia drives).
        all = { imports = [ ./modules/all.nix impermanenceModule ]; };
        default = self.nixosModules.all;
        # Every knob without impermanence, for configurations that import impermanence themselves.
        paranoid = ./modules/all.nix;
        # amnesia places SSH host keys (ssh.nix is inert otherwise) and needs impermanence.
        amnesia = { imports = [ (area "amnesia") (area "ssh") impermanenceModule ]; };
      };

      nixosConfigurations = {
        meeka = nixosHost "meeka" [ ];
        bastion = nixosHost "bastion" [ ];
        # Installed from a blank disk (its layout is examples/managed/disk.nix), then push-deployed.
        managed = nixosHost "managed" [ disko.nixosModules.disko ];
        # The unattended installer image for `managed` (installer/): boots, checks the disk is
        # blank (or named with paranoid.install.wipe=<device>), partitions, installs, powers off.
        installer = nixpkgs.lib.nixosSystem {
          modules = [
            self.nixosModules.all
            ./installer/iso.nix
            { nixpkgs.hostPlatform = system; paranoid.installer.system = self.nixosConfigurations.managed; }
          ];
        };
      };

      checks.${system} = import ./checks { inherit self pkgs lib; };

      packages.${system} = {
        installer-iso = self.nixosConfigurations.installer.config.system.build.isoImage;
        paranoid-harness = pkgs.rustPlatform.buildRustPackage {
          pname = "paranoid-harness";
          version = "0.1.0";
          # The workspace (root harness/) has execwatch/ as a member beside it.
          src = lib.fileset.toSource { root = ./.; fileset = lib.fileset.unions [ ./harness ./execwatch ]; };
          cargoLock.lockFile = ./harness/Cargo.lock;
          cargoRoot = "harness";
          buildAndTestSubdir = "harness";
          doCheck = false;
        };
        paranoid-execwatch = pkgs.callPackage ./execwatch/package.nix { };
      };
    };
}
