# Option names the 2021 recipe used and what they are today. They still evaluate upstream, with
# a warning (or an error for removed ones); the surface reproduces that so old hosts are caught.
# (sshd.nix's and tmp.nix's renames; nix.nix, users-groups.nix and nix-daemon.nix keep theirs.)
{ lib, ... }:
let
  sshRename = from: to: lib.mkRenamedOptionModule [ "services" "openssh" from ] [ "services" "openssh" "settings" to ];
in
{
  imports = [
    (lib.mkAliasOptionModule [ "services" "sshd" "enable" ] [ "services" "openssh" "enable" ])
    (lib.mkAliasOptionModule [ "services" "openssh" "knownHosts" ] [ "programs" "ssh" "knownHosts" ])
    (lib.mkRenamedOptionModule [ "services" "openssh" "challengeResponseAuthentication" ] [ "services" "openssh" "kbdInteractiveAuthentication" ])
    (sshRename "kbdInteractiveAuthentication" "KbdInteractiveAuthentication")
    (sshRename "passwordAuthentication" "PasswordAuthentication")
    (sshRename "useDns" "UseDns")
    (sshRename "permitRootLogin" "PermitRootLogin")
    (sshRename "logLevel" "LogLevel")
    (sshRename "macs" "Macs")
    (sshRename "ciphers" "Ciphers")
    (sshRename "kexAlgorithms" "KexAlgorithms")
    (sshRename "gatewayPorts" "GatewayPorts")
    (sshRename "forwardX11" "X11Forwarding")
    (lib.mkRemovedOptionModule [ "services" "openssh" "banner" ] "Use services.openssh.settings.Banner instead.")
    (lib.mkRenamedOptionModule [ "boot" "cleanTmpDir" ] [ "boot" "tmp" "cleanOnBoot" ])
    (lib.mkRenamedOptionModule [ "boot" "tmpOnTmpfs" ] [ "boot" "tmp" "useTmpfs" ])
    (lib.mkRenamedOptionModule [ "boot" "tmpOnTmpfsSize" ] [ "boot" "tmp" "tmpfsSize" ])
  ];

  surface.provenance = [
    { options = [ "boot.cleanTmpDir" "boot.tmpOnTmpfs" "boot.tmpOnTmpfsSize" ]; upstream = "nixos/modules/system/boot/tmp.nix"; repo = "Swarsel/nixpkgs"; commit = "4aa6836a648ca76c68866decf0c8965e36ec2a3b"; surface = "renames.nix"; }
  ];
}
