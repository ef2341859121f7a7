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
  };

  outputs = { self, nixpkgs, nixpkgs-lib, impermanence }:
    let
      lib = nixpkgs-lib.lib;
      system = "x86_64-linux";
      paranoidLib = import ./lib { inherit lib; impermanence = impermanence.outPath; };
      inherit (paranoidLib) impermanenceModule;

      area = name: ./modules + "/${name}.nix";
      # One module per area (profiles set knobs of every area, so they come with `all`/`paranoid`).
      areas = [ "firewall" "vpn" "ssh" "services" "nix" "noexec" "audit" "logs" "sudo" "packages" "antivirus" "users" "rollback" ];

      # Only forced by users with full nixpkgs: nixosConfigurations, checks, packages.
      nixosHost = name: nixpkgs.lib.nixosSystem {
        modules = [ self.nixosModules.all (./examples + "/${name}") (./examples + "/${name}/hardware.nix") ];
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

      nixosConfigurations = lib.genAttrs [ "meeka" "bastion" ] nixosHost;

      checks.${system} = import ./checks { inherit self pkgs lib; };

      packages.${system}.paranoid-harness = pkgs.rustPlatform.buildRustPackage {
        pname = "paranoid-harness";
        version = "0.1.0";
        src = ./harness;
        cargoLock.lockFile = ./harness/Cargo.lock;
        doCheck = false;
      };
    };
}
