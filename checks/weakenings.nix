# The weakening catalogue: mutation testing for paranoid's posture checks. Each entry weakens ONE
# guarantee of a clean reference host (examples/<base>) by ONE route, names the invariant that
# must catch it and where the route comes from (an upstream option, a public report, a handed
# case). `check` must flag every entry; the sandbox must flag every entry whose effect a real
# program can observe here (`observable` names that sandbox check; when null, `why` says why not).
#
#   { id; base = "bastion" | "meeka"; invariant; route; source; observable; why ? null;
#     setup ? null; finding ? null; module; }
#
# `module` is an ordinary NixOS module (an attrset, or a function of the module arguments).
# `setup`, when given, is a module that turns on what the reference host leaves off (an area
# the entry's guarantee belongs to, e.g. the binary-cache block); the base with its setup must
# itself be clean, so the entry's `module` is still the one weakening (harness/tests/weakenings.rs
# checks both). `finding`, for an invariant with several causes, is text its finding must
# contain, so the entry is caught for its own weakening and not for a side effect.
[
  # ---- sshd: Match blocks (User, Group, Address, LocalPort, Host, all), aliases, settings -------

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
    id = "sshd-challenge-response-alias";
    base = "bastion";
    invariant = "ssh.kbd-interactive";
    route = "services.openssh.settings.ChallengeResponseAuthentication, an alias sshd reads before KbdInteractiveAuthentication";
    source = "handed case c13; OpenSSH servconf.c keyword table (aliases)";
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
    id = "sshd-match-user-tcp-forwarding";
    base = "meeka";
    invariant = "ssh.tcp-forwarding";
    route = "services.openssh.extraConfig: Match User gives one admin TCP forwarding back";
    source = "sshd_config(5) Match User; the common 'let me tunnel to the database' snippet";
    observable = "sshd";
    module = { services.openssh.extraConfig = "Match User cadey\n  AllowTcpForwarding yes\n"; };
  }
  {
    id = "sshd-match-localport-x11";
    base = "bastion";
    invariant = "ssh.x11-forwarding";
    route = "services.openssh.extraConfig: Match LocalPort 22 turns X11 forwarding on for every connection to that port";
    source = "sshd_config(5) Match LocalPort";
    observable = "sshd";
    module = { services.openssh.extraConfig = "Match LocalPort 22\n  X11Forwarding yes\n"; };
  }
  {
    id = "sshd-match-host-agent-forwarding";
    base = "bastion";
    invariant = "ssh.agent-forwarding";
    route = "services.openssh.extraConfig: Match Host * (matched against the client's address with UseDNS no) turns agent forwarding on";
    source = "sshd_config(5) Match Host, UseDNS";
    observable = "sshd";
    module = { services.openssh.extraConfig = "Match Host *\n  AllowAgentForwarding yes\n"; };
  }
  {
    id = "sshd-match-all-streamlocal";
    base = "meeka";
    invariant = "ssh.streamlocal-forwarding";
    route = "services.openssh.extraConfig: Match all turns Unix-socket forwarding on";
    source = "sshd_config(5) Match all";
    observable = "sshd";
    module = { services.openssh.extraConfig = "Match all\n  AllowStreamLocalForwarding yes\n"; };
  }
  {
    id = "sshd-match-group-disable-forwarding";
    base = "meeka";
    invariant = "ssh.disable-forwarding";
    route = "services.openssh.extraConfig: Match Group wheel turns DisableForwarding off for the admins";
    source = "sshd_config(5) DisableForwarding";
    observable = "sshd";
    module = { services.openssh.extraConfig = "Match Group wheel\n  DisableForwarding no\n"; };
  }
  {
    id = "sshd-settings-permit-tunnel";
    base = "bastion";
    invariant = "ssh.tunnel";
    route = "services.openssh.settings.PermitTunnel = \"yes\" (a plain definition beats paranoid's mkDefault)";
    source = "sshd_config(5) PermitTunnel; RFC 42 settings in nixos/modules/services/networking/ssh/sshd.nix";
    observable = "sshd";
    module = { services.openssh.settings.PermitTunnel = "yes"; };
  }
  {
    id = "sshd-match-user-root-gateway-ports";
    base = "bastion";
    invariant = "ssh.gateway-ports";
    route = "services.openssh.extraConfig: Match User root lets root's forwards bind every address";
    source = "sshd_config(5) GatewayPorts";
    observable = "sshd";
    module = { services.openssh.extraConfig = "Match User root\n  GatewayPorts clientspecified\n"; };
  }
  {
    id = "sshd-settings-authmethods-any-of";
    base = "meeka";
    invariant = "ssh.publickey-only";
    route = "services.openssh.settings.AuthenticationMethods = \"publickey password\" (either one suffices)";
    source = "sshd_config(5) AuthenticationMethods";
    observable = "sshd";
    module = { services.openssh.settings.AuthenticationMethods = "publickey password"; };
  }
  {
    id = "sshd-settings-permit-root-login-yes";
    base = "bastion";
    invariant = "ssh.root-login";
    route = "services.openssh.settings.PermitRootLogin = \"yes\": root may log in with a password too";
    source = "sshd_config(5) PermitRootLogin; the option NixOS renamed from services.openssh.permitRootLogin";
    observable = "sshd";
    module = { services.openssh.settings.PermitRootLogin = "yes"; };
  }
  {
    id = "sshd-match-user-root-permit-root-login";
    base = "meeka";
    invariant = "ssh.root-login";
    route = "services.openssh.extraConfig: Match User root overrides the global PermitRootLogin";
    source = "sshd_config(5) Match (PermitRootLogin is allowed in Match blocks)";
    observable = "sshd";
    module = { services.openssh.extraConfig = "Match User root\n  PermitRootLogin yes\n"; };
  }
  {
    id = "sshd-authorized-keys-in-homedir-forced";
    base = "meeka";
    invariant = "ssh.homedir-keys";
    route = "services.openssh.authorizedKeysInHomedir = lib.mkForce true";
    source = "nixos/modules/services/networking/ssh/sshd.nix authorizedKeysInHomedir";
    observable = "sshd";
    module = { lib, ... }: { services.openssh.authorizedKeysInHomedir = lib.mkForce true; };
  }
  {
    id = "sshd-settings-authorized-keys-file";
    base = "bastion";
    invariant = "ssh.homedir-keys";
    route = "services.openssh.settings.AuthorizedKeysFile: rendered before the module's own line, so it wins";
    source = "sshd_config(5) AuthorizedKeysFile; sshd keeps the first value";
    observable = "sshd";
    module = { services.openssh.settings.AuthorizedKeysFile = "%h/.ssh/authorized_keys /etc/ssh/authorized_keys.d/%u"; };
  }
  {
    id = "sshd-sftp-forced-on";
    base = "bastion";
    invariant = "ssh.sftp";
    route = "services.openssh.allowSFTP = lib.mkForce true on a host whose profile removes SFTP";
    source = "nixos/modules/services/networking/ssh/sshd.nix allowSFTP";
    observable = "sshd";
    module = { lib, ... }: { services.openssh.allowSFTP = lib.mkForce true; };
  }
  {
    id = "sshd-match-global-only-keyword";
    base = "meeka";
    invariant = "ssh.config-valid";
    route = "services.openssh.extraConfig: a global-only keyword (Port) inside a Match block: sshd refuses to start";
    source = "OpenSSH servconf.c (SSHCFG_GLOBAL keywords are refused in Match)";
    observable = "sshd";
    module = { services.openssh.extraConfig = "Match User cadey\n  Port 2022\n"; };
  }

  # ---- the admin path: nobody can get in after a reboot ------------------------------------------

  {
    id = "admin-allowusers-excludes-root";
    base = "bastion";
    invariant = "admin.path";
    route = "services.openssh.settings.AllowUsers names someone else than root, the only admin";
    source = "sshd_config(5) AllowUsers";
    observable = "sshd";
    module = { services.openssh.settings.AllowUsers = [ "deployer" ]; };
  }
  {
    id = "admin-denyusers-root";
    base = "bastion";
    invariant = "admin.path";
    route = "services.openssh.extraConfig: DenyUsers root on a host where root is the only admin";
    source = "sshd_config(5) DenyUsers";
    observable = "sshd";
    module = { services.openssh.extraConfig = "DenyUsers root\n"; };
  }
  {
    id = "admin-allowgroups-wheel-root-only";
    base = "bastion";
    invariant = "admin.path";
    route = "services.openssh.settings.AllowGroups = [ \"wheel\" ]: root is not in wheel, and root is the only admin";
    source = "sshd_config(5) AllowGroups";
    observable = "sshd";
    module = { services.openssh.settings.AllowGroups = [ "wheel" ]; };
  }
  {
    id = "admin-denygroups-root";
    base = "bastion";
    invariant = "admin.path";
    route = "services.openssh.extraConfig: DenyGroups root shuts out the only admin";
    source = "sshd_config(5) DenyGroups";
    observable = "sshd";
    module = { services.openssh.extraConfig = "DenyGroups root\n"; };
  }
  {
    id = "admin-permit-root-login-no";
    base = "bastion";
    invariant = "admin.path";
    route = "services.openssh.settings.PermitRootLogin = \"no\" on a host without sudo, where root is the only way in";
    source = "sshd_config(5) PermitRootLogin; paranoid's sudo.mode = removed";
    observable = "sshd";
    module = { services.openssh.settings.PermitRootLogin = "no"; };
  }
  {
    id = "admin-match-root-no-pubkey";
    base = "bastion";
    invariant = "admin.path";
    route = "services.openssh.extraConfig: Match User root takes key login away from root";
    source = "sshd_config(5) PubkeyAuthentication in Match";
    observable = "sshd";
    module = { services.openssh.extraConfig = "Match User root\n  PubkeyAuthentication no\n"; };
  }
  {
    id = "admin-authmethods-need-password";
    base = "bastion";
    invariant = "admin.path";
    route = "services.openssh.settings.AuthenticationMethods = \"publickey,password\": a key alone no longer logs in, and root has no password";
    source = "sshd_config(5) AuthenticationMethods; a common 2FA hardening snippet";
    observable = "sshd";
    module = { services.openssh.settings.AuthenticationMethods = "publickey,password"; };
  }
  {
    id = "admin-unpersisted-password-file";
    base = "meeka";
    invariant = "admin.path";
    route = "users.users.<admin>.hashedPasswordFile on the tmpfs root: the wheel admin has no password for sudo after a reboot";
    source = "impermanence + users.mutableUsers = false (hashedPasswordFile must survive the reboot)";
    observable = null;
    why = "a reboot of an amnesiac root is what loses the file: only the VM tier reboots";
    setup = { paranoid.ssh.permitRootLogin = "no"; };
    module = { lib, ... }: { users.users.cadey.hashedPasswordFile = lib.mkForce "/etc/secrets/cadey.hash"; };
  }
  {
    id = "admin-password-file-dot-dot";
    base = "meeka";
    invariant = "admin.path";
    route = "users.users.<admin>.hashedPasswordFile = \"/nix/persist/../../tmp/cadey.hash\": under the persist path as written, on the tmpfs root once `..` is walked";
    source = "a new user's trial: paths were compared as strings";
    observable = null;
    why = "a reboot of an amnesiac root is what loses the file: only the VM tier reboots";
    setup = { paranoid.ssh.permitRootLogin = "no"; };
    module = { lib, ... }: { users.users.cadey.hashedPasswordFile = lib.mkForce "/nix/persist/../../tmp/cadey.hash"; };
  }
  {
    id = "admin-vpn-only-without-vpn";
    base = "bastion";
    invariant = "admin.path";
    route = "networking.wireguard.interfaces = lib.mkForce { }: SSH is VPN-only and the VPN is gone";
    source = "the 2021 recipe's 'SSH only over the VPN' with the VPN removed later";
    observable = null;
    why = "no VPN interface exists to probe from: the firewall check sees only that SSH is closed everywhere else";
    module = { lib, ... }: { networking.wireguard.interfaces = lib.mkForce { }; };
  }

  # ---- sshd and the admin path: key algorithms, host keys, login shells, key programs, RDomain,
  # ---- socket activation (new-user trial l10, l19, l13, m17, m13, x12) -------------------------

  {
    id = "admin-pubkey-algorithms-exclude-admin-key";
    base = "bastion";
    invariant = "admin.path";
    route = "services.openssh.settings.PubkeyAcceptedAlgorithms = \"rsa-sha2-512\" while root's only key is ed25519: sshd rejects the admin's key";
    source = "new-user trial l10; sshd_config(5) PubkeyAcceptedAlgorithms";
    observable = "sshd";
    module = { services.openssh.settings.PubkeyAcceptedAlgorithms = "rsa-sha2-512"; };
  }
  {
    id = "admin-match-root-pubkey-algorithms-remove";
    base = "bastion";
    invariant = "admin.path";
    route = "services.openssh.extraConfig: Match User root with PubkeyAcceptedAlgorithms -ssh-ed25519* (a `-list` removes from sshd's default, not from the global value): root's ed25519 key is refused";
    source = "sshd_config(5) PubkeyAcceptedAlgorithms list syntax (+, -, ^, wildcards); OpenSSH kex.c kex_assemble_names";
    observable = "sshd";
    module = { services.openssh.extraConfig = "Match User root\n  PubkeyAcceptedAlgorithms -ssh-ed25519*\n"; };
  }
  {
    id = "admin-hostkey-algorithms-no-host-key";
    base = "bastion";
    invariant = "admin.path";
    route = "services.openssh.settings.HostKeyAlgorithms = \"ssh-rsa\" with only an ed25519 host key: sshd starts, and every connection fails in key exchange";
    source = "new-user trial l19; sshd_config(5) HostKeyAlgorithms; measured: OpenSSH 9.2 logs \"No supported key exchange algorithms\"";
    observable = "sshd";
    module = { services.openssh.settings.HostKeyAlgorithms = "ssh-rsa"; };
  }
  {
    id = "admin-root-shell-nologin";
    base = "bastion";
    invariant = "admin.path";
    route = "users.users.root.shell = nologin on a host where root is the only way in: sshd accepts the key, the login shell ends every session";
    source = "new-user trial l13; nixos/modules/config/users-groups.nix shell; sshd runs every session through the login shell";
    observable = null;
    why = "the sandbox gives every account /bin/sh (NixOS's shells live in its store): the shell that ends the session exists only on the real host";
    module = { users.users.root.shell = "/run/current-system/sw/bin/nologin"; };
  }
  {
    id = "sshd-match-user-authorized-keys-command";
    base = "meeka";
    invariant = "ssh.homedir-keys";
    route = "services.openssh.extraConfig: Match User gives the admin an AuthorizedKeysCommand printing keys from a file in its home";
    source = "new-user trial m17; sshd_config(5) AuthorizedKeysCommand";
    observable = null;
    why = "which keys the program prints at login is outside the configuration: no program here can say what it will admit";
    module = { services.openssh.extraConfig = "Match User cadey\n  AuthorizedKeysCommand /bin/cat /home/%u/keys\n  AuthorizedKeysCommandUser nobody\n"; };
  }
  {
    id = "sshd-authorized-keys-command-option";
    base = "bastion";
    invariant = "ssh.homedir-keys";
    route = "services.openssh.authorizedKeysCommand: every account's keys come from a program";
    source = "nixos/modules/services/networking/ssh/sshd.nix authorizedKeysCommand";
    observable = null;
    why = "which keys the program prints at login is outside the configuration: no program here can say what it will admit";
    module = { services.openssh.authorizedKeysCommand = "/run/current-system/sw/bin/sss_ssh_authorizedkeys"; };
  }
  {
    id = "sshd-match-rdomain-unjudged";
    base = "bastion";
    invariant = "ssh.judged";
    route = "services.openssh.extraConfig: Match RDomain * turns passwords on for connections whose routing domain matches";
    source = "new-user trial m13; sshd_config(5) Match RDomain; measured: sshd -T -C matches `*` with rdomain= given (even empty), never without";
    observable = null;
    why = "a connection's routing domain is the VRF its socket is bound to, set up at run time: sshd -T -C only answers for an rdomain it is given";
    module = { services.openssh.extraConfig = "Match RDomain *\n  PasswordAuthentication yes\n"; };
  }
  {
    id = "firewall-socket-activation-port";
    base = "bastion";
    invariant = "vpn.ssh-not-global";
    route = "services.openssh.startWhenNeeded: systemd.sockets.sshd.socketConfig.ListenStream moves SSH to 2222, and 2222 is opened everywhere";
    source = "new-user trial x12; nixos/modules/services/networking/ssh/sshd.nix startWhenNeeded (sshd.socket)";
    observable = "firewall";
    module = { lib, ... }: {
      services.openssh.startWhenNeeded = true;
      systemd.sockets.sshd.socketConfig.ListenStream = lib.mkForce [ "0.0.0.0:2222" ];
      networking.firewall.allowedTCPPorts = [ 2222 ];
    };
  }

  # ---- Nix daemon: trusted-users, allowed-users, channels, the cache block, includes -----------

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
    id = "nix-extraoptions-trusted";
    base = "meeka";
    invariant = "nix.trusted-users";
    route = "nix.extraOptions: a later trusted-users line wins over nix.settings";
    source = "nix.conf(5): the last assignment wins";
    observable = "nix-daemon";
    module = { nix.extraOptions = "trusted-users = root @wheel\n"; };
  }
  {
    id = "nix-daemon-nix-config-env";
    base = "meeka";
    invariant = "nix.trusted-users";
    route = "systemd.services.nix-daemon.environment.NIX_CONFIG: the daemon reads it after nix.conf";
    source = "nix.conf(5) NIX_CONFIG";
    observable = "nix-daemon";
    module = { systemd.services.nix-daemon.environment.NIX_CONFIG = "trusted-users = root cadey"; };
  }
  {
    id = "nix-trusted-users-wheel";
    base = "meeka";
    invariant = "nix.trusted-users";
    route = "nix.settings.trusted-users = [ \"root\" \"@wheel\" ] (the NixOS manual's deploy-rs / remote-build advice)";
    source = "nix.conf(5) trusted-users @group";
    observable = "nix-daemon";
    module = { nix.settings.trusted-users = [ "root" "@wheel" ]; };
  }
  {
    id = "nix-trusted-users-star";
    base = "bastion";
    invariant = "nix.trusted-users";
    route = "nix.settings.trusted-users = [ \"*\" ]: every account is trusted";
    source = "nix.conf(5) trusted-users *";
    observable = "nix-daemon";
    module = { nix.settings.trusted-users = [ "*" ]; };
  }
  {
    id = "nix-allowed-users-star";
    base = "meeka";
    invariant = "nix.allowed-users";
    route = "nix.settings.allowed-users = [ \"*\" ]: every account may talk to the daemon";
    source = "nix.conf(5) allowed-users; NixOS's own default";
    observable = "nix-daemon";
    module = { nix.settings.allowed-users = [ "*" ]; };
  }
  {
    id = "nix-extra-allowed-users";
    base = "bastion";
    invariant = "nix.allowed-users";
    route = "nix.settings.extra-allowed-users appends @users to a root-only daemon";
    source = "nix.conf(5) extra-*";
    observable = "nix-daemon";
    module = { nix.settings.extra-allowed-users = [ "@users" ]; };
  }
  {
    id = "nix-channels-forced";
    base = "bastion";
    invariant = "nix.channels";
    route = "nix.channel.enable = lib.mkForce true";
    source = "nixos/modules/config/nix-channel.nix";
    observable = null;
    why = "channels are a NIX_PATH and a nix-channel binary on a running system: only the VM tier has one";
    module = { lib, ... }: { nix.channel.enable = lib.mkForce true; };
  }
  {
    id = "nix-extra-substituters-cache-block";
    base = "bastion";
    invariant = "nix.cache-block";
    route = "nix.settings.extra-substituters puts cache.nixos.org back on a host that blocks it";
    source = "nix.conf(5) extra-substituters";
    observable = "nix-daemon";
    setup = { paranoid.nix.blockBinaryCache = true; };
    module = { nix.settings.extra-substituters = [ "https://cache.nixos.org/" ]; };
  }
  {
    id = "nix-extraoptions-include";
    base = "meeka";
    invariant = "nix.judged";
    route = "nix.extraOptions: !include of a file that exists only at run time";
    source = "nix.conf(5) include / !include";
    observable = null;
    why = "the included file does not exist on the build machine: no program can say what it would set";
    module = { nix.extraOptions = "!include /var/lib/nix/local.conf\n"; };
  }
  # The daemon's environment as systemd builds it: serviceConfig's own Environment= lines (after
  # `environment`'s, so they win), an EnvironmentFile= and variables that send Nix elsewhere.
  {
    id = "nix-daemon-serviceconfig-environment";
    base = "meeka";
    invariant = "nix.trusted-users";
    route = "systemd.services.nix-daemon.serviceConfig.Environment: a systemd-quoted NIX_CONFIG assignment, rendered after `environment`'s lines";
    source = "new-user trial n05; systemd.exec(5) Environment=; nixos/lib/systemd-lib.nix serviceToUnit";
    observable = "nix-daemon";
    module = { systemd.services.nix-daemon.serviceConfig.Environment = [ "\"NIX_CONFIG=trusted-users = root cadey\"" ]; };
  }
  {
    id = "nix-daemon-environment-file";
    base = "bastion";
    invariant = "nix.judged";
    route = "systemd.services.nix-daemon.serviceConfig.EnvironmentFile: systemd reads NIX_CONFIG (or NIX_CONF_DIR) from a file when it starts the daemon";
    source = "new-user trial n11; systemd.exec(5) EnvironmentFile=";
    observable = null;
    why = "the file is read by systemd at run time; the sandbox runs the daemon itself, with the rendered nix.conf and NIX_CONFIG only";
    module = { systemd.services.nix-daemon.serviceConfig.EnvironmentFile = "/run/secrets/nix-daemon.env"; };
  }
  {
    id = "nix-daemon-conf-dir";
    base = "meeka";
    invariant = "nix.judged";
    route = "systemd.services.nix-daemon.environment.NIX_CONF_DIR: the daemon reads another nix.conf than /etc/nix/nix.conf (none at all: allowed-users falls back to *)";
    source = "new-user trial n12; nix.conf(5) NIX_CONF_DIR";
    observable = null;
    why = "the directory is filled at run time (or not at all); the sandbox gives the daemon the rendered /etc/nix/nix.conf";
    module = { systemd.services.nix-daemon.environment.NIX_CONF_DIR = "/etc/nix-local"; };
  }
  {
    id = "nix-daemon-user-conf-files";
    base = "bastion";
    invariant = "nix.judged";
    route = "systemd.services.nix-daemon.environment.NIX_USER_CONF_FILES: the daemon also reads these files, after nix.conf";
    source = "new-user trial n12; nix.conf(5) NIX_USER_CONF_FILES";
    observable = null;
    why = "the files are written at run time; the sandbox gives the daemon the rendered nix.conf and NIX_CONFIG only";
    module = { systemd.services.nix-daemon.environment.NIX_USER_CONF_FILES = "/var/lib/nix/local.conf"; };
  }

  # ---- firewall: where SSH can be reached ---------------------------------------------------------

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
    id = "firewall-trusted-uplink";
    base = "bastion";
    invariant = "vpn.ssh-not-global";
    route = "networking.firewall.trustedInterfaces adds the uplink";
    source = "nixos/modules/services/networking/firewall.nix trustedInterfaces";
    observable = "firewall";
    module = { networking.firewall.trustedInterfaces = [ "eth0" ]; };
  }
  {
    id = "firewall-global-port";
    base = "meeka";
    invariant = "vpn.ssh-not-global";
    route = "networking.firewall.allowedTCPPorts = [ 22 ] on a Tailscale-only host";
    source = "the NixOS manual's firewall example";
    observable = "firewall";
    module = { networking.firewall.allowedTCPPorts = [ 22 ]; };
  }
  {
    id = "firewall-default-interface";
    base = "bastion";
    invariant = "vpn.ssh-not-global";
    route = "networking.firewall.interfaces.default.allowedTCPPorts: upstream's `default` entry means every interface";
    source = "nixos/modules/services/networking/firewall-nftables.nix (interfaces.default)";
    observable = "firewall";
    module = { networking.firewall.interfaces.default.allowedTCPPorts = [ 22 ]; };
  }
  {
    id = "firewall-global-port-range";
    base = "bastion";
    invariant = "vpn.ssh-not-global";
    route = "networking.firewall.allowedTCPPortRanges covers 22";
    source = "nixos/modules/services/networking/firewall.nix allowedTCPPortRanges";
    observable = "firewall";
    module = { networking.firewall.allowedTCPPortRanges = [ { from = 1; to = 1024; } ]; };
  }
  {
    id = "firewall-interface-port-range";
    base = "meeka";
    invariant = "vpn.ssh-not-global";
    route = "networking.firewall.interfaces.<uplink>.allowedTCPPortRanges covers 22";
    source = "nixos/modules/services/networking/firewall.nix interfaces.<name>.allowedTCPPortRanges";
    observable = "firewall";
    module = { networking.firewall.interfaces.eth0.allowedTCPPortRanges = [ { from = 20; to = 30; } ]; };
  }
  {
    id = "firewall-extra-input-rules";
    base = "bastion";
    invariant = "vpn.ssh-not-global";
    route = "networking.firewall.extraInputRules: an nftables rule accepting tcp dport 22 on every interface";
    source = "nixos/modules/services/networking/firewall-nftables.nix extraInputRules";
    observable = "firewall";
    module = { networking.firewall.extraInputRules = "tcp dport 22 accept"; };
  }
  {
    id = "firewall-extra-input-rules-own-interface";
    base = "bastion";
    invariant = "vpn.ssh-not-global";
    route = "networking.firewall.extraInputRules: `iifname eth0 tcp dport 22 accept`, an interface named nowhere but in the rule";
    source = "a new user's trial: the model probed only the interfaces the options name";
    observable = "firewall";
    module = { networking.firewall.extraInputRules = "iifname eth0 tcp dport 22 accept"; };
  }
  {
    id = "firewall-extra-input-rules-wildcard";
    base = "meeka";
    invariant = "vpn.ssh-not-global";
    route = "networking.firewall.extraInputRules: `iifname \"en*\" tcp dport 22 accept`, a wildcard the uplink's name may match";
    source = "nftables(8) iifname wildcards";
    observable = null;
    why = "whether the wildcard reaches the uplink depends on the name the real uplink has; the sandbox's uplink has a name of its own";
    module = { networking.firewall.extraInputRules = "iifname \"en*\" tcp dport 22 accept"; };
  }
  {
    id = "firewall-openfirewall-forced";
    base = "meeka";
    invariant = "vpn.ssh-not-global";
    route = "services.openssh.openFirewall = lib.mkForce true (upstream's default, which opens every port sshd listens on everywhere)";
    source = "the 2021 recipe's hole; nixos/modules/services/networking/ssh/sshd.nix openFirewall";
    observable = "firewall";
    module = { lib, ... }: { services.openssh.openFirewall = lib.mkForce true; };
  }
  {
    id = "firewall-extra-input-rules-unreadable";
    base = "bastion";
    invariant = "vpn.judged";
    route = "networking.firewall.extraInputRules: a rule accepting a named set (@admin_ports) that could hold 22";
    source = "nft(8) named sets";
    observable = null;
    why = "the set is declared and filled at run time, outside the configuration: no program can say whether it will hold 22";
    module = { networking.firewall.extraInputRules = "tcp dport @admin_ports accept"; };
  }
  {
    id = "firewall-vpn-untrusted";
    base = "bastion";
    invariant = "vpn.interface-trusted";
    route = "networking.firewall.trustedInterfaces = lib.mkForce [ ]: SSH is no longer reachable over the VPN";
    source = "nixos/modules/services/networking/firewall.nix trustedInterfaces";
    observable = "firewall";
    module = { lib, ... }: { networking.firewall.trustedInterfaces = lib.mkForce [ ]; };
  }
  {
    id = "firewall-disabled";
    base = "bastion";
    invariant = "firewall.enabled";
    route = "networking.firewall.enable = lib.mkForce false";
    source = "nixos/modules/services/networking/firewall.nix enable";
    observable = "firewall";
    module = { lib, ... }: { networking.firewall.enable = lib.mkForce false; };
  }

  # ---- sudo, sudo-rs, doas ------------------------------------------------------------------------

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
    # Survives on the offline surface today: checks/surface/sudo.nix writes /etc/sudoers without
    # extraRules (upstream renders them into security.sudo.configFile); caught once it does.
    id = "sudo-extra-rule-nopasswd";
    base = "meeka";
    invariant = "sudo.mode";
    route = "security.sudo.extraRules: NOPASSWD ALL for wheel";
    source = "nixos/modules/security/sudo.nix extraRules";
    observable = "sudo";
    module = { security.sudo.extraRules = [ { groups = [ "wheel" ]; commands = [ { command = "ALL"; options = [ "NOPASSWD" ]; } ]; } ]; };
  }
  {
    id = "sudo-wheel-needs-password-off";
    base = "meeka";
    invariant = "sudo.mode";
    route = "security.sudo.wheelNeedsPassword = false";
    source = "nixos/modules/security/sudo.nix wheelNeedsPassword";
    observable = "sudo";
    module = { security.sudo.wheelNeedsPassword = false; };
  }
  {
    id = "sudo-extraconfig-nopasswd";
    base = "meeka";
    invariant = "sudo.mode";
    route = "security.sudo.extraConfig: a later %wheel NOPASSWD rule wins (sudoers: the last match decides)";
    source = "sudoers(5) rule precedence";
    observable = "sudo";
    module = { security.sudo.extraConfig = "%wheel ALL=(ALL:ALL) NOPASSWD: ALL\n"; };
  }
  {
    id = "sudo-defaults-not-authenticate";
    base = "meeka";
    invariant = "sudo.mode";
    route = "security.sudo.extraConfig: `Defaults !authenticate` asks nobody for a password";
    source = "sudoers(5) authenticate";
    observable = "sudo";
    module = { security.sudo.extraConfig = "Defaults !authenticate\n"; };
  }
  {
    id = "sudo-rule-for-non-wheel-user";
    base = "meeka";
    invariant = "sudo.mode";
    route = "security.sudo-rs.extraRules: a rule for an account outside wheel (sudo-rs with execWheelOnly off, as upstream defaults it)";
    source = "nixos/modules/security/sudo-rs.nix extraRules, execWheelOnly";
    observable = "sudo";
    finding = "website (not in wheel)";
    module = { lib, ... }: {
      security.sudo.enable = false;
      security.sudo-rs.enable = true;
      security.sudo-rs.execWheelOnly = lib.mkForce false;
      security.sudo-rs.extraRules = [ { users = [ "website" ]; commands = [ "ALL" ]; } ];
    };
  }
  {
    id = "sudo-exec-wheel-only-off";
    base = "meeka";
    invariant = "sudo.mode";
    route = "security.sudo.execWheelOnly = lib.mkForce false: every user reaches sudo's setuid parser";
    source = "nixos/modules/security/sudo.nix execWheelOnly; CVE-2021-3156";
    observable = null;
    why = "the setuid wrapper and its mode come from NixOS's wrapper activation: only the VM tier has /run/wrappers";
    module = { lib, ... }: { security.sudo.execWheelOnly = lib.mkForce false; };
  }
  {
    id = "sudo-back-on-removed-host";
    base = "bastion";
    invariant = "sudo.mode";
    route = "security.sudo.enable = lib.mkForce true on a host whose profile removes sudo";
    source = "nixos/modules/security/sudo.nix enable";
    observable = null;
    why = "the setuid wrapper and its mode come from NixOS's wrapper activation: only the VM tier has /run/wrappers";
    module = { lib, ... }: { security.sudo.enable = lib.mkForce true; };
  }
  {
    id = "doas-enabled-on-removed-host";
    base = "bastion";
    invariant = "sudo.mode";
    route = "security.doas.enable = true on a host whose profile removes every escalation tool";
    source = "nixos/modules/security/doas.nix";
    observable = null;
    why = "the setuid wrapper and its mode come from NixOS's wrapper activation: only the VM tier has /run/wrappers";
    module = { lib, ... }: { security.doas.enable = lib.mkForce true; };
  }
  {
    id = "doas-wheel-nopass";
    base = "meeka";
    invariant = "sudo.mode";
    route = "security.doas with wheelNeedsPassword = false beside sudo: wheel becomes root through doas without a password";
    source = "nixos/modules/security/doas.nix wheelNeedsPassword";
    observable = "sudo";
    finding = "without a password";
    module = { security.doas.enable = true; security.doas.wheelNeedsPassword = false; };
  }
  {
    id = "doas-beside-sudo-wheel-only";
    base = "meeka";
    invariant = "sudo.mode";
    route = "security.doas.enable = true beside a wheel-only sudo: doas's setuid binary is executable by every user (NixOS has no execWheelOnly for doas)";
    source = "nixos/modules/security/doas.nix (wrapper mode u+rx,g+x,o+x); CVE-2019-15900";
    observable = null;
    why = "the setuid wrapper and its mode come from NixOS's wrapper activation: only the VM tier has /run/wrappers";
    finding = "doas has no execWheelOnly";
    module = { security.doas.enable = true; };
  }
  {
    id = "sudo-includedir";
    base = "meeka";
    invariant = "sudo.judged";
    route = "security.sudo.extraConfig: @includedir /etc/sudoers.d, filled at run time";
    source = "sudoers(5) @includedir";
    observable = null;
    why = "the included directory is filled at run time: no program can say what it will hold";
    module = { security.sudo.extraConfig = "@includedir /etc/sudoers.d\n"; };
  }

  # ---- audit: is an execve from /tmp still recorded ----------------------------------------------

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
    id = "audit-exclude-execve-by-number";
    base = "bastion";
    invariant = "audit.execve-rules";
    route = "security.audit.rules: the same exclude rule with the record type's number (1309)";
    source = "auditctl(8) msgtype takes a name or a number; linux/audit.h AUDIT_EXECVE";
    observable = "auditd";
    module = { lib, ... }: { security.audit.rules = lib.mkAfter [ "-a exclude,always -F msgtype=1309" ]; };
  }
  {
    id = "audit-never-exit-first";
    base = "meeka";
    invariant = "audit.execve-rules";
    route = "security.audit.rules: a `never` exit rule ordered before paranoid's (lib.mkBefore): the first match decides";
    source = "auditctl(8): exit rules are matched in order, the first decides";
    observable = "auditd";
    module = { lib, ... }: { security.audit.rules = lib.mkBefore [ "-a never,exit -F arch=b64 -S execve" ]; };
  }
  {
    id = "audit-prepend-never";
    base = "bastion";
    invariant = "audit.execve-rules";
    route = "security.audit.rules: `-A` prepends a never rule even when listed last";
    source = "auditctl(8) -A";
    observable = "auditd";
    module = { lib, ... }: { security.audit.rules = lib.mkAfter [ "-A exit,never -F arch=b32 -S execve,execveat" ]; };
  }
  {
    id = "audit-task-never";
    base = "meeka";
    invariant = "audit.execve-rules";
    route = "security.audit.rules: `-a task,never` gives processes no audit context at all";
    source = "auditctl(8) task list; a common 'quiet the audit log' snippet";
    observable = "auditd";
    module = { lib, ... }: { security.audit.rules = lib.mkAfter [ "-a task,never" ]; };
  }
  {
    id = "audit-delete-execve-rule";
    base = "meeka";
    invariant = "audit.execve-rules";
    route = "security.audit.rules: `-d` deletes paranoid's 64-bit execve rule";
    source = "auditctl(8) -d";
    observable = "auditd";
    module = { lib, ... }: { security.audit.rules = lib.mkAfter [ "-d always,exit -F arch=b64 -S execve -S execveat -k exec" ]; };
  }
  {
    id = "audit-rules-replaced";
    base = "bastion";
    invariant = "audit.execve-rules";
    route = "security.audit.rules = lib.mkForce [ … ] replaces paranoid's rules with a file watch";
    source = "nixos/modules/security/audit.nix rules";
    observable = "auditd";
    module = { lib, ... }: { security.audit.rules = lib.mkForce [ "-w /etc/shadow -p wa -k shadow" ]; };
  }
  {
    id = "audit-disabled";
    base = "meeka";
    invariant = "audit.execve-rules";
    route = "security.audit.enable = lib.mkForce false";
    source = "nixos/modules/security/audit.nix enable";
    observable = "auditd";
    module = { lib, ... }: { security.audit.enable = lib.mkForce false; };
  }
  {
    id = "audit-kernel-cmdline-off";
    base = "bastion";
    invariant = "audit.execve-rules";
    route = "boot.kernelParams = lib.mkAfter [ \"audit=0\" ]: after NixOS's own audit=1 on the command line, and the last audit= wins: the subsystem stays off until reboot";
    source = "Documentation/admin-guide/kernel-parameters.txt audit=; a common 'quiet the audit spam' snippet";
    observable = null;
    why = "the kernel's command line is fixed at boot: only the VM tier boots a kernel with it";
    module = { lib, ... }: { boot.kernelParams = lib.mkAfter [ "audit=0" ]; };
  }
  {
    id = "audit-unlocked";
    base = "bastion";
    invariant = "audit.immutable";
    route = "security.audit.enable = lib.mkForce true instead of \"lock\": root can switch auditing off";
    source = "nixos/modules/security/audit.nix enable = \"lock\"";
    observable = "auditd";
    module = { lib, ... }: { security.audit.enable = lib.mkForce true; };
  }
  {
    id = "audit-never-unjudgeable-field";
    base = "meeka";
    invariant = "audit.judged";
    route = "security.audit.rules: a never rule before paranoid's, narrowed by a field the model cannot evaluate (SELinux subject type)";
    source = "auditctl(8) subj_type";
    observable = null;
    why = "this kernel has no SELinux: the subject type the rule names cannot be produced here";
    module = { lib, ... }: { security.audit.rules = lib.mkBefore [ "-a never,exit -F arch=b64 -S execve -F subj_type=crond_t" ]; };
  }
  # Every place a foreign program runs from, and records reaching a log at all.
  {
    id = "audit-never-dir-home";
    base = "meeka";
    invariant = "audit.execve-rules";
    route = "security.audit.rules = lib.mkBefore [ \"-a never,exit -F dir=/home\" ]: nothing run from a home directory is recorded";
    source = "new-user trial a12; auditctl(8) dir=";
    observable = null;
    why = "the sandbox's auditd check runs its probe from below /tmp, which this rule spares; a probe in a home directory would need an account the sandbox does not create";
    finding = "/home/cadey/paranoid-probe";
    module = { lib, ... }: { security.audit.rules = lib.mkBefore [ "-a never,exit -F dir=/home" ]; };
  }
  {
    id = "audit-never-dir-var-lib";
    base = "bastion";
    invariant = "audit.execve-rules";
    route = "security.audit.rules: a never rule for execve below /var/lib, where services write and run";
    source = "new-user trial x07; auditctl(8) dir=";
    observable = null;
    why = "the sandbox's auditd check runs its probe from below /tmp, which this rule spares";
    finding = "/var/lib/paranoid-probe/paranoid-probe";
    module = { lib, ... }: { security.audit.rules = lib.mkBefore [ "-a never,exit -F dir=/var/lib -S execve" ]; };
  }
  {
    id = "audit-never-exe-not-probe";
    base = "meeka";
    invariant = "audit.execve-rules";
    route = "security.audit.rules: a never rule for every executable but the model's /tmp probe";
    source = "new-user trial x08; auditctl(8) exe!=";
    observable = null;
    why = "the sandbox's auditd check runs only the probe the rule spares";
    finding = "/var/tmp/paranoid-probe";
    module = { lib, ... }: { security.audit.rules = lib.mkBefore [ "-a never,exit -S execve -F exe!=/tmp/paranoid-probe" ]; };
  }
  {
    id = "audit-rate-limit";
    base = "meeka";
    invariant = "audit.execve-rules";
    route = "security.audit.rateLimit = 1 (`-r 1`): the kernel drops every record over one a second";
    source = "new-user trial a10; auditctl(8) -r; kernel/audit.c audit_rate_check";
    observable = null;
    why = "which records the kernel drops over the rate depends on timing: the sandbox's execs cannot show it deterministically";
    finding = "rate limit exceeded";
    module = { security.audit.rateLimit = 1; };
  }
  {
    id = "audit-rules-rate-limit";
    base = "bastion";
    invariant = "audit.execve-rules";
    route = "security.audit.rules: a `-r 5` line after NixOS's own `-r 0`: the last one loaded counts";
    source = "auditctl(8) -r";
    observable = null;
    why = "which records the kernel drops over the rate depends on timing: the sandbox's execs cannot show it deterministically";
    finding = "rate limit exceeded";
    module = { lib, ... }: { security.audit.rules = lib.mkAfter [ "-r 5" ]; };
  }
  {
    id = "audit-auditd-off";
    base = "meeka";
    invariant = "audit.execve-rules";
    route = "security.auditd.enable = lib.mkForce false: rules loaded, but no daemon takes the records; the kernel log's printk rate limit drops them";
    source = "new-user trial a19; kernel/audit.c kauditd_printk_skb";
    observable = null;
    why = "the sandbox's auditd check runs its own auditd; the kernel log drops records only under load, not for its 12 execs";
    finding = "security.auditd.enable = false";
    module = { lib, ... }: { security.auditd.enable = lib.mkForce false; };
  }

  # ---- noexec -----------------------------------------------------------------------------------

  {
    id = "noexec-root-options-forced";
    base = "bastion";
    invariant = "noexec.mounts";
    route = "fileSystems.\"/\".options = lib.mkForce [ \"defaults\" ] (a hardware configuration's override)";
    source = "README 'What changed' 7; mount(8) defaults";
    observable = "mounts";
    module = { lib, ... }: { fileSystems."/".options = lib.mkForce [ "defaults" ]; };
  }
  {
    id = "noexec-exec-after-hardening";
    base = "bastion";
    invariant = "noexec.mounts";
    route = "fileSystems.\"/boot\".options: `exec` ordered after paranoid's flags (lib.mkOrder 2000): mount(8) applies options left to right";
    source = "mount(8) option order";
    observable = "mounts";
    module = { lib, ... }: { fileSystems."/boot".options = lib.mkOrder 2000 [ "exec" ]; };
  }
  {
    id = "noexec-dev-shm";
    base = "bastion";
    invariant = "noexec.mounts";
    route = "boot.specialFileSystems.\"/dev/shm\".options = lib.mkForce [ … ] without noexec";
    source = "nixos/modules/tasks/filesystems.nix specialFileSystems";
    observable = "mounts";
    module = { lib, ... }: { boot.specialFileSystems."/dev/shm".options = lib.mkForce [ "nosuid" "nodev" "mode=1777" ]; };
  }
  {
    id = "noexec-store-noexec";
    base = "bastion";
    invariant = "noexec.store-exec";
    route = "fileSystems.\"/nix\".options = [ \"noexec\" ]: nothing in the store can run";
    source = "mount(8) noexec";
    observable = "mounts";
    module = { fileSystems."/nix".options = [ "noexec" ]; };
  }
  {
    id = "noexec-second-persist-root";
    base = "meeka";
    invariant = "noexec.persisted";
    route = "environment.persistence.\"/nix/backup\": a second persistence root on the store's filesystem";
    source = "handed case c14; impermanence environment.persistence";
    observable = "mounts";
    setup = { paranoid.noexec.enable = true; };
    module = { environment.persistence."/nix/backup".directories = [ "/var/lib/postgresql" ]; };
  }

  # ---- amnesia, users, packages, logs, antivirus ------------------------------------------------

  {
    id = "amnesia-root-on-disk";
    base = "meeka";
    invariant = "amnesia.tmpfs-root";
    route = "fileSystems.\"/\" = lib.mkForce { … ext4 … } (a generated hardware-configuration.nix)";
    source = "nixos-generate-config output imported after paranoid";
    observable = null;
    why = "the disk it names does not exist here: only the VM tier boots a root filesystem";
    module = { lib, ... }: { fileSystems."/" = lib.mkForce { device = "/dev/disk/by-label/root"; fsType = "ext4"; }; };
  }
  {
    id = "amnesia-root-world-writable";
    base = "meeka";
    invariant = "amnesia.tmpfs-root";
    route = "fileSystems.\"/\".options: a later mode=1777 wins (tmpfs takes the last mode=)";
    source = "tmpfs(5) mode";
    observable = "mounts";
    module = { lib, ... }: { fileSystems."/".options = lib.mkOrder 2000 [ "mode=1777" ]; };
  }
  {
    id = "amnesia-persistence-overridden";
    base = "meeka";
    invariant = "amnesia.persistence";
    route = "environment.persistence.\"/nix/persist\".directories = lib.mkForce [ … ] drops what paranoid persists";
    source = "impermanence environment.persistence";
    observable = null;
    why = "what is lost shows only after a reboot: only the VM tier reboots";
    module = { lib, ... }: { environment.persistence."/nix/persist".directories = lib.mkForce [ "/var/log" ]; };
  }
  {
    id = "amnesia-host-keys-on-tmpfs";
    base = "meeka";
    invariant = "amnesia.host-keys";
    route = "services.openssh.hostKeys = lib.mkForce [ … /etc/ssh … ]: host keys on the tmpfs root";
    source = "nixos/modules/services/networking/ssh/sshd.nix hostKeys";
    observable = null;
    why = "the key changes only at a reboot: only the VM tier reboots";
    module = { lib, ... }: { services.openssh.hostKeys = lib.mkForce [ { path = "/etc/ssh/ssh_host_ed25519_key"; type = "ed25519"; } ]; };
  }
  {
    id = "users-mutable";
    base = "bastion";
    invariant = "users.immutable";
    route = "users.mutableUsers = lib.mkForce true";
    source = "nixos/modules/config/users-groups.nix mutableUsers";
    observable = null;
    why = "useradd/passwd on a running system: only the VM tier has one";
    module = { lib, ... }: { users.mutableUsers = lib.mkForce true; };
  }
  {
    id = "packages-default-packages-back";
    base = "bastion";
    invariant = "packages.stripped";
    route = "environment.defaultPackages = lib.mkForce [ … ]";
    source = "nixos/modules/config/system-path.nix defaultPackages";
    observable = null;
    why = "the system path is built only with full nixpkgs: only the VM tier has one";
    module = { lib, pkgs, ... }: { environment.defaultPackages = lib.mkForce [ pkgs.rsync ]; };
  }
  {
    id = "packages-nano-back";
    base = "bastion";
    invariant = "packages.stripped";
    route = "programs.nano.enable = lib.mkForce true (nano is no longer in defaultPackages since 23.11)";
    source = "nixos/modules/programs/nano.nix";
    observable = null;
    why = "the system path is built only with full nixpkgs: only the VM tier has one";
    module = { lib, ... }: { programs.nano.enable = lib.mkForce true; };
  }
  {
    id = "logs-upload-off";
    base = "meeka";
    invariant = "logs.upload";
    route = "services.journald.upload.enable = lib.mkForce false";
    source = "nixos/modules/system/boot/systemd/journald-upload.nix";
    observable = null;
    why = "whether the journal leaves the machine needs a running journal and a receiver: only the VM tier (vm-logs) has both";
    module = { lib, ... }: { services.journald.upload.enable = lib.mkForce false; };
  }
  {
    id = "antivirus-updater-off";
    base = "meeka";
    invariant = "antivirus.mode";
    route = "services.clamav.updater.enable = lib.mkForce false while paranoid.antivirus.mode = \"running\": the signatures go stale";
    source = "nixos/modules/services/security/clamav.nix updater";
    observable = null;
    why = "freshclam needs a running system and the signature mirrors: only the VM tier has them";
    setup = { paranoid.antivirus.mode = "running"; };
    module = { lib, ... }: { services.clamav.updater.enable = lib.mkForce false; };
  }
]
