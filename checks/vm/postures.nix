# The paranoid side of every VM test node: knobs, accounts and keys, and what the test expects
# to observe. Nothing here is VM-specific, so the same modules are evaluated offline against
# paranoid's guard rails (harness/tests/vm_checks.rs, through checks/vm/offline.nix) and booted
# by the VM tests (checks/vm/*.nix), which add only virtual hardware and test fixtures.
#
# Each node is { posture = <NixOS module>; disks = "plain" | "amnesic" | "bastion"; }:
#   plain   / on the VM's disk, the store as qemu-vm sets it up;
#   amnesic / from paranoid.amnesia (tmpfs), /nix on the VM's disk (meeka's layout);
#   bastion / on the VM's disk, /nix a filesystem of its own (bastion's layout).
# (install.target is no node: it is the system vm-install's installer puts on a disk, with its
# own disko layout.)
{ lib, sshPublicKey }:
let
  layouts = import ../../lib/disko.nix { inherit lib; };
  # Accounts shared by the nodes. Passwords are test-only and only ever typed into the VM.
  accounts = {
    users.users.root.openssh.authorizedKeys.keys = [ sshPublicKey ];
    users.users.alice = {
      isNormalUser = true;
      uid = 1000;
      extraGroups = [ "wheel" ];
      initialPassword = passwords.alice;
      openssh.authorizedKeys.keys = [ sshPublicKey ];
    };
    users.users.bob = {
      isNormalUser = true;
      uid = 1001;
      initialPassword = passwords.bob;
      openssh.authorizedKeys.keys = [ sshPublicKey ];
    };
  };
  passwords = { alice = "alice-vm-test-password"; bob = "bob-vm-test-password"; };

  # Written by vm-break-glass at run time (a hash of breakGlassRootPassword), on the VM's disk.
  breakGlassRootHash = "/var/lib/paranoid-break-glass/root.hash";
  # A well-formed public key whose private half nobody has.
  nobodysKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleDeployerKeyReplaceMe00000000000000 nobody@nowhere";

  # A WireGuard interface standing in for the VPN; the VM test generates its key at boot and
  # exchanges public keys at run time, so no key material lives here.
  wireguard = address: {
    networking.wireguard.interfaces.wg0 = {
      ips = [ "${address}/24" ];
      listenPort = 51820;
      privateKeyFile = "/var/lib/wireguard/private.key";
    };
    # The tunnel itself must be reachable from outside; it is the only port a test opens.
    networking.firewall.allowedUDPPorts = [ 51820 ];
  };
