//! Effective mount flags, computed the way mount(8) and the kernel do (an implementation of our
//! own, independent of lib/module-helpers.nix): options apply left to right, `defaults` means
//! `rw,suid,dev,exec`, so a `noexec` before a `defaults` is undone; a plain bind mount (only
//! `bind`/`rbind`, `defaults` or `x-*` options) copies the flags of the mount its source lies
//! on, while a bind with further flags is remounted with exactly those flags.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub mount_point: String,
    pub device: String,
    pub fs_type: String,
    pub options: Vec<String>,
    pub origin: String,
}

impl Mount {
    pub fn from_json(v: &Value) -> Option<Mount> {
        Some(Mount {
            mount_point: v.get("mountPoint")?.as_str()?.to_string(),
            device: v
                .get("device")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            fs_type: v
                .get("fsType")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            options: v
                .get("options")?
                .as_array()?
                .iter()
                .filter_map(|o| o.as_str().map(str::to_string))
                .collect(),
            origin: v
                .get("origin")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        })
    }

    pub fn is_bind(&self) -> bool {
        self.options.iter().any(|o| o == "bind" || o == "rbind")
    }

    /// A bind mount that copies its source's flags.
    pub fn is_plain_bind(&self) -> bool {
        self.is_bind()
            && self.device.starts_with('/')
            && self
                .options
                .iter()
                .all(|o| o == "bind" || o == "rbind" || o == "defaults" || o.starts_with("x-"))
    }
}

/// The three flags paranoid cares about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flags {
    pub noexec: bool,
    pub nosuid: bool,
    pub nodev: bool,
}

impl Flags {
    pub fn hardened(self) -> bool {
        self.noexec && self.nosuid && self.nodev
    }

    /// What is missing for noexec,nosuid,nodev, e.g. `["noexec", "nodev"]`.
    pub fn missing(self) -> Vec<&'static str> {
        let mut m = vec![];
        if !self.noexec {
            m.push("noexec");
        }
        if !self.nosuid {
            m.push("nosuid");
        }
        if !self.nodev {
            m.push("nodev");
        }
        m
    }
}

/// Flags from an option list alone, left to right.
pub fn flags_of_options(options: &[String]) -> Flags {
    let mut f = Flags::default();
    for o in options {
        match o.as_str() {
            "noexec" => f.noexec = true,
            "exec" => f.noexec = false,
            "nosuid" => f.nosuid = true,
            "suid" => f.nosuid = false,
            "nodev" => f.nodev = true,
            "dev" => f.nodev = false,
            "defaults" => f = Flags::default(),
            "user" | "users" => {
                // mount(8): user implies noexec,nosuid,nodev unless overridden later.
                f = Flags {
                    noexec: true,
                    nosuid: true,
                    nodev: true,
                };
            }
            _ => {}
        }
    }
    f
}

fn under(dir: &str, path: &str) -> bool {
    dir == "/" || path == dir || path.starts_with(&format!("{}/", dir.trim_end_matches('/')))
}

/// Which of two mounts at the same point is on top: later stages mount over earlier ones.
fn stage(origin: &str) -> u8 {
    match origin {
        "special" => 0,
        "initrd" => 1,
        "fileSystems" => 2,
        "systemd.mounts" => 3,
        _ => 2,
    }
}

/// The mounts of a system, from the projection's `mounts`.
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub mounts: Vec<Mount>,
}

