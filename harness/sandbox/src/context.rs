//! The run context shared by every check: the registry (run id, journal, work directory),
//! the tools found on this machine, the throwaway users, cached throwaway keys, and the
//! constructors of guarded resources (network namespaces, scratch directories).

use crate::cleanup::{Guard, Registry, Resource};
use crate::exec::{self, Cancel, Cmd, Output};
use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io;
use std::os::unix::fs::{chown, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Programs the checks use, looked up once in PATH.
pub const TOOLS: &[&str] = &[
    "sshd",
    "ssh",
    "ssh-keygen",
    "ssh-agent",
    "ssh-add",
    "sftp",
    "ssh-audit",
    "nix",
    "nix-daemon",
    "ip",
    "nft",
    "mount",
    "findmnt",
    "systemd-analyze",
    "useradd",
    "userdel",
    "groupadd",
    "groupdel",
    "chpasswd",
    "auditctl",
    "ausearch",
    "auditd",
    "visudo",
    "cvtsudoers",
    "doas",
    "setpriv",
];

/// Debian package that provides each tool (for the "not installed" hint).
pub fn package_of(tool: &str) -> &'static str {
    match tool {
        "sshd" => "openssh-server",
        "ssh" | "ssh-keygen" | "ssh-agent" | "ssh-add" | "sftp" => "openssh-client",
        "ssh-audit" => "ssh-audit",
        "nix" | "nix-daemon" => "nix-bin",
        "ip" => "iproute2",
        "nft" => "nftables",
        "mount" | "findmnt" => "mount (util-linux)",
        "systemd-analyze" => "systemd",
        "auditctl" | "ausearch" | "auditd" => "auditd",
        "visudo" | "cvtsudoers" => "sudo",
        "doas" => "opendoas",
        "setpriv" => "util-linux",
        _ => "passwd",
    }
}

#[derive(Clone, Debug, Default)]
pub struct Tools {
    paths: BTreeMap<String, PathBuf>,
    pub versions: BTreeMap<String, String>,
}

impl Tools {
    pub fn detect(run_id: &str, cancel: &Cancel) -> Tools {
        let mut t = Tools::default();
        for name in TOOLS {
            if let Some(p) = exec::which(name) {
                t.paths.insert(name.to_string(), p);
            }
        }
        let probe = |prog: &Path, args: &[&str]| -> String {
            Cmd::new(prog.to_string_lossy())
                .args(args.iter().copied())
                .run(run_id, Duration::from_secs(10), cancel)
                .map(|o| o.all())
                .unwrap_or_default()
        };
        if let Some(p) = t.get("ssh") {
            let v = probe(p, &["-V"]);
            if let Some(l) = v.lines().next() {
                t.versions.insert(
                    "openssh".into(),
                    l.split(',').next().unwrap_or(l).trim().to_string(),
                );
            }
        }
        if let Some(p) = t.get("ssh-audit") {
            let v = probe(p, &["-h"]);
            if let Some(ver) = v
                .split_whitespace()
                .find(|w| w.starts_with('v') && w[1..].starts_with(|c: char| c.is_ascii_digit()))
            {
                t.versions.insert(
                    "ssh-audit".into(),
                    ver.trim_start_matches('v')
                        .trim_end_matches(|c: char| !c.is_ascii_digit())
                        .to_string(),
                );
            }
        }
        for (tool, key, args) in [
            ("nix", "nix", &["--version"][..]),
            ("systemd-analyze", "systemd", &["--version"][..]),
            ("nft", "nftables", &["--version"][..]),
            ("findmnt", "util-linux", &["--version"][..]),
            ("auditctl", "audit", &["-v"][..]),
            ("visudo", "sudo", &["--version"][..]),
        ] {
            if let Some(p) = t.get(tool) {
                if let Some(v) = probe(p, args).lines().next().and_then(version_in) {
                    t.versions.insert(key.into(), v);
                }
            }
        }
        t
    }
    pub fn get(&self, name: &str) -> Option<&Path> {
        self.paths.get(name).map(|p| p.as_path())
    }
    /// The absolute path of a tool as a string (the bare name if absent; callers check first).
    pub fn path(&self, name: &str) -> String {
        self.get(name)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|| name.to_string())
    }
    /// The first of `names` that is missing.
    pub fn missing(&self, names: &[&str]) -> Option<String> {
        names
            .iter()
            .find(|n| self.get(n).is_none())
            .map(|n| n.to_string())
    }
    /// The systemd major version (252 on Debian 12).
    pub fn systemd_major(&self) -> Option<u32> {
        self.versions
            .get("systemd")?
            .split(['.', '-'])
            .next()?
            .parse()
            .ok()
    }
}

