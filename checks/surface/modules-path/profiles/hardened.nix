# Upstream nixos/modules/profiles/hardened.nix: hardening defaults behind profiles.hardened (on
# when imported). The kernel, sysctl, AppArmor and Nix settings land on declared options and are
# judged; the rest (security.lockKernelModules, scudo, ...) is recorded as not judged offline.
{ config, lib, pkgs, ... }:
let
  inherit (lib) mkDefault mkIf;
  sysctlDefaults = {
    "net.core.bpf_jit_enable" = false;
    "kernel.ftrace_enabled" = false;
    "net.ipv4.conf.all.log_martians" = true;
    "net.ipv4.conf.all.rp_filter" = "1";
    "net.ipv4.conf.default.log_martians" = true;
    "net.ipv4.conf.default.rp_filter" = "1";
    "net.ipv4.icmp_echo_ignore_broadcasts" = true;
    "net.ipv4.conf.all.accept_redirects" = false;
    "net.ipv4.conf.all.secure_redirects" = false;
    "net.ipv4.conf.default.accept_redirects" = false;
    "net.ipv4.conf.default.secure_redirects" = false;
    "net.ipv6.conf.all.accept_redirects" = false;
    "net.ipv6.conf.default.accept_redirects" = false;
    "net.ipv4.conf.all.send_redirects" = false;
    "net.ipv4.conf.default.send_redirects" = false;
  };
in
{
  options.profiles.hardened = lib.mkEnableOption "hardened" // { default = true; example = false; };

  config = mkIf config.profiles.hardened {
    boot.kernelPackages = mkDefault pkgs.linuxPackages_hardened;
    nix.settings.allowed-users = mkDefault [ "@users" ];
    environment.memoryAllocator.provider = mkDefault "scudo";
    environment.variables.SCUDO_OPTIONS = mkDefault "ZeroContents=1";
    security.lockKernelModules = mkDefault true;
    security.protectKernelImage = mkDefault true;
    security.allowSimultaneousMultithreading = mkDefault false;
    security.forcePageTableIsolation = mkDefault true;
    security.unprivilegedUsernsClone = mkDefault (config.virtualisation.containers.enable or false);
    security.virtualisation.flushL1DataCache = mkDefault "always";
    security.apparmor.enable = mkDefault true;
    security.apparmor.killUnconfinedConfinables = mkDefault true;
    boot.kernelParams = [ "slab_nomerge" "page_poison=1" "page_alloc.shuffle=1" "debugfs=off" ];
    boot.blacklistedKernelModules = [
      "ax25" "netrom" "rose"
      "adfs" "affs" "bfs" "befs" "cramfs" "efs" "erofs" "exofs" "freevxfs" "f2fs" "hfs" "hpfs" "jfs" "minix" "nilfs2" "ntfs" "omfs" "qnx4" "qnx6" "sysv" "ufs"
    ];
    boot.kernel.sysctl = { "kernel.kptr_restrict" = lib.mkOverride 500 2; } // lib.mapAttrs (_: mkDefault) sysctlDefaults;
  };
}