impl Table {
    pub fn from_projection(p: &Value) -> Table {
        Table {
            mounts: p
                .get("mounts")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Mount::from_json).collect())
                .unwrap_or_default(),
        }
    }

    /// The mount a path lives on: the longest mount point containing it, topmost stage.
    pub fn mount_of(&self, path: &str) -> Option<&Mount> {
        self.mount_of_excluding(path, None)
    }

    fn mount_of_excluding(&self, path: &str, skip: Option<&Mount>) -> Option<&Mount> {
        self.mounts
            .iter()
            .filter(|m| under(&m.mount_point, path) && !skip.is_some_and(|s| std::ptr::eq(*m, s)))
            .max_by_key(|m| (m.mount_point.trim_end_matches('/').len(), stage(&m.origin)))
    }

    /// The effective flags of a mount, following plain binds to their source.
    pub fn flags(&self, m: &Mount) -> Flags {
        self.flags_depth(m, 0)
    }

    fn flags_depth(&self, m: &Mount, depth: usize) -> Flags {
        if m.is_plain_bind() && depth < 16 {
            let src = self.mount_of_source(m);
            return match src {
                Some(s) => self.flags_depth(s, depth + 1),
                None => Flags::default(),
            };
        }
        flags_of_options(&m.options)
    }

    /// The mount a bind's source path lies on (the bind itself excluded: a path bound onto
    /// itself takes the flags of what was there before).
    pub fn mount_of_source(&self, m: &Mount) -> Option<&Mount> {
        self.mount_of_excluding(&m.device, Some(m))
    }

    /// The effective flags at a path (None when no mount holds it).
    pub fn flags_at(&self, path: &str) -> Option<(Flags, &Mount)> {
        let m = self.mount_of(path)?;
        Some((self.flags(m), m))
    }

    /// The mount whose options decide a mount's flags: itself, or for a plain bind the mount
    /// its source lies on (followed to the end).
    pub fn backing<'a>(&'a self, m: &'a Mount) -> &'a Mount {
        let mut cur = m;
        for _ in 0..16 {
            if !cur.is_plain_bind() {
                break;
            }
            match self.mount_of_source(cur) {
                Some(src) => cur = src,
                None => break,
            }
        }
        cur
    }

    /// How the flags at a mount came about, for messages: "/var/log (bind of /nix/persist/var/log,
    /// which lies on /nix: ext4 x-initrd.mount)".
    pub fn explain(&self, m: &Mount) -> String {
        let mut s = format!(
            "{} ({} {}: {})",
            m.mount_point,
            m.origin,
            m.fs_type,
            m.options.join(",")
        );
        let mut cur = m;
        let mut depth = 0;
        while cur.is_plain_bind() && depth < 8 {
            match self.mount_of_source(cur) {
                Some(src) => {
                    s.push_str(&format!(
                        ", a plain bind of {} that inherits {} ({}: {})",
                        cur.device,
                        src.mount_point,
                        src.fs_type,
                        src.options.join(",")
                    ));
                    cur = src;
                }
                None => break,
            }
            depth += 1;
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(point: &str, device: &str, opts: &[&str], origin: &str) -> Mount {
        Mount {
            mount_point: point.into(),
            device: device.into(),
            fs_type: "x".into(),
            options: opts.iter().map(|s| s.to_string()).collect(),
            origin: origin.into(),
        }
    }

    #[test]
    fn options_apply_left_to_right_and_defaults_undo_noexec() {
        let f = |o: &[&str]| flags_of_options(&o.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert!(f(&["defaults", "noexec", "nosuid", "nodev"]).hardened());
        assert!(!f(&["noexec", "nosuid", "nodev", "defaults"]).hardened());
        assert!(!f(&["noexec", "nosuid", "nodev", "exec"]).noexec);
        assert_eq!(f(&["noexec", "nosuid"]).missing(), vec!["nodev"]);
    }

    #[test]
    fn plain_binds_inherit_their_source_and_flagged_binds_do_not() {
        let t = Table {
            mounts: vec![
                m(
                    "/",
                    "tmpfs",
                    &["defaults", "noexec", "nosuid", "nodev"],
                    "fileSystems",
                ),
                m("/nix", "/dev/nix", &["x-initrd.mount"], "fileSystems"),
                m(
                    "/nix/persist",
                    "/nix/persist",
                    &["bind", "noexec", "nosuid", "nodev"],
                    "fileSystems",
                ),
                m(
                    "/var/log",
                    "/nix/persist/var/log",
                    &["bind", "x-gvfs-hide"],
                    "systemd.mounts",
                ),
                m("/srv", "/nix/srv", &["bind"], "systemd.mounts"),
                m(
                    "/etc/x",
                    "/nix/persist/etc/x",
                    &["bind", "nosuid"],
                    "systemd.mounts",
                ),
            ],
        };
        assert!(t.flags_at("/var/log/journal").unwrap().0.hardened());
        assert!(
            !t.flags_at("/srv").unwrap().0.noexec,
            "inherits /nix, which is exec"
        );
        assert_eq!(
            t.flags_at("/etc/x").unwrap().0,
            Flags {
                noexec: false,
                nosuid: true,
                nodev: false
            }
        );
        assert!(!t.flags_at("/nix/store").unwrap().0.noexec);
        assert!(t
            .explain(t.mount_of("/srv").unwrap())
            .contains("inherits /nix"));
    }

    #[test]
    fn a_plain_self_bind_takes_what_was_there_before() {
        let t = Table {
            mounts: vec![
                m("/", "tmpfs", &["noexec", "nosuid", "nodev"], "fileSystems"),
                m("/nix", "/dev/nix", &["x-initrd.mount"], "fileSystems"),
                m(
                    "/nix/persist",
                    "/nix/persist",
                    &["bind", "x-initrd.mount"],
                    "fileSystems",
                ),
            ],
        };
        assert!(!t.flags_at("/nix/persist/var").unwrap().0.noexec);
    }
}