in
{
  inherit passwords;
  vpn = { server = "10.100.0.1"; peer = "10.100.0.2"; prefix = "10.100.0"; };

  # What `sshd -T` must print on a node with paranoid.ssh.enable and allowSFTP = false
  # (keyword -> value; sshd prints prohibit-password as without-password).
  expect.sshdT = {
    passwordauthentication = "no";
    kbdinteractiveauthentication = "no";
    authenticationmethods = "publickey";
    pubkeyauthentication = "yes";
    permitrootlogin = "without-password";
    permitemptypasswords = "no";
    permituserenvironment = "no";
    allowtcpforwarding = "no";
    allowagentforwarding = "no";
    allowstreamlocalforwarding = "no";
    x11forwarding = "no";
    permittunnel = "no";
    gatewayports = "no";
    disableforwarding = "yes";
    loglevel = "VERBOSE";
    maxauthtries = "3";
  };
  # Keywords that must not appear at all (no SFTP subsystem).
  expect.sshdAbsent = [ "subsystem" ];

  ssh.server = {
    disks = "plain";
    posture.imports = [
      accounts
      (wireguard "10.100.0.1")
      {
        paranoid.ssh.enable = true;
        paranoid.ssh.allowSFTP = false;
        paranoid.firewall.enable = true;
        paranoid.vpn = { sshOnlyOverVpn = true; interface = "wg0"; };
      }
    ];
  };

  firewall.server = {
    disks = "plain";
    posture.imports = [
      accounts
      (wireguard "10.100.0.1")
      {
        paranoid.ssh.enable = true;
        paranoid.firewall.enable = true;
        # Only the SSH port over the VPN, nothing else that arrives there.
        paranoid.vpn = { sshOnlyOverVpn = true; interface = "wg0"; trust = "ssh"; };
      }
    ];
  };

  nix.machine = {
    disks = "plain";
    posture.imports = [
      accounts
      { paranoid.nix = { enable = true; allowedUsers = "wheel"; }; }
    ];
  };

  amnesia.machine = {
    disks = "amnesic";
    posture.imports = [
      accounts
      {
        paranoid.amnesia = { enable = true; rootSize = "512M"; };
        # sshd generates its host keys into persistent storage (paranoid.amnesia moves them).
        paranoid.ssh.enable = true;
        # One more persisted directory with an owner and mode of its own, added the way the
        # knob's documentation says (impermanence merges it with paranoid's list).
        environment.persistence."/nix/persist".directories = [
          { directory = "/etc/paranoid-probe"; user = "alice"; group = "users"; mode = "0750"; }
        ];
      }
    ];
  };

  noexec.disk = {
    disks = "bastion";
    posture.imports = [
      accounts
      {
        paranoid.noexec.enable = true;
        # The sweep logs in as an ordinary user over SSH, as an intruder would.
        paranoid.ssh.enable = true;
      }
    ];
  };

  noexec.amnesic = {
    disks = "amnesic";
    posture.imports = [
      accounts
      {
        paranoid.noexec.enable = true;
        paranoid.amnesia.enable = true;
        paranoid.ssh.enable = true;
      }
    ];
  };

  audit.mutable = {
    disks = "plain";
    posture = { paranoid.audit.enable = true; };
  };

  audit.locked = {
    disks = "plain";
    posture = { paranoid.audit = { enable = true; immutable = true; }; };
  };

  sudo.wheelonly = {
    disks = "plain";
    # The test drives this node from its console (no sshd): nobody must reach it from the network.
    posture.imports = [ accounts { paranoid.sudo.mode = "wheel-only"; paranoid.adminPath.guard = false; } ];
  };

  sudo.removed = {
    disks = "plain";
    posture.imports = [
      accounts
      {
        paranoid.sudo.mode = "removed";
        # Root over SSH with a key is what administers a host without sudo.
        paranoid.ssh.enable = true;
      }
    ];
  };

  # The control: NixOS's own sudo, so the test can tell execWheelOnly's refusal apart.
  sudo.upstream = {
    disks = "plain";
    posture.imports = [ accounts { paranoid.sudo.mode = "upstream"; paranoid.adminPath.guard = false; } ];
  };

  # vm-install: what the installer puts on the blank disk. The amnesiac layout (BIOS, so the
  # VM boots it with GRUB), amnesia and noexec, and the deploy path as the only way in: the
  # account `deploy`, the test key, a sudo rule, closures signed by the (test) deployer key.
  # The only account with a key is the deploy account, so the test logs in as the deployer would.
  install.target = {
    posture.imports = [
      (layouts.amnesiac { device = "/dev/vda"; firmware = "bios"; rootSize = "512M"; })
      {
        networking.hostName = "installed";
        system.stateVersion = "26.05";
        paranoid.amnesia = { enable = true; rootSize = "512M"; };
        paranoid.noexec.enable = true;
        paranoid.ssh.enable = true;
        paranoid.users.immutable = true;
        paranoid.management = {
          enable = true;
          user = "deploy";
          keys = [ sshPublicKey ];
          trustedPublicKeys = [ "paranoid-vm-test-1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=" ];
        };
      }
    ];
  };

  # bastion's way in (root with a key over wg0, no sudo, noexec, audit) and a break-glass entry
  # relaxing all four things it can. The test boots the entry and reaches it over eth1, the
  # test LAN (the "public" side), with the root password it writes at run time.
  breakGlass.machine = {
    disks = "bastion";
    posture.imports = [
      accounts
      (wireguard "10.100.0.1")
      {
        paranoid.ssh.enable = true;
        paranoid.firewall.enable = true;
        paranoid.vpn = { sshOnlyOverVpn = true; interface = "wg0"; };
        paranoid.sudo.mode = "removed";
        paranoid.noexec.enable = true;
        paranoid.audit.enable = true;
        paranoid.users.immutable = true;
        paranoid.breakGlass = {
          enable = true;
          noexec = true;
          sudo = true;
          sshInterface = "eth1";
          consoleRootLogin = { enable = true; hashedPasswordFile = breakGlassRootHash; };
        };
      }
    ];
  };
  inherit breakGlassRootHash;
  breakGlassRootPassword = "break-glass-vm-test-password";

  # Rollback with a one-minute window, SSH on the LAN. `good` changes nothing that matters;
  # `wrongkey` replaces every admin key with one nobody holds: the admin-path analysis still
  # sees keys (it cannot know they are the wrong ones), the admins are locked out for real.
  rollback.machine = {
    disks = "plain";
    posture.imports = [
      accounts
      ({ lib, ... }: {
        paranoid.ssh.enable = true;
        paranoid.firewall.enable = true;
        services.openssh.openFirewall = true;
        paranoid.rollback = { enable = true; timeout = 1; };
        specialisation.good.configuration.environment.etc."paranoid-generation".text = "good\n";
        specialisation.wrongkey.configuration = {
          users.users.root.openssh.authorizedKeys.keys = lib.mkForce [ nobodysKey ];
          users.users.alice.openssh.authorizedKeys.keys = lib.mkForce [ nobodysKey ];
          users.users.bob.openssh.authorizedKeys.keys = lib.mkForce [ nobodysKey ];
        };
      })
    ];
  };

  logs.sender = {
    disks = "plain";
    posture.imports = [ accounts {
      paranoid.audit.enable = true;
      # The watcher's alerts travel with the journal; the test runs a foreign binary over SSH.
      paranoid.audit.alertForeignExec.enable = true;
      paranoid.ssh.enable = true;
      services.openssh.enable = true;
      paranoid.logs.remote = {
        enable = true;
        url = "https://receiver";
        # Generated by the test at run time, outside the store.
        serverKeyFile = "/run/paranoid-tls/client.key.pem";
        serverCertificateFile = "/run/paranoid-tls/client.cert.pem";
        trustedCertificateFile = "/run/paranoid-tls/ca.cert.pem";
      };
    } ];
  };
}
