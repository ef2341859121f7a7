# The weakening catalogue: mutation testing for paranoid's posture checks. Each entry weakens ONE
# guarantee of a clean reference host (examples/<base>) by ONE route, names the invariant that
# must catch it and where the route comes from (an upstream option, a public report, a handed
# case). `check` must flag every entry; the sandbox must flag every entry whose effect a real
# program can observe here (`observable` names that sandbox check; when null, `why` says why not).
#
#   { id; base = "bastion" | "meeka"; invariant; route; source; observable; why ? null; module; }
#
# `module` is an ordinary NixOS module (an attrset, or a function of the module arguments).
[
  {
    id = "sshd-match-group-homedir-keys";
    base = "meeka";
    invariant = "ssh.homedir-keys";
    route = "services.openssh.extraConfig: a Match block turns ~/.ssh/authorized_keys back on for wheel";
    source = "handed case c01; sshd_config(5) Match";
    observable = "sshd";
    module = { services.openssh.extraConfig = "Match Group wheel\n  AuthorizedKeysFile .ssh/authorized_keys\n"; };
  }
  {
    id = "sshd-include-runtime-file";
    base = "bastion";
    invariant = "ssh.judged";
    route = "services.openssh.extraConfig: Include of a file that exists only at run time";
    source = "handed case c02";
    observable = null;
    why = "the included file does not exist on the build machine: no program can say what it would set";
    module = { services.openssh.extraConfig = "Include /var/lib/appliance/sshd_override.conf\n"; };
  }
  {
    id = "nix-extra-trusted-users";
    base = "meeka";
    invariant = "nix.trusted-users";
    route = "nix.settings.extra-trusted-users appends to trusted-users";
    source = "handed case c03; nix.conf(5) extra-*";
    observable = "nix-daemon";
    module = { nix.settings.extra-trusted-users = [ "cadey" ]; };
  }
  {
    id = "sudo-rs-wheel-nopasswd";
    base = "meeka";
    invariant = "sudo.mode";
    route = "security.sudo-rs with wheelNeedsPassword = false instead of sudo";
    source = "handed case c04";
    observable = "sudo";
    module = { security.sudo.enable = false; security.sudo-rs.enable = true; security.sudo-rs.wheelNeedsPassword = false; };
  }
  {
    id = "audit-exclude-execve";
    base = "meeka";
    invariant = "audit.execve-rules";
    route = "security.audit.rules: an exclude rule drops every EXECVE record";
    source = "handed case c05; auditctl(8) exclude filter";
    observable = "auditd";
    module = { lib, ... }: { security.audit.rules = lib.mkAfter [ "-a always,exclude -F msgtype=EXECVE" ]; };
  }
  {
    id = "firewall-uplink-interface-port";
    base = "bastion";
    invariant = "vpn.ssh-not-global";
    route = "networking.firewall.interfaces.<uplink>.allowedTCPPorts opens SSH on one public interface";
    source = "handed case c06; nixos/modules/services/networking/firewall.nix interfaces";
    observable = "firewall";
    module = { networking.firewall.interfaces.enp1s0.allowedTCPPorts = [ 22 ]; };
  }
  {
    id = "sshd-listenaddress-port-global";
    base = "bastion";
    invariant = "vpn.ssh-not-global";
    route = "services.openssh.listenAddresses moves sshd to 2222, and 2222 is opened everywhere";
    source = "handed case c07";
    observable = "firewall";
    module = { services.openssh.listenAddresses = [ { addr = "0.0.0.0"; port = 2222; } ]; networking.firewall.allowedTCPPorts = [ 2222 ]; };
  }
  {
    id = "sshd-challenge-response-alias";
    base = "bastion";
    invariant = "ssh.kbd-interactive";
    route = "services.openssh.settings.ChallengeResponseAuthentication, an alias sshd reads before KbdInteractiveAuthentication";
    source = "handed case c13; OpenSSH servconf.h aliases";
    observable = "sshd";
    module = { services.openssh.settings.ChallengeResponseAuthentication = true; };
  }
  {
    id = "sshd-match-address-password";
    base = "bastion";
    invariant = "ssh.password-auth";
    route = "services.openssh.extraConfig: Match Address turns passwords back on for one network";
    source = "sshd_config(5) Match Address";
    observable = "sshd";
    module = { services.openssh.extraConfig = "Match Address 192.168.0.0/16\n  PasswordAuthentication yes\n"; };
  }
  {
    id = "nix-extraoptions-trusted";
    base = "meeka";
    invariant = "nix.trusted-users";
    route = "nix.extraOptions: a later trusted-users line wins over nix.settings";
    source = "nix.conf(5): the last assignment wins";
    observable = "nix-daemon";
    module = { nix.extraOptions = "trusted-users = root @wheel\n"; };
  }
  {
    id = "firewall-trusted-uplink";
    base = "bastion";
    invariant = "vpn.ssh-not-global";
    route = "networking.firewall.trustedInterfaces adds the uplink";
    source = "nixos/modules/services/networking/firewall.nix trustedInterfaces";
    observable = "firewall";
    module = { networking.firewall.trustedInterfaces = [ "eth0" ]; };
  }
  {
    id = "sudo-extra-rule-nopasswd";
    base = "meeka";
    invariant = "sudo.mode";
    route = "security.sudo.extraRules: NOPASSWD ALL for wheel";
    source = "nixos/modules/security/sudo.nix extraRules";
    observable = "sudo";
    module = { security.sudo.extraRules = [ { groups = [ "wheel" ]; commands = [ { command = "ALL"; options = [ "NOPASSWD" ]; } ]; } ]; };
  }
]