/// The first version-looking token of a `--version` line: "nix (Nix) 2.8.0" → "2.8.0",
/// "systemd 252 (252.38-1~deb12u1)" → "252.38-1~deb12u1", "nftables v1.0.6 (...)" → "1.0.6".
pub fn version_in(line: &str) -> Option<String> {
    line.split_whitespace()
        .map(|w| {
            w.trim_matches(|c| c == '(' || c == ')' || c == ',')
                .trim_start_matches('v')
        })
        .find(|w| w.starts_with(|c: char| c.is_ascii_digit()) && w.contains('.'))
        .map(str::to_string)
}

/// A throwaway account.
#[derive(Clone, Debug)]
pub struct TestUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
    /// Its real password (set with chpasswd), so a password login could work if allowed.
    pub password: String,
}

/// The run's throwaway accounts: `member` is in the stand-in for wheel, `outsider` is in nothing.
#[derive(Clone, Debug)]
pub struct Users {
    pub member: TestUser,
    pub outsider: TestUser,
    /// The throwaway group standing in for `wheel`.
    pub wheel: String,
}

pub struct Ctx {
    // Field order is drop order: run-long guards go before the registry removes the work dir.
    run_guards: Mutex<Vec<Guard>>,
    pub reg: Registry,
    pub cancel: Cancel,
    pub tools: Tools,
    users: Mutex<Option<Result<Arc<Users>, String>>>,
    keys: Mutex<HashMap<String, PathBuf>>,
    seq: AtomicUsize,
    /// Held by checks that touch state global to the kernel (audit).
    pub global: Mutex<()>,
    netns_ok: std::sync::OnceLock<Result<(), String>>,
    user_admin: Mutex<()>,
    /// Throwaway accounts and groups standing for a configuration's own (by what they stand for).
    standins: Mutex<HashMap<String, Result<TestUser, String>>>,
    standin_groups: Mutex<HashMap<String, Result<String, String>>>,
}

impl Ctx {
    pub fn new(reg: Registry, cancel: Cancel, tools: Tools) -> Ctx {
        Ctx {
            run_guards: Mutex::new(vec![]),
            reg,
            cancel,
            tools,
            users: Mutex::new(None),
            keys: Mutex::new(HashMap::new()),
            seq: AtomicUsize::new(0),
            global: Mutex::new(()),
            netns_ok: std::sync::OnceLock::new(),
            user_admin: Mutex::new(()),
            standins: Mutex::new(HashMap::new()),
            standin_groups: Mutex::new(HashMap::new()),
        }
    }

    pub fn run_id(&self) -> &str {
        &self.reg.run_id
    }

    /// Run a command with this run's marker and cancel flag.
    pub fn run(&self, cmd: &Cmd, timeout: Duration) -> io::Result<Output> {
        cmd.run(self.run_id(), timeout, &self.cancel)
    }

    /// A command for a tool, by its absolute path.
    pub fn tool(&self, name: &str) -> Cmd {
        Cmd::new(self.tools.path(name))
    }

    fn next(&self) -> usize {
        self.seq.fetch_add(1, Ordering::SeqCst)
    }

