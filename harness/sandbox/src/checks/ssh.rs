//! Checks 1 and 2: the rendered sshd_config judged by the real sshd (`-t`, `-T -C`), then a
//! live sshd on 127.0.0.1 in a private network namespace probed with the real ssh client
//! (password, keyboard-interactive, key, root, -W/-L/-R, agent, sftp), and by ssh-audit.
//!
//! A positive control (the same config with deliberately weak lines put first) runs once per
//! run; every probe must catch its weakness, otherwise the probe is blind and the check fails.

use super::sshd_config::{
    self, adapt, effective_root_login, parse_effective, weak_control, AdaptInput,
};
use super::sshd_model;
use super::{elapsed_ms, needs_root};
use crate::context::{write_file, Ctx, Scratch, Users};
use crate::exec::{Cmd, Daemon, Output};
use crate::model::{CheckId, CheckResult, Recorder, SkipKind};
use crate::net::{self, Reach};
use crate::projection::{strings, Permutation};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
const SSH_TOOLS: &[&str] = &[
    "sshd",
    "ssh",
    "ssh-keygen",
    "ssh-agent",
    "ssh-add",
    "sftp",
    "ip",
];
const AUDIT_TOOLS: &[&str] = &["ssh-audit", "sshd", "ssh-keygen", "ip"];
/// The one warning Debian's OpenSSH 9.2 always earns from ssh-audit 2.5.0: the Terrapin
/// strict-kex marker it cannot remove and that ssh-audit 2.5.0 does not know.
pub const TERRAPIN_MARKER_WARN: &str = "kex-strict-s-v00@openssh.com -- [warn] unknown algorithm";

/// ssh-audit policies per crypto profile, for Debian's OpenSSH 9.2 (see the files' headers).
pub fn policy(crypto: &str) -> Option<&'static str> {
    match crypto {
        "modern" => Some(include_str!("../../policies/modern.txt")),
        "fips" => Some(include_str!("../../policies/fips.txt")),
        _ => None,
    }
}

/// State shared by the ssh checks of one run.
#[derive(Default)]
pub struct SshShared {
    known: OnceLock<Result<BTreeMap<String, BTreeSet<String>>, String>>,
    control: Mutex<Option<Result<Arc<Control>, String>>>,
}

/// What the weak control server let through.
pub struct Control {
    pub from: String,
    pub probes: BTreeMap<&'static str, Probe>,
}

#[derive(Clone, Debug)]
pub struct Probe {
    pub name: &'static str,
    pub command: String,
    /// Some(true): the action worked; Some(false): refused; None: could not tell.
    pub allowed: Option<bool>,
    pub decisive: String,
    /// Methods in "Permission denied (a,b)" when the server printed one.
    pub methods: Option<String>,
}

/// This OpenSSH's `ssh -Q` lists, asked through the context's runner (sshd_model's reader).
fn known_algorithms(ctx: &Ctx) -> Result<BTreeMap<String, BTreeSet<String>>, String> {
    let ssh = ctx.tools.path("ssh");
    sshd_model::known_algorithms(&|c: &Cmd, t: Duration| ctx.run(c, t), &ssh)
}

/// Everything the live server needs, written below one scratch directory.
struct Prepared {
    scratch: Scratch,
    cfg: PathBuf,
    adapted: sshd_config::Adapted,
    known_hosts: PathBuf,
    key: PathBuf,
    askpass: PathBuf,
    /// The throwaway key installed for the admin path's account alone.
    admin_key: Option<PathBuf>,
    /// The throwaway key installed for the accounts of the model's connections probed live.
    context_key: Option<PathBuf>,
}

