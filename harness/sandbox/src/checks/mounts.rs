//! Check 4: the rendered mounts, mounted for real under a prefix in a private mount namespace
//! in the order NixOS would (initrd-needed first, then by path, binds after their source),
//! with disk devices replaced by tmpfs stand-ins carrying the same VFS options. A real ELF is
//! copied into every writable location and executed: EACCES where noexec is promised,
//! success under the store. The kernel's answers are also compared with what the options say
//! when read left to right (plain binds inheriting their source's flags), which is what the
//! harness computes everywhere else.

use super::elapsed_ms;
use crate::context::Ctx;
use crate::exec::Cmd;
use crate::model::{CheckId, CheckResult, Recorder, SkipKind};
use crate::projection::{strings, Mount, Permutation};
use crate::sys;
use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const TOOLS: &[&str] = &["mount", "findmnt"];
/// nixos/lib/utils.nix pathsNeededForBoot: mounted in the initrd whatever neededForBoot says.
const NEEDED_FOR_BOOT: &[&str] = &[
    "/",
    "/nix",
    "/nix/store",
    "/var",
    "/var/log",
    "/var/lib",
    "/var/lib/nixos",
    "/etc",
    "/usr",
];
/// Mount points that carry /nix/store and must stay executable.
pub const STORE_MOUNTS: &[&str] = &["/nix", "/nix/store"];
/// Options mount(8) or the VFS understand for any filesystem (kept on a stand-in).
const VFS_OPTIONS: &[&str] = &[
    "defaults",
    "rw",
    "ro",
    "exec",
    "noexec",
    "suid",
    "nosuid",
    "dev",
    "nodev",
    "sync",
    "async",
    "dirsync",
    "atime",
    "noatime",
    "diratime",
    "nodiratime",
    "relatime",
    "norelatime",
    "strictatime",
    "nostrictatime",
    "lazytime",
    "nolazytime",
    "mand",
    "nomand",
    "silent",
    "loud",
    "auto",
    "noauto",
    "user",
    "nouser",
    "users",
    "owner",
    "group",
    "nofail",
    "_netdev",
];
const PSEUDO: &[&str] = &[
    "proc",
    "sysfs",
    "devtmpfs",
    "devpts",
    "cgroup",
    "cgroup2",
    "securityfs",
    "debugfs",
    "tracefs",
    "bpf",
    "mqueue",
    "hugetlbfs",
    "configfs",
    "pstore",
    "efivarfs",
    "fusectl",
];

/// Is `path` at or below mount point `mp`?
pub fn under(mp: &str, path: &str) -> bool {
    mp == "/" || path == mp || path.starts_with(&format!("{}/", mp.trim_end_matches('/')))
}

fn is_bind(m: &Mount) -> bool {
    m.options.iter().any(|o| o == "bind" || o == "rbind")
}

/// How an entry is mounted here.
#[derive(Clone, Debug)]
enum How {
    Bind {
        source: String,
    },
    /// A tmpfs/ramfs as rendered.
    Memory,
    /// A disk (or network) filesystem replaced by a tmpfs with its VFS options.
    StandIn {
        dropped: Vec<String>,
    },
}

#[derive(Clone, Debug)]
struct Planned {
    m: Mount,
    how: How,
    options: Vec<String>,
    initrd: bool,
}