    /// A fresh scratch directory below the run's work directory, removed when dropped.
    pub fn scratch(&self, label: &str) -> io::Result<Scratch> {
        let dir = self.reg.work.join(format!("{}-{}", label, self.next()));
        fs::create_dir_all(&dir)?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))?;
        Ok(Scratch { dir })
    }

    /// A new network namespace with loopback up, deleted when dropped.
    pub fn netns(&self) -> io::Result<Netns> {
        let name = format!(
            "{}-{}-{}",
            crate::cleanup::NAME_PREFIX,
            self.run_id(),
            self.next()
        );
        let guard = Guard::record(&self.reg, Resource::Netns(name.clone()))?;
        let o = self.run(
            &self.tool("ip").args(["netns", "add", name.as_str()]),
            Duration::from_secs(10),
        )?;
        if !o.ok() {
            return Err(io::Error::other(format!(
                "ip netns add {name}: {}",
                o.digest(3)
            )));
        }
        let o = self.run(
            &self
                .tool("ip")
                .args(["-n", name.as_str(), "link", "set", "lo", "up"]),
            Duration::from_secs(10),
        )?;
        if !o.ok() {
            return Err(io::Error::other(format!(
                "ip -n {name} link set lo up: {}",
                o.digest(3)
            )));
        }
        Ok(Netns {
            name,
            _guard: guard,
        })
    }

    /// Can this machine create network namespaces? Tried once per run (and cleaned up).
    pub fn netns_available(&self) -> Result<(), String> {
        self.netns_ok
            .get_or_init(|| match self.tools.missing(&["ip"]) {
                Some(t) => Err(format!("{t} not installed")),
                None => self.netns().map(drop).map_err(|e| e.to_string()),
            })
            .clone()
    }

    /// The run's throwaway users, created on first use and removed at the end of the run.
    pub fn users(&self) -> Result<Arc<Users>, String> {
        let mut slot = self.users.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = slot.as_ref() {
            return r.clone();
        }
        let r = self.create_users();
        *slot = Some(r.clone());
        r
    }

    fn create_users(&self) -> Result<Arc<Users>, String> {
        let _admin = self.user_admin.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = self
            .tools
            .missing(&["useradd", "userdel", "groupadd", "groupdel", "chpasswd"])
        {
            return Err(format!("{t} not installed"));
        }
        let wheel = self.reg.name("w");
        self.admin_cmd(
            Resource::Group(wheel.clone()),
            self.tool("groupadd").arg(wheel.as_str()),
        )?;
        let member = self.create_user("u", &[wheel.as_str()])?;
        let outsider = self.create_user("o", &[])?;
        Ok(Arc::new(Users {
            member,
            outsider,
            wheel,
        }))
    }

    /// A throwaway group standing for the configuration's group `group` (the run's wheel
    /// stand-in for `wheel`), created once per run.
    pub fn standin_group(&self, group: &str) -> Result<String, String> {
        if group == "wheel" {
            return Ok(self.users()?.wheel.clone());
        }
        let mut map = self
            .standin_groups
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let n = map.len();
        map.entry(group.to_string())
            .or_insert_with(|| {
                let _admin = self.user_admin.lock().unwrap_or_else(|e| e.into_inner());
                let name = self.reg.name(&format!("g{n}"));
                self.admin_cmd(
                    Resource::Group(name.clone()),
                    self.tool("groupadd").arg(name.as_str()),
                )
                .map(|_| name)
            })
            .clone()
    }

    /// A throwaway account standing for `what` (a configuration's account, "a member of
    /// @users"...), member of exactly the throwaway groups `groups`; created once per run for
    /// each (what, groups).
    pub fn standin_user(&self, what: &str, groups: &[String]) -> Result<TestUser, String> {
        let mut sorted = groups.to_vec();
        sorted.sort();
        let key = format!("{what} in {sorted:?}");
        let mut map = self.standins.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.len();
        map.entry(key)
            .or_insert_with(|| {
                let _admin = self.user_admin.lock().unwrap_or_else(|e| e.into_inner());
                let gs: Vec<&str> = sorted.iter().map(String::as_str).collect();
                self.create_user(&format!("s{n}"), &gs)
            })
            .clone()
    }

    fn create_user(&self, suffix: &str, groups: &[&str]) -> Result<TestUser, String> {
        let name = self.reg.name(suffix);
        let home = self.reg.work.join("home").join(&name);
        let mut cmd = self
            .tool("useradd")
            .args(["-M", "-U", "-s", "/bin/sh", "-d"])
            .arg(home.to_string_lossy());
        if !groups.is_empty() {
            cmd = cmd.args(["-G".to_string(), groups.join(",")]);
        }
        // The user-private group carries the same name; journal it so a sweep removes it too.
        self.reg
            .record(&Resource::Group(name.clone()))
            .map_err(|e| e.to_string())?;
        self.admin_cmd(Resource::User(name.clone()), cmd.arg(name.as_str()))?;
        let (uid, gid) = passwd_ids(&name)
            .ok_or_else(|| format!("useradd {name} succeeded but {name} is not in /etc/passwd"))?;
        fs::create_dir_all(&home).map_err(|e| e.to_string())?;
        chown(&home, Some(uid), Some(gid)).map_err(|e| e.to_string())?;
        fs::set_permissions(&home, fs::Permissions::from_mode(0o700)).map_err(|e| e.to_string())?;
        let password = format!("Pzs-{}", random_hex(12));
        let o = self
            .run(
                &self.tool("chpasswd").stdin(format!("{name}:{password}\n")),
                Duration::from_secs(10),
            )
            .map_err(|e| e.to_string())?;
        if !o.ok() {
            return Err(format!("chpasswd for {name}: {}", o.digest(3)));
        }
        Ok(TestUser {
            name,
            uid,
            gid,
            home,
            password,
        })
    }

    /// Run useradd/groupadd under a run-long guard, retrying while another program holds the
    /// passwd/group lock.
    fn admin_cmd(&self, res: Resource, cmd: Cmd) -> Result<(), String> {
        let guard = Guard::record(&self.reg, res).map_err(|e| e.to_string())?;
        let mut last = String::new();
        for _ in 0..40 {
            let o = self
                .run(&cmd, Duration::from_secs(20))
                .map_err(|e| e.to_string())?;
            if o.ok() {
                self.run_guards
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(guard);
                return Ok(());
            }
            last = o.digest(3);
            if !last.to_lowercase().contains("lock") {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!("`{}` failed: {last}", cmd.display()))
    }

    /// A throwaway SSH key of `kind` ("ed25519", "rsa", "ecdsa"), generated once per run.
    /// Returns the private key path; the public key is next to it with ".pub".
    pub fn key(&self, kind: &str, bits: Option<u32>, label: &str) -> Result<PathBuf, String> {
        let id = format!("{label}-{kind}-{}", bits.unwrap_or(0));
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = keys.get(&id) {
            return Ok(p.clone());
        }
        let dir = self.reg.work.join("keys").join(&id);
        fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).map_err(|e| e.to_string())?;
        let path = dir.join(format!("ssh_host_{kind}_key"));
        let mut cmd = self
            .tool("ssh-keygen")
            .args(["-q", "-t", kind, "-N", "", "-C"])
            .arg(format!("paranoid-sandbox-{}", self.run_id()));
        if let Some(b) = bits {
            cmd = cmd.args(["-b".to_string(), b.to_string()]);
        }
        let o = self
            .run(
                &cmd.arg("-f").arg(path.to_string_lossy()),
                Duration::from_secs(60),
            )
            .map_err(|e| e.to_string())?;
        if !o.ok() {
            return Err(format!("ssh-keygen -t {kind}: {}", o.digest(3)));
        }
        keys.insert(id, path.clone());
        Ok(path)
    }
}

/// A scratch directory, removed when dropped.
pub struct Scratch {
    pub dir: PathBuf,
}

impl Scratch {
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A network namespace, deleted when dropped.
pub struct Netns {
    pub name: String,
    _guard: Guard,
}

pub fn passwd_ids(name: &str) -> Option<(u32, u32)> {
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.first() == Some(&name) && f.len() > 3)
            .then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))?
    })
}

pub fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n.div_ceil(2)];
    if let Ok(mut f) = fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut b);
    }
    b.iter().map(|x| format!("{x:02x}")).collect::<String>()[..n].to_string()
}

/// Write a file and set its mode.
pub fn write_file(path: &Path, content: impl AsRef<[u8]>, mode: u32) -> io::Result<()> {
    if let Some(d) = path.parent() {
        fs::create_dir_all(d)?;
    }
    fs::write(path, content)?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}
