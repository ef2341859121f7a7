# vm-audit: paranoid.audit. The kernel audits every program start, including one copied
# outside the store, and with `immutable` the rules cannot be changed until reboot.
{ common, pkgs, lib }:
let
  p = common.postures;
  key = "exec"; # paranoid.audit.key's default
in
common.mkTest { name = "audit"; } {
  nodes.mutable = common.node p.audit.mutable { };
  nodes.locked = common.node p.audit.locked { };

  testScript = common.prelude + ''
    import re

    start_all()
    for m in [mutable, locked]:
        m.wait_for_unit("multi-user.target")
        m.wait_for_unit("auditd.service")


    def enabled(machine):
        status = machine.succeed("auditctl -s")
        found = re.search(r"^enabled (\d+)", status, re.M)
        assert found, f"auditctl -s printed no 'enabled' line:\n{status}"
        return int(found.group(1))


    def exec_is_audited(machine, name):
        """Run a copy of a store binary from outside the store; its execve must be on record."""
        probe = f"/root/{name}"
        # bash, not coreutils: nixpkgs' coreutils is one multi-call binary that dispatches on its name.
        machine.succeed(f"cp $(readlink -f $(command -v bash)) {probe}", f"{probe} -c true")
        out = machine.wait_until_succeeds(
            f"ausearch --input-logs -i -k ${key} | grep -F 'exe={probe} '",
            timeout=60,
        )
        expect_in("key=${key}", out, f"audit record of {probe}")

    with subtest("auditing is on, with the execve rules loaded"):
        assert enabled(mutable) == 1, "auditctl -s: expected enabled 1 without immutable"
        rules = mutable.succeed("auditctl -l").splitlines()
        for arch in ["b64", "b32"]:
            assert any(
                f"arch={arch}" in r and "execve" in r and "execveat" in r and "key=${key}" in r for r in rules
            ), f"no {arch} execve/execveat rule with key ${key} in: {rules}"

    with subtest("running a copied binary leaves a record whose exe is outside /nix/store"):
        exec_is_audited(mutable, "paranoid-audit-probe")

    with subtest("immutable: enabled 2, rules locked, exec still audited"):
        assert enabled(locked) == 2, "auditctl -s: expected enabled 2 with immutable"
        failing(locked, "auditctl -D", "deleting audit rules when locked")
        failing(locked, "auditctl -e 0", "disabling auditing when locked")
        assert enabled(locked) == 2, "auditing changed state although locked"
        exec_is_audited(locked, "paranoid-audit-probe-locked")

    with subtest("control: the unlocked node accepts a rule change"):
        mutable.succeed("auditctl -a always,exit -F arch=b64 -S chmod -k paranoid-control")
        mutable.succeed("auditctl -d always,exit -F arch=b64 -S chmod -k paranoid-control")
  '';
}
