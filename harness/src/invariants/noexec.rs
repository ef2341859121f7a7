//! noexec: every filesystem but the store's mounted noexec,nosuid,nodev, persisted state
//! included (judged on the mount table, `mounts`, with the kernel's bind-mount rules).

use serde_json::{json, Value};

use super::{force, set_knob, v, Apply, Posture, Proj, Violation};
use crate::mounts::{Mount, Table};

/// The option that declares a mount's options (`fileSystems."/x".options`, or the special
/// filesystems' own), if a definition can set it.
fn options_option(m: &Mount) -> Option<String> {
    match m.origin.as_str() {
        "fileSystems" => Some(format!("fileSystems.\"{}\".options", m.mount_point)),
        "special" => Some(format!("boot.specialFileSystems.\"{}\".options", m.mount_point)),
        _ => None,
    }
}

/// The mount's options as a definition writes them (NixOS adds `x-initrd.mount` itself),
/// edited by `f`, forced: what the options are once the overriding definition is gone.
fn rewrite(m: &Mount, f: impl Fn(Vec<String>) -> Vec<String>) -> Vec<Apply> {
    let own: Vec<String> = m.options.iter().filter(|o| *o != "x-initrd.mount").cloned().collect();
    let mut options = f(own);
    if options.is_empty() {
        // A filesystem's options may not be empty: `defaults` is what none means.
        options.push("defaults".into());
    }
    options_option(m)
        .map(|o| vec![force(o, json!(options))])
        .unwrap_or_default()
}

const STORE_MOUNTS: &[&str] = &["/nix", "/nix/store"];

pub(super) fn check_noexec(p: &Posture, proj: &Proj) -> Vec<Violation> {
    let table = Table::from_projection(proj.0);
    let mut out = vec![];
    // Always: the store stays executable.
    match table.flags_at("/nix/store") {
        Some((f, m)) if f.noexec => {
            // On the store's own filesystem, the noexec option is the fault; on `/`, the store
            // needs a filesystem of its own, which only the owner can give it.
            let own = STORE_MOUNTS.contains(&m.mount_point.as_str());
            out.push(
                v(
                    "noexec.store-exec",
                    format!("/nix/store lies on {} which is noexec: nothing on the system could run", table.explain(m)),
                    match options_option(m).filter(|_| own) {
                        Some(o) => format!("remove noexec from {o}"),
                        None => "put /nix on its own filesystem without noexec, or add its mount point to paranoid.noexec.exceptions".to_string(),
                    },
                )
                .applying(if own {
                    rewrite(m, |o| o.into_iter().filter(|x| x != "noexec").collect())
                } else {
                    vec![]
                }),
            )
        }
        _ => {}
    }
    if !p.area_on("noexec") {
        return out;
    }
    let exceptions: Vec<String> = p
        .get("noexec.exceptions")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    for m in &table.mounts {
        // Filesystems: fileSystems entries and /dev/shm. The binds impermanence adds
        // (systemd.mounts, initrd) are persisted paths: noexec.persisted judges them.
        let relevant = match m.origin.as_str() {
            "special" => m.mount_point == "/dev/shm",
            "fileSystems" => true,
            _ => false,
        };
        if !relevant
            || STORE_MOUNTS.contains(&m.mount_point.as_str())
            || exceptions.contains(&m.mount_point)
        {
            continue;
        }
        let f = table.flags(m);
        if !f.hardened() {
            let missing = f.missing();
            out.push(
                v(
                    "noexec.mounts",
                    format!("with {}, {} lacks {}", p.show("noexec.enable"), table.explain(m), missing.join(",")),
                    p.fix(
                        "noexec",
                        "noexec.enable",
                        format!(
                            "drop the override of {} (lib.mkForce or an `exec`/`defaults` after noexec), or list \"{}\" in paranoid.noexec.exceptions if it must stay executable",
                            options_option(m).unwrap_or_else(|| format!("the options of {}", m.mount_point)),
                            m.mount_point
                        ),
                    ),
                )
                // The flags paranoid appends, last again (mount(8) applies options left to right).
                .applying(rewrite(m, |mut o| {
                    o.extend(missing.iter().map(|x| x.to_string()));
                    o
                })),
            );
        }
    }
    // Persisted directories and files: the path and its storage both noexec.
    // (path, where its data lives, the persistence root holding it)
    let mut persisted: Vec<(String, String, String)> = vec![];
    if let Some(pers) = proj
        .opt("environment.persistence")
        .and_then(Value::as_object)
    {
        for (storage, e) in pers {
            if e.get("enable").and_then(Value::as_bool) == Some(false) {
                continue;
            }
            // impermanence's entries: directories by dirPath, files by filePath.
            for (list, path_key, short_key) in [
                ("directories", "dirPath", "directory"),
                ("files", "filePath", "file"),
            ] {
                for entry in e.get(list).and_then(Value::as_array).into_iter().flatten() {
                    let Some(path) = entry
                        .get(path_key)
                        .or_else(|| entry.get(short_key))
                        .and_then(Value::as_str)
                    else {
                        continue;
                    };
                    let st = entry
                        .get("persistentStoragePath")
                        .and_then(Value::as_str)
                        .unwrap_or(storage);
                    persisted.push((
                        path.to_string(),
                        format!("{}{}", st.trim_end_matches('/'), path),
                        st.to_string(),
                    ));
                }
            }
        }
    }
    for (path, source, root) in persisted {
        // noexec.exceptions name mount points to keep executable; they do not excuse persisted
        // state, whose whole point is to survive reboots (a planted binary would too).
        for at in [&path, &source] {
            match table.flags_at(at) {
                Some((f, m)) if !f.noexec => {
                    let src = table.backing(m);
                    // Storage on the store's own filesystem stays executable unless the
                    // persistence root is made a noexec bind of itself, as persistPath is.
                    let root = root.trim_end_matches('/');
                    let self_bound = table
                        .mounts
                        .iter()
                        .any(|x| x.mount_point == root && x.origin == "fileSystems");
                    let on_store = STORE_MOUNTS.contains(&src.mount_point.as_str())
                        && !STORE_MOUNTS.contains(&root)
                        && !self_bound;
                    let (fix, apply) = if on_store {
                        (
                            format!("add \"{root}\" to paranoid.noexec.extraPaths: the persistence root {root} lies on {} (which must stay executable for the store), and extraPaths makes it a noexec bind of itself", src.mount_point),
                            vec![set_knob("paranoid.noexec.extraPaths", json!([root]))],
                        )
                    } else {
                        (
                            format!(
                                "remove \"{}\" from paranoid.noexec.exceptions, or drop the override of fileSystems.\"{}\".options, so the persistent storage keeps noexec",
                                src.mount_point, src.mount_point
                            ),
                            vec![],
                        )
                    };
                    out.push(
                        v(
                            "noexec.persisted",
                            format!(
                                "with {}, persisted {} is executable: {} resolves to {}",
                                p.show("noexec.enable"),
                                path,
                                at,
                                table.explain(m)
                            ),
                            p.fix("noexec", "noexec.enable", fix),
                        )
                        .applying(apply),
                    );
                    break;
                }
                None => {
                    out.push(v(
                        "noexec.persisted",
                        format!("persisted {path}: no mount holds {at}"),
                        "declare fileSystems.\"/\"",
                    ));
                    break;
                }
                _ => {}
            }
        }
    }
    out
}