/// Choose, order and translate the entries. Returns the plan and notes on what was left out.
fn plan(p: &Permutation) -> (Vec<Planned>, Vec<String>) {
    let mut notes = vec![];
    let mut chosen: Vec<Planned> = vec![];
    for m in p.mounts() {
        if PSEUDO.contains(&m.fs_type.as_str()) {
            notes.push(format!(
                "{} ({}) not mounted: kernel pseudo filesystem",
                m.mount_point, m.fs_type
            ));
            continue;
        }
        if m.origin == "special"
            && !["/dev/shm", "/tmp", "/var/tmp"].contains(&m.mount_point.as_str())
        {
            notes.push(format!(
                "{} ({}) not mounted: a runtime filesystem paranoid does not promise noexec for",
                m.mount_point, m.fs_type
            ));
            continue;
        }
        let initrd = m.origin == "initrd"
            || m.needed_for_boot
            || m.options.iter().any(|o| o == "x-initrd.mount")
            || (m.origin == "fileSystems" && NEEDED_FOR_BOOT.contains(&m.mount_point.as_str()));
        let device = m.device.clone().unwrap_or_default();
        let (how, options) = if is_bind(&m) || (m.fs_type == "none" && device.starts_with('/')) {
            (How::Bind { source: device }, m.options.clone())
        } else if m.fs_type == "tmpfs" || m.fs_type == "ramfs" {
            (How::Memory, m.options.clone())
        } else {
            let (keep, dropped): (Vec<String>, Vec<String>) =
                m.options.iter().cloned().partition(|o| {
                    VFS_OPTIONS.contains(&o.as_str())
                        || o.starts_with("x-")
                        || o.starts_with("comment=")
                });
            (How::StandIn { dropped }, keep)
        };
        chosen.push(Planned {
            m,
            how,
            options,
            initrd,
        });
    }
    // Initrd mounts first (a later duplicate of the same mount point is what systemd finds
    // already mounted and skips).
    chosen.sort_by_key(|e| !e.initrd);
    let mut seen = BTreeSet::new();
    let mut unique = vec![];
    for e in chosen {
        if seen.insert(e.m.mount_point.clone()) {
            unique.push(e);
        } else {
            notes.push(format!(
                "{} from {} not mounted again: the same mount point is already mounted earlier (systemd skips a mounted unit)",
                e.m.mount_point, e.m.origin
            ));
        }
    }
    // Within each stage: by path, and every entry after the mounts holding its mount point
    // and (for binds) its source.
    let mut ordered: Vec<Planned> = vec![];
    for stage in [true, false] {
        let mut pending: Vec<Planned> = unique
            .iter()
            .filter(|e| e.initrd == stage)
            .cloned()
            .collect();
        pending.sort_by(|a, b| a.m.mount_point.cmp(&b.m.mount_point));
        while !pending.is_empty() {
            let ready = pending.iter().position(|e| {
                !pending.iter().any(|o| {
                    o.m.mount_point != e.m.mount_point
                        && (under(&o.m.mount_point, &e.m.mount_point)
                            || matches!(&e.how, How::Bind { source } if under(&o.m.mount_point, source)))
                })
            });
            ordered.push(pending.remove(ready.unwrap_or(0)));
        }
    }
    (ordered, notes)
}

/// What the options say about exec at `path`, read left to right; a plain bind takes its
/// source mount's flags. `mounted` is in mount order.
fn model_noexec(mounted: &[Planned], path: &str, depth: usize) -> bool {
    let Some(e) = mounted
        .iter()
        .rev()
        .filter(|e| under(&e.m.mount_point, path))
        .max_by_key(|e| e.m.mount_point.len())
    else {
        return false;
    };
    let plain = e
        .options
        .iter()
        .all(|o| o == "bind" || o == "rbind" || o == "defaults" || o.starts_with("x-"));
    if let (How::Bind { source }, true) = (&e.how, plain) {
        if depth < 16 && source != &e.m.mount_point {
            let rest = path
                .strip_prefix(e.m.mount_point.trim_end_matches('/'))
                .unwrap_or("");
            let idx = mounted.iter().position(|x| std::ptr::eq(x, e)).unwrap_or(0);
            return model_noexec(
                &mounted[..idx],
                &format!("{}{}", source.trim_end_matches('/'), rest),
                depth + 1,
            );
        }
    }
    e.options.iter().fold(false, |acc, o| match o.as_str() {
        "noexec" => true,
        "exec" | "defaults" => false,
        _ => acc,
    })
}

