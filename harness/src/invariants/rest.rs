//! The areas whose effective state is the option itself: packages, amnesia, users, logs,
//! antivirus.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use super::{force, show_json, str_list, v, Apply, Posture, Proj, Violation};
use crate::plan::plain;

pub(super) fn check_rest(p: &Posture, proj: &Proj) -> Vec<Violation> {
    let mut out = vec![];
    if p.area_on("packages") && p.flag("packages.stripDefaults") {
        let defaults = str_list(&proj.opt_list("environment.defaultPackages"));
        if !defaults.is_empty() {
            out.push(v(
                "packages.stripped",
                format!(
                    "with {}, environment.defaultPackages = {defaults:?}",
                    p.show("packages.stripDefaults")
                ),
                p.fix(
                    "packages",
                    "packages.stripDefaults",
                    "remove the definition of environment.defaultPackages",
                ),
            )
            .applying(vec![force("environment.defaultPackages", json!([]))]));
        }
        if proj.opt_bool("programs.nano.enable") != Some(false) {
            out.push(v(
                "packages.stripped",
                format!(
                    "with {}, programs.nano.enable = {}",
                    p.show("packages.stripDefaults"),
                    show_json(proj.opt("programs.nano.enable"))
                ),
                p.fix(
                    "packages",
                    "packages.stripDefaults",
                    "remove the definition of programs.nano.enable = true",
                ),
            )
            .applying(vec![force("programs.nano.enable", json!(false))]));
        }
    }
    if p.area_on("amnesia") {
        let persist = p.text("amnesia.persistPath");
        let size = p.text("amnesia.rootSize");
        let root = proj.opt("fileSystems").and_then(|f| f.get("/"));
        let fs_type = root
            .and_then(|r| r.get("fsType"))
            .and_then(Value::as_str)
            .unwrap_or("<none>");
        let opts: Vec<String> = root
            .and_then(|r| r.get("options"))
            .and_then(Value::as_array)
            .map(|a| a.iter().map(plain).collect())
            .unwrap_or_default();
        let last = |prefix: &str| opts.iter().rev().find(|o| o.starts_with(prefix)).cloned();
        if fs_type != "tmpfs"
            || last("mode=").as_deref() != Some("mode=755")
            || last("size=") != Some(format!("size={size}"))
        {
            // paranoid's own definition (modules/amnesia.nix), back in place.
            let tmpfs_options = json!(["defaults", format!("size={size}"), "mode=755"]);
            let apply = if fs_type != "tmpfs" {
                force("fileSystems.\"/\"", json!({ "fsType": "tmpfs", "options": tmpfs_options }))
            } else {
                force("fileSystems.\"/\".options", tmpfs_options)
            };
            out.push(
                v(
                    "amnesia.tmpfs-root",
                    format!("with {} and {}, fileSystems.\"/\" is {fs_type} with options {}", p.show("amnesia.enable"), p.show("amnesia.rootSize"), opts.join(",")),
                    p.fix("amnesia", "amnesia.enable", "remove the fileSystems.\"/\" definition (usually hardware-configuration.nix) that overrides paranoid's tmpfs"),
                )
                .applying(vec![apply]),
            );
        }
        let entry = proj
            .opt("environment.persistence")
            .and_then(|e| e.get(&persist));
        let listed = |key: &str, field: &str| -> BTreeSet<String> {
            entry
                .and_then(|e| e.get(key))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|d| d.get(field).and_then(Value::as_str).map(str::to_string))
                .collect()
        };
        let wanted = |key: &str, field: &str| -> Vec<String> {
            p.get(key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|d| {
                    d.as_str()
                        .map(str::to_string)
                        .or_else(|| d.get(field).and_then(Value::as_str).map(str::to_string))
                })
                .collect()
        };
        let (dirs, files) = (
            listed("directories", "dirPath"),
            listed("files", "filePath"),
        );
        let missing: Vec<String> = wanted("amnesia.directories", "directory")
            .into_iter()
            .filter(|d| !dirs.contains(d))
            .chain(
                wanted("amnesia.files", "file")
                    .into_iter()
                    .filter(|f| !files.contains(f)),
            )
            .collect();
        if entry.is_none() || !missing.is_empty() {
            out.push(v(
                "amnesia.persistence",
                format!("with {}, environment.persistence.\"{persist}\" {}", p.show("amnesia.persistPath"), if entry.is_none() { "does not exist".to_string() } else { format!("lacks {missing:?}") }),
                p.fix("amnesia", "amnesia.enable", format!("remove the definition that overrides environment.persistence.\"{persist}\" (paranoid.amnesia lists its directories and files there; add yours beside them, without lib.mkForce), and import impermanence's module (paranoid.nixosModules.all brings it)")),
            ));
        }
        // paranoid.ssh's host keys (modules/ssh.nix): one per type, in hostKeys.directory.
        let dir = p.text("ssh.hostKeys.directory");
        let own_keys: Vec<Value> = p
            .get("ssh.hostKeys.types")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(plain)
            .map(|t| {
                let mut k = json!({ "type": t, "path": format!("{dir}/ssh_host_{t}_key") });
                if t == "rsa" {
                    k["bits"] = json!(4096);
                }
                k
            })
            .collect();
        for k in proj.opt_list("services.openssh.hostKeys") {
            let path = k.get("path").and_then(Value::as_str).unwrap_or("");
            if !path.starts_with(&format!("{}/", persist.trim_end_matches('/'))) {
                let apply: Vec<Apply> = if !own_keys.is_empty() && dir.starts_with(&format!("{}/", persist.trim_end_matches('/'))) {
                    vec![force("services.openssh.hostKeys", Value::Array(own_keys.clone()))]
                } else {
                    vec![]
                };
                out.push(
                    v(
                        "amnesia.host-keys",
                        format!("with {}, SSH host key {path} is outside persistent storage: it changes at every boot", p.show("amnesia.persistPath")),
                        p.fix("amnesia", "amnesia.enable", "remove the definition of services.openssh.hostKeys (paranoid.ssh.hostKeys.directory follows persistPath)"),
                    )
                    .applying(apply),
                );
            }
        }
    }
    if p.area_on("users")
        && p.flag("users.immutable")
        && proj.opt_bool("users.mutableUsers") != Some(false)
    {
        out.push(v(
            "users.immutable",
            format!(
                "with {}, users.mutableUsers = {}",
                p.show("users.immutable"),
                show_json(proj.opt("users.mutableUsers"))
            ),
            p.fix(
                "users",
                "users.immutable",
                "remove the definition of users.mutableUsers = true",
            ),
        )
        .applying(vec![force("users.mutableUsers", json!(false))]));
    }
    if p.area_on("logs") {
        let url = p.text("logs.remote.url");
        let on = proj.opt_bool("services.journald.upload.enable") == Some(true);
        let got = proj
            .opt("services.journald.upload.settings")
            .and_then(|s| s.get("Upload"))
            .and_then(|u| u.get("URL"))
            .map(plain);
        if !on || got.as_deref() != Some(url.as_str()) {
            let mut apply = vec![];
            let mut fixes = vec![];
            if !on {
                fixes.push("remove the definition of services.journald.upload.enable = false".to_string());
                apply.push(force("services.journald.upload.enable", json!(true)));
            }
            if got.as_deref() != Some(url.as_str()) && !url.is_empty() {
                fixes.push("remove the definition of services.journald.upload.settings.Upload.URL (paranoid.logs.remote.url sets it)".to_string());
                apply.push(force("services.journald.upload.settings.Upload.URL", json!(url)));
            }
            let fix = if fixes.is_empty() {
                "set paranoid.logs.remote.url and remove overrides of services.journald.upload".to_string()
            } else {
                fixes.join("; and ")
            };
            out.push(
                v(
                    "logs.upload",
                    format!(
                        "with {} and {}, services.journald.upload.enable = {on}, URL = {}",
                        p.show("logs.remote.enable"),
                        p.show("logs.remote.url"),
                        got.unwrap_or_else(|| "<none>".into())
                    ),
                    p.fix("logs", "logs.remote.enable", fix),
                )
                .applying(if url.is_empty() { vec![] } else { apply }),
            );
        }
    }
    if p.area_on("antivirus") {
        let mode = p.text("antivirus.mode");
        let installed = str_list(&proj.opt_list("environment.systemPackages"))
            .iter()
            .any(|n| n.contains("clamav"));
        let daemon = proj.opt_bool("services.clamav.daemon.enable") == Some(true);
        let updater = proj.opt_bool("services.clamav.updater.enable") == Some(true);
        let ok = match mode.as_str() {
            "installed" => installed,
            "running" => daemon && updater,
            _ => true,
        };
        if !ok {
            // Running: the daemons' switches, forced back on. Installed: the package list is
            // the host's to mend (its override dropped clamav).
            let (fix, apply) = if mode == "running" {
                let off: Vec<&str> = [("services.clamav.daemon.enable", daemon), ("services.clamav.updater.enable", updater)]
                    .iter()
                    .filter(|(_, on)| !on)
                    .map(|(o, _)| *o)
                    .collect();
                (
                    format!("remove the definition of {} = false", off.join(" and ")),
                    off.iter().map(|o| force(*o, json!(true))).collect(),
                )
            } else {
                ("remove the override of environment.systemPackages that drops clamav".to_string(), vec![])
            };
            out.push(
                v(
                    "antivirus.mode",
                    format!("with {}, clamav installed = {installed}, clamd = {daemon}, freshclam = {updater}", p.show("antivirus.mode")),
                    p.fix("antivirus", "antivirus.mode", fix),
                )
                .applying(apply),
            );
        }
    }
    out
}
