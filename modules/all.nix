# Every paranoid knob. Importing this changes nothing until paranoid.enable or a knob is set.
{
  imports = [
    ./profiles.nix
    ./firewall.nix
    ./vpn.nix
    ./ssh.nix
    ./services.nix
    ./nix.nix
    ./amnesia.nix
    ./noexec.nix
    ./audit.nix
    ./logs.nix
    ./sudo.nix
    ./packages.nix
    ./antivirus.nix
    ./users.nix
    ./admin-path.nix
    ./management.nix
    ./break-glass.nix
    ./rollback.nix
  ];
}