fn prepare(
    ctx: &Ctx,
    shared: &SshShared,
    p: &Permutation,
    rendered: &str,
    users: &Users,
    label: &str,
    extra_hosts: &[(String, u16)],
    keys_in_etc: bool,
    rec: &mut Recorder,
) -> Result<Prepared, String> {
    let known = shared.known.get_or_init(|| known_algorithms(ctx)).clone()?;
    let scratch = ctx.scratch(label).map_err(|e| e.to_string())?;
    let keys_dir = scratch.path("authorized_keys.d");
    std::fs::create_dir_all(&keys_dir).map_err(|e| e.to_string())?;
    let declared: Vec<(String, String, Option<u32>)> = p
        .option("services.openssh.hostKeys")
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|k| {
                    Some((
                        k.get("path")?.as_str()?.to_string(),
                        k.get("type")?.as_str()?.to_string(),
                        k.get("bits").and_then(|b| b.as_u64()).map(|b| b as u32),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    let host_key = |ty: &str, bits: Option<u32>| -> Result<String, String> {
        let src = ctx.key(ty, bits, "host")?;
        // A private copy per server: sshd refuses keys readable by others, and each server
        // owns its files.
        let dst = scratch.path(&format!("ssh_host_{ty}_key"));
        std::fs::copy(&src, &dst).map_err(|e| e.to_string())?;
        std::fs::copy(src.with_extension("pub"), dst.with_extension("pub"))
            .map_err(|e| e.to_string())?;
        Ok(dst.to_string_lossy().into_owned())
    };
    // In sshd's own mount namespace /etc/ssh/authorized_keys.d is this directory, and the
    // rendered AuthorizedKeysFile stays as it is; elsewhere (the weak control) the path changes.
    let keys_dir_s = if keys_in_etc {
        rec.adapt(format!(
            "/etc/ssh/authorized_keys.d, in sshd's mount namespace only, is {} (the run's throwaway keys: the client key for root and the two test users, the admin's key for it alone); AuthorizedKeysFile stays as rendered",
            keys_dir.display()
        ));
        sshd_config::NIXOS_KEYS_DIR.to_string()
    } else {
        format!("{}/", keys_dir.display())
    };
    let pid_file = scratch.path("sshd.pid").to_string_lossy().into_owned();
    let input = AdaptInput {
        purpose: sshd_config::Purpose::Live,
        host_key: &host_key,
        declared_host_keys: &declared,
        keys_dir: &keys_dir_s,
        pid_file: &pid_file,
        known: &known,
    };
    let mut adapted = adapt(rendered, &input)?;
    for (addr, port) in extra_hosts {
        if addr == "127.0.0.1" && adapted.ports.contains(port) {
            continue; // sshd listens there already
        }
        let line = if addr.contains(':') {
            format!("ListenAddress [{addr}]:{port}")
        } else {
            format!("ListenAddress {addr}:{port}")
        };
        adapted.text = sshd_config::add_global_line(&adapted.text, &line);
        adapted.adaptations.push(format!(
            "{line} added: a connection of paranoid's model the live probes use (the admin path's, or one per effective profile) arrives there (an address on the namespace's loopback)"
        ));
    }
    for a in &adapted.adaptations {
        rec.adapt(a);
    }
    let cfg = scratch.path("sshd_config");
    write_file(&cfg, &adapted.text, 0o600).map_err(|e| e.to_string())?;

    // The client key, authorized for root and both throwaway users.
    let key = ctx.key("ed25519", None, "client")?;
    let pubkey = std::fs::read_to_string(key.with_extension("pub")).map_err(|e| e.to_string())?;
    for u in [
        "root",
        users.member.name.as_str(),
        users.outsider.name.as_str(),
    ] {
        write_file(&keys_dir.join(u), &pubkey, 0o644).map_err(|e| e.to_string())?;
    }
    // known_hosts from the throwaway host keys, for every port and address.
    let mut kh = String::new();
    let targets: Vec<(String, u16)> = adapted
        .ports
        .iter()
        .map(|p| ("127.0.0.1".to_string(), *p))
        .chain(extra_hosts.iter().cloned())
        .collect();
    for (addr, port) in &targets {
        for entry in std::fs::read_dir(&scratch.dir)
            .map_err(|e| e.to_string())?
            .flatten()
        {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) == Some("pub")
                && path.to_string_lossy().contains("ssh_host_")
            {
                let pubk = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
                let host = if *port == 22 {
                    addr.clone()
                } else {
                    format!("[{addr}]:{port}")
                };
                kh.push_str(&format!("{host} {}\n", pubk.trim()));
            }
        }
    }
    let known_hosts = scratch.path("known_hosts");
    write_file(&known_hosts, kh, 0o644).map_err(|e| e.to_string())?;
    let askpass = scratch.path("askpass");
    write_file(
        &askpass,
        format!("#!/bin/sh\nprintf '%s\\n' '{}'\n", users.member.password),
        0o700,
    )
    .map_err(|e| e.to_string())?;
    Ok(Prepared {
        scratch,
        cfg,
        adapted,
        known_hosts,
        key,
        askpass,
        admin_key: None,
        context_key: None,
    })
}

/// sshd needs its privilege separation directory (Debian's build: /run/sshd).
fn ensure_privsep_dir(rec: &mut Recorder) -> Result<(), String> {
    let d = Path::new("/run/sshd");
    if !d.is_dir() {
        std::fs::create_dir_all(d).map_err(|e| format!("mkdir /run/sshd: {e}"))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| e.to_string())?;
        rec.note("created /run/sshd (the privilege separation directory Debian's sshd requires; left in place, it is shared)");
    }
    Ok(())
}

struct Server {
    ns: crate::context::Netns,
    daemon: Daemon,
    port: u16,
}

/// Start the server in a fresh network namespace; with `accounts`, in that mount namespace (the
/// configuration's accounts exist for it); `extra` are (address, port) it also listens on, each
/// put on the namespace's loopback together with the client address of every one of `peers`.
fn start_server(
    ctx: &Ctx,
    prep: &Prepared,
    log_name: &str,
    accounts: Option<&sshd_model::AccountsNs>,
    extra: &[(String, u16)],
    peers: &[&sshd_model::Context],
) -> Result<Server, String> {
    let ns = ctx.netns().map_err(|e| e.to_string())?;
    let mut addrs: Vec<&str> = extra.iter().map(|(a, _)| a.as_str()).collect();
    addrs.extend(peers.iter().map(|c| c.addr.as_str()));
    addrs.sort();
    addrs.dedup();
    for a in addrs.iter().filter(|a| !a.starts_with("127.")) {
        let (prefix, nodad) = if a.contains(':') {
            ("128", true)
        } else {
            ("32", false)
        };
        let mut c = ctx
            .tool("ip")
            .args(["-n", ns.name.as_str(), "addr", "add"])
            .arg(format!("{a}/{prefix}"))
            .args(["dev", "lo"]);
        if nodad {
            c = c.arg("nodad");
        }
        let o = ctx
            .run(&c, Duration::from_secs(10))
            .map_err(|e| e.to_string())?;
        if !o.ok() {
            return Err(format!("`{}`: {}", c.display(), o.digest(3)));
        }
    }
    let port = prep.adapted.ports[0];
    let cmd = ctx
        .tool("sshd")
        .in_netns(&ns.name)
        .args(["-D", "-e", "-f"])
        .arg(prep.cfg.to_string_lossy());
    let cmd = match accounts {
        Some(a) => a.cmd(cmd),
        None => cmd,
    };
    let mut daemon = Daemon::start(&cmd, ctx.run_id(), &prep.scratch.path(log_name))
        .map_err(|e| format!("starting sshd: {e}"))?;
    let mut wait: Vec<SocketAddr> = vec![format!("127.0.0.1:{port}").parse().unwrap()];
    for (a, p) in extra {
        let s = if a.contains(':') {
            format!("[{a}]:{p}")
        } else {
            format!("{a}:{p}")
        };
        wait.push(s.parse().map_err(|e| format!("{s}: {e}"))?);
    }
    for addr in wait {
        if !net::wait_listening(&ns.name, addr, Duration::from_secs(5)) {
            let alive = daemon.alive();
            return Err(format!(
                "sshd did not listen on {addr} within 5 s (running: {alive}); log: {}",
                daemon
                    .log_text()
                    .lines()
                    .take(5)
                    .collect::<Vec<_>>()
                    .join(" | ")
            ));
        }
    }
    Ok(Server { ns, daemon, port })
}

struct Client<'a> {
    ctx: &'a Ctx,
    ns: &'a str,
    port: u16,
    prep: &'a Prepared,
    /// The server address the client connects to (127.0.0.1, or a connection's local address).
    host: String,
    /// The client address it connects from (a connection's client address), if not the default.
    bind: Option<String>,
    /// The key it logs in with (the run's client key, or the admin's).
    key: PathBuf,
}