pub fn run(ctx: &Ctx, p: &Permutation) -> CheckResult {
    let started = Instant::now();
    let id = CheckId::Mounts;
    if p.mounts().is_empty() {
        return CheckResult::not_applicable(id, "the projection lists no mounts");
    }
    if let Some(r) = super::preflight(
        ctx,
        id,
        Some("mounts filesystems in a private mount namespace"),
        TOOLS,
    ) {
        return r;
    }
    let mut rec = Recorder::new(id);
    let scratch = match ctx.scratch("mounts") {
        Ok(s) => s,
        Err(e) => {
            rec.fail("could not create a scratch directory", e.to_string());
            return rec.finish("", elapsed_ms(started));
        }
    };
    let prefix = scratch.path("root");
    // Everything below runs on a thread with its own mount namespace; the host never sees
    // these mounts, and they vanish with the thread.
    let mut no_namespace = None;
    let outcome = std::thread::scope(|s| {
        s.spawn(|| -> Result<(), String> {
            if let Err(e) = sys::private_mount_namespace() {
                no_namespace = Some(format!("needs a private mount namespace (unshare(CLONE_NEWNS), / made private): {e}"));
                return Ok(());
            }
            rec.note("private mount namespace (unshare -m, / made private): nothing propagates to the host");
            let r = mount_and_probe(ctx, p, &prefix, &mut rec);
            // Explicit unmount (the namespace would drop them anyway when the thread ends).
            let _ = ctx.run(&ctx.tool("umount").args(["-R", "-l"]).arg(prefix.to_string_lossy()), Duration::from_secs(10));
            r
        })
        .join()
        .unwrap_or_else(|_| Err("the mount namespace thread panicked".into()))
    });
    if let Some(why) = no_namespace {
        return CheckResult::skipped(id, SkipKind::Environment, why);
    }
    if let Err(e) = outcome {
        rec.fail("could not run the mounts check", e);
    }
    drop(scratch);
    let promised = p.knob_bool("noexec.enable");
    rec.finish(
        if promised {
            "execution is denied everywhere noexec is promised and allowed under the store"
        } else {
            "the kernel agrees with the options (noexec not promised: paranoid.noexec.enable is off)"
        },
        elapsed_ms(started),
    )
}

fn elf_source() -> Result<PathBuf, String> {
    for c in ["/usr/bin/true", "/bin/true"] {
        let p = Path::new(c);
        if let Ok(real) = p.canonicalize() {
            let mut magic = [0u8; 4];
            if std::fs::File::open(&real)
                .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
                .is_ok()
                && &magic == b"\x7fELF"
            {
                return Ok(real);
            }
        }
    }
    Err("no ELF binary (/usr/bin/true) to copy".into())
}

