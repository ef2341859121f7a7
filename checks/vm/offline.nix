# The VM tests rendered offline, for harness/tests/vm_checks.rs. Each test file is imported with
# stand-ins for nixpkgs (paranoid's surface stubs; runNixOSTest returns the test module) and its
# nodes are evaluated on the offline surface, so that without full nixpkgs:
#   - every node's posture is judged by paranoid's guard rails (a failed assertion would stop
#     the VM test at evaluation), and the rendered sshd_config can be checked against what the
#     test expects `sshd -T` to print;
#   - every Python test script can be rendered and linted.
# Nothing here boots a VM or proves behaviour; the VM tests do that where nixpkgs and KVM exist.
{ paranoid, lib, self ? { } }:
let
  stub = name: paranoid.stubPkgs.writeText name "";
  pkgs = paranoid.stubPkgs // {
    path = ./offline/nixpkgs;
    testers.runNixOSTest = module: module;
    python3 = stub "python3";
    minica = stub "minica";
    sshpass = stub "sshpass";
    openssl = stub "openssl";
    kexec-tools = stub "kexec-tools";
  };
  # vm-install's target system, on the surface: its configuration, with stand-ins for the two
  # build products the installer references (the system closure and disko's script).
  evalSystem = modules:
    let config = (paranoid.evalSurface { inherit modules; }).config; in
    {
      config = config // {
        system = config.system // {
          build = config.system.build // {
            toplevel = stub "nixos-system-${config.networking.hostName}";
            destroyFormatMount = stub "disko-destroy-format-mount";
          };
        };
      };
    };
  common = import ./lib.nix { inherit self pkgs lib evalSystem; };
  inherit (common) postures;

  # The offline counterpart of lib.nix's `disks`: the same layouts, without the VM's 9p shares.
  disks = {
    plain = { fileSystems."/" = { device = "/dev/vda"; fsType = "ext4"; }; };
    amnesic = { fileSystems."/nix" = { device = "/dev/vda"; fsType = "ext4"; }; };
    bastion = {
      fileSystems."/" = { device = "/dev/vda"; fsType = "ext4"; };
      fileSystems."/nix" = { device = "tmpfs"; fsType = "tmpfs"; options = [ "mode=755" ]; neededForBoot = true; };
    };
  };

  # What the test framework adds to every node that the scripts read.
  framework = name: number: { lib, ... }: {
    options.networking.primaryIPAddress = lib.mkOption { type = lib.types.str; default = "192.168.1.${toString number}"; };
    config.networking.hostName = lib.mkDefault name;
    config.system.stateVersion = lib.mkDefault "26.05";
  };

  evalNodes = sources:
    let
      names = lib.attrNames sources;
      number = name: 1 + lib.lists.findFirstIndex (n: n == name) null names;
    in
    lib.mapAttrs (name: modules: (paranoid.evalSurface { modules = modules ++ [ (framework name (number name)) ]; }).config) sources;

  posture = entry: [ entry.posture disks.${entry.disks} ];
  bare = [ disks.plain ];

  # Per test: its file and where each of its nodes comes from.
  tests = {
    ssh = { nodes = { server = posture postures.ssh.server; client = bare; }; };
    firewall = { nodes = { server = posture postures.firewall.server; vpnpeer = bare; outsider = bare; }; };
    nix = { nodes = { machine = posture postures.nix.machine; }; };
    amnesia = { nodes = { machine = posture postures.amnesia.machine; }; };
    noexec = { nodes = { disk = posture postures.noexec.disk; amnesic = posture postures.noexec.amnesic; }; };
    audit = { nodes = { mutable = posture postures.audit.mutable; locked = posture postures.audit.locked; }; };
    sudo = { nodes = { wheelonly = posture postures.sudo.wheelonly; removed = posture postures.sudo.removed; upstream = posture postures.sudo.upstream; }; };
    logs = { nodes = { sender = posture postures.logs.sender; receiver = bare; }; };
    break-glass = { nodes = { machine = posture postures.breakGlass.machine; client = bare; }; };
    rollback = { nodes = { machine = posture postures.rollback.machine; client = bare; }; };
    meeka = { nodes = { meeka = [ paranoid.hosts.meeka ]; }; };
    bastion = { nodes = { bastion = [ paranoid.hosts.bastion ]; }; };
    # The installer node as the VM test builds it (its target's own assertions are among the
    # installer's, see installer/module.nix); the target node only boots that disk.
    install = {
      nodes = {
        installer = [ disks.plain ../../installer/module.nix { paranoid.installer.system = common.installable [ postures.install.target.posture ]; } ];
        target = bare;
      };
    };
  };

  render = area: spec:
    let
      module = import (./. + "/${area}.nix") { inherit common pkgs lib; };
      # mkTest's wrapper first, the test itself second.
      test = lib.elemAt module.imports 1;
      nodes = evalNodes spec.nodes;
      script = if builtins.isFunction test.testScript then test.testScript { inherit nodes; } else test.testScript;
    in
    {
      inherit script;
      nodeNames = lib.attrNames test.nodes;
      # Every node the test declares is one this file evaluates (and vice versa).
      evaluatedNodes = lib.attrNames spec.nodes;
      postures = lib.mapAttrs (_: config: {
        # A specialisation's failed assertion fails the whole system's build too.
        failedAssertions = lib.concatMap (c: map (a: a.message) (lib.filter (a: !a.assertion) c.assertions))
          ([ config ] ++ map (s: s.configuration) (lib.attrValues config.specialisation));
        warnings = config.warnings;
        sshdConfig = (paranoid.project { inherit config; backend = "surface"; }).rendered.sshd_config;
      }) nodes;
    };
in
{
  tests = lib.mapAttrs render tests;
  inherit (postures) expect;
}