impl Client<'_> {
    fn new<'a>(ctx: &'a Ctx, ns: &'a str, port: u16, prep: &'a Prepared) -> Client<'a> {
        Client {
            ctx,
            ns,
            port,
            prep,
            host: "127.0.0.1".into(),
            bind: None,
            key: prep.key.clone(),
        }
    }

    fn dest(&self, user: &str) -> String {
        format!("{user}@{}", self.host)
    }

    fn base(&self, program: &str) -> Cmd {
        let port_flag = if program == "sftp" { "-P" } else { "-p" };
        let c = self.ctx.tool(program).in_netns(self.ns);
        let c = match &self.bind {
            Some(b) => c.arg("-o").arg(format!("BindAddress={b}")),
            None => c,
        };
        c.args([
            "-F".to_string(),
            "/dev/null".into(),
            port_flag.into(),
            self.port.to_string(),
            "-o".into(),
            format!("UserKnownHostsFile={}", self.prep.known_hosts.display()),
            "-o".into(),
            "GlobalKnownHostsFile=/dev/null".into(),
            "-o".into(),
            "StrictHostKeyChecking=yes".into(),
            "-o".into(),
            "ConnectTimeout=5".into(),
            "-o".into(),
            "IdentitiesOnly=yes".into(),
            "-o".into(),
            "ControlPath=none".into(),
            "-o".into(),
            "UpdateHostKeys=no".into(),
        ])
    }

    /// Listening ports for -L / -R: below the ephemeral range (32768-60999), so no outgoing
    /// connection in the namespace can hold them, and never the server's own port.
    fn forward_port(&self, n: u16) -> u16 {
        let p = 20022 + n;
        if p == self.port {
            p + 10
        } else {
            p
        }
    }

    fn with_key(&self, c: Cmd) -> Cmd {
        c.args([
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentityAgent=none",
            "-o",
            "PreferredAuthentications=publickey",
            "-i",
        ])
        .arg(self.key.to_string_lossy())
    }

    fn exec(&self, c: &Cmd) -> Result<Output, String> {
        self.ctx
            .run(c, PROBE_TIMEOUT)
            .map_err(|e| format!("`{}`: {e}", c.display()))
    }

    fn denied(o: &Output) -> Option<(String, String)> {
        let line = o.line_with("Permission denied")?;
        let methods = line
            .rsplit_once('(')
            .and_then(|(_, r)| r.split_once(')'))
            .map(|(m, _)| m.to_string())
            .unwrap_or_default();
        Some((line, methods))
    }

    fn probe(
        name: &'static str,
        c: &Cmd,
        o: Result<Output, String>,
        ok_marker: &str,
        refused_markers: &[&str],
    ) -> Probe {
        let command = c.display();
        match o {
            Err(e) => Probe {
                name,
                command,
                allowed: None,
                decisive: e,
                methods: None,
            },
            Ok(o) => {
                let methods = Self::denied(&o).map(|(_, m)| m);
                if let Some(l) = o.line_with(ok_marker) {
                    return Probe {
                        name,
                        command,
                        allowed: Some(true),
                        decisive: format!("{}: {l}", o.rc()),
                        methods,
                    };
                }
                for m in refused_markers {
                    if let Some(l) = o.line_with(m) {
                        return Probe {
                            name,
                            command,
                            allowed: Some(false),
                            decisive: format!("{}: {l}", o.rc()),
                            methods,
                        };
                    }
                }
                Probe {
                    name,
                    command,
                    allowed: None,
                    decisive: o.digest(4),
                    methods,
                }
            }
        }
    }

    fn password(&self, user: &str, kind: &'static str) -> Probe {
        let marker = if kind == "password" {
            "PASSWORD_LOGIN_OK"
        } else {
            "KBD_LOGIN_OK"
        };
        let c = self
            .base("ssh")
            .env("SSH_ASKPASS", self.prep.askpass.to_string_lossy())
            .env("SSH_ASKPASS_REQUIRE", "force")
            .env("DISPLAY", "none")
            .args([
                "-o",
                "BatchMode=no",
                "-o",
                "IdentityAgent=none",
                "-o",
                "PubkeyAuthentication=no",
                "-o",
                "NumberOfPasswordPrompts=1",
            ])
            .args([
                "-o",
                "PasswordAuthentication=yes",
                "-o",
                "KbdInteractiveAuthentication=yes",
            ])
            .arg("-o")
            .arg(format!("PreferredAuthentications={kind}"))
            .arg(self.dest(user))
            .arg(format!("echo {marker}"));
        let name = if kind == "password" {
            "password"
        } else {
            "keyboard-interactive"
        };
        Self::probe(name, &c, self.exec(&c), marker, &["Permission denied"])
    }

    fn key_login(&self, name: &'static str, user: &str) -> Probe {
        self.key_login_with(name, user, &self.key)
    }

    fn key_login_with(&self, name: &'static str, user: &str, key: &Path) -> Probe {
        let c = self
            .base("ssh")
            .args([
                "-o",
                "BatchMode=yes",
                "-o",
                "IdentityAgent=none",
                "-o",
                "PreferredAuthentications=publickey",
                "-i",
            ])
            .arg(key.to_string_lossy())
            .arg(self.dest(user))
            .arg("echo LOGIN_OK user=$(id -un)");
        // A refused root login (PermitRootLogin no / forced-commands-only) may also end with
        // sshd closing the connection after the key was accepted.
        Self::probe(
            name,
            &c,
            self.exec(&c),
            &format!("LOGIN_OK user={user}"),
            &[
                "Permission denied",
                "Connection closed",
                "closed by remote host",
                "Broken pipe",
                "Connection reset",
            ],
        )
    }

    fn stdio_forward(&self, user: &str) -> Probe {
        let c = self
            .with_key(self.base("ssh"))
            .arg("-W")
            .arg(format!("127.0.0.1:{}", self.port))
            .arg(self.dest(user));
        Self::probe(
            "forward -W",
            &c,
            self.exec(&c),
            "SSH-2.0-",
            &["administratively prohibited", "stdio forwarding failed"],
        )
    }

    fn remote_forward(&self, user: &str) -> Probe {
        let c = self
            .with_key(self.base("ssh"))
            .args(["-o", "ExitOnForwardFailure=yes", "-R"])
            .arg(format!(
                "127.0.0.1:{}:127.0.0.1:{}",
                self.forward_port(1),
                self.port
            ))
            .arg(self.dest(user))
            .arg("echo R_FORWARD_OK");
        Self::probe(
            "forward -R",
            &c,
            self.exec(&c),
            "R_FORWARD_OK",
            &[
                "remote port forwarding failed",
                "administratively prohibited",
            ],
        )
    }

    /// -L does not change ssh's exit code: connect through the forward and see whether the
    /// sshd banner comes back.
    fn local_forward(&self, user: &str) -> Probe {
        let c = self
            .with_key(self.base("ssh"))
            .args(["-o", "ExitOnForwardFailure=yes", "-L"])
            .arg(format!(
                "127.0.0.1:{}:127.0.0.1:{}",
                self.forward_port(0),
                self.port
            ))
            .arg(self.dest(user))
            .arg("sleep 10");
        let command = c.display();
        let log = self
            .prep
            .scratch
            .path(&format!("ssh-L-{}.log", crate::context::random_hex(6)));
        let mut d = match Daemon::start(&c, self.ctx.run_id(), &log) {
            Ok(d) => d,
            Err(e) => {
                return Probe {
                    name: "forward -L",
                    command,
                    allowed: None,
                    decisive: e.to_string(),
                    methods: None,
                }
            }
        };
        let addr = SocketAddr::from(([127, 0, 0, 1], self.forward_port(0)));
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut reach = None;
        while Instant::now() < deadline && d.alive() {
            // The forwarded banner comes from a freshly forked sshd: give it time on a busy machine.
            match net::tcp_probe(
                self.ns,
                addr,
                Duration::from_millis(300),
                Duration::from_secs(5),
            ) {
                Ok(r @ (Reach::Open(_) | Reach::Silent)) => {
                    reach = Some(r);
                    break;
                }
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        // Let the client print the channel failure, then end it.
        std::thread::sleep(Duration::from_millis(100));
        d.stop();
        let text = d.log_text();
        let prohibited = text
            .lines()
            .find(|l| l.contains("administratively prohibited"))
            .map(str::trim);
        match reach {
            Some(Reach::Open(b)) if b.contains("SSH-2.0-") => Probe {
                name: "forward -L",
                command,
                allowed: Some(true),
                decisive: format!("forwarded connection got {:?}", b.trim()),
                methods: None,
            },
            Some(Reach::Silent) => Probe {
                name: "forward -L",
                command,
                allowed: None,
                decisive:
                    "the forwarded connection stayed silent for 5 s (neither refused nor forwarded)"
                        .into(),
                methods: None,
            },
            Some(Reach::Open(_)) => Probe {
                name: "forward -L",
                command,
                allowed: Some(false),
                decisive: format!(
                    "forwarded connection closed without data; client: {}",
                    prohibited.unwrap_or("(no channel message)")
                ),
                methods: None,
            },
            _ => Probe {
                name: "forward -L",
                command,
                allowed: None,
                decisive: format!(
                    "the client never listened on {addr}: {}",
                    text.lines().take(3).collect::<Vec<_>>().join(" | ")
                ),
                methods: None,
            },
        }
    }

    /// Agent forwarding is refused silently: only the missing SSH_AUTH_SOCK shows it.
    fn agent(&self, user: &str) -> Probe {
        let sock = self
            .prep
            .scratch
            .path(&format!("agent-{}.sock", crate::context::random_hex(6)));
        let agent_cmd = self
            .ctx
            .tool("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(sock.to_string_lossy());
        let mut agent =
            match Daemon::start(&agent_cmd, self.ctx.run_id(), &sock.with_extension("log")) {
                Ok(a) => a,
                Err(e) => {
                    return Probe {
                        name: "agent forwarding",
                        command: agent_cmd.display(),
                        allowed: None,
                        decisive: e.to_string(),
                        methods: None,
                    }
                }
            };
        let deadline = Instant::now() + Duration::from_secs(3);
        while !sock.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let add = self
            .ctx
            .tool("ssh-add")
            .env("SSH_AUTH_SOCK", sock.to_string_lossy())
            .arg(self.key.to_string_lossy());
        // The socket file appears at bind(), a moment before the agent listens.
        let mut added = self.ctx.run(&add, PROBE_TIMEOUT);
        for _ in 0..50 {
            match &added {
                Ok(o) if !o.ok() && o.all().contains("Connection refused") => {
                    std::thread::sleep(Duration::from_millis(20));
                    added = self.ctx.run(&add, PROBE_TIMEOUT);
                }
                _ => break,
            }
        }
        let c = self
            .base("ssh")
            .args([
                "-A",
                "-o",
                "ForwardAgent=yes",
                "-o",
                "BatchMode=yes",
                "-o",
                "PreferredAuthentications=publickey",
            ])
            .arg("-o")
            .arg(format!("IdentityAgent={}", sock.display()))
            .arg("-i")
            .arg(self.key.with_extension("pub").to_string_lossy())
            .arg(self.dest(user))
            .arg("echo SOCK=${SSH_AUTH_SOCK:-unset}");
        let command_base = c.display();
        let probe = match added {
            Ok(o) if o.ok() => {
                let o = self.exec(&c);
                match &o {
                    Ok(out) if out.stdout.contains("SOCK=unset") => Probe {
                        name: "agent forwarding",
                        command: command_base,
                        allowed: Some(false),
                        decisive: format!(
                            "{}: SOCK=unset (no SSH_AUTH_SOCK in the session)",
                            out.rc()
                        ),
                        methods: None,
                    },
                    _ => Self::probe("agent forwarding", &c, o, "SOCK=/", &[]),
                }
            }
            Ok(o) => Probe {
                name: "agent forwarding",
                command: add.display(),
                allowed: None,
                decisive: o.digest(3),
                methods: None,
            },
            Err(e) => Probe {
                name: "agent forwarding",
                command: add.display(),
                allowed: None,
                decisive: e.to_string(),
                methods: None,
            },
        };
        agent.stop();
        probe
    }

    fn sftp(&self, user: &str) -> Probe {
        let c = self
            .base("sftp")
            .args(["-o", "BatchMode=yes", "-o", "IdentityAgent=none", "-i"])
            .arg(self.key.to_string_lossy())
            .args(["-b", "-"])
            .arg(self.dest(user))
            .stdin("pwd\n");
        Self::probe(
            "sftp",
            &c,
            self.exec(&c),
            "Remote working directory",
            &["subsystem request failed", "Connection closed"],
        )
    }
}

/// Run probe closures a few at a time (MaxStartups starts dropping at 10 pending connections).
fn run_probes<'a>(jobs: Vec<Box<dyn FnOnce() -> Probe + Send + 'a>>) -> Vec<Probe> {
    let n = jobs.len();
    let queue = Mutex::new(jobs.into_iter().enumerate().collect::<Vec<_>>());
    let results = Mutex::new(vec![None; n]);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| loop {
                let job = queue.lock().unwrap_or_else(|e| e.into_inner()).pop();
                let Some((i, f)) = job else { break };
                let p = f();
                results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(p);
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .flatten()
        .collect()
}

/// The users the probes act as.
struct Who {
    login: String,
    password_user: String,
    outsider: Option<String>,
}

fn control(
    ctx: &Ctx,
    shared: &SshShared,
    p: &Permutation,
    rendered: &str,
    users: &Users,
) -> Result<Arc<Control>, String> {
    let mut slot = shared.control.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(r) = slot.as_ref() {
        return r.clone();
    }
    let r = (|| {
        let weak = weak_control(rendered, &users.member.name);
        let mut scratch_rec = Recorder::new(CheckId::Sshd);
        let prep = prepare(
            ctx,
            shared,
            p,
            &weak,
            users,
            "ssh-control",
            &[],
            false,
            &mut scratch_rec,
        )?;
        let server = start_server(ctx, &prep, "sshd-control.log", None, &[], &[])?;
        let client = Client::new(ctx, &server.ns.name, server.port, &prep);
        let who = Who {
            login: users.member.name.clone(),
            password_user: users.member.name.clone(),
            outsider: None,
        };
        let probes = probe_all(&client, &who, true);
        drop(server);
        Ok(Arc::new(Control {
            from: p.id.clone(),
            probes: probes.into_iter().map(|p| (p.name, p)).collect(),
        }))
    })();
    *slot = Some(r.clone());
    r
}

fn probe_all(client: &Client, who: &Who, with_root: bool) -> Vec<Probe> {
    let login = who.login.as_str();
    let pw = who.password_user.as_str();
    let mut jobs: Vec<Box<dyn FnOnce() -> Probe + Send + '_>> = vec![
        Box::new(move || client.password(pw, "password")),
        Box::new(move || client.password(pw, "keyboard-interactive")),
        Box::new(move || client.key_login("key login", login)),
        Box::new(move || client.stdio_forward(login)),
        Box::new(move || client.local_forward(login)),
        Box::new(move || client.remote_forward(login)),
        Box::new(move || client.agent(login)),
        Box::new(move || client.sftp(login)),
    ];
    if with_root {
        jobs.push(Box::new(move || client.key_login("root login", "root")));
    }
    if let Some(o) = who.outsider.as_deref() {
        jobs.push(Box::new(move || {
            client.key_login("user outside AllowUsers", o)
        }));
    }
    run_probes(jobs)
}

/// The security posture paranoid.ssh promises, as `sshd -T` keywords and values.
fn expected_effective(p: &Permutation) -> Vec<(&'static str, String)> {
    let prl = p
        .knob_str("ssh.permitRootLogin")
        .unwrap_or("prohibit-password");
    vec![
        ("passwordauthentication", "no".into()),
        ("kbdinteractiveauthentication", "no".into()),
        ("authenticationmethods", "publickey".into()),
        ("pubkeyauthentication", "yes".into()),
        ("permitemptypasswords", "no".into()),
        ("permituserenvironment", "no".into()),
        ("allowtcpforwarding", "no".into()),
        ("allowagentforwarding", "no".into()),
        ("allowstreamlocalforwarding", "no".into()),
        ("x11forwarding", "no".into()),
        ("disableforwarding", "yes".into()),
        ("permittunnel", "no".into()),
        ("gatewayports", "no".into()),
        ("permitrootlogin", effective_root_login(prl).into()),
    ]
}

fn allowusers(eff: &BTreeMap<String, Vec<String>>) -> Vec<String> {
    eff.get("allowusers")
        .map(|v| {
            v.iter()
                .flat_map(|l| l.split_whitespace().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn user_allowed(list: &[String], user: &str) -> bool {
    list.is_empty()
        || list
            .iter()
            .any(|u| u == user || u == "*" || u.split('@').next() == Some(user))
}

pub fn run(
    ctx: &Ctx,
    shared: &SshShared,
    p: &Permutation,
    want_sshd: bool,
    want_audit: bool,
) -> Vec<CheckResult> {
    let started = Instant::now();
    let mut wanted = vec![];
    if want_sshd {
        wanted.push(CheckId::Sshd);
    }
    if want_audit {
        wanted.push(CheckId::SshAudit);
    }
    let all = |f: &dyn Fn(CheckId) -> CheckResult| wanted.iter().map(|c| f(*c)).collect::<Vec<_>>();
    let Some(rendered) = p.rendered("sshd_config") else {
        return all(&|c| {
            CheckResult::not_applicable(c, "sshd is not enabled in this configuration")
        });
    };
    if !p.knob_bool("ssh.enable") {
        return all(&|c| {
            CheckResult::not_applicable(
                c,
                "paranoid.ssh.enable is off: paranoid promises nothing about this sshd",
            )
        });
    }
    if let Some(r) = needs_root(
        &wanted,
        "runs sshd as root in a private network namespace and logs in as throwaway users",
    ) {
        return r;
    }
    let mut results = vec![];
    let mut tools_ok = vec![];
    for c in &wanted {
        let need = if *c == CheckId::Sshd {
            SSH_TOOLS
        } else {
            AUDIT_TOOLS
        };
        match ctx.tools.missing(need) {
            Some(t) => results.push(super::missing_tool(*c, &t)),
            None => tools_ok.push(*c),
        }
    }
    if tools_ok.is_empty() {
        return results;
    }
    if let Err(e) = ctx.netns_available() {
        results.extend(tools_ok.iter().map(|c| {
            CheckResult::skipped(
                *c,
                SkipKind::Environment,
                format!("needs network namespaces (sshd runs in a private one): {e}"),
            )
        }));
        results.sort_by_key(|r| r.check);
        return results;
    }
    let mut rec = Recorder::new(CheckId::Sshd);
    let mut audit = Recorder::new(CheckId::SshAudit);
    let outcome = run_inner(ctx, shared, p, rendered, &tools_ok, &mut rec, &mut audit);
    let mut unsupported = None;
    let summary = match outcome {
        Ok(s) => s,
        Err(e) => {
            match sshd_model::newer_feature(&e) {
                // This OpenSSH cannot read what NixOS's can: the tier cannot judge, and says so.
                Some(f) => unsupported = Some(format!(
                    "this OpenSSH ({}) cannot read the rendered sshd_config, NixOS's OpenSSH can: it uses {f}",
                    ctx.tools.versions.get("openssh").cloned().unwrap_or_default()
                )),
                None => {
                    rec.fail("could not run the ssh checks", e.clone());
                    audit.fail("could not run the ssh checks", e);
                }
            }
            String::new()
        }
    };
    let ms = elapsed_ms(started);
    for c in tools_ok {
        let r = if c == CheckId::Sshd {
            std::mem::replace(&mut rec, Recorder::new(CheckId::Sshd)).finish(summary.clone(), ms)
        } else {
            std::mem::replace(&mut audit, Recorder::new(CheckId::SshAudit))
                .finish("ssh-audit finds nothing to fault", ms)
        };
        let r = match &unsupported {
            Some(why) => CheckResult {
                status: crate::model::Status::Skipped,
                skip_kind: Some(SkipKind::Unsupported),
                summary: why.clone(),
                ..r
            },
            None => r,
        };
        results.push(r);
    }
    results.sort_by_key(|r| r.check);
    results
}

/// The connection the live probes log in as (and from).
struct Login {
    user: String,
    /// Server address and client address, when not the loopback default.
    via: Option<(String, String)>,
}

/// Returns the pass summary.
fn run_inner(
    ctx: &Ctx,
    shared: &SshShared,
    p: &Permutation,
    rendered: &str,
    wanted: &[CheckId],
    rec: &mut Recorder,
    audit: &mut Recorder,
) -> Result<String, String> {
    // Host users first: useradd must write the host's files, never the namespace's.
    let users = ctx.users()?;
    ensure_privsep_dir(rec)?;
    let model = sshd_model::Model::of(&p.projection)?
        .ok_or("the projection has no effective.sshd (it predates paranoid's sshd model)")?;
    let admin = sshd_model::AdminPath::of(&p.projection)
        .ok_or("the projection has no effective.adminPath (it predates the admin-path analysis)")?;

    // The admin path's first way in: its connection, for the live login.
    let admin_ctx = admin.paths.first().and_then(|e| {
        model
            .contexts
            .iter()
            .find(|c| c.id == e.context)
            .map(|c| (e, c))
    });
    // One connection per effective profile of the model, logged in over the live sshd from its
    // own client address: a Match block that only some accounts or networks reach is exercised
    // by the real client, not only by `sshd -T -C`.
    let (live_contexts, unprobed) = live_representatives(&model);
    let mut extra_hosts: Vec<(String, u16)> = admin_ctx
        .iter()
        .map(|(_, c)| *c)
        .chain(live_contexts.iter())
        .map(|c| (c.laddr.clone(), c.lport))
        .collect();
    extra_hosts.sort();
    extra_hosts.dedup();
    let mut peers: Vec<&sshd_model::Context> = admin_ctx.iter().map(|(_, c)| *c).collect();
    peers.extend(live_contexts.iter());
    let mut prep = prepare(
        ctx,
        shared,
        p,
        rendered,
        &users,
        "ssh",
        &extra_hosts,
        true,
        rec,
    )?;
    // The configuration's accounts, for sshd only (plus the run's throwaway users).
    let accounts_dir = ctx.scratch("ssh-accounts").map_err(|e| e.to_string())?;
    let mut host_users = vec![users.member.name.as_str(), users.outsider.name.as_str()];
    if p.projection.pointer("/effective/accounts/sshd").is_none() {
        host_users.push("sshd");
    }
    let extra = sshd_model::HostLines::read(
        &host_users,
        &[
            users.member.name.as_str(),
            users.outsider.name.as_str(),
            users.wheel.as_str(),
        ],
    );
    let files = sshd_model::account_files(&p.projection, &extra)?;
    for a in &files.adaptations {
        rec.adapt(a);
    }
    let ns = sshd_model::AccountsNs::create(
        &accounts_dir.dir,
        &files,
        false,
        Some(&prep.scratch.path("authorized_keys.d")),
    )?;
    let run = |c: &Cmd, t: Duration| ctx.run(c, t);
    rec.note(sshd_model::check_nss(&run, &ns, &files)?);

    if let Some((e, c)) = admin_ctx {
        install_admin_key(ctx, &mut prep, e, c, rec)?;
    }
    if !live_contexts.is_empty() {
        install_context_key(ctx, &mut prep, &live_contexts, rec)?;
    }
    for (profile, why) in &unprobed {
        rec.note(format!(
            "effective profile {profile} is not probed live, only judged by sshd -T -C: {why}"
        ));
    }
    let sshd = ctx.tools.path("sshd");
    for a in sshd_model::fit_to_this_sshd(&run, &ns, &sshd, &prep.cfg)? {
        rec.adapt(a);
    }
    // ssh-audit judges the adapted server too: it gets the same adaptation record.
    for e in rec
        .evidence
        .iter()
        .filter(|e| e.kind == crate::model::EvidenceKind::Adaptation)
    {
        audit.evidence.push(e.clone());
    }
    let cfg = prep.cfg.to_string_lossy().into_owned();

    // Static: sshd's own parser.
    let t = ns.cmd(ctx.tool("sshd").args(["-t", "-f", cfg.as_str()]));
    let o = ctx
        .run(&t, Duration::from_secs(10))
        .map_err(|e| e.to_string())?;
    let syntax_ok = rec.step(
        "sshd accepts the configuration (sshd -t)",
        t.display(),
        o.digest(3),
        o.ok(),
    );
    if !syntax_ok {
        audit.fail("sshd rejects the configuration", o.digest(3));
        return Ok(String::new());
    }
    let effective = |user: &str| -> Result<BTreeMap<String, Vec<String>>, String> {
        let c = ns.cmd(
            Cmd::new(sshd.clone())
                .args(["-T", "-f", cfg.as_str(), "-C"])
                .arg(format!("user={user},host=localhost,addr=127.0.0.1")),
        );
        let o = ctx
            .run(&c, Duration::from_secs(10))
            .map_err(|e| e.to_string())?;
        if !o.ok() {
            return Err(format!("`{}`: {}", c.display(), o.digest(3)));
        }
        Ok(parse_effective(&o.stdout))
    };
    let eff_member = effective(&users.member.name)?;
    let allow = allowusers(&eff_member);
    let prl = p
        .knob_str("ssh.permitRootLogin")
        .unwrap_or("prohibit-password")
        .to_string();
    let root_expected = matches!(
        prl.as_str(),
        "prohibit-password" | "without-password" | "yes"
    ) && user_allowed(&allow, "root");
    let sftp_expected = p
        .knob("ssh.allowSFTP")
        .and_then(|v| v.as_bool())
        .unwrap_or(true);

    let mut connections = 0;
    if wanted.contains(&CheckId::Sshd) {
        connections = judge_connections(
            ctx,
            p,
            &model,
            &ns,
            &run,
            &sshd,
            rendered,
            &prep,
            sftp_expected,
            rec,
        )?;
        if admin.ok {
            let (e, _) = admin_ctx
                .ok_or("effective.adminPath is ok but names no connection the model evaluated")?;
            rec.note(format!(
                "admin path: {} over {} (connection {}), then {}",
                e.account,
                e.network,
                e.context,
                if e.via == "root" {
                    "already root".into()
                } else {
                    format!("root through {}", e.via)
                }
            ));
        } else {
            rec.fail(
                "no admin path: after a reboot nobody can reach root from the network (effective.adminPath)",
                admin.broken_text(),
            );
        }
    }

    let server = start_server(ctx, &prep, "sshd.log", Some(&ns), &extra_hosts, &peers)?;
    rec.note(format!(
        "sshd listening on 127.0.0.1:{}{} in network namespace {} (pid {})",
        server.port,
        extra_hosts
            .iter()
            .map(|(a, p)| format!(" and {a}:{p}"))
            .collect::<String>(),
        server.ns.name,
        server.daemon.pid()
    ));
    super::test_panic_hook(CheckId::Sshd);

    if wanted.contains(&CheckId::SshAudit) {
        audit_server(ctx, p, &server, audit)?;
    }
    if !wanted.contains(&CheckId::Sshd) {
        return Ok(String::new());
    }

    // The admin logs in, over the live sshd, from the admin path's connection.
    if let Some((e, c)) = admin_ctx {
        let mut client = Client::new(ctx, &server.ns.name, c.lport, &prep);
        client.host = c.laddr.clone();
        client.bind = Some(c.addr.clone());
        let key = prep.admin_key.clone().ok_or("no admin key was installed")?;
        let probe = client.key_login_with("admin login", &e.account, &key);
        rec.step(
            format!(
                "the admin path's first account {} logs in over the live sshd from {} ({} → {}:{}) with a key installed for it alone",
                e.account, c.network, c.addr, c.laddr, c.lport
            ),
            probe.command.clone(),
            probe.decisive.clone(),
            probe.allowed == Some(true),
        );
    }

    let client = Client::new(ctx, &server.ns.name, server.port, &prep);
    let outsider = (!allow.is_empty() && !user_allowed(&allow, &users.outsider.name))
        .then(|| users.outsider.name.clone());
    let login = if user_allowed(&allow, &users.member.name) {
        Some(Login {
            user: users.member.name.clone(),
            via: None,
        })
    } else if root_expected {
        Some(Login {
            user: "root".into(),
            via: None,
        })
    } else {
        admin_ctx.map(|(e, c)| Login {
            user: e.account.clone(),
            via: Some((c.laddr.clone(), c.addr.clone())),
        })
    };
    let Some(login) = login else {
        // Nobody the sandbox can log in as is admitted: with no admin path, that is the
        // configuration's fault, and the admin-path step above already failed.
        rec.fail(
            "the live probes cannot log in: sshd admits none of the run's users, root or an admin",
            format!(
                "AllowUsers {}; PermitRootLogin {prl}; {}",
                allow.join(" "),
                admin.broken_text()
            ),
        );
        return Ok(String::new());
    };
    let mut client = client;
    if let Some((host, bind)) = &login.via {
        client.host = host.clone();
        client.bind = Some(bind.clone());
        client.port = admin_ctx.map(|(_, c)| c.lport).unwrap_or(server.port);
        client.key = prep.admin_key.clone().ok_or("no admin key was installed")?;
        rec.note(format!(
            "the live probes log in as {} from {bind} to {host}: AllowUsers admits neither the run's users nor root",
            login.user
        ));
    }
    let key_user = login.user.clone();
    let who = Who {
        login: key_user.clone(),
        password_user: users.member.name.clone(),
        outsider,
    };
    let probes = probe_all(&client, &who, key_user != "root");
    let mut probes: BTreeMap<&'static str, Probe> =
        probes.into_iter().map(|p| (p.name, p)).collect();
    if key_user == "root" {
        if let Some(k) = probes.get("key login").cloned() {
            probes.insert(
                "root login",
                Probe {
                    name: "root login",
                    ..k
                },
            );
        }
    }
    // The default login above is one connection of the model: its profile needs no second look.
    let default_profile = match &login.via {
        Some(_) => admin_ctx.map(|(_, c)| c.profile),
        None if key_user == "root" => model
            .contexts
            .iter()
            .find(|c| c.user == "root" && c.network == "loopback")
            .map(|c| c.profile),
        None => model
            .contexts
            .iter()
            .find(|c| !c.exists && c.network == "loopback")
            .map(|c| c.profile),
    };
    let mut live_results = vec![];
    for c in live_contexts
        .iter()
        .filter(|c| Some(c.profile) != default_profile)
    {
        let mut client = Client::new(ctx, &server.ns.name, c.lport, &prep);
        client.host = c.laddr.clone();
        client.bind = Some(c.addr.clone());
        client.key = prep
            .context_key
            .clone()
            .ok_or("no context key was installed")?;
        live_results.push((c, probe_context(&client, &c.user)));
    }
    drop(server);
    for (c, probes) in &live_results {
        let users_of_profile: Vec<&str> = model
            .contexts
            .iter()
            .filter(|x| x.profile == c.profile)
            .map(|x| x.id.as_str())
            .collect();
        rec.note(format!(
            "live probes as {} from {} to {}:{} stand for effective profile {} ({})",
            c.user,
            c.addr,
            c.laddr,
            c.lport,
            c.profile,
            users_of_profile.join(", ")
        ));
        for probe in probes {
            let (want, text) = match probe.name {
                "key login" => (true, "works"),
                _ => (false, "refused"),
            };
            let mut ok = probe.allowed == Some(want);
            let mut decisive = probe.decisive.clone();
            if (probe.name == "password" || probe.name == "keyboard-interactive") && ok {
                let m = probe.methods.clone().unwrap_or_default();
                if m.split(',')
                    .any(|x| x == "password" || x == "keyboard-interactive")
                {
                    ok = false;
                    decisive.push_str(&format!(" (the server still offers {m})"));
                }
            }
            rec.step(
                format!("{}: {} {text} (live, from {})", c.id, probe.name, c.addr),
                probe.command.clone(),
                decisive,
                ok,
            );
        }
    }
    let ctl = control(ctx, shared, p, rendered, &users)?;

    let expect = |name: &str| -> (bool, String) {
        match name {
            "password" | "keyboard-interactive" => (false, "refused".into()),
            "key login" => (true, format!("works for the allowed user {key_user}")),
            "forward -W" | "forward -L" | "forward -R" | "agent forwarding" => {
                (false, "refused".into())
            }
            "sftp" => (
                sftp_expected,
                if sftp_expected {
                    "works (allowSFTP on)".into()
                } else {
                    "refused (allowSFTP off)".into()
                },
            ),
            "root login" => (
                root_expected,
                format!(
                    "{} (PermitRootLogin {prl})",
                    if root_expected { "works" } else { "refused" }
                ),
            ),
            _ => (false, "refused (not in AllowUsers)".into()),
        }
    };
    for (name, probe) in &probes {
        let (want, text) = expect(name);
        let mut ok = probe.allowed == Some(want);
        let mut decisive = probe.decisive.clone();
        if (*name == "password" || *name == "keyboard-interactive") && ok {
            // The refusal must come from the offered methods, not from anything else.
            let m = probe.methods.clone().unwrap_or_default();
            if m.split(',')
                .any(|x| x == "password" || x == "keyboard-interactive")
            {
                ok = false;
                decisive.push_str(&format!(" (the server still offers {m})"));
            }
        }
        rec.step(
            format!("{name} {text}"),
            probe.command.clone(),
            decisive,
            ok,
        );
    }
    // The control: every probe must see the weakness.
    let mut blind = vec![];
    for (name, probe) in &ctl.probes {
        if !probes.contains_key(name) {
            continue;
        }
        if probe.allowed != Some(true) {
            blind.push(format!("{name}: {}", probe.decisive));
        }
    }
    if blind.is_empty() {
        rec.step(
            format!("positive control (weak config from {}, run once per run) was caught by every probe", ctl.from),
            "",
            ctl.probes.values().map(|p| format!("{}: {}", p.name, p.decisive)).collect::<Vec<_>>().join(" | "),
            true,
        );
    } else {
        rec.fail(
            "a probe did not catch the weak control (it cannot fail, so it proves nothing)",
            blind.join(" | "),
        );
    }
    Ok(format!(
        "sshd keeps every promise on all {connections} connections (sshd -T -C, in agreement with paranoid's model), {} logs in, and the weak control was caught",
        admin_ctx.map(|(e, _)| format!("the admin {}", e.account)).unwrap_or_default()
    ))
}

/// One connection of the model per effective profile, for the live probes: an account that
/// exists, that the model says logs in with a key, reading a declared key file (where the run's
/// throwaway key can go without touching anyone's home). Profiles without one are returned with
/// why, and stay judged by `sshd -T -C` alone.
fn live_representatives(
    model: &sshd_model::Model,
) -> (Vec<sshd_model::Context>, Vec<(usize, String)>) {
    let mut reps = vec![];
    let mut unprobed = vec![];
    for profile in 0..model.profiles.len() {
        let of: Vec<&sshd_model::Context> = model
            .contexts
            .iter()
            .filter(|c| c.profile == profile)
            .collect();
        if of.is_empty() {
            continue;
        }
        let declared = |c: &sshd_model::Context| {
            c.key_files
                .iter()
                .any(|(p, k)| k == "declared" && p.starts_with(sshd_config::NIXOS_KEYS_DIR))
        };
        match of
            .iter()
            .find(|c| c.exists && c.login_with_key && declared(c))
        {
            Some(c) => reps.push((*c).clone()),
            None => unprobed.push((
                profile,
                format!(
                    "none of its connections ({}) is an existing account that sshd admits with a key from a declared key file under {}",
                    of.iter().map(|c| c.id.as_str()).collect::<Vec<_>>().join(", "),
                    sshd_config::NIXOS_KEYS_DIR
                ),
            )),
        }
    }
    (reps, unprobed)
}

/// What a model connection must be refused (and allowed: the key login that makes the refusals
/// mean something), over the live sshd.
fn probe_context(client: &Client, user: &str) -> Vec<Probe> {
    let jobs: Vec<Box<dyn FnOnce() -> Probe + Send + '_>> = vec![
        Box::new(move || client.password(user, "password")),
        Box::new(move || client.password(user, "keyboard-interactive")),
        Box::new(move || client.key_login("key login", user)),
        Box::new(move || client.stdio_forward(user)),
        Box::new(move || client.local_forward(user)),
        Box::new(move || client.remote_forward(user)),
        Box::new(move || client.agent(user)),
    ];
    run_probes(jobs)
}

/// One throwaway key for the accounts of the connections probed live, appended at every declared
/// key file their connection reads (the configuration's own keys are not ours to use).
fn install_context_key(
    ctx: &Ctx,
    prep: &mut Prepared,
    contexts: &[sshd_model::Context],
    rec: &mut Recorder,
) -> Result<(), String> {
    let key = ctx.key("ed25519", None, "context")?;
    let pubkey = std::fs::read_to_string(key.with_extension("pub")).map_err(|e| e.to_string())?;
    let keys_dir = prep.scratch.path("authorized_keys.d");
    let mut placed = BTreeSet::new();
    for c in contexts {
        for (path, kind) in &c.key_files {
            if kind != "declared" || placed.contains(path) {
                continue;
            }
            let Some(rest) = path.strip_prefix(sshd_config::NIXOS_KEYS_DIR) else {
                continue;
            };
            // %u is the connection's user; other tokens are left alone (the file is not ours).
            let rest = rest.replace("%u", &c.user);
            if rest.contains('%') {
                continue;
            }
            let rest = crate::projection::safe_abs_path(&format!("/{rest}"))?
                .trim_start_matches('/')
                .to_string();
            let file = keys_dir.join(&rest);
            let mut text = std::fs::read_to_string(&file).unwrap_or_default();
            text.push_str(&pubkey);
            write_file(&file, text, 0o644).map_err(|e| e.to_string())?;
            placed.insert(path.clone());
        }
    }
    rec.adapt(format!(
        "a throwaway key for the live probes of the model's connections ({}), appended at {}",
        contexts
            .iter()
            .map(|c| c.id.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        placed.iter().cloned().collect::<Vec<_>>().join(", ")
    ));
    prep.context_key = Some(key);
    Ok(())
}

/// sshd -T -C for every connection of the model: each must keep the promises of paranoid.ssh,
/// and sshd must agree with the model on every tracked keyword. Returns the connections judged.
#[allow(clippy::too_many_arguments)]
fn judge_connections(
    ctx: &Ctx,
    p: &Permutation,
    model: &sshd_model::Model,
    ns: &sshd_model::AccountsNs,
    run: sshd_model::Runner,
    sshd: &str,
    rendered: &str,
    prep: &Prepared,
    sftp_expected: bool,
    rec: &mut Recorder,
) -> Result<usize, String> {
    if !model.judged {
        rec.note(format!(
            "paranoid's model cannot judge this sshd_config ({}): connections are not compared",
            model.unjudged.join("; ")
        ));
        return Ok(0);
    }
    // sshd -T reads the rendered file with only what it must load adapted (host keys, unknown
    // algorithms and keywords): paths it never opens in that mode stay as rendered.
    let dump = prep.scratch.path("sshd_config.dump");
    let key = ctx.key("ed25519", None, "dump")?;
    let key_s = key.to_string_lossy().into_owned();
    let host_key = |_: &str, _: Option<u32>| -> Result<String, String> { Ok(key_s.clone()) };
    let known = known_algorithms(ctx)?;
    for a in sshd_model::write_dump_config(
        rendered,
        &sshd_model::declared_host_keys(&p.projection),
        &known,
        &host_key,
        &dump,
    )? {
        rec.adapt(format!("sshd -T: {a}"));
    }
    let fit = sshd_model::fit_to_this_sshd(run, ns, sshd, &dump).map(|a| {
        for x in a {
            rec.adapt(format!("sshd -T: {x}"));
        }
    });
    if let Some(d) = sshd_model::validity(model, &fit) {
        rec.fail(
            "paranoid's model and sshd disagree on whether sshd starts with this file",
            d.to_string(),
        );
        return Ok(0);
    }
    fit?;
    let answers = sshd_model::ask_all(run, ns, sshd, &dump, &model.contexts)?;
    let cmp = sshd_model::compare(model, &answers);
    for d in &cmp.disagreements {
        rec.fail(
            format!(
                "paranoid's model disagrees with sshd for {} on {}",
                d.context, d.keyword
            ),
            format!("model: {:?}; sshd -T -C: {:?}", d.model, d.sshd),
        );
    }
    if cmp.disagreements.is_empty() {
        rec.step(
            format!(
                "paranoid's model agrees with sshd on every tracked keyword of all {} connections ({} comparisons)",
                cmp.connections, cmp.compared
            ),
            answers.first().map(|a| a.command.clone()).unwrap_or_default(),
            format!(
                "connections: {}{}",
                answers.iter().map(|a| a.context.as_str()).collect::<Vec<_>>().join(", "),
                if cmp.unprinted.is_empty() {
                    String::new()
                } else {
                    format!("; not printed by this sshd: {}", cmp.unprinted.iter().cloned().collect::<Vec<_>>().join(", "))
                }
            ),
            true,
        );
    }
    // The promises of paranoid.ssh, for every connection; connections with the same verdict
    // share one step.
    let promised = expected_effective(p);
    let allow_knob: Option<BTreeSet<String>> = p
        .knob("ssh.allowUsers")
        .filter(|v| !v.is_null())
        .map(|v| strings(Some(v)).into_iter().collect());
    let mut groups: BTreeMap<(Vec<String>, Vec<String>), Vec<&sshd_model::Answer>> =
        BTreeMap::new();
    for a in &answers {
        let c = model.contexts.iter().find(|c| c.id == a.context);
        let is_root = c.is_some_and(|c| c.user == "root");
        let mut bad = vec![];
        let mut good = vec![];
        for (k, want) in &promised {
            if *k == "permitrootlogin" && !is_root {
                continue; // only root's connections are asked about root logins
            }
            let got =
                sshd_model::normalise(k, a.values.get(*k)).unwrap_or_else(|| "(absent)".into());
            let want = sshd_model::normalise(k, Some(&vec![want.clone()])).unwrap_or_default();
            if got == want {
                good.push(format!("{k} {got}"));
            } else {
                bad.push(format!("{k} {got} (promised {want})"));
            }
        }
        let sftp: Vec<&String> = a
            .values
            .get("subsystem")
            .map(|v| v.iter().filter(|l| l.starts_with("sftp")).collect())
            .unwrap_or_default();
        if sftp.is_empty() == sftp_expected {
            bad.push(format!(
                "subsystem sftp {} (paranoid.ssh.allowSFTP = {sftp_expected})",
                sftp.first().map(|s| s.as_str()).unwrap_or("absent")
            ));
        } else {
            good.push(format!(
                "subsystem sftp {}",
                if sftp_expected { "present" } else { "absent" }
            ));
        }
        if let Some(want) = &allow_knob {
            let got: BTreeSet<String> = allowusers(&a.values).into_iter().collect();
            if &got != want {
                bad.push(format!("allowusers {got:?} (promised {want:?})"));
            } else {
                good.push(format!(
                    "allowusers {}",
                    got.iter().cloned().collect::<Vec<_>>().join(" ")
                ));
            }
        }
        let akf = a
            .values
            .get("authorizedkeysfile")
            .map(|v| v.join(" "))
            .unwrap_or_default();
        let homedir: Vec<&str> = akf
            .split_whitespace()
            .filter(|f| !f.starts_with('/') || f.contains("%h") || f.contains("%d"))
            .collect();
        if homedir.is_empty() {
            good.push(format!("authorizedkeysfile {akf}"));
        } else {
            bad.push(format!(
                "authorizedkeysfile reads keys from the home directory: {}",
                homedir.join(" ")
            ));
        }
        groups.entry((bad, good)).or_default().push(a);
    }
    for ((bad, good), answers) in &groups {
        let ids: Vec<&str> = answers.iter().map(|a| a.context.as_str()).collect();
        let shown = if ids.len() > 8 {
            format!("{}, … ({} in all)", ids[..8].join(", "), ids.len())
        } else {
            ids.join(", ")
        };
        let ok = bad.is_empty();
        rec.step(
            format!(
                "effective values for {} connection(s) ({shown}) match paranoid.ssh",
                ids.len()
            ),
            answers[0].command.clone(),
            if ok { good.join(", ") } else { bad.join("; ") },
            ok,
        );
    }
    Ok(answers.len())
}

/// A throwaway key for the admin path's account alone, at every file sshd reads its declared
/// keys from (the configuration's own keys are not ours to use).
fn install_admin_key(
    ctx: &Ctx,
    prep: &mut Prepared,
    e: &sshd_model::AdminEntry,
    c: &sshd_model::Context,
    rec: &mut Recorder,
) -> Result<(), String> {
    let key = ctx.key("ed25519", None, "admin")?;
    let pubkey = std::fs::read_to_string(key.with_extension("pub")).map_err(|e| e.to_string())?;
    let keys_dir = prep.scratch.path("authorized_keys.d");
    let mut placed = vec![];
    for (path, kind) in &c.key_files {
        if kind != "declared" {
            continue;
        }
        let Some(rest) = path.strip_prefix(sshd_config::NIXOS_KEYS_DIR) else {
            continue;
        };
        let rest = crate::projection::safe_abs_path(&format!("/{rest}"))?
            .trim_start_matches('/')
            .to_string();
        let file = keys_dir.join(&rest);
        let mut text = std::fs::read_to_string(&file).unwrap_or_default();
        text.push_str(&pubkey);
        write_file(&file, text, 0o644).map_err(|e| e.to_string())?;
        placed.push(format!("{path} → {}", file.display()));
    }
    if placed.is_empty() {
        return Err(format!(
            "the admin path's connection {} reads no declared key file under {}",
            c.id,
            sshd_config::NIXOS_KEYS_DIR
        ));
    }
    rec.adapt(format!(
        "the configuration's declared keys of {} are replaced by a throwaway admin key, installed for {} alone: {}",
        e.account,
        e.account,
        placed.join(", ")
    ));
    prep.admin_key = Some(key);
    Ok(())
}

fn audit_server(
    ctx: &Ctx,
    p: &Permutation,
    server: &Server,
    audit: &mut Recorder,
) -> Result<(), String> {
    let crypto = p.knob_str("ssh.crypto").unwrap_or("modern").to_string();
    let port = server.port.to_string();
    let c = ctx.tool("ssh-audit").in_netns(&server.ns.name).args([
        "-n",
        "-b",
        "-t",
        "5",
        "-p",
        port.as_str(),
        "127.0.0.1",
    ]);
    let o = ctx
        .run(&c, Duration::from_secs(20))
        .map_err(|e| e.to_string())?;
    if o.code == Some(1) || o.stdout.is_empty() {
        audit.fail("ssh-audit could not audit the server", o.digest(4));
        return Ok(());
    }
    let fails: Vec<&str> = o
        .stdout
        .lines()
        .filter(|l| l.contains("[fail]"))
        .map(str::trim)
        .collect();
    let warns: Vec<&str> = o
        .stdout
        .lines()
        .filter(|l| l.contains("[warn]") && !l.contains(TERRAPIN_MARKER_WARN))
        .map(str::trim)
        .collect();
    let marker = o
        .stdout
        .lines()
        .find(|l| l.contains(TERRAPIN_MARKER_WARN))
        .map(str::trim);
    let gate_warns = crypto != "upstream";
    let mut summary = vec![];
    if fails.is_empty() {
        summary.push("no [fail]".to_string());
    } else {
        summary.extend(fails.iter().map(|s| s.to_string()));
    }
    if warns.is_empty() {
        summary.push("no [warn]".into());
    } else {
        summary.extend(warns.iter().map(|s| s.to_string()));
    }
    if let Some(m) = marker {
        summary.push(format!(
            "tolerated: {m} (Debian's Terrapin marker; ssh-audit 2.5.0 does not know it)"
        ));
    }
    let ok = fails.is_empty() && (!gate_warns || warns.is_empty());
    let what = if gate_warns {
        format!("ssh-audit: no [fail] and no [warn] (crypto {crypto})")
    } else {
        "ssh-audit: no [fail] (crypto upstream keeps NixOS's algorithm choice, so warnings are reported, not gated)".into()
    };
    audit.step(what, c.display(), summary.join(" | "), ok);

    match policy(&crypto) {
        Some(text) => {
            let file = ctx.reg.work.join(format!("policy-{crypto}-{}.txt", crate::context::random_hex(6)));
            write_file(&file, text, 0o644).map_err(|e| e.to_string())?;
            let c = ctx
                .tool("ssh-audit")
                .in_netns(&server.ns.name)
                .args(["-n", "-P"])
                .arg(file.to_string_lossy())
                .args(["-p", port.as_str(), "127.0.0.1"]);
            let o = ctx.run(&c, Duration::from_secs(20)).map_err(|e| e.to_string())?;
            let _ = std::fs::remove_file(&file);
            let result = o.line_with("Result:").unwrap_or_else(|| o.digest(3));
            let diffs: Vec<String> = o
                .stdout
                .lines()
                .filter(|l| l.contains("Expected:") || l.contains("Actual:"))
                .map(|l| l.trim().to_string())
                .collect();
            let ok = o.ok() && result.contains("Passed");
            let out = if diffs.is_empty() { result } else { format!("{result} | {}", diffs.join(" | ")) };
            audit.step(format!("ssh-audit policy harness/sandbox/policies/{crypto}.txt passes"), c.display(), out, ok);
        }
        None => audit.note(format!("no ssh-audit policy for crypto \"{crypto}\" (NixOS's defaults are not paranoid's choice); policy step not run")),
    }
    Ok(())
}