fn mount_and_probe(
    ctx: &Ctx,
    p: &Permutation,
    prefix: &Path,
    rec: &mut Recorder,
) -> Result<(), String> {
    // Every path below is placed under the prefix and written to as root: none may climb out.
    for m in p.mounts() {
        crate::projection::safe_abs_path(&m.mount_point)?;
        if let Some(d) = m.device.as_deref().filter(|d| d.starts_with('/')) {
            crate::projection::safe_abs_path(d)?;
        }
    }
    for (file, storage) in p.persisted_files() {
        crate::projection::safe_abs_path(&file)?;
        crate::projection::safe_abs_path(&storage)?;
    }
    let (planned, notes) = plan(p);
    for n in notes {
        rec.note(n);
    }
    let pre = |mp: &str| -> PathBuf {
        if mp == "/" {
            prefix.to_path_buf()
        } else {
            prefix.join(mp.trim_start_matches('/'))
        }
    };
    std::fs::create_dir_all(prefix).map_err(|e| e.to_string())?;
    let tag = format!("pzs-{}", ctx.run_id());
    let mut mounted: Vec<Planned> = vec![];
    let mut tab = String::new();
    if !planned.iter().any(|e| e.m.mount_point == "/") {
        rec.note("no / entry rendered: a plain tmpfs stands in for it");
        let c = ctx
            .tool("mount")
            .args(["-t", "tmpfs", "-o", "mode=755", tag.as_str()])
            .arg(prefix.to_string_lossy());
        run_ok(ctx, &c)?;
    }
    for e in &planned {
        let target = pre(&e.m.mount_point);
        std::fs::create_dir_all(&target)
            .map_err(|err| format!("mkdir {}: {err}", target.display()))?;
        let opts = e.options.join(",");
        let (cmd, source, fstype) = match &e.how {
            How::Bind { source } => {
                let src = pre(source);
                if !src.exists() {
                    std::fs::create_dir_all(&src)
                        .map_err(|err| format!("mkdir {}: {err}", src.display()))?;
                }
                let c = ctx
                    .tool("mount")
                    .arg("-o")
                    .arg(opts.clone())
                    .arg(src.to_string_lossy())
                    .arg(target.to_string_lossy());
                (c, src.to_string_lossy().into_owned(), "none".to_string())
            }
            How::Memory => {
                let mut c = ctx.tool("mount").args(["-t", e.m.fs_type.as_str()]);
                if !opts.is_empty() {
                    c = c.arg("-o").arg(opts.clone());
                }
                (
                    c.arg(tag.as_str()).arg(target.to_string_lossy()),
                    tag.clone(),
                    e.m.fs_type.clone(),
                )
            }
            How::StandIn { dropped } => {
                rec.adapt(format!(
                    "{} ({} on {}) → tmpfs stand-in with options {}{}",
                    e.m.mount_point,
                    e.m.fs_type,
                    e.m.device.clone().unwrap_or_default(),
                    if opts.is_empty() {
                        "(none)".into()
                    } else {
                        opts.clone()
                    },
                    if dropped.is_empty() {
                        String::new()
                    } else {
                        format!(
                            " ({} specific, dropped: {})",
                            e.m.fs_type,
                            dropped.join(",")
                        )
                    }
                ));
                let mut c = ctx.tool("mount").args(["-t", "tmpfs"]);
                if !opts.is_empty() {
                    c = c.arg("-o").arg(opts.clone());
                }
                (
                    c.arg(tag.as_str()).arg(target.to_string_lossy()),
                    tag.clone(),
                    "tmpfs".to_string(),
                )
            }
        };
        let o = ctx
            .run(&cmd, Duration::from_secs(10))
            .map_err(|err| err.to_string())?;
        let stage = if e.initrd { "initrd" } else { "stage 2" };
        if !rec.step(
            format!("mount {} ({stage}, from {})", e.m.mount_point, e.m.origin),
            cmd.display(),
            o.digest(2),
            o.ok(),
        ) {
            continue;
        }
        tab.push_str(&format!(
            "{} {} {} {} 0 0\n",
            source,
            target.display(),
            fstype,
            if opts.is_empty() {
                "defaults".into()
            } else {
                opts
            }
        ));
        mounted.push(e.clone());
    }
    // Persisted files: impermanence bind-mounts each from its storage path.
    let mut file_locations = vec![];
    for (file, storage) in p.persisted_files() {
        let src = pre(&format!("{}{}", storage.trim_end_matches('/'), file));
        let dst = pre(&file);
        for f in [&src, &dst] {
            if let Some(d) = f.parent() {
                std::fs::create_dir_all(d).map_err(|err| err.to_string())?;
            }
            if !f.exists() {
                std::fs::write(f, b"").map_err(|err| format!("create {}: {err}", f.display()))?;
            }
        }
        let c = ctx
            .tool("mount")
            .args(["-o", "bind"])
            .arg(src.to_string_lossy())
            .arg(dst.to_string_lossy());
        let o = ctx
            .run(&c, Duration::from_secs(10))
            .map_err(|err| err.to_string())?;
        if rec.step(
            format!("bind persisted file {file} from {storage} (as impermanence does)"),
            c.display(),
            o.digest(2),
            o.ok(),
        ) {
            file_locations.push((
                file.clone(),
                format!("{}{}", storage.trim_end_matches('/'), file),
            ));
        }
    }

    // The kernel's view of what is mounted.
    let c = ctx
        .tool("findmnt")
        .args(["-R", "-n", "-r", "-o", "TARGET,FSTYPE,VFS-OPTIONS"])
        .arg(prefix.to_string_lossy());
    let o = ctx
        .run(&c, Duration::from_secs(10))
        .map_err(|e| e.to_string())?;
    let table: Vec<String> = o
        .stdout
        .lines()
        .map(|l| l.replacen(&prefix.to_string_lossy().into_owned(), "", 1))
        .map(|l| {
            if l.starts_with(' ') {
                format!("/{l}")
            } else {
                l
            }
        })
        .collect();
    rec.step(
        "the kernel's mount table under the prefix (VFS options)",
        c.display(),
        table.join(" | "),
        o.ok(),
    );

    // The root of a tmpfs / (amnesia): its mode is the last `mode=` the kernel took. A root
    // any user can write to is what paranoid.amnesia promises it is not (mode=755).
    if mounted
        .iter()
        .any(|e| e.m.mount_point == "/" && matches!(e.how, How::Memory))
    {
        let mode = std::fs::metadata(prefix)
            .map_err(|e| format!("stat {}: {e}", prefix.display()))?
            .permissions()
            .mode()
            & 0o7777;
        let world_writable = mode & 0o002 != 0;
        let promised = p.knob_bool("amnesia.enable");
        rec.step(
            format!(
                "/: the kernel gives the tmpfs root mode {mode:o}{}",
                if promised {
                    " (paranoid.amnesia promises a root only root can write to)"
                } else {
                    ""
                }
            ),
            format!("stat -c %a {}", prefix.display()),
            format!(
                "{mode:o}: {}",
                if world_writable {
                    "every user can create files in /"
                } else {
                    "not world-writable"
                }
            ),
            !(promised && world_writable),
        );
    }

    // findmnt's own verification of the table as mounted here.
    let tabfile = prefix.with_file_name("fstab.mounted");
    std::fs::write(&tabfile, &tab).map_err(|e| e.to_string())?;
    let c = ctx
        .tool("findmnt")
        .args(["--verify", "--tab-file"])
        .arg(tabfile.to_string_lossy());
    let o = ctx
        .run(&c, Duration::from_secs(10))
        .map_err(|e| e.to_string())?;
    let errors: Vec<String> = o
        .all()
        .lines()
        .filter(|l| l.contains("[E]") || l.contains("parse error"))
        .map(|l| l.trim().to_string())
        .collect();
    let summary = o
        .all()
        .lines()
        .rev()
        .find(|l| l.contains("errors"))
        .map(|l| l.trim().to_string())
        .unwrap_or_else(|| o.digest(2));
    rec.step(
        "findmnt --verify accepts the mounted table",
        c.display(),
        if errors.is_empty() {
            summary
        } else {
            format!("{summary}: {}", errors.join(" | "))
        },
        o.ok() && errors.is_empty(),
    );

    let promised = p.knob_bool("noexec.enable");
    let exceptions = strings(p.knob("noexec.exceptions"));
    // findmnt parses option names it does not validate: the promise must show in VFS-OPTIONS.
    if promised {
        if let Some(fstab) = p.rendered("fstab") {
            let f = prefix.with_file_name("fstab.rendered");
            std::fs::write(&f, fstab).map_err(|e| e.to_string())?;
            let c = ctx
                .tool("findmnt")
                .args(["-n", "-r", "-o", "TARGET,VFS-OPTIONS", "--tab-file"])
                .arg(f.to_string_lossy());
            let o = ctx
                .run(&c, Duration::from_secs(10))
                .map_err(|e| e.to_string())?;
            let mut missing = vec![];
            for l in o.stdout.lines() {
                let mut it = l.split_whitespace();
                let (Some(t), v) = (it.next(), it.next().unwrap_or("")) else {
                    continue;
                };
                if STORE_MOUNTS.contains(&t) || exceptions.iter().any(|x| x == t) {
                    continue;
                }
                if !v.split(',').any(|x| x == "noexec") {
                    missing.push(format!("{t} [{v}]"));
                }
            }
            rec.step(
                "every rendered fstab entry but the store's lists noexec in VFS-OPTIONS",
                c.display(),
                if missing.is_empty() {
                    o.stdout.lines().collect::<Vec<_>>().join(" | ")
                } else {
                    format!("no noexec: {}", missing.join(", "))
                },
                missing.is_empty(),
            );
        }
    }

    // Where to try executing: every writable mount, /tmp, /var/tmp, the store, persisted files.
    let elf = elf_source()?;
    let mut locations: Vec<String> = mounted.iter().map(|e| e.m.mount_point.clone()).collect();
    for extra in ["/tmp", "/var/tmp", "/nix/store"] {
        if !locations.iter().any(|l| l == extra) {
            locations.push(extra.into());
        }
    }
    let marker = format!("pzs-elf-{}", ctx.run_id());
    for loc in &locations {
        let dir = pre(loc);
        if std::fs::create_dir_all(&dir).is_err() {
            rec.note(format!(
                "{loc}: cannot create (read-only parent): nothing can be written there"
            ));
            continue;
        }
        let bin = dir.join(&marker);
        if let Err(e) = std::fs::copy(&elf, &bin) {
            rec.note(format!(
                "{loc}: cannot write an ELF there ({e}): nothing to execute"
            ));
            continue;
        }
        let _ = std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755));
        let store = STORE_MOUNTS
            .iter()
            .any(|s| loc == s || under("/nix/store", loc));
        let excepted = exceptions.iter().any(|x| under(x, loc));
        let want_denied = if store {
            Some(false)
        } else if promised && !excepted {
            Some(true)
        } else {
            None
        };
        let shown = format!("{}/{marker}", loc.trim_end_matches('/'));
        probe_exec(
            rec,
            &bin,
            loc,
            &shown,
            want_denied,
            model_noexec(&mounted, loc, 0),
        );
        let _ = std::fs::remove_file(&bin);
    }
    for (file, source) in file_locations {
        let dst = pre(&file);
        if std::fs::write(&dst, std::fs::read(&elf).map_err(|e| e.to_string())?).is_err() {
            rec.note(format!(
                "{file}: cannot write through the bind: nothing to execute"
            ));
            continue;
        }
        let _ = std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o755));
        let model = model_noexec(&mounted, &source, 0);
        probe_exec(
            rec,
            &dst,
            &format!("persisted file {file}"),
            &file,
            if promised { Some(true) } else { None },
            model,
        );
    }
    Ok(())
}

