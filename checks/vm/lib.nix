# Shared pieces of paranoid's VM tests. Needs full nixpkgs (pkgs.testers.runNixOSTest); only
# ever forced by `nix build .#checks.<system>.vm-*`, `nix flake check` or `paranoid-harness vm`.
# `evalSystem` replaces NixOS's eval-config for the systems vm-install installs (offline.nix
# passes the surface's).
{ self, pkgs, lib, evalSystem ? null }:
let
  # nixpkgs' own throwaway test key pair, so no private key lives in this repository.
  snakeoil = import "${pkgs.path}/nixos/tests/ssh-keys.nix" pkgs;

  # `--junit-xml` appeared in the Python test driver in 2024. Pass it only where the pinned
  # driver has it: an unknown flag would fail every test before the first VM starts.
  driverSources = map (p: "${pkgs.path}/nixos/lib/test-driver/${p}") [
    "src/test_driver/__init__.py"
    "test_driver/__init__.py"
  ];
  junitSupported = lib.any (p: builtins.pathExists p && lib.hasInfix "--junit-xml" (builtins.readFile p)) driverSources;
in
rec {
  keys = {
    public = snakeoil.snakeOilEd25519PublicKey;
    private = snakeoil.snakeOilEd25519PrivateKey;
  };

  postures = import ./postures.nix { inherit lib; sshPublicKey = keys.public; };

  # A system to install onto a virtual disk (vm-install): every paranoid knob, disko's module,
  # the given modules (a layout among them), and what lets the VM boot it and the test driver in
  # (virtio drivers, the backdoor shell on hvc0).
  installable = modules:
    if evalSystem != null then evalSystem modules
    else import "${pkgs.path}/nixos/lib/eval-config.nix" {
      inherit (pkgs.stdenv.hostPlatform) system;
      modules = [
        self.nixosModules.all
        self.inputs.disko.nixosModules.disko
        ({ modulesPath, ... }: {
          imports = [ (modulesPath + "/profiles/qemu-guest.nix") (modulesPath + "/testing/test-instrumentation.nix") ];
        })
      ] ++ modules;
    };

  # One VM test. Every node imports all of paranoid (nixosModules.all, impermanence included).
  # The driver writes a JUnit report to $out/junit.xml (relative to its -o $out), which
  # `paranoid-harness vm` merges. `flaky` marks a test the harness may retry (docs/vm.md).
  mkTest =
    { name, flaky ? false }:
    test:
    pkgs.testers.runNixOSTest {
      imports = [
        {
          name = "paranoid-${name}";
          defaults.imports = [ self.nixosModules.all ];
          extraDriverArgs = lib.optional junitSupported "--junit-xml=junit.xml";
          passthru.paranoid = { inherit flaky; };
        }
        test
      ];
    };

  # A node: its posture from postures.nix, the virtual disks its layout needs, and test extras.
  node = entry: extra: {
    imports = [ entry.posture (disks.${entry.disks}) extra ];
  };

  # Virtual hardware, the VM's stand-in for hardware.nix.
  #
  # qemu-vm.nix *replaces* a node's fileSystems with virtualisation.fileSystems (mkVMOverride),
  # which would silently drop every mount paranoid declares: amnesia's tmpfs root, noexec's
  # self-binds, and with them the flags under test. (virtualisation.fileSystems does share
  # fileSystems' type, `options.fileSystems`, so paranoid's noexec flags would reach the VM's
  # own entries; paranoid's own entries would still be gone.) So for the layouts that matter
  # the override is switched off and the VM's 9p shares are declared as ordinary fileSystems
  # next to paranoid's, exactly as qemu-vm.nix declares them, with the host store mounted
  # read-only straight at /nix/store (no overlay, so no store plumbing outside /nix/store).
  disks = {
    plain = { };

    amnesic = { config, ... }: {
      imports = [ vmShares ];
      # / comes from paranoid.amnesia; the VM's persistent disk is /nix, as on meeka.
      fileSystems."/nix" = { device = config.virtualisation.rootDevice; fsType = "ext4"; };
    };

    bastion = { config, ... }: {
      imports = [ vmShares ];
      fileSystems."/" = { device = config.virtualisation.rootDevice; fsType = "ext4"; };
      # /nix is a filesystem of its own, as on bastion (there a disk; here a tmpfs, since nothing
      # on it needs to survive a reboot in these tests).
      fileSystems."/nix" = { device = "tmpfs"; fsType = "tmpfs"; options = [ "mode=755" ]; neededForBoot = true; };
    };
  };

  vmShares = { config, ... }:
    let
      vm = config.virtualisation;
      share = tag: s: lib.nameValuePair (if tag == "nix-store" then "/nix/store" else s.target) {
        device = tag;
        fsType = "9p";
        neededForBoot = true;
        options = [
          "trans=virtio"
          "version=9p2000.L"
          "msize=${toString vm.msize}"
          "x-systemd.requires=modprobe@9pnet_virtio.service"
        ] ++ lib.optional (tag == "nix-store") "cache=loose";
      };
    in
    {
      virtualisation.fileSystems = lib.mkForce { };
      virtualisation.writableStore = false;
      fileSystems = lib.mapAttrs' share vm.sharedDirectories;
      assertions = [
        {
          # If qemu-vm.nix ever stops honouring the empty override, paranoid's mounts vanish
          # from the VM again and these tests would prove nothing about them.
          assertion = config.fileSystems ? "/nix/store" && config.fileSystems."/nix/store".fsType == "9p";
          message = "checks/vm: the VM's store is not the 9p mount declared by checks/vm/lib.nix; qemu-vm.nix overrode fileSystems again.";
        }
      ];
    };

  # WireGuard between test nodes: keys generated on first boot (generatePrivateKeyFile), peers
  # set by the test script once it has read both public keys (wgPeers below).
  wireguardKeys = {
    networking.wireguard.interfaces.wg0.generatePrivateKeyFile = true;
  };

  # Python helpers shared by the test scripts (prepended to each testScript).
  prelude = ''
    import shlex


    def sh(s):
        """Quote one shell word."""
        return shlex.quote(s)


    def expect_in(needle, haystack, what):
        assert needle in haystack, f"{what}: expected {needle!r} in output:\n{haystack}"


    def expect_not_in(needle, haystack, what):
        assert needle not in haystack, f"{what}: did not expect {needle!r} in output:\n{haystack}"


    def failing(machine, command, what):
        """Run a command that must fail; return its combined output."""
        status, out = machine.execute(f"{command} 2>&1")
        assert status != 0, f"{what}: `{command}` succeeded but must fail:\n{out}"
        return out


    def tcp_banner(machine, addr, port, seconds=5):
        """First bytes a TCP server sends, or an empty string when the connection fails or times out."""
        status, out = machine.execute(
            f"timeout {seconds} bash -c 'exec 3<>/dev/tcp/{addr}/{port} && head -c 8 <&3' 2>/dev/null"
        )
        return out if status == 0 else ""


    def wg_peers(a, a_lan, a_ip, b, b_lan, b_ip):
        """Join two nodes' wg0 (keys generated at boot) as peers, tunnelled over their VLAN."""
        a.wait_for_unit("wireguard-wg0.service")
        b.wait_for_unit("wireguard-wg0.service")
        a_pub = a.succeed("wg pubkey < /var/lib/wireguard/private.key").strip()
        b_pub = b.succeed("wg pubkey < /var/lib/wireguard/private.key").strip()
        a.succeed(f"wg set wg0 peer {b_pub} allowed-ips {b_ip}/32 endpoint {b_lan}:51820 persistent-keepalive 1")
        b.succeed(f"wg set wg0 peer {a_pub} allowed-ips {a_ip}/32 endpoint {a_lan}:51820 persistent-keepalive 1")
        a.wait_until_succeeds(f"ping -c1 -W1 {b_ip}", timeout=60)
        b.wait_until_succeeds(f"ping -c1 -W1 {a_ip}", timeout=60)


    def sshd_t(machine, sshd):
        """The effective sshd configuration as keyword -> value (the first value of each)."""
        out = machine.succeed(f"{sshd} -T -f /etc/ssh/sshd_config")
        effective = {}
        for line in out.splitlines():
            key, _, value = line.partition(" ")
            effective.setdefault(key, value)
        return effective
  '';
}
