{
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";
  inputs.paranoid.url = "github:OWNER/paranoid"; # wherever you fetch this repository from
  inputs.paranoid.inputs.nixpkgs.follows = "nixpkgs";

  outputs = { nixpkgs, paranoid, ... }: {
    nixosConfigurations.myhost = nixpkgs.lib.nixosSystem {
      modules = [
        paranoid.nixosModules.all
        ./configuration.nix # yours: boot loader, file systems, hostname (nixos-generate-config)
        ./paranoid.nix
      ];
    };
  };
}