fn run_ok(ctx: &Ctx, c: &Cmd) -> Result<(), String> {
    let o = ctx
        .run(c, Duration::from_secs(10))
        .map_err(|e| e.to_string())?;
    if o.ok() {
        Ok(())
    } else {
        Err(format!("`{}`: {}", c.display(), o.digest(3)))
    }
}

/// Execute `bin` (spawned from this thread, so inside the private namespace) and judge.
fn probe_exec(
    rec: &mut Recorder,
    bin: &Path,
    what: &str,
    shown: &str,
    want_denied: Option<bool>,
    model_denied: bool,
) {
    // ETXTBSY: another thread's fork can briefly hold the just-written file open; retry.
    let mut r = Err(std::io::Error::from_raw_os_error(26));
    for _ in 0..50 {
        r = std::process::Command::new(bin)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        match &r {
            Err(e) if e.raw_os_error() == Some(26) => std::thread::sleep(Duration::from_millis(10)),
            _ => break,
        }
    }
    let (denied, out) = match r {
        Ok(st) => (Some(false), format!("executed ({st})")),
        Err(e) if e.raw_os_error() == Some(13) => {
            (Some(true), "execve: EACCES (Permission denied)".to_string())
        }
        Err(e) => (None, format!("execve failed otherwise: {e}")),
    };
    let model = if model_denied { "noexec" } else { "exec" };
    let command = format!("cp /usr/bin/true {shown} && {shown}");
    match want_denied {
        Some(want) => {
            let promise = if want {
                "execution denied (noexec promised)"
            } else {
                "execution allowed (the store stays executable)"
            };
            let ok = denied == Some(want);
            rec.step(
                format!("{what}: {promise}"),
                command.clone(),
                format!("{out}; the options say {model}"),
                ok,
            );
            if ok && denied != Some(model_denied) {
                rec.fail(
                    format!("{what}: the kernel disagrees with the options read left to right"),
                    format!("kernel: {out}; options: {model}"),
                );
            }
        }
        None => {
            let agrees = denied == Some(model_denied);
            rec.step(
                format!("{what}: the kernel agrees with the options ({model}; nothing promised)"),
                command,
                format!("{out}; the options say {model}"),
                agrees,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn perm(mounts: serde_json::Value) -> Permutation {
        Permutation {
            id: "t".into(),
            source: "t".into(),
            projection: json!({ "mounts": mounts }),
        }
    }

    #[test]
    fn initrd_mounts_come_first_and_binds_follow_their_source() {
        let p = perm(json!([
            {"mountPoint": "/etc/nixos", "device": "/nix/persist/etc/nixos", "fsType": "none", "options": ["bind"], "origin": "systemd.mounts", "neededForBoot": false},
            {"mountPoint": "/", "device": "tmpfs", "fsType": "tmpfs", "options": ["defaults", "mode=755", "noexec"], "origin": "fileSystems", "neededForBoot": false},
            {"mountPoint": "/nix/persist", "device": "/nix/persist", "fsType": "none", "options": ["bind", "noexec"], "origin": "fileSystems", "neededForBoot": true},
            {"mountPoint": "/nix", "device": "/dev/disk/by-label/nix", "fsType": "ext4", "options": ["x-initrd.mount", "errors=remount-ro"], "origin": "fileSystems", "neededForBoot": false},
            {"mountPoint": "/var/lib", "device": "/nix/persist/var/lib", "fsType": "none", "options": ["bind"], "origin": "systemd.mounts", "neededForBoot": false},
            {"mountPoint": "/var/lib", "device": "/nix/persist/var/lib", "fsType": "none", "options": ["bind"], "origin": "initrd", "neededForBoot": true},
            {"mountPoint": "/proc", "device": "proc", "fsType": "proc", "options": [], "origin": "special", "neededForBoot": false}
        ]));
        let (plan, notes) = plan(&p);
        let order: Vec<(&str, &str)> = plan
            .iter()
            .map(|e| (e.m.mount_point.as_str(), e.m.origin.as_str()))
            .collect();
        assert_eq!(
            order,
            vec![
                ("/", "fileSystems"),
                ("/nix", "fileSystems"),
                ("/nix/persist", "fileSystems"),
                ("/var/lib", "initrd"),
                ("/etc/nixos", "systemd.mounts")
            ]
        );
        assert!(notes
            .iter()
            .any(|n| n.starts_with("/var/lib from systemd.mounts not mounted again")));
        assert!(notes.iter().any(|n| n.starts_with("/proc")));
        // The disk's ext4-only option is dropped from its tmpfs stand-in.
        assert!(
            matches!(&plan[1].how, How::StandIn { dropped } if dropped == &vec!["errors=remount-ro".to_string()])
        );
        // Options left to right; a plain bind takes its source's flags.
        assert!(model_noexec(&plan, "/etc/nixos", 0) && model_noexec(&plan, "/var/lib/x", 0));
        assert!(!model_noexec(&plan, "/nix/store", 0) && model_noexec(&plan, "/tmp", 0));
    }

    #[test]
    fn defaults_after_noexec_re_enables_exec_in_the_model() {
        let p = perm(
            json!([{"mountPoint": "/", "device": "tmpfs", "fsType": "tmpfs", "options": ["noexec", "defaults"], "origin": "fileSystems"}]),
        );
        let (plan, _) = plan(&p);
        assert!(!model_noexec(&plan, "/tmp", 0));
    }
}
